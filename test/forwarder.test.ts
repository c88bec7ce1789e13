// The userspace forwarder: frames between socketpairs (no privileges needed) for the engine's
// rules, then between taps in guest namespaces for what a user checks (ping, TCP, tcpdump).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import { Forwarder, open, type Handle, type Netns, type Tap } from '../lib/index.js';
import { Namespaces, fdCount, hasTool, nsExec, nsRun, privilegedSkipReason, threadCount, waitFor } from './helpers.js';

import { BCAST, closeAll, ether, mac, pair, readAll, readFrame, sleep, tagOf, tcp4, tcp4Valid, tcp6, tcp6Valid, vnetHdr } from './forwarder-frames.js';

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

  it('switch: the MAC table is bounded and learned stations age out (then unicast floods again)', async () => {
    await using fw = new Forwarder({ mode: 'switch', fdbSize: 16, ageingSec: 1 });
    const [a, a1] = pair(); const [b, b1] = pair(); const [c, c1] = pair();
    fw.add('a', a1); fw.add('b', b1); fw.add('c', c1);
    fw.start();
    for (let i = 0; i < 100; i++) fs.writeSync(a, ether(BCAST, Buffer.from([0x02, 1, 0, 0, 0, i]), `s${i}`));
    await readAll(b, 50); await readAll(c, 50);
    expect(fw.fdb().length).toBeLessThanOrEqual(16);
    fs.writeSync(b, ether(BCAST, mac(2), 'b here'));
    await readAll(a, 50); await readAll(c, 50);
    fs.writeSync(a, ether(mac(2), mac(1), 'fresh'));
    expect(tagOf((await readFrame(b))!)).toBe('fresh');
    expect(await readAll(c, 50)).toEqual([]);
    await sleep(2100); // ageing is counted in whole seconds
    fs.writeSync(a, ether(mac(2), mac(1), 'aged'));
    expect(tagOf((await readFrame(b))!)).toBe('aged');
    expect(tagOf((await readFrame(c))!)).toBe('aged'); // b's entry expired: flooded
    expect(fw.fdb().map((e) => e.mac)).toEqual(['02:00:00:00:00:01']); // only a, just relearned
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

  it('busy polling is adaptive: after the last frame the worker goes back to sleeping, it does not spin for all of busyPollUs', async () => {
    // A 1 s spin allowance: the old engine spun for all of it after the last frame, burning
    // about a core for 1 s. The adaptive one stops within tens of microseconds of the traffic.
    await using fw = new Forwarder({ mode: 'wire', busyPollUs: 1_000_000 });
    const [a, a1] = pair(); const [b, b1] = pair();
    fw.add('a', a1); fw.add('b', b1);
    fw.start();
    for (let i = 0; i < 50; i++) fs.writeSync(a, ether(mac(2), mac(1), `f${i}`));
    const got: string[] = [];
    await waitFor(async () => { for (const f of await readAll(b)) got.push(tagOf(f)); return got.length === 50; }, 'the 50 frames at b');
    const cpu0 = fw.cpu()[0];
    const t0 = performance.now();
    await sleep(1500);
    const idleCpu = fw.cpu()[0] - cpu0;
    const wall = (performance.now() - t0) / 1000;
    // Spinning would show as CPU time close to the wall time; sleeping costs almost nothing.
    expect(idleCpu).toBeLessThan(wall / 3);
    // ...and frames still pass afterwards (the worker wakes from its blocking wait).
    fs.writeSync(b, ether(mac(1), mac(2), 'later'));
    expect(tagOf((await readFrame(a, 15_000))!)).toBe('later');
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

  it('an IPv6 TCP GSO frame is segmented with valid checksums and payload lengths', async () => {
    await using fw = new Forwarder({ mode: 'wire' });
    const [v, vf] = pair(); const [p, pf] = pair();
    fw.add('v', vf, { vnetHdr: true }); fw.add('p', pf);
    fw.start();
    const payload = Buffer.alloc(5000);
    for (let i = 0; i < payload.length; i++) payload[i] = i & 0xff;
    fs.writeSync(v, Buffer.concat([vnetHdr({ flags: 1, gsoType: 4, hdrLen: 74, gsoSize: 1400, csumStart: 54, csumOffset: 16 }), tcp6(payload, 9)]));
    const segs = await readAll(p);
    expect(segs.map((s) => s.readUInt16BE(18))).toEqual([1420, 1420, 1420, 20 + 5000 - 3 * 1400]);
    expect(segs.every(tcp6Valid)).toBe(true);
    expect(Buffer.concat(segs.map((s) => s.subarray(74))).equals(payload)).toBe(true);
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

  it('frames(): overlapping next() calls each get a frame, in order; return() ends the waiting ones', async () => {
    await using fw = new Forwarder({ mode: 'wire' });
    const [a, a1] = pair(); const [, b1] = pair();
    fw.add('a', a1); fw.add('b', b1);
    fw.start();
    const it = fw.frames('a');
    const first = it.next(); const second = it.next();
    fs.writeSync(a, ether(mac(2), mac(1), 'o0'));
    fs.writeSync(a, ether(mac(2), mac(1), 'o1'));
    const race = (p: Promise<IteratorResult<any>>) => Promise.race([p, sleep(2000).then(() => 'lost' as const)]);
    const [x, y] = await Promise.all([race(first), race(second)]);
    expect(x !== 'lost' && tagOf(x.value.data)).toBe('o0');
    expect(y !== 'lost' && tagOf(y.value.data)).toBe('o1');
    const third = it.next(); const fourth = it.next();
    await it.return!();
    expect(await race(third)).toEqual({ value: undefined, done: true });
    expect(await race(fourth)).toEqual({ value: undefined, done: true });
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

  it('a process (or worker thread) that exits without close() does not hang: the cleanup hook joins the workers', async () => {
    const dist = new URL('../dist/index.js', import.meta.url).href;
    const script = `
      import { Forwarder } from ${JSON.stringify(dist)};
      import { Worker } from 'node:worker_threads';
      const fw = new Forwarder({ threads: 2, busyPollUs: 100000 });
      const [a, a1] = Forwarder.socketpair(); const [, b1] = Forwarder.socketpair();
      fw.add('a', a1); fw.add('b', b1); fw.start();
      const w = new Worker(\`
        const { Forwarder } = await import(${JSON.stringify(dist)});
        const fw = new Forwarder({ threads: 2 }); const [, x] = Forwarder.socketpair();
        fw.add('x', x); fw.start(); process.exit(0);\`, { eval: true });
      w.on('exit', () => { console.log('worker gone'); setTimeout(() => console.log('main leaving'), 20); });
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 45_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('worker gone\nmain leaving\n');
    expect(r.status).toBe(0);
  });
});

// ---- socketpairs for VMs ---------------------------------------------------------------------

/** SO_TYPE and SO_SNDBUF of an fd, read by another process (what QEMU would see). */
function sockInfo(fd: number): { type: string; sndbuf: number } {
  const r = spawnSync('python3', ['-c', `import socket
s = socket.socket(fileno=3)
print({socket.SOCK_DGRAM: 'dgram', socket.SOCK_SEQPACKET: 'seqpacket'}.get(s.type, str(s.type)), s.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF))
s.detach()`], { stdio: ['ignore', 'pipe', 'inherit', fd], encoding: 'utf8' });
  const [type, sndbuf] = r.stdout.trim().split(' ');
  return { type, sndbuf: Number(sndbuf) };
}

describe('Forwarder.socketpair for VMs', () => {
  afterAll(closeAll);

  for (const type of ['seqpacket', 'dgram'] as const) {
    it(`${type}: the socket type asked for, a large send buffer, and frames (64 KiB ones too) both ways through a wire forwarder`, async () => {
      const [a, a1] = pair({ type }); const [b, b1] = pair({ type });
      for (const fd of [a, a1, b, b1]) expect(sockInfo(fd).type).toBe(type);
      // The kernel reports twice what was set; 4 MiB by default, past net.core.wmem_max.
      expect(sockInfo(a).sndbuf).toBeGreaterThanOrEqual(8 << 20);
      await using fw = new Forwarder({ mode: 'wire' });
      fw.add('a', a1); fw.add('b', b1);
      fw.start();
      const big = ether(mac(2), mac(1), 'big', 65_000);
      fs.writeSync(a, big);
      fs.writeSync(b, ether(mac(1), mac(2), 'back'));
      expect((await readFrame(b))!.equals(big)).toBe(true);
      expect(tagOf((await readFrame(a))!)).toBe('back');
      expect(fw.stats().a).toMatchObject({ rxPackets: 1, txPackets: 1, rxBytes: 65_000 });
    });
  }

  it('sndbuf is the caller\'s to choose; bad options are refused naming the field', () => {
    const [a] = pair({ type: 'dgram', sndbuf: 1 << 20 });
    expect(sockInfo(a).sndbuf).toBe(2 << 20);
    expect(() => Forwarder.socketpair({ type: 'stream' as any })).toThrow(/type/);
    expect(() => Forwarder.socketpair({ sndbuf: 100 })).toThrow(/sndbuf/);
    expect(() => Forwarder.socketpair({ sndbuf: 1.5 } as any)).toThrow(/sndbuf/);
    expect(() => Forwarder.socketpair({ size: 1 } as any)).toThrow(/size/);
  });

  const qemu = 'qemu-system-x86_64';
  describe.skipIf(!hasTool(qemu))('the QEMU command lines in README', () => {
    /** Starts QEMU paused with one NIC on `netdev` (fd 3), asks its monitor for the network. */
    function qemuNet(netdev: string, fd: number): { status: number | null; out: string; err: string } {
      const r = spawnSync(qemu, ['-nodefaults', '-display', 'none', '-S', '-monitor', 'stdio',
        '-netdev', netdev, '-device', 'virtio-net-pci,netdev=n0'],
      { input: 'info network\nquit\n', stdio: ['pipe', 'pipe', 'pipe', fd], encoding: 'utf8', timeout: 60_000 });
      return { status: r.status, out: r.stdout, err: r.stderr };
    }
    it("'-netdev dgram,local.type=fd' takes both types; '-netdev socket,fd=' takes dgram and refuses seqpacket", () => {
      for (const type of ['seqpacket', 'dgram'] as const) {
        const [vm] = pair({ type });
        const r = qemuNet('dgram,id=n0,local.type=fd,local.str=3', vm);
        expect(r.err).toBe('');
        expect(r.out).toMatch(/\\ n0: index=\d+,type=dgram,fd=3/);
        expect(r.status).toBe(0);
      }
      const [dg] = pair({ type: 'dgram' });
      const ok = qemuNet('socket,id=n0,fd=3', dg);
      expect(ok.err).toBe('');
      expect(ok.out).toMatch(/\\ n0: index=\d+,type=socket,/);
      const [sp] = pair({ type: 'seqpacket' });
      const refused = qemuNet('socket,id=n0,fd=3', sp);
      expect(refused.status).not.toBe(0);
      expect(refused.err).toMatch(/must be either SOCK_DGRAM or SOCK_STREAM/);
    });
  });
});

// ---- taps in guest namespaces -------------------------------------------------------------------

const skip = privilegedSkipReason();
const OFFLOADS = { csum: true, tso4: true, tso6: true };

interface Guest { ns: Netns; nl: Handle; tap: Tap; ip: string }

/** A TCP transfer of random bytes from `from` to `to`, hashed by both ends (sha256). */
const RECEIVER = `
import socket, hashlib, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 5201)); s.listen(1); print('ready', flush=True)
c, _ = s.accept(); h = hashlib.sha256(); n = 0
while True:
    d = c.recv(1 << 20)
    if not d: break
    h.update(d); n += len(d)
print(n, h.hexdigest(), flush=True)
`;
const SENDER = `
import socket, hashlib, os, sys
data = os.urandom(int(sys.argv[2]))
c = socket.create_connection((sys.argv[1], 5201), timeout=20)
c.sendall(data); c.close()
print(len(data), hashlib.sha256(data).hexdigest(), flush=True)
`;
async function tcpTransfer(from: Guest, to: Guest, bytes = 16 << 20): Promise<{ sent: string; received: string }> {
  const rx = spawn('ip', ['netns', 'exec', to.ns.name, 'python3', '-c', RECEIVER, to.ip], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    let out = '';
    rx.stdout.on('data', (d) => { out += d; });
    await waitFor(() => out.includes('ready'), 'the receiver to listen', 10_000, 10);
    const sent = (await nsExec(from.ns, 'python3', ['-c', SENDER, to.ip, String(bytes)], { timeout: 30_000 })).trim();
    await waitFor(() => out.trim().split('\n').length >= 2, 'the receiver to finish', 20_000, 10);
    return { sent, received: out.trim().split('\n')[1] };
  } finally {
    rx.kill('SIGKILL');
  }
}

/** Waits until a ping from `from` to `to` succeeds (ARP and the switch learn on the way). */
async function pingOk(from: Guest, to: Guest, count = 3): Promise<string> {
  // -W: how long to wait for a reply; generous, a loaded machine may delay one.
  const r = await nsRun(from.ns, 'ping', ['-c', String(count), '-i', '0.05', '-W', '10', to.ip.split('/')[0]]);
  expect(r.stdout).toMatch(new RegExp(`${count} packets transmitted, ${count} received`));
  return r.stdout;
}

function isIcmpEcho(f: Buffer, type: 8 | 0): boolean {
  return f.length >= 35 && f.readUInt16BE(12) === 0x0800 && f[23] === 1 && f[34] === type;
}

describe.skipIf(skip)('forwarder between taps in guest namespaces', () => {
  const nss = new Namespaces();
  const guests: Guest[] = [];

  async function guest(i: number, tapSpec: { vnetHdr: boolean; offloads?: typeof OFFLOADS }): Promise<Guest> {
    const ns = await nss.create('fwdg');
    const nl = await open({ netns: ns });
    const tap = await nl.tap.create({ name: 'tap0', ...tapSpec });
    const ip = `198.51.100.${i}`;
    await nl.addr.add('tap0', `${ip}/24`);
    // No IPv6 chatter (router solicitations, MLD, DAD) so frame counts mean what the test sent,
    // and no guest is learned by a frame it never meant to send: off before the link goes up
    // (once up, the kernel queues that chatter on the tap's fd at once, and a forwarder added
    // later reads it).
    await nl.sysctl.set('net.ipv6.conf.tap0.disable_ipv6', '1');
    await nl.link.set('tap0', { up: true });
    const g = { ns, nl, tap, ip };
    guests.push(g);
    return g;
  }
  async function release(...gs: Guest[]): Promise<void> {
    for (const g of gs) {
      await g.tap.close().catch(() => {});
      await g.nl.close().catch(() => {});
    }
  }

  beforeAll(() => {
    for (const t of ['python3', 'ping', 'tcpdump', 'ethtool']) hasTool(t);
  });
  afterAll(async () => {
    await release(...guests.splice(0));
    await nss.cleanup();
  });

  for (const mode of ['wire', 'switch'] as const) {
    it(`${mode}: ping and a 16 MiB TCP transfer (sha256 equal at both ends); 64 KiB GSO frames cross whole`, async () => {
      const a = await guest(1, { vnetHdr: true, offloads: OFFLOADS });
      const b = await guest(2, { vnetHdr: true, offloads: OFFLOADS });
      await using fw = new Forwarder({ mode });
      fw.add('a', a.tap.fds); fw.add('b', b.tap.fds);
      expect(fw.stats().a.vnetHdrSize).toBe(10); // read from the tap itself
      fw.start();
      await pingOk(a, b);
      const t = await tcpTransfer(a, b);
      expect(t.received).toBe(t.sent);
      const s = fw.stats();
      expect(s.a.rxBytes).toBeGreaterThan(16 << 20);
      // Whole GSO frames: far fewer frames than 1448-byte segments would need.
      expect(s.b.txPackets).toBeLessThan((16 << 20) / 1448 / 4);
      expect(s.b.txBytes / s.b.txPackets).toBeGreaterThan(8000);
      expect(Object.values(s.b.drops).reduce((x, y) => x + y)).toBe(0);
      await release(a, b);
    });
  }

  it('multi-queue taps (2 queues each) over 2 worker threads: ping and a TCP transfer', async () => {
    const mk = async (i: number) => {
      const ns = await nss.create('fwdq');
      const nl = await open({ netns: ns });
      const tap = await nl.tap.create({ name: 'tap0', queues: 2, vnetHdr: true, offloads: OFFLOADS, up: true });
      const ip = `198.51.100.${i}`;
      await nl.addr.add('tap0', `${ip}/24`);
      const g = { ns, nl, tap, ip };
      guests.push(g);
      return g;
    };
    const a = await mk(1);
    const b = await mk(2);
    await using fw = new Forwarder({ mode: 'switch', threads: 2 });
    fw.add('a', a.tap.fds); fw.add('b', b.tap.fds);
    expect(fw.stats().a.queues).toBe(2);
    fw.start();
    await pingOk(a, b);
    const t = await tcpTransfer(a, b, 8 << 20);
    expect(t.received).toBe(t.sent);
    expect(fw.cpu().length).toBe(2);
    await release(a, b);
  });

  it('switch with three guests: after learning, unicast reaches only its port; frames() sees the ping', async () => {
    const a = await guest(1, { vnetHdr: true, offloads: OFFLOADS });
    const b = await guest(2, { vnetHdr: false });
    const c = await guest(3, { vnetHdr: true });
    await using fw = new Forwarder({ mode: 'switch' });
    fw.add('a', a.tap.fds); fw.add('b', b.tap.fds); fw.add('c', c.tap.fds);
    fw.start();
    await pingOk(a, b, 1); // ARP broadcast floods to c too; now a and b are learned
    const atB = fw.frames('b');
    const atC = fw.frames('c', { queue: 10_000 });
    await pingOk(a, b, 5);
    const seenB: Buffer[] = [];
    for (;;) {
      const f = await atB.next();
      if (f.value && isIcmpEcho(f.value.data, 8) && f.value.direction === 'tx') seenB.push(f.value.data);
      if (seenB.length === 5) break;
    }
    await atB.return!();
    expect(seenB[0].subarray(30, 34).join('.')).toBe(b.ip);
    await sleep(30);
    const cEchoes: Buffer[] = [];
    // Nothing is queued for c unless it arrived: take what is there without waiting.
    await Promise.race([(async () => { for await (const f of atC) if (isIcmpEcho(f.data, 8) || isIcmpEcho(f.data, 0)) cEchoes.push(f.data); })(), sleep(100)]);
    await atC.return!();
    expect(cEchoes).toEqual([]);
    expect(fw.fdb().map((e) => e.port).sort()).toEqual(['a', 'b']);
    // Mixed headers never corrupt: a plain TCP transfer both ways between a (vnet, TSO) and b (plain).
    const t = await tcpTransfer(a, b, 4 << 20);
    expect(t.received).toBe(t.sent);
    const s = fw.stats();
    expect(s.a.rxBytes / s.a.rxPackets).toBeGreaterThan(3000); // GSO frames came from a ...
    expect(s.b.drops.gso).toBe(0);                              // ... and were segmented for b
    await release(a, b, c);
  });

  it('capture() on a tap port writes a pcap that tcpdump -r reads', async () => {
    const a = await guest(1, { vnetHdr: true, offloads: OFFLOADS });
    const b = await guest(2, { vnetHdr: true });
    await using fw = new Forwarder({ mode: 'wire' });
    fw.add('a', a.tap.fds);
    const tso = async () => /tcp-segmentation-offload: on/.test(await nsExec(b.ns, 'ethtool', ['-k', 'tap0']));
    expect(await tso()).toBe(false);
    fw.add('b', b.tap.fds, { offloads: OFFLOADS }); // the forwarder sets TUNSETOFFLOAD when asked
    expect(await tso()).toBe(true);
    fw.start();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnl-fwd-'));
    try {
      const cap = await fw.capture('b', path.join(dir, 'b.pcap'));
      await pingOk(a, b, 3);
      await sleep(20);
      await cap.close();
      const r = spawnSync('tcpdump', ['-nn', '-r', path.join(dir, 'b.pcap'), 'icmp'], { encoding: 'utf8' });
      expect(r.status).toBe(0);
      expect(r.stdout.match(/198\.51\.100\.1 > 198\.51\.100\.2: ICMP echo request/g)?.length).toBe(3);
      expect(r.stdout.match(/198\.51\.100\.2 > 198\.51\.100\.1: ICMP echo reply/g)?.length).toBe(3);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await release(a, b);
    }
  });

  it('remove a port mid-flow, a tap deleted underneath, close while traffic flows: counted, no crash, no hang', async () => {
    const fds0 = fdCount();
    const threads0 = threadCount();
    const a = await guest(1, { vnetHdr: true, offloads: OFFLOADS });
    const b = await guest(2, { vnetHdr: true, offloads: OFFLOADS });
    const c = await guest(3, { vnetHdr: false });
    const fw = new Forwarder({ mode: 'switch', threads: 2 });
    fw.add('a', a.tap.fds); fw.add('b', b.tap.fds); fw.add('c', c.tap.fds);
    fw.start();
    await pingOk(a, b, 1);
    await pingOk(a, c, 1);
    // A flood towards b and c while things are pulled away.
    const flood = (g: Guest) => spawn('ip', ['netns', 'exec', a.ns.name, 'ping', '-f', '-w', '5', '-s', '1000', g.ip], { stdio: 'ignore' });
    const pb = flood(b);
    const pc = flood(c);
    try {
      await sleep(150);
      fw.remove('b');
      expect(fw.ports).toEqual(['a', 'c']);
      // The tap goes away under the forwarder: its queue reads EBADFD, writes fail.
      await c.nl.link.del('tap0');
      await waitFor(() => fw.stats().c.downQueues === 1, 'c to be taken out of service', 5000);
      const s = fw.stats();
      expect(s.c.lastError).toMatch(/^E/);
      expect(s.c.drops.rxError).toBeGreaterThanOrEqual(1);
      expect(s.a.rxPackets).toBeGreaterThan(10);
      await fw.close(); // while a still floods
    } finally {
      pb.kill('SIGKILL');
      pc.kill('SIGKILL');
    }
    expect(() => fw.stats()).toThrow(/closed/);
    await release(a, b, c);
    guests.splice(guests.indexOf(a), 3);
    // The forwarder's fd copies and threads are gone (the taps' own fds were closed by release).
    await waitFor(() => fdCount() <= fds0 + 2 && threadCount() <= threads0, 'fds and threads to be released', 5000);
  });
});
