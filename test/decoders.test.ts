// The reply decoders fed hostile bytes through the addon's codec.decode op (no socket): what a
// broken or malicious kernel reply, or a fuzzer's crash input, does to them. Each case here is
// an input that once read out of bounds or hit undefined behaviour.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkError, open, type Handle, type Netns } from '../lib/index.js';
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

const corpus = path.join(path.dirname(new URL(import.meta.url).pathname), '..', 'fuzz', 'corpus');
const seeds = (harness: string, prefix: string) =>
  fs.readdirSync(path.join(corpus, harness)).filter((f) => f.startsWith(prefix + '-') && /^[a-z]+-\d+\.bin$/.test(f)).sort()
    .map((f) => fs.readFileSync(path.join(corpus, harness, f)));

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

  it('an address whose IFA_LOCAL is too short is read from IFA_ADDRESS, never compared past its end', async () => {
    // IFA_LOCAL (0 bytes) last in the message: the old code compared 4 bytes from its payload,
    // i.e. past the end of the buffer, and reported IFA_ADDRESS as a "peer".
    const msg = nlmsg(RTM_NEWADDR, 0, 1, Buffer.concat([ifaddrmsg(AF_INET, 24, 1), attr(IFA_ADDRESS, ip4('198.51.100.7')), attr(IFA_LOCAL, Buffer.alloc(0))]));
    const [a] = await decode('addr', msg);
    expect(a.address).toBe('198.51.100.7');
    expect(a.cidr).toBe('198.51.100.7/24');
    expect(a.peer).toBeUndefined();
    // The one found in the tc decoders: an htb class whose 64-bit rate times its buffer is more
    // than 2^64 bytes of burst (a double -> integer conversion out of range, undefined).
    const [c] = await decode('class', fs.readFileSync(path.join(corpus, 'tc_fuzz', 'crash-htb-rate64-burst.bin')));
    expect(c.kind).toBe('htb');
    expect(c.rate).toBe(2 ** 64);
    expect(c.burst).toBe(2 ** 64);
    expect(c.cburst).toBe(2 ** 64);
  });

  it('a short IFA_ADDRESS next to a whole IFA_LOCAL is no peer; a whole different one is', async () => {
    const short = nlmsg(RTM_NEWADDR, 0, 1, Buffer.concat([ifaddrmsg(AF_INET, 32, 1), attr(IFA_LOCAL, ip4('198.51.100.9')), attr(IFA_ADDRESS, Buffer.from([198, 51]))]));
    const peer = nlmsg(RTM_NEWADDR, 0, 2, Buffer.concat([ifaddrmsg(AF_INET, 32, 1), attr(IFA_LOCAL, ip4('198.51.100.9')), attr(IFA_ADDRESS, ip4('198.51.100.10'))]));
    const [a, b] = await decode('addr', Buffer.concat([short, peer]));
    expect(a.address).toBe('198.51.100.9');
    expect(a.peer).toBeUndefined();
    expect(b.peer).toBe('198.51.100.10');
  });

  it('an attribute shorter than its type is an EPROTO error naming it (a malformed reply, no kernel refusal), not a read past it', async () => {
    const IFA_FLAGS = 8;
    const msg = nlmsg(RTM_NEWADDR, 0, 1, Buffer.concat([ifaddrmsg(AF_INET, 24, 1), attr(IFA_LOCAL, ip4('198.51.100.7')), attr(IFA_FLAGS, Buffer.from([1]))]));
    const e = await decode('addr', msg).catch((x) => x);
    expect(e.code).toBe('EPROTO');
    expect(e).not.toBeInstanceOf(NetlinkError);
    expect(e.message).toMatch(/^codec\.decode: a message from the kernel is malformed: attribute 8 is 1 bytes, expected at least 4 \(EPROTO\)$/);
  });

  it('decodes the kernel replies captured as fuzz seeds the way ip and nft show them', async () => {
    const links = (await Promise.all(seeds('rtnl_fuzz', 'link').map((b) => decode('link', b)))).flat();
    const byName = new Map(links.map((l) => [l.name, l]));
    expect(byName.get('br0')?.kind).toBe('bridge');
    expect(byName.get('v1')?.port?.kind).toBe('bridge');
    expect(byName.get('vx0')?.info?.vni).toBe(42);
    expect(byName.get('mv0')?.info?.mode).toBe('bridge');
    const addrs = (await Promise.all(seeds('rtnl_fuzz', 'addr').map((b) => decode('addr', b)))).flat();
    expect(addrs.find((a) => a.address === '198.51.100.9')?.peer).toBe('198.51.100.10');
    expect(addrs.find((a) => a.label === 'br0:nat')?.broadcast).toBe('192.168.122.255');
    const routes = (await Promise.all(seeds('rtnl_fuzz', 'route').map((b) => decode('route', b)))).flat();
    expect(routes.find((r) => r.dst === '203.0.113.0/24')?.via).toBe('198.51.100.2');
    expect(routes.find((r) => r.dst === '203.0.113.128/25')?.table).toBe(100);
    const neighs = (await Promise.all(seeds('rtnl_fuzz', 'neigh').map((b) => decode('neigh', b)))).flat();
    expect(neighs.find((n) => n.dst === '198.51.100.2')?.lladdr).toBe('52:54:00:00:00:02');
    const rules = (await Promise.all(seeds('nft_fuzz', 'rule').map((b) => decode('rule', b)))).flat();
    expect(rules.find((r) => r.comment === 'masq the network')?.exprs.map((e: any) => e.name)).toContain('masq');
    const chains = (await Promise.all(seeds('nft_fuzz', 'chain').map((b) => decode('chain', b)))).flat();
    expect(chains.map((c) => c.name).sort()).toEqual(['extra', 'filter_fwd', 'post', 'pre']);
    const acks = (await Promise.all(seeds('ack_fuzz', 'ack').map((b) => decode('ack', b)))).flat();
    expect(acks.map((a) => a.err)).toEqual([17, 95, 34, 0]);
    expect(acks[1].extack).toBe('Unknown device type');
  });

  it('replays every crash input the fuzzers found (fuzz/corpus/*/crash-*) through the decoders', async () => {
    const RTM = new Map([[16, 'link'], [17, 'link'], [20, 'addr'], [21, 'addr'], [24, 'route'], [25, 'route'], [28, 'neigh'], [29, 'neigh']]);
    const NFT = new Map([[0, 'table'], [2, 'table'], [3, 'chain'], [5, 'chain'], [6, 'rule'], [8, 'rule']]);
    const TC = new Map([[36, 'qdisc'], [37, 'qdisc'], [40, 'class'], [41, 'class'], [44, 'filter'], [45, 'filter']]);
    let replayed = 0;
    for (const harness of fs.readdirSync(corpus)) {
      for (const f of fs.readdirSync(path.join(corpus, harness)).filter((n) => n.startsWith('crash-'))) {
        const buf = fs.readFileSync(path.join(corpus, harness, f));
        for (let off = 0; off + 16 <= buf.length;) {
          const len = buf.readUInt32LE(off);
          if (len < 16 || off + len > buf.length) break;
          const type = buf.readUInt16LE(off + 4);
          const kind = type === 2 || type === 3 ? 'ack' : harness === 'nft_fuzz' ? NFT.get(type & 0xff) : harness === 'tc_fuzz' ? TC.get(type) : RTM.get(type);
          if (kind) {
            // Either decoded or refused as malformed (EPROTO); anything else is a bug.
            const r = await decode(kind, buf.subarray(off, off + len)).catch((e) => e);
            if (!Array.isArray(r)) expect(r.code, `${harness}/${f}`).toBe('EPROTO');
            replayed++;
          }
          off += (len + 3) & ~3;
        }
      }
    }
    expect(replayed).toBeGreaterThan(0);
    // The one found in decodeAddr: an inet6 address whose IFA_LOCAL holds 4 bytes.
    const [a] = await decode('addr', fs.readFileSync(path.join(corpus, 'rtnl_fuzz', 'crash-addr-short-local.bin')));
    expect(a.family).toBe('inet6');
    expect(a.peer).toBeUndefined();
    // The one found in the tc decoders: an htb class whose 64-bit rate times its buffer is more
    // than 2^64 bytes of burst (a double -> integer conversion out of range, undefined).
    const [c] = await decode('class', fs.readFileSync(path.join(corpus, 'tc_fuzz', 'crash-htb-rate64-burst.bin')));
    expect(c.kind).toBe('htb');
    expect(c.rate).toBe(2 ** 64);
    expect(c.burst).toBe(2 ** 64);
    expect(c.cburst).toBe(2 ** 64);
  });
});
