// A guest is the attacker: every frame, header field and source MAC it writes is hostile. Each
// test drives the forwarder through real fds (socketpairs standing for a VMM's end) and checks
// what comes out on the other side and the counters an operator reads.
import fs from 'node:fs';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { Forwarder, open, type Handle, type Tap } from '../lib/index.js';
import { Namespaces, hasTool, nsExec, nsRun, privilegedSkipReason, waitFor } from './helpers.js';
import {
  BCAST, closeAll, ether, mac, pair, readAll, readFrame, sleep, tagOf, tcp4, tcp4Valid, tcp6, tcp6Valid, vnetHdr,
} from './forwarder-frames.js';

afterAll(closeAll);

/** A TCPv4 GSO frame with a vnet header asking for `gsoSize`-byte segments. */
function gso4(payloadLen: number, gsoSize: number, frame = tcp4(pattern(payloadLen), 1000)): Buffer {
  return Buffer.concat([vnetHdr({ flags: 1, gsoType: 1, hdrLen: 54, gsoSize, csumStart: 34, csumOffset: 16 }), frame]);
}
function gso6(frame: Buffer, gsoSize: number): Buffer {
  return Buffer.concat([vnetHdr({ flags: 1, gsoType: 4, hdrLen: 74, gsoSize, csumStart: 54, csumOffset: 16 }), frame]);
}
function pattern(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 13 + 5) & 0xff;
  return b;
}
/** Writes, waiting while the socket's queue is full. */
async function put(fd: number, frame: Buffer): Promise<void> {
  for (let i = 0; ; i++) {
    try { fs.writeSync(fd, frame); return; } catch (e: any) {
      if (e.code !== 'EAGAIN' || i > 5000) throw e;
      await sleep(1);
    }
  }
}
const statsOf = (fw: Forwarder, port: string) => fw.stats()[port];

/** A vnet-header port 'v' wired to a plain port 'p': GSO frames from v are segmented for p. */
function vnetToPlain(): { fw: Forwarder; v: number; p: number } {
  const fw = new Forwarder({ mode: 'wire' });
  const [v, vf] = pair(); const [p, pf] = pair();
  fw.add('v', vf, { vnetHdr: true }); fw.add('p', pf);
  fw.start();
  return { fw, v, p };
}

describe('empty frames and frames too large for the read buffer', () => {
  for (const type of ['seqpacket', 'dgram'] as const) {
    it(`${type}: an empty message is an empty frame (counted as malformed); the queue stays in service`, async () => {
      await using fw = new Forwarder({ mode: 'wire' });
      const [a, a1] = pair({ type }); const [b, b1] = pair({ type });
      fw.add('a', a1); fw.add('b', b1);
      fw.start();
      fs.writeSync(a, Buffer.alloc(0));
      fs.writeSync(a, ether(mac(2), mac(1), 'after the empty one'));
      expect(tagOf((await readFrame(b))!)).toBe('after the empty one');
      const s = statsOf(fw, 'a');
      expect(s.drops.malformed).toBe(1);
      expect(s.downQueues).toBe(0);
      expect(s.drops.rxError).toBe(0);
      expect(s.rxPackets).toBe(1);
    });
  }

  it('seqpacket: a peer that really goes away is still the end of the queue (EPIPE), after the frames it queued', async () => {
    await using fw = new Forwarder({ mode: 'wire' });
    const [a, a1] = pair(); const [b, b1] = pair();
    fw.add('a', a1); fw.add('b', b1);
    fs.writeSync(a, Buffer.alloc(0));
    fs.writeSync(a, ether(mac(2), mac(1), 'last words'));
    fs.closeSync(a);
    fw.start();
    expect(tagOf((await readFrame(b))!)).toBe('last words');
    await waitFor(() => statsOf(fw, 'a').downQueues === 1, 'a to be taken out of service', 5000);
    expect(statsOf(fw, 'a')).toMatchObject({ lastError: 'EPIPE', rxPackets: 1 });
    expect(statsOf(fw, 'a').drops).toMatchObject({ rxError: 1, malformed: 1 });
  });

  it('a frame larger than the 69,632-byte read buffer is dropped and counted (oversize), not forwarded cut short; one that fits passes whole', async () => {
    await using fw = new Forwarder({ mode: 'wire' });
    const [a, a1] = pair(); const [b, b1] = pair();
    fw.add('a', a1); fw.add('b', b1);
    fw.start();
    fs.writeSync(a, ether(mac(2), mac(1), 'too big', 69_633));
    fs.writeSync(a, ether(mac(2), mac(1), 'just fits', 69_632));
    const got = await readAll(b, 300);
    expect(got.map((f) => [f.length, tagOf(f.subarray(0, 30))])).toEqual([[69_632, 'just fits']]);
    expect(statsOf(fw, 'a').drops.oversize).toBe(1);
    expect(statsOf(fw, 'a').rxPackets).toBe(1);
  });
});

