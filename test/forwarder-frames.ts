// Frames built by hand and read back from socketpair fds, shared by the forwarder tests.
import fs from 'node:fs';
import { Forwarder, type ForwarderSocketpairOptions } from '../lib/index.js';

export const mac = (n: number) => Buffer.from([0x02, 0, 0, 0, 0, n]);
export const BCAST = Buffer.alloc(6, 0xff);

export function ether(dst: Buffer, src: Buffer, tag: string, len = 64): Buffer {
  const f = Buffer.alloc(Math.max(len, 14 + tag.length));
  dst.copy(f, 0); src.copy(f, 6); f.writeUInt16BE(0x88b5, 12); // local experimental ethertype
  f.write(tag, 14);
  return f;
}
export const tagOf = (f: Buffer) => f.subarray(14).toString().replace(/\0+$/, '');

export function csum(buf: Buffer, start = 0, end = buf.length, init = 0): number {
  let s = init;
  for (let i = start; i + 1 < end; i += 2) s += buf.readUInt16BE(i);
  if ((end - start) & 1) s += buf[end - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** IPv4/TCP frame with `payload`; TCP checksum left as the pseudo-header sum (CHECKSUM_PARTIAL). */
export function tcp4(payload: Buffer, seq: number, flags = 0x18): Buffer {
  const f = Buffer.alloc(14 + 20 + 20 + payload.length);
  mac(2).copy(f, 0); mac(1).copy(f, 6); f.writeUInt16BE(0x0800, 12);
  const ip = 14;
  f[ip] = 0x45; f.writeUInt16BE((20 + 20 + payload.length) & 0xffff, ip + 2); // wraps past 64 KiB, as a careless guest's would f.writeUInt16BE(0x1234, ip + 4);
  f[ip + 8] = 64; f[ip + 9] = 6;
  Buffer.from([198, 51, 100, 1]).copy(f, ip + 12); Buffer.from([198, 51, 100, 2]).copy(f, ip + 16);
  f.writeUInt16BE((~csum(f, ip, ip + 20)) & 0xffff, ip + 10);
  const t = ip + 20;
  f.writeUInt16BE(40000, t); f.writeUInt16BE(5201, t + 2); f.writeUInt32BE(seq, t + 4); f.writeUInt32BE(1, t + 8);
  f[t + 12] = 5 << 4; f[t + 13] = flags; f.writeUInt16BE(65535, t + 14);
  payload.copy(f, t + 20);
  f.writeUInt16BE(csum(pseudo4(f, 20 + payload.length)), t + 16);
  return f;
}
export function pseudo4(f: Buffer, l4len: number): Buffer {
  const p = Buffer.alloc(12);
  f.copy(p, 0, 26, 34); p[9] = 6; p.writeUInt16BE(l4len & 0xffff, 10);
  return p;
}
/** True when the IPv4 header and TCP checksums of a wire frame verify. */
export function tcp4Valid(f: Buffer): boolean {
  const l4len = f.readUInt16BE(16) - 20;
  return csum(f, 14, 34) === 0xffff && csum(f, 34, 34 + l4len, csum(pseudo4(f, l4len))) === 0xffff;
}
/** IPv6/TCP frame (checksum field holds the pseudo-header sum, as with CHECKSUM_PARTIAL). */
export function tcp6(payload: Buffer, seq: number, flags = 0x18): Buffer {
  const f = Buffer.alloc(14 + 40 + 20 + payload.length);
  mac(2).copy(f, 0); mac(1).copy(f, 6); f.writeUInt16BE(0x86dd, 12);
  f[14] = 0x60; f.writeUInt16BE((20 + payload.length) & 0xffff, 18); f[20] = 6; f[21] = 64;
  Buffer.from('20010db8000000000000000000000001', 'hex').copy(f, 22);
  Buffer.from('20010db8000000000000000000000002', 'hex').copy(f, 38);
  const t = 54;
  f.writeUInt16BE(40000, t); f.writeUInt16BE(5201, t + 2); f.writeUInt32BE(seq, t + 4);
  f[t + 12] = 5 << 4; f[t + 13] = flags; f.writeUInt16BE(65535, t + 14);
  payload.copy(f, t + 20);
  f.writeUInt16BE(csum(pseudo6(f, 20 + payload.length)), t + 16);
  return f;
}
export function pseudo6(f: Buffer, l4len: number): Buffer {
  const p = Buffer.alloc(40);
  f.copy(p, 0, 22, 54); p.writeUInt32BE(l4len, 32); p[39] = 6;
  return p;
}
export function tcp6Valid(f: Buffer): boolean {
  const l4len = f.readUInt16BE(18);
  return csum(f, 54, 54 + l4len, csum(pseudo6(f, l4len))) === 0xffff;
}
export function vnetHdr(o: { flags?: number; gsoType?: number; hdrLen?: number; gsoSize?: number; csumStart?: number; csumOffset?: number }): Buffer {
  const h = Buffer.alloc(10);
  h[0] = o.flags ?? 0; h[1] = o.gsoType ?? 0;
  h.writeUInt16LE(o.hdrLen ?? 0, 2); h.writeUInt16LE(o.gsoSize ?? 0, 4);
  h.writeUInt16LE(o.csumStart ?? 0, 6); h.writeUInt16LE(o.csumOffset ?? 0, 8);
  return h;
}

// ---- socketpair ports -------------------------------------------------------------------------

const opened: number[] = [];
export function pair(options?: ForwarderSocketpairOptions): [number, number] {
  const p = Forwarder.socketpair(options);
  opened.push(...p);
  return p;
}
export function closeAll(): void {
  for (const fd of opened.splice(0)) { try { fs.closeSync(fd); } catch { /* closed by the test */ } }
}
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads one frame from a non-blocking fd, or undefined after `ms`. */
export async function readFrame(fd: number, ms = 1000): Promise<Buffer | undefined> {
  const b = Buffer.alloc(70001);
  const end = Date.now() + ms;
  for (;;) {
    try {
      const n = fs.readSync(fd, b, 0, b.length, null);
      return Buffer.from(b.subarray(0, n));
    } catch (e: any) {
      if (e.code !== 'EAGAIN') throw e;
    }
    if (Date.now() > end) return undefined;
    await sleep(2);
  }
}
export async function readAll(fd: number, ms = 150): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (;;) {
    const f = await readFrame(fd, ms);
    if (!f) return out;
    out.push(f);
  }
}

