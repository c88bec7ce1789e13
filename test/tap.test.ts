// Guest taps: queue fds, what the kernel says about them (tun_flags, ip -d link), frames both
// ways between an fd and the interface, persistence, queue control and bad input.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, NetlinkError, type Handle, type Netns, type Tap } from '../lib/index.js';
import { Namespaces, fdCount, hasTool, needTools, ipLinks, nsExec, nsRun, privilegedSkipReason, waitFor } from './helpers.js';

const skip = privilegedSkipReason();

const IFF_TUN = 0x1, IFF_TAP = 0x2, IFF_MULTI_QUEUE = 0x100, IFF_PERSIST = 0x800, IFF_NO_PI = 0x1000, IFF_VNET_HDR = 0x4000;

async function tunFlags(ns: Netns, dev: string): Promise<number> {
  return parseInt((await nsExec(ns, 'cat', [`/sys/class/net/${dev}/tun_flags`])).trim(), 16);
}
async function linkNames(ns: Netns): Promise<string[]> {
  return (await ipLinks(ns)).map((l) => l.ifname).sort();
}

/** Starts tcpdump inside the namespace and resolves once it is capturing. */
async function capture(ns: Netns, dev: string, filter: string[]): Promise<{ done: Promise<string>; pid: number }> {
  const p = spawn('ip', ['netns', 'exec', ns.name, 'tcpdump', '-i', dev, '-n', '-e', '-l', '-c', '1', ...filter], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stdout.on('data', (d) => (out += d));
  const ready = new Promise<void>((res, rej) => {
    p.stderr.on('data', (d) => { err += d; if (err.includes('listening on')) res(); });
    p.on('exit', () => rej(new Error(`tcpdump exited: ${err}`)));
  });
  const timer = setTimeout(() => p.kill('SIGKILL'), 10_000);
  const done = new Promise<string>((res) => p.on('exit', () => { clearTimeout(timer); res(out); }));
  await ready;
  return { done, pid: p.pid! };
}

/** Reads frames from non-blocking fds until `match` accepts one (or times out). */
async function readFrame(fds: number[], match: (b: Buffer) => boolean, timeoutMs = 10_000): Promise<{ frame: Buffer; queue: number }> {
  const buf = Buffer.alloc(70_000);
  const end = Date.now() + timeoutMs;
  for (;;) {
    for (const [queue, fd] of fds.entries()) {
      for (;;) {
        let n: number;
        try { n = fs.readSync(fd, buf, 0, buf.length, null); } catch (e: any) { if (e.code === 'EAGAIN') break; throw e; }
        const frame = Buffer.from(buf.subarray(0, n));
        if (match(frame)) return { frame, queue };
      }
    }
    if (Date.now() > end) throw new Error('no matching frame arrived on the tap fds');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe.skipIf(skip)('tap', () => {
  const nss = new Namespaces();
  let N: Netns;
  let nl: Handle;
  const taps: Tap[] = [];

  beforeAll(async () => {
    N = await nss.create('tap');
    nl = await open({ netns: N });
  });
  afterAll(async () => {
    for (const t of taps) await t.close();
    await nl?.close();
    await nss.cleanup();
  });

  it('a 4-queue vnet_hdr tap yields 4 fds, and tun_flags / ip -d link show multi_queue and vnet_hdr', async () => {
    const tap = await nl.tap.create({ name: 'mq%d', queues: 4, vnetHdr: true, offloads: { csum: true, tso4: true, tso6: true }, uid: 1000, gid: 1000, mtu: 9000, txqueuelen: 500, group: 3, up: true });
    taps.push(tap);
    expect(tap.name).toBe('mq0');
    expect(tap.fds).toHaveLength(4);
    expect(new Set(tap.fds).size).toBe(4);
    for (const fd of tap.fds) {
      expect(fs.fstatSync(fd).isCharacterDevice()).toBe(true);
      const fl = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8').match(/flags:\s+(\d+)/)![1];
      expect(parseInt(fl, 8) & 0o4000).toBe(0o4000);   // O_NONBLOCK
      expect(parseInt(fl, 8) & 0o2000000).toBe(0o2000000);  // O_CLOEXEC
    }
    expect(tap.offloads).toMatchObject({ csum: true, tso4: true, tso6: true });
    expect(tap.vnetHdrSize).toBe(10);
    const f = await tunFlags(N, 'mq0');
    expect(f & (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE)).toBe(IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE);
    expect(f & IFF_PERSIST).toBe(0);
    const [d] = await ipLinks(N, 'mq0');
    expect(d.linkinfo.info_kind).toBe('tun');
    expect(d.linkinfo.info_data).toMatchObject({ type: 'tap', pi: false, vnet_hdr: true, multi_queue: true, persist: false, numqueues: 4 });
    expect(d).toMatchObject({ mtu: 9000, txqlen: 500, group: '3' });
    expect(d.address).toMatch(/^fe:/);
    expect((await nl.link.get('mq0')).info).toEqual({ mode: 'tap', uid: 1000, gid: 1000, pi: false, vnetHdr: true, persist: false, multiQueue: true, queues: 4, disabledQueues: 0 });
    expect((await nsExec(N, 'cat', ['/sys/class/net/mq0/owner'])).trim()).toBe('1000');
    expect((await nsExec(N, 'cat', ['/sys/class/net/mq0/group'])).trim()).toBe('1000');
    // The offloads show up as device features.
    if (hasTool('ethtool')) {
      const k = await nsExec(N, 'ethtool', ['-k', 'mq0']);
      expect(k).toMatch(/tcp-segmentation-offload: on/);
      expect(k).toMatch(/tx-checksumming: on/);
    }
  });

  it('frames written to an fd come out of the interface, and frames sent to it are read from an fd with the vnet header', async (ctx) => {
    needTools(ctx, 'tcpdump');
    const tap = taps[0];
    // fd -> interface: a raw Ethernet frame behind a 10-byte virtio-net header (no offload).
    const cap = await capture(N, tap.name, ['ether', 'proto', '0x88b5']);
    const eth = Buffer.alloc(60);
    Buffer.from('ffffffffffff02000000abcd88b5', 'hex').copy(eth);
    Buffer.from('vnetlink hello').copy(eth, 14);
    const written = fs.writeSync(tap.fds[2], Buffer.concat([Buffer.alloc(10), eth]));
    expect(written).toBe(70);
    const seen = await cap.done;
    expect(seen).toContain('02:00:00:00:ab:cd > ff:ff:ff:ff:ff:ff');
    expect(seen).toMatch(/ethertype Unknown \(0x88b5\)/);

    // interface -> fd: the kernel's own ARP request for a neighbour on the tap's subnet.
    await nl.addr.add(tap.name, '198.51.100.1/24');
    for (const fd of tap.fds) while (true) { try { fs.readSync(fd, Buffer.alloc(70_000)); } catch { break; } }  // drain
    const ping = nsRun(N, 'ping', ['-c', '1', '-W', '1', '198.51.100.2'], 5000);
    const { frame } = await readFrame(tap.fds, (b) => b.length >= 10 + 42 && b.readUInt16BE(10 + 12) === 0x0806);
    await ping;
    const hdr = frame.subarray(0, 10);
    expect(hdr[1]).toBe(0);                       // gso_type VIRTIO_NET_HDR_GSO_NONE
    const ether = frame.subarray(10);
    expect(ether.subarray(0, 6).toString('hex')).toBe('ffffffffffff');  // broadcast who-has
    expect(ether.subarray(6, 12).toString('hex')).toBe((await nl.link.get(tap.name)).mac!.replaceAll(':', ''));
    expect(ether.subarray(38, 42).toString('hex')).toBe('c6336402');  // target 198.51.100.2
  });

  it('disables, re-enables and adds queues on the live multi-queue tap', async () => {
    const tap = taps[0];
    await tap.setQueue(3, false);
    let d = (await ipLinks(N, tap.name))[0].linkinfo.info_data;
    expect(d).toMatchObject({ numqueues: 3, numdisabled: 1 });
    expect((await nl.link.get(tap.name)).info).toMatchObject({ queues: 3, disabledQueues: 1 });
    await tap.setQueue(3, true);
    d = (await ipLinks(N, tap.name))[0].linkinfo.info_data;
    expect(d).toMatchObject({ numqueues: 4 });
    expect(d.numdisabled ?? 0).toBe(0);
    const added = await tap.addQueues(2);
    expect(added).toHaveLength(2);
    expect(tap.fds).toHaveLength(6);
    expect((await ipLinks(N, tap.name))[0].linkinfo.info_data.numqueues).toBe(6);
    await expect(tap.setQueue(6, true)).rejects.toThrow(RangeError);
  });

  it('setQueue refuses a queue fd closed elsewhere whose number now names another tap\'s queue, and leaves that queue alone', async () => {
    const a = await nl.tap.create({ name: 'sqa0', queues: 2 });
    const held: number[] = [];
    let b: Tap | undefined;
    try {
      const n = a.fds[1];
      fs.closeSync(n);
      // Make `n` the lowest free number (fill every lower hole), so the next open takes it.
      // Another thread of this process may open an fd meanwhile: then try again.
      for (let attempt = 0; attempt < 10 && !b; attempt++) {
        for (let i = 0; i < 4096; i++) {
          const f = fs.openSync('/dev/null', 'r');
          if (f === n) { fs.closeSync(f); break; }
          held.push(f);
          if (f > n) break;
        }
        const t = await nl.tap.create({ name: 'sqb0', queues: 1, multiQueue: true });
        if (t.fds[0] === n) b = t;
        else await t.close();
      }
      expect(b, `no attempt gave the second tap fd ${n}`).toBeDefined();
      const e = await a.setQueue(1, false).catch((x) => x);
      expect(e).toBeInstanceOf(TypeError);
      expect(String(e.message)).toMatch(/tap\.setQueue: queue: 1: fd \d+ was closed elsewhere/);
      // The other tap's only queue is still attached: nothing detached it.
      const d = (await ipLinks(N, 'sqb0'))[0].linkinfo.info_data;
      expect(d.numqueues).toBe(1);
      expect(d.numdisabled ?? 0).toBe(0);
      // The first tap's own remaining queue still works.
      await a.setQueue(0, false);
      expect((await ipLinks(N, 'sqa0'))[0].linkinfo.info_data).toMatchObject({ numdisabled: 1 });
    } finally {
      for (const f of held) fs.closeSync(f);
      await a.close();
      await b?.close();
    }
    // a.close() left b's fd alone; b's close removed it.
    expect(await linkNames(N)).not.toContain('sqb0');
  });

  it('a worker terminated with a tap and a macvtap open: their fds are closed with it (the tap disappears), not leaked', async () => {
    const dist = new URL('../dist/index.js', import.meta.url).href;
    const { Worker } = await import('node:worker_threads');
    await nl.link.add({ kind: 'veth', name: 'wlow0', peer: { name: 'wlow1' }, up: true });
    await nl.link.add({ kind: 'macvtap', name: 'wmvt0', link: 'wlow0', mode: 'bridge', up: true });
    const before = fdCount();
    const w = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      (async () => {
        const { open } = await import(workerData.dist);
        const nl = await open({ netns: workerData.ns });
        const tap = await nl.tap.create({ name: 'wtap0', queues: 2 });
        const mvt = await nl.macvtap.open('wmvt0', { queues: 2 });
        parentPort.postMessage([...tap.fds, ...mvt.fds]);
        setInterval(() => {}, 1000);  // keeps running until terminated, nothing closed
      })().catch((e) => parentPort.postMessage(String(e)));`, { eval: true, workerData: { dist, ns: N.name } });
    try {
      const fds = await new Promise<unknown>((res, rej) => { w.once('message', res); w.once('error', rej); });
      expect(Array.isArray(fds), String(fds)).toBe(true);
      expect(await linkNames(N)).toContain('wtap0');
      expect(fdCount()).toBeGreaterThanOrEqual(before + 4);
    } finally {
      await w.terminate();
    }
    // The tap had no other fd: closing the worker's made it go.
    await waitFor(async () => !(await linkNames(N)).includes('wtap0'), 'the worker\'s tap to disappear', 20_000);
    await waitFor(() => fdCount() <= before, 'the worker\'s fds to be closed', 20_000);
    await nl.link.del('wlow0');
  });

  it('a non-persistent tap disappears when its fds close; a persistent one stays until link.del', async () => {
    const t = await nl.tap.create({ name: 'eph0', up: true });
    expect(await linkNames(N)).toContain('eph0');
    await t.close();
    await t.close();  // twice is fine
    expect(await linkNames(N)).not.toContain('eph0');
    expect(() => fs.fstatSync(t.fds[0])).toThrow();

    const p = await nl.tap.create({ name: 'ptap0', persist: true, vnetHdr: true, mac: 'fe:54:00:11:22:33' });
    expect(p.created).toBe(true);
    await p.close();
    expect(await linkNames(N)).toContain('ptap0');
    expect((await tunFlags(N, 'ptap0')) & IFF_PERSIST).toBe(IFF_PERSIST);
    expect((await ipLinks(N, 'ptap0'))[0].linkinfo.info_data.persist).toBe(true);

    // Attach again with the same flags, as QEMU does with a libvirt-made tap; the MAC is kept.
    const again = await nl.tap.create({ name: 'ptap0', vnetHdr: true });
    expect(again.created).toBe(false);
    expect(again.index).toBe(p.index);
    expect((await nl.link.get('ptap0')).mac).toBe('fe:54:00:11:22:33');
    await again.close();
    // Mismatched flags: a clear error, and the tap is untouched.
    const e = await nl.tap.create({ name: 'ptap0', vnetHdr: false }).catch((x) => x);
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e.code).toBe('EINVAL');
    expect(e.message).toMatch(/exists with flags \[tap vnet_hdr no_pi persist\] but \[tap no_pi\] was asked for/);
    const e2 = await nl.tap.create({ name: 'ptap0', vnetHdr: true, queues: 2 }).catch((x) => x);
    expect(e2.message).toMatch(/multi_queue/);
    expect((await tunFlags(N, 'ptap0')) & IFF_VNET_HDR).toBe(IFF_VNET_HDR);
    await nl.link.del('ptap0');
    expect(await linkNames(N)).not.toContain('ptap0');
  });

  it('closing taps after their handle closed never blocks the event loop on the RCU waits', async () => {
    const h2 = await open({ netns: N });
    const ts = [];
    for (let i = 0; i < 8; i++) ts.push(await h2.tap.create({ name: `rcu${i}`, up: true }));
    await h2.close();
    // Order, not time: a close done on the event loop (as it once was, one closeSync per tap,
    // each waiting for an RCU grace period) settles before any macrotask can run. Done on the
    // handle thread, eight grace periods in a row cannot all pass before the loop's next turn.
    let loopTurned = false;
    let settledFirst = 0;
    const closing = Promise.all(ts.map((t) => t.close().then(() => { if (!loopTurned) settledFirst++; })));
    await new Promise<void>((r) => setImmediate(() => { loopTurned = true; r(); }));
    await closing;
    expect((await linkNames(N)).filter((n) => n.startsWith('rcu'))).toEqual([]);
    for (const t of ts) expect(() => fs.fstatSync(t.fds[0])).toThrow();
    expect(settledFirst).toBeLessThan(ts.length);
  });

  it('makes a tun device (IP packets, no MAC)', async () => {
    const t = await nl.tap.create({ name: 'tun%d', mode: 'tun', up: true });
    taps.push(t);
    expect((await tunFlags(N, t.name)) & (IFF_TUN | IFF_TAP | IFF_NO_PI)).toBe(IFF_TUN | IFF_NO_PI);
    const [d] = await ipLinks(N, t.name);
    expect(d.linkinfo.info_data.type).toBe('tun');
    expect(d.link_type).toBe('none');
  });

  it('rejects bad input before any syscall and leaves nothing behind', async () => {
    const before = await linkNames(N);
    await expect(nl.tap.create({ name: 'b0', queues: 0 })).rejects.toThrow(RangeError);
    await expect(nl.tap.create({ name: 'b0', queues: 257 })).rejects.toThrow(/queues: must be between 1 and 256/);
    await expect(nl.tap.create({ name: 'b0', vnetHdr: true, offloads: { csum: true, lro: true } as any })).rejects.toThrow(/offloads\.lro: unknown option/);
    await expect(nl.tap.create({ name: 'b0', offloads: { csum: true } })).rejects.toThrow(/need vnetHdr/);
    await expect(nl.tap.create({ name: 'abcdefghijklmn%d' })).rejects.toThrow(/leaves no room for the number/);
    await expect(nl.tap.create({ name: 'b%d%d' })).rejects.toThrow(RangeError);
    await expect(nl.tap.create({ name: 'b0', mode: 'tun', mac: 'fe:00:00:00:00:01' })).rejects.toThrow(/mac/);
    await expect(nl.tap.create({ name: 'b0', vnetHdrSize: 12 })).rejects.toThrow(/vnetHdrSize: needs vnetHdr/);
    await expect(nl.tap.create({ name: 'b0', mode: 'ethernet' as any })).rejects.toThrow(/mode/);
    // A master that is not a bridge: refused before the tap exists.
    await nl.link.add({ kind: 'veth', name: 'vm0', peer: { name: 'vm1' } });
    const e = await nl.tap.create({ name: 'b0', master: 'vm0' }).catch((x) => x);
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e.message).toMatch(/master 'vm0' is a veth, not a bridge/);
    const e2 = await nl.tap.create({ name: 'b0', master: 'nope0' }).catch((x) => x);
    expect(e2.code).toBe('ENODEV');
    // A name that is taken by something else.
    const e3 = await nl.tap.create({ name: 'vm0' }).catch((x) => x);
    expect(e3.code).toBe('EEXIST');
    await nl.link.del('vm0');
    await expect(nl.tap.create({ name: 'b0', vnetHdr: true, offloads: { csum: true, tsoEcn: true } })).rejects.toThrow(/tsoEcn: needs tso4 or tso6/);
    // An MTU below the minimum sent past validation: the kernel refuses it after the device
    // exists and was made persistent; the rollback clears persistence and closes the fds.
    const e4 = await nl._call('tap.create', { name: 'b0', mode: 'tap', queues: 2, vnetHdr: true, persist: true, mtu: 10 }).catch((x) => x);
    expect(e4).toBeInstanceOf(NetlinkError);
    expect(e4.code).toBe('EINVAL');
    expect(await linkNames(N)).toEqual(before);
  });
});