describe('GSO frames a guest describes with hostile sizes', () => {
  it('gso_size 1 on a 30,000-byte TCP frame is refused (gsoLimit), not cut into 30,000 writes', async () => {
    const { fw, v, p } = vnetToPlain();
    await using _ = fw;
    fs.writeSync(v, gso4(30_000, 1));
    fs.writeSync(v, Buffer.concat([vnetHdr({}), ether(mac(2), mac(1), 'next')]));
    const out = await readAll(p, 300);
    expect(out.map((f) => tagOf(f))).toEqual(['next']);
    expect(statsOf(fw, 'v').drops.gsoLimit).toBe(1);
    expect(statsOf(fw, 'p').txPackets).toBe(1);
  });

  it('gso_size: 87 is refused, 88 is taken; 128 segments are taken, 129 refused; 0 and 0xffff are malformed', async () => {
    const { fw, v, p } = vnetToPlain();
    await using _ = fw;
    fs.writeSync(v, gso4(1000, 87));
    fs.writeSync(v, gso4(88 * 129, 88));
    fs.writeSync(v, gso4(1000, 0));
    fs.writeSync(v, gso4(1000, 0xffff));
    expect(await readAll(p, 200)).toEqual([]);
    expect(statsOf(fw, 'v').drops).toMatchObject({ gsoLimit: 2, malformed: 2 });
    fs.writeSync(v, gso4(88 * 128, 88));
    const segs = await readAll(p, 300);
    expect(segs.length).toBe(128);
    expect(segs.every((s) => tcp4Valid(s) && s.readUInt16BE(16) === s.length - 14 && s.length === 54 + 88)).toBe(true);
    expect(Buffer.concat(segs.map((s) => s.subarray(54))).equals(pattern(88 * 128))).toBe(true);
  });

  it('a segment whose IPv4 total length or IPv6 payload length would pass 65535 is refused, never sent wrapped', async () => {
    const { fw, v, p } = vnetToPlain();
    await using _ = fw;
    // 69,000 bytes of payload in one frame: its own length field cannot hold that (0, as BIG TCP
    // writes it), and gso_size 65534 makes a first segment of 65,574 IP bytes.
    const big4 = tcp4(pattern(69_000), 1); big4.writeUInt16BE(0, 16);
    const big6 = tcp6(pattern(69_000), 1); big6.writeUInt16BE(0, 18);
    fs.writeSync(v, gso4(0, 65_534, big4));
    fs.writeSync(v, gso6(big6, 65_534));
    expect(await readAll(p, 300)).toEqual([]);
    expect(statsOf(fw, 'v').drops.gsoLimit).toBe(2);
    // The same frames with segments that fit leave with lengths matching each segment.
    fs.writeSync(v, gso4(0, 1448, big4));
    fs.writeSync(v, gso6(big6, 1440));
    const segs = await readAll(p, 500);
    const v4 = segs.filter((s) => s.readUInt16BE(12) === 0x0800);
    const v6 = segs.filter((s) => s.readUInt16BE(12) === 0x86dd);
    expect(v4.length).toBe(Math.ceil(69_000 / 1448));
    expect(v6.length).toBe(Math.ceil(69_000 / 1440));
    expect(v4.every((s) => tcp4Valid(s) && s.readUInt16BE(16) === s.length - 14)).toBe(true);
    expect(v6.every((s) => tcp6Valid(s) && s.readUInt16BE(18) === s.length - 54)).toBe(true);
    expect(Buffer.concat(v6.map((s) => s.subarray(74))).equals(pattern(69_000))).toBe(true);
  });

  it('a GSO frame whose IP length disagrees with the frame (trailing bytes, or cut short) is malformed: nothing is segmented', async () => {
    const { fw, v, p } = vnetToPlain();
    await using _ = fw;
    const trailing = Buffer.concat([tcp4(pattern(5000), 1), Buffer.alloc(100, 0xee)]);
    const short = tcp4(pattern(5000), 1).subarray(0, 54 + 4000);
    fs.writeSync(v, gso4(0, 1448, trailing));
    fs.writeSync(v, gso4(0, 1448, Buffer.from(short)));
    expect(await readAll(p, 300)).toEqual([]);
    expect(statsOf(fw, 'v').drops.malformed).toBe(2);
  });

  it('between two vnet-header ports: offsets outside the frame or an unknown GSO type are dropped on the way in', async () => {
    await using fw = new Forwarder({ mode: 'wire' });
    const [a, a1] = pair(); const [b, b1] = pair();
    fw.add('a', a1, { vnetHdr: true }); fw.add('b', b1, { vnetHdr: true });
    fw.start();
    const f = tcp4(pattern(500), 1);
    fs.writeSync(a, Buffer.concat([vnetHdr({ flags: 1, csumStart: 34, csumOffset: 600 }), f]));  // field past the end
    fs.writeSync(a, Buffer.concat([vnetHdr({ flags: 1, csumStart: 9000, csumOffset: 0 }), f]));
    fs.writeSync(a, Buffer.concat([vnetHdr({ gsoType: 2, gsoSize: 1448 }), f]));                   // no such type
    fs.writeSync(a, Buffer.concat([vnetHdr({ gsoType: 0x80 }), f]));                              // ECN alone
    fs.writeSync(a, Buffer.concat([vnetHdr({ flags: 1, csumStart: 34, csumOffset: 16 }), f]));    // fine
    const got = await readAll(b, 300);
    expect(got.length).toBe(1);
    expect(got[0].subarray(10).equals(f)).toBe(true);
    expect(statsOf(fw, 'a').drops.malformed).toBe(4);
  });
});

