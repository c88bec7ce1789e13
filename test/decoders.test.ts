// The reply decoders fed hostile bytes through the addon's codec.decode op (no socket): what a
// broken or malicious kernel reply, or a fuzzer's crash input, does to them. Each case here is
// an input that once read out of bounds or hit undefined behaviour.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns } from '../lib/index.js';
import { Namespaces, privilegedSkipReason } from './helpers.js';

const skip = privilegedSkipReason();

const NLMSG_ERROR = 2;
const RTM_NEWADDR = 20;
const AF_INET = 2;
const IFA_ADDRESS = 1;
const IFA_LOCAL = 2;

const align4 = (n: number) => (n + 3) & ~3;

/** One netlink attribute, padded to 4 bytes. */
function attr(type: number, data: Buffer): Buffer {
  const b = Buffer.alloc(align4(4 + data.length));
  b.writeUInt16LE(4 + data.length, 0);
  b.writeUInt16LE(type, 2);
  data.copy(b, 4);
  return b;
}

/** One netlink message: header, then the payload (exact length, no trailing padding). */
function nlmsg(type: number, flags: number, seq: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(16);
  h.writeUInt32LE(16 + payload.length, 0);
  h.writeUInt16LE(type, 4);
  h.writeUInt16LE(flags, 6);
  h.writeUInt32LE(seq, 8);
  return Buffer.concat([h, payload]);
}

function ifaddrmsg(family: number, prefixLen: number, index: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt8(family, 0);
  b.writeUInt8(prefixLen, 1);
  b.writeUInt32LE(index, 4);
  return b;
}

const ip4 = (s: string) => Buffer.from(s.split('.').map(Number));

describe.skipIf(skip)('reply decoders on hostile bytes', () => {
  const nss = new Namespaces();
  let A: Netns;
  let h: Handle;
  const decode = (kind: string, bytes: Buffer) => h._call('codec.decode', { kind, bytes }) as Promise<any[]>;

  beforeAll(async () => {
    A = await nss.create('dec');
    h = await open({ netns: A.name });
  });
  afterAll(async () => {
    await h?.close();
    await nss.cleanup();
  });

  it('an ack whose error is INT_MIN is EPROTO, not a negated INT_MIN (undefined behaviour)', async () => {
    const err = Buffer.alloc(4 + 16);
    err.writeInt32LE(-0x80000000, 0);
    const [ack] = await decode('ack', nlmsg(NLMSG_ERROR, 0, 7, err));
    expect(ack.err).toBe(71); // EPROTO
    expect(ack.seq).toBe(7);
  });

  it('an ack with a positive error (no errno) is EPROTO; a real one keeps its errno', async () => {
    const pos = Buffer.alloc(20);
    pos.writeInt32LE(5, 0);
    const neg = Buffer.alloc(20);
    neg.writeInt32LE(-19, 0);
    const zero = Buffer.alloc(20);
    const acks = await decode('ack', Buffer.concat([nlmsg(NLMSG_ERROR, 0, 1, pos), nlmsg(NLMSG_ERROR, 0, 2, neg), nlmsg(NLMSG_ERROR, 0, 3, zero)]));
    expect(acks.map((a) => a.err)).toEqual([71, 19, 0]);
  });
});
