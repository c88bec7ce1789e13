// The userspace forwarder: frames between socketpairs (no privileges needed) for the engine's
// rules, then between taps in guest namespaces for what a user checks (ping, TCP, tcpdump).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Forwarder } from '../lib/index.js';

// ---- frames by hand -----------------------------------------------------------------------------

const mac = (n: number) => Buffer.from([0x02, 0, 0, 0, 0, n]);
const BCAST = Buffer.alloc(6, 0xff);

function ether(dst: Buffer, src: Buffer, tag: string, len = 64): Buffer {
  const f = Buffer.alloc(Math.max(len, 14 + tag.length));
  dst.copy(f, 0); src.copy(f, 6); f.writeUInt16BE(0x88b5, 12); // local experimental ethertype
  f.write(tag, 14);
  return f;
}
const tagOf = (f: Buffer) => f.subarray(14).toString().replace(/\0+$/, '');

function csum(buf: Buffer, start = 0, end = buf.length, init = 0): number {
  let s = init;
  for (let i = start; i + 1 < end; i += 2) s += buf.readUInt16BE(i);
  if ((end - start) & 1) s += buf[end - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** IPv4/TCP frame with `payload`; TCP checksum left as the pseudo-header sum (CHECKSUM_PARTIAL). */
function tcp4(payload: Buffer, seq: number, flags = 0x18): Buffer {
  const f = Buffer.alloc(14 + 20 + 20 + payload.length);
  mac(2).copy(f, 0); mac(1).copy(f, 6); f.writeUInt16BE(0x0800, 12);
  const ip = 14;
  f[ip] = 0x45; f.writeUInt16BE(20 + 20 + payload.length, ip + 2); f.writeUInt16BE(0x1234, ip + 4);
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
function pseudo4(f: Buffer, l4len: number): Buffer {
  const p = Buffer.alloc(12);
  f.copy(p, 0, 26, 34); p[9] = 6; p.writeUInt16BE(l4len, 10);
  return p;
}
/** True when the IPv4 header and TCP checksums of a wire frame verify. */
function tcp4Valid(f: Buffer): boolean {
  const l4len = f.readUInt16BE(16) - 20;
  return csum(f, 14, 34) === 0xffff && csum(f, 34, 34 + l4len, csum(pseudo4(f, l4len))) === 0xffff;
}
function vnetHdr(o: { flags?: number; gsoType?: number; hdrLen?: number; gsoSize?: number; csumStart?: number; csumOffset?: number }): Buffer {
  const h = Buffer.alloc(10);
  h[0] = o.flags ?? 0; h[1] = o.gsoType ?? 0;
  h.writeUInt16LE(o.hdrLen ?? 0, 2); h.writeUInt16LE(o.gsoSize ?? 0, 4);
  h.writeUInt16LE(o.csumStart ?? 0, 6); h.writeUInt16LE(o.csumOffset ?? 0, 8);
  return h;
}

// ---- socketpair ports -------------------------------------------------------------------------

const opened: number[] = [];
function pair(): [number, number] {
  const p = Forwarder.socketpair();
  opened.push(...p);
  return p;
}
function closeAll(): void {
  for (const fd of opened.splice(0)) { try { fs.closeSync(fd); } catch { /* closed by the test */ } }
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads one frame from a non-blocking fd, or undefined after `ms`. */
async function readFrame(fd: number, ms = 1000): Promise<Buffer | undefined> {
  const b = Buffer.alloc(70000);
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
async function readAll(fd: number, ms = 150): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for (;;) {
    const f = await readFrame(fd, ms);
    if (!f) return out;
    out.push(f);
  }
}

describe('forwarder over socketpairs', () => {
  afterAll(closeAll);

  it('switch: floods broadcast and unknown unicast to every other port, then delivers learned unicast to one port only', async () => {
    await using fw = new Forwarder({ mode: 'switch' });
    const [a, a1] = pair(); const [b, b1] = pair(); const [c, c1] = pair();
    fw.add('a', a1); fw.add('b', b1); fw.add('c', c1);
    fw.start();
    fs.writeSync(a, ether(BCAST, mac(1), 'hello all'));
    expect(tagOf((await readFrame(b))!)).toBe('hello all');
    expect(tagOf((await readFrame(c))!)).toBe('hello all');
    expect(await readFrame(a, 100)).toBeUndefined(); // never back to the ingress port

    fs.writeSync(b, ether(mac(9), mac(2), 'to nobody yet')); // unknown unicast: flooded
    expect(tagOf((await readFrame(a))!)).toBe('to nobody yet');
    expect(tagOf((await readFrame(c))!)).toBe('to nobody yet');

    fs.writeSync(b, ether(mac(1), mac(2), 'b to a'));
    fs.writeSync(a, ether(mac(2), mac(1), 'a to b'));
    expect(tagOf((await readFrame(a))!)).toBe('b to a');
    expect(tagOf((await readFrame(b))!)).toBe('a to b');
    expect(await readAll(c)).toEqual([]); // c saw neither unicast
    const fdb = fw.fdb().map((e) => `${e.mac}@${e.port}`).sort();
    expect(fdb).toEqual(['02:00:00:00:00:01@a', '02:00:00:00:00:02@b']);
    const s = fw.stats();
    expect(s.a.rxPackets).toBe(2);
    expect(s.c.txPackets).toBe(2);
    expect(s.c.rxPackets).toBe(0);
  });

  it('wire: both directions between exactly two ports; a third port is refused', async () => {
    await using fw = new Forwarder({ mode: 'wire' });
    const [a, a1] = pair(); const [b, b1] = pair(); const [, c1] = pair();
    fw.add('a', a1); fw.add('b', b1);
    expect(() => fw.add('c', c1)).toThrow(RangeError);
    fw.start();
    fs.writeSync(a, ether(mac(5), mac(6), 'a side'));
    fs.writeSync(b, ether(mac(5), mac(6), 'b side'));
    expect(tagOf((await readFrame(b))!)).toBe('a side');
    expect(tagOf((await readFrame(a))!)).toBe('b side');
  });

  it('rejects bad input naming the field, before anything is created', () => {
    expect(() => new Forwarder({ mode: 'hub' as any })).toThrow(/mode/);
    expect(() => new Forwarder({ threads: 0 })).toThrow(RangeError);
    const fw = new Forwarder();
    try {
      expect(() => fw.add('x', 987654)).toThrow(/fd.*not an open file descriptor/);
      expect(() => fw.add('', 0)).toThrow(/name/);
      const [, x] = pair();
      expect(() => fw.add('x', x, { offloads: { tso4: true } })).toThrow(/offloads/);
      expect(() => fw.add('x', x, { vnetHdr: true, vnetHdrSize: 11 })).toThrow(/vnetHdrSize/);
      expect(() => fw.send('nope', Buffer.alloc(60))).toThrow(/port/);
      expect(fw.ports).toEqual([]);
    } finally {
      void fw.close();
    }
  });

  it('a 64 KiB-style GSO frame passes whole between vnet-header ports and is segmented (checksums valid) towards a plain port', async () => {
    await using fw = new Forwarder({ mode: 'switch' });
    const [v1, v1f] = pair(); const [v2, v2f] = pair(); const [p, pf] = pair();
    fw.add('v1', v1f, { vnetHdr: true }); fw.add('v2', v2f, { vnetHdr: true }); fw.add('plain', pf);
    fw.start();
    const payload = Buffer.alloc(30000);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + 3) & 0xff;
    const frame = tcp4(payload, 1000, 0x19 /* FIN|PSH|ACK */);
    const hdr = vnetHdr({ flags: 1, gsoType: 1, hdrLen: 54, gsoSize: 1448, csumStart: 34, csumOffset: 16 });
    fs.writeSync(v1, Buffer.concat([hdr, frame])); // flooded: dst unknown

    const whole = (await readFrame(v2))!;
    expect(whole.length).toBe(10 + frame.length);
    expect(whole.equals(Buffer.concat([hdr, frame]))).toBe(true);

    const segs = await readAll(p);
    expect(segs.length).toBe(Math.ceil(30000 / 1448));
    let seq = 1000;
    const joined: Buffer[] = [];
    segs.forEach((s, i) => {
      expect(tcp4Valid(s)).toBe(true);
      expect(s.readUInt32BE(38)).toBe(seq);
      const flags = s[47];
      const last = i === segs.length - 1;
      expect(flags & 0x09).toBe(last ? 0x09 : 0); // FIN and PSH only on the last
      const data = s.subarray(54, 14 + s.readUInt16BE(16));
      seq += data.length;
      joined.push(data);
    });
    expect(Buffer.concat(joined).equals(payload)).toBe(true);
    expect(fw.stats().plain.txPackets).toBe(segs.length);
    expect(fw.stats().plain.drops.gso).toBe(0);
  });

  it("gsoToPlain 'drop': the GSO frame is refused and counted at the plain port, delivered at the vnet port", async () => {
    await using fw = new Forwarder({ mode: 'switch', gsoToPlain: 'drop' });
    const [v1, v1f] = pair(); const [v2, v2f] = pair(); const [p, pf] = pair();
    fw.add('v1', v1f, { vnetHdr: true }); fw.add('v2', v2f, { vnetHdr: true, vnetHdrSize: 12 }); fw.add('plain', pf);
    fw.start();
    const frame = tcp4(Buffer.alloc(5000, 1), 1);
    fs.writeSync(v1, Buffer.concat([vnetHdr({ flags: 1, gsoType: 1, hdrLen: 54, gsoSize: 1448, csumStart: 34, csumOffset: 16 }), frame]));
    const got = (await readFrame(v2))!;
    expect(got.length).toBe(12 + frame.length); // header resized 10 -> 12, frame untouched
    expect(got.subarray(12).equals(frame)).toBe(true);
    expect(got[1]).toBe(1); // still TCPv4 GSO
    expect(await readAll(p)).toEqual([]);
    expect(fw.stats().plain.drops.gso).toBe(1);
  });

  it('a checksum-offloaded frame gets its checksum completed towards a plain port; a plain frame gets a zero header towards a vnet port', async () => {
    await using fw = new Forwarder({ mode: 'switch' });
    const [v, vf] = pair(); const [p, pf] = pair();
    fw.add('v', vf, { vnetHdr: true }); fw.add('p', pf);
    fw.start();
    const frame = tcp4(Buffer.from('x'.repeat(501)), 7);
    expect(tcp4Valid(frame)).toBe(false);
    fs.writeSync(v, Buffer.concat([vnetHdr({ flags: 1, csumStart: 34, csumOffset: 16 }), frame]));
    const out = (await readFrame(p))!;
    expect(out.length).toBe(frame.length);
    expect(tcp4Valid(out)).toBe(true);
    fs.writeSync(p, ether(BCAST, mac(3), 'plain'));
    const withHdr = (await readFrame(v))!;
    expect(withHdr.subarray(0, 10).equals(Buffer.alloc(10))).toBe(true);
    expect(tagOf(withHdr.subarray(10))).toBe('plain');
  });

  it('frames() sees copies; a slow consumer only loses copies, never forwarded frames', async () => {
    await using fw = new Forwarder({ mode: 'wire' });
    const [a, a1] = pair(); const [b, b1] = pair();
    fw.add('a', a1); fw.add('b', b1);
    fw.start();
    const it = fw.frames('a', { queue: 4 });
    const N = 200;
    let got = 0;
    for (let i = 0; i < N; i++) {
      fs.writeSync(a, ether(mac(2), mac(1), `n${i}`));
      if ((await readFrame(b)) !== undefined) got++;
    }
    expect(got).toBe(N);
    await sleep(30);
    const first = await it.next();
    expect(first.value?.port).toBe('a');
    expect(first.value?.direction).toBe('rx');
    expect(tagOf(first.value!.data)).toBe('n0');
    await it.return!();
    const s = fw.stats().a;
    expect(s.rxPackets).toBe(N);
    expect(s.drops.copies).toBeGreaterThanOrEqual(N - 4 - 1);
    expect(fw.stats().b.txPackets).toBe(N);
  });

  it('send() injects a frame; capture() writes a pcap that tcpdump -r reads', async () => {
    await using fw = new Forwarder({ mode: 'switch' });
    const [a, a1] = pair(); const [b, b1] = pair();
    fw.add('a', a1, { vnetHdr: true }); fw.add('b', b1);
    fw.start();
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'vnl-fwd-')), 'a.pcap');
    const cap = await fw.capture('a', file);
    expect(fw.send('a', tcp4(Buffer.from('from js'), 42))).toBe(true);
    const injected = (await readFrame(a))!;
    expect(injected.length).toBe(10 + 54 + 7);
    fs.writeSync(a, Buffer.concat([vnetHdr({}), tcp4(Buffer.from('from a'), 43)]));
    expect(await readFrame(b)).toBeDefined();
    await sleep(30);
    await cap.close();
    expect(cap.written).toBe(1);
    const { spawnSync } = await import('node:child_process');
    const r = spawnSync('tcpdump', ['-nn', '-r', file], { encoding: 'utf8' });
    if (r.error) return; // tcpdump missing outside CI: the pcap header was still written
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/198\.51\.100\.1\.40000 > 198\.51\.100\.2\.5201: Flags \[P\.\], seq 43:49/);
    fs.rmSync(path.dirname(file), { recursive: true, force: true });
  });

  it('closing while frames flow, removing a port mid-flow and a peer closing underneath: counted, no hang', async () => {
    const fw = new Forwarder({ mode: 'switch', threads: 2 });
    const [a, a1] = pair(); const [b, b1] = pair(); const [c, c1] = pair();
    fw.add('a', a1); fw.add('b', b1); fw.add('c', c1);
    fs.closeSync(a1); fs.closeSync(b1); fs.closeSync(c1); // the forwarder holds its own copies
    fw.start();
    let stop = false;
    const pump = (async () => {
      let i = 0;
      while (!stop) {
        for (let k = 0; k < 50; k++) { try { fs.writeSync(a, ether(BCAST, mac(1), `f${i++}`)); } catch { /* queue full */ } }
        for (const fd of [b, c]) { try { while (fs.readSync(fd, Buffer.alloc(2048))) { /* drain */ } } catch { /* EAGAIN */ } }
        await sleep(1);
      }
    })();
    await sleep(50);
    fw.remove('b');
    expect(fw.ports).toEqual(['a', 'c']);
    await sleep(20);
    fs.closeSync(c); // c's peer goes away: writes to c now fail
    await sleep(30);
    const s = fw.stats();
    expect(s.a.rxPackets).toBeGreaterThan(0);
    expect(s.c.drops.txError + s.c.drops.rxError).toBeGreaterThan(0);
    expect(s.c.lastError).toBeDefined();
    await fw.close(); // while a is still writing
    stop = true;
    await pump;
    expect(() => fw.stats()).toThrow(/closed/);
    await fw.close(); // twice is fine
  });
});