describe('switch mode: a guest that plays many stations', () => {
  it('maxMacs: a port learns at most its limit of source MACs; frames from further new MACs are dropped (macLimit)', async () => {
    await using fw = new Forwarder({ mode: 'switch' });
    const [a, a1] = pair(); const [b, b1] = pair();
    fw.add('a', a1, { maxMacs: 4 }); fw.add('b', b1);
    fw.start();
    for (let i = 0; i < 10; i++) fs.writeSync(a, ether(BCAST, Buffer.from([0x02, 9, 0, 0, 0, i]), `s${i}`));
    expect((await readAll(b)).map(tagOf)).toEqual(['s0', 's1', 's2', 's3']);
    expect(statsOf(fw, 'a').drops.macLimit).toBe(6);
    expect(fw.fdb().filter((e) => e.port === 'a').length).toBe(4);
    // A station already learned keeps talking.
    fs.writeSync(a, ether(BCAST, Buffer.from([0x02, 9, 0, 0, 0, 2]), 'again'));
    expect(tagOf((await readFrame(b))!)).toBe('again');
  });

  it('one guest cycling through 20,000 source MACs evicts nobody: other stations stay learned and get unicast alone', async () => {
    await using fw = new Forwarder({ mode: 'switch' });  // default table (4096) and limit (64)
    const [a, a1] = pair(); const [b, b1] = pair(); const [c, c1] = pair();
    fw.add('a', a1); fw.add('b', b1); fw.add('c', c1);
    fw.start();
    fs.writeSync(b, ether(BCAST, mac(2), 'b is here'));
    fs.writeSync(c, ether(BCAST, mac(3), 'c is here'));
    expect((await readAll(a, 100)).map(tagOf)).toEqual(['b is here', 'c is here']);
    for (let i = 0; i < 20_000; i++) await put(a, ether(BCAST, Buffer.from([0x02, 7, 0, (i >> 16) & 0xff, (i >> 8) & 0xff, i & 0xff]), 'x'));
    await waitFor(() => statsOf(fw, 'a').rxPackets + statsOf(fw, 'a').drops.macLimit === 20_000, 'a to be read', 15_000);
    expect(statsOf(fw, 'a').rxPackets).toBe(64);
    expect(statsOf(fw, 'a').drops.macLimit).toBe(20_000 - 64);
    await readAll(b, 50); await readAll(c, 50);
    fs.writeSync(c, ether(mac(2), mac(3), 'c to b'));
    expect(tagOf((await readFrame(b))!)).toBe('c to b');
    expect(await readAll(a, 100)).toEqual([]);  // not flooded: b is still known
    expect(fw.fdb().map((e) => `${e.mac}@${e.port}`)).toEqual(expect.arrayContaining(['02:00:00:00:00:02@b', '02:00:00:00:00:03@c']));
  });

  it('allowedMacs locks a port to its guest\'s MAC (switch and wire); switch mode drops multicast and zero sources (srcMac)', async () => {
    for (const mode of ['switch', 'wire'] as const) {
      await using fw = new Forwarder({ mode });
      const [a, a1] = pair(); const [b, b1] = pair();
      fw.add('a', a1, { allowedMacs: ['02:00:00:00:00:01'] }); fw.add('b', b1);
      fw.start();
      fs.writeSync(a, ether(mac(2), mac(9), 'spoofed'));
      fs.writeSync(a, ether(mac(2), mac(1), 'own'));
      expect((await readAll(b)).map(tagOf)).toEqual(['own']);
      expect(statsOf(fw, 'a').drops.srcMac).toBe(1);
      expect(fw.fdb().map((e) => e.mac)).toEqual(mode === 'switch' ? ['02:00:00:00:00:01'] : []);
    }
    await using fw = new Forwarder({ mode: 'switch' });
    const [a, a1] = pair(); const [b, b1] = pair();
    fw.add('a', a1); fw.add('b', b1);
    fw.start();
    fs.writeSync(a, ether(BCAST, BCAST, 'broadcast source'));
    fs.writeSync(a, ether(BCAST, Buffer.alloc(6), 'zero source'));
    expect(await readAll(b)).toEqual([]);
    expect(statsOf(fw, 'a').drops.srcMac).toBe(2);
    expect(fw.fdb()).toEqual([]);
  });

  it('rejects bad maxMacs/allowedMacs naming the field', () => {
    const fw = new Forwarder();
    try {
      const [, x] = pair();
      expect(() => fw.add('x', x, { maxMacs: 0 })).toThrow(/maxMacs/);
      expect(() => fw.add('x', x, { maxMacs: 5000 })).toThrow(/maxMacs/);
      expect(() => fw.add('x', x, { allowedMacs: 'aa' as any })).toThrow(/allowedMacs/);
      expect(() => fw.add('x', x, { allowedMacs: [] })).toThrow(/allowedMacs/);
      expect(() => fw.add('x', x, { allowedMacs: ['01:00:5e:00:00:01'] })).toThrow(/allowedMacs\[0\]/);
      expect(() => fw.add('x', x, { allowedMacs: Array.from({ length: 65 }, (_, i) => `02:00:00:00:01:${i.toString(16).padStart(2, '0')}`) })).toThrow(/allowedMacs/);
      expect(fw.ports).toEqual([]);
    } finally {
      void fw.close();
    }
  });

  it('a slot reused 128 times (its 8-bit generation wrapped) does not inherit a removed port\'s stations', async () => {
    await using fw = new Forwarder({ mode: 'switch' });
    const [a, a1] = pair(); const [b, b1] = pair();
    fw.add('a', a1); fw.add('b', b1);
    fw.start();
    const [x, x1] = pair();
    fw.add('x', x1);  // slot 2
    fs.writeSync(x, ether(BCAST, mac(42), 'x is here'));
    await readAll(a, 50); await readAll(b, 50);
    expect(fw.fdb().map((e) => e.mac)).toContain('02:00:00:00:00:2a');
    fw.remove('x');
    const [y, y1] = pair();
    for (let i = 0; i < 127; i++) { fw.add('y', y1); fw.remove('y'); }
    fw.add('y', y1);  // the 128th port in slot 2 since x
    fs.writeSync(a, ether(mac(42), mac(1), 'to the station that left'));
    expect(tagOf((await readFrame(b))!)).toBe('to the station that left');  // unknown: flooded
    expect(tagOf((await readFrame(y))!)).toBe('to the station that left');
    expect(fw.fdb().map((e) => e.mac)).not.toContain('02:00:00:00:00:2a');
  });
});

describe('the native layer checks what it indexes with', () => {
  it('a port slot out of range is a RangeError from stats/send/monitor/remove, not a read past the port table', () => {
    const addon = new URL('../dist/native.js', import.meta.url).href;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
      import { native } from ${JSON.stringify(addon)};
      const n = new native.Forwarder({});
      const out = [];
      for (const call of [() => n.stats(100000), () => n.stats(-1), () => n.stats(64), () => n.stats(1.5),
                          () => n.send(1000, Buffer.alloc(60)), () => n.monitor(64, true), () => n.removePort(-5)]) {
        try { call(); out.push('returned'); } catch (e) { out.push(e.constructor.name); }
      }
      n.close();
      console.log(out.join(' '));`], { encoding: 'utf8', timeout: 45_000 });  // a hang bound, generous for a loaded machine
    expect(r.signal).toBeNull();
    expect(r.stdout.trim()).toBe(Array(7).fill('RangeError').join(' '));
    expect(r.status).toBe(0);
  });

  it('constructor options outside what the engine holds are a RangeError, not a hang or an abort', () => {
    const addon = new URL('../dist/native.js', import.meta.url).href;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
      import { native } from ${JSON.stringify(addon)};
      const out = [];
      // fdbSize 2^32-1 looped forever rounding up to a power of two; copyRingBytes -1 threw
      // std::bad_alloc through N-API (abort); the rest were out-of-range double conversions.
      for (const o of [{ fdbSize: 4294967295 }, { fdbSize: -1 }, { copyRingBytes: -1 }, { copyRingBytes: 1e20 },
                       { threads: 1e10 }, { batch: -3 }, { ageingSec: 1.5 }, { busyPollUs: NaN }]) {
        try { new native.Forwarder(o).close(); out.push('made'); } catch (e) { out.push(e.constructor.name); }
      }
      const ok = new native.Forwarder({ fdbSize: 16, copyRingBytes: 1 << 18, threads: 2 });
      ok.close();
      console.log(out.join(' '));`], { encoding: 'utf8', timeout: 45_000 });
    expect(r.signal).toBeNull();
    expect(r.stdout.trim()).toBe(Array(8).fill('RangeError').join(' '));
    expect(r.status).toBe(0);
  });

  it('a stream socket is refused as a port (it has no frame boundaries)', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const fd = (server as any)._handle.fd as number;
      expect(fd).toBeGreaterThan(2);
      const fw = new Forwarder();
      try {
        expect(() => fw.add('s', fd)).toThrow(/stream socket/);
        expect(fw.ports).toEqual([]);
      } finally {
        await fw.close();
      }
    } finally {
      server.close();
    }
  });
});

describe.skipIf(privilegedSkipReason())('a guest namespace behind a tap that changes its MAC', () => {
  const nss = new Namespaces();
  const held: { nl: Handle; tap: Tap }[] = [];
  afterAll(async () => {
    for (const h of held.splice(0)) { await h.tap.close().catch(() => {}); await h.nl.close().catch(() => {}); }
    await nss.cleanup();
  });

  it('allowedMacs: the guest pings with its own MAC; spoofing another one gets it nowhere (drops.srcMac)', async () => {
    hasTool('ping');
    const guests = [];
    for (const [i, m] of [[1, '02:00:00:00:01:01'], [2, '02:00:00:00:01:02']] as const) {
      const ns = await nss.create('fwdh');
      const nl = await open({ netns: ns });
      const tap = await nl.tap.create({ name: 'tap0', vnetHdr: true, mac: m, up: true });
      held.push({ nl, tap });
      await nl.addr.add('tap0', `198.51.100.${i}/24`);
      await nl.sysctl.set('net.ipv6.conf.tap0.disable_ipv6', '1');
      guests.push({ ns, tap, mac: m });
    }
    const [a, b] = guests;
    await using fw = new Forwarder({ mode: 'switch' });
    fw.add('a', a.tap.fds, { allowedMacs: [a.mac] }); fw.add('b', b.tap.fds, { allowedMacs: [b.mac] });
    fw.start();
    const ping = () => nsRun(a.ns, 'ping', ['-c', '2', '-i', '0.1', '-W', '1', '198.51.100.2']);
    expect((await ping()).stdout).toMatch(/2 packets transmitted, 2 received/);
    expect(fw.stats().a.drops.srcMac).toBe(0);
    await nsExec(a.ns, 'ip', ['link', 'set', 'tap0', 'address', '02:00:00:00:01:99']);
    expect((await ping()).stdout).toMatch(/2 packets transmitted, 0 received/);
    expect(fw.stats().a.drops.srcMac).toBeGreaterThanOrEqual(2);
    expect(fw.fdb().map((e) => e.mac)).not.toContain('02:00:00:00:01:99');
  });
});
