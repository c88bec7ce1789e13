// macvtap and macvlan: the seed's mode table proven with real frames. An "external switch"
// namespace holds a Linux bridge; a "host" namespace's uplink is a veth plugged into it; two
// macvtaps sit on the uplink and the test plays both guests through their fds (ARP, ICMP and
// raw frames written into one fd and looked for on the other); a third namespace on the switch
// is the outside host.
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, NetlinkError, type Handle, type MacvlanMode, type MacvtapQueues, type Netns } from '../lib/index.js';
import { buildSwitch } from '../examples/macvtap-switch.js';
import { Namespaces, hasTool, ipLinks, nsExec, nsRun, privilegedSkipReason } from './helpers.js';

const skip = privilegedSkipReason() ?? (!hasTool('ping') ? 'needs ping (iputils-ping)' : undefined);

// ---- frames ------------------------------------------------------------------------------
const macBytes = (m: string) => Buffer.from(m.split(':').map((x) => parseInt(x, 16)));
const ipBytes = (a: string) => Buffer.from(a.split('.').map(Number));
const macStr = (b: Buffer) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
const ipStr = (b: Buffer) => [...b].join('.');
const BCAST = 'ff:ff:ff:ff:ff:ff';

function csum(b: Buffer): number {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += b.readUInt16BE(i);
  if (b.length & 1) s += b[b.length - 1] << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}

function eth(dst: string, src: string, type: number, payload: Buffer): Buffer {
  const h = Buffer.alloc(14);
  macBytes(dst).copy(h, 0);
  macBytes(src).copy(h, 6);
  h.writeUInt16BE(type, 12);
  const f = Buffer.concat([h, payload]);
  return f.length < 60 ? Buffer.concat([f, Buffer.alloc(60 - f.length)]) : f;
}

function arp(op: 1 | 2, sha: string, spa: string, tha: string, tpa: string): Buffer {
  const p = Buffer.alloc(28);
  p.writeUInt16BE(1, 0); p.writeUInt16BE(0x0800, 2); p[4] = 6; p[5] = 4; p.writeUInt16BE(op, 6);
  macBytes(sha).copy(p, 8); ipBytes(spa).copy(p, 14); macBytes(tha).copy(p, 18); ipBytes(tpa).copy(p, 24);
  return p;
}

function icmpEcho(type: 0 | 8, src: string, dst: string, id: number, seq: number, data: Buffer): Buffer {
  const icmp = Buffer.concat([Buffer.alloc(8), data]);
  icmp[0] = type; icmp.writeUInt16BE(id, 4); icmp.writeUInt16BE(seq, 6);
  icmp.writeUInt16BE(csum(icmp), 2);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45; ip.writeUInt16BE(20 + icmp.length, 2); ip[8] = 64; ip[9] = 1;
  ipBytes(src).copy(ip, 12); ipBytes(dst).copy(ip, 16);
  ip.writeUInt16BE(csum(ip), 10);
  return Buffer.concat([ip, icmp]);
}

interface Frame { dst: string; src: string; type: number; payload: Buffer; raw: Buffer }
function parse(f: Buffer): Frame {
  return { dst: macStr(f.subarray(0, 6)), src: macStr(f.subarray(6, 12)), type: f.readUInt16BE(12), payload: f.subarray(14), raw: f };
}

/**
 * A guest played by the test through a macvtap fd: it answers ARP for its address and ICMP
 * echo requests (so `ping` from the outside host works), and records everything it receives.
 */
class Guest {
  inbox: Frame[] = [];
  answer = true;
  constructor(readonly q: MacvtapQueues, public mac: string, readonly ip: string, readonly hdr = 0, readonly fd = q.fds[0]) {}

  send(frame: Buffer, fd = this.fd): void {
    fs.writeSync(fd, this.hdr ? Buffer.concat([Buffer.alloc(this.hdr), frame]) : frame);
  }

  /** Reads what is queued on every fd of this guest (non-blocking). */
  poll(): void {
    const buf = Buffer.alloc(65536 + 64);
    for (const fd of this.q.fds) {
      for (;;) {
        let n: number;
        try { n = fs.readSync(fd, buf); } catch (e: any) { if (e.code === 'EAGAIN') break; throw e; }
        const f = parse(Buffer.from(buf.subarray(this.hdr, n)));
        this.inbox.push(f);
        if (this.answer) this.reply(f);
      }
    }
  }

  private reply(f: Frame): void {
    if (f.type === 0x0806 && f.payload.readUInt16BE(6) === 1 && ipStr(f.payload.subarray(24, 28)) === this.ip) {
      const sha = macStr(f.payload.subarray(8, 14)), spa = ipStr(f.payload.subarray(14, 18));
      this.send(eth(sha, this.mac, 0x0806, arp(2, this.mac, this.ip, sha, spa)));
    } else if (f.type === 0x0800 && f.dst === this.mac && f.payload[9] === 1 && ipStr(f.payload.subarray(16, 20)) === this.ip) {
      const ihl = (f.payload[0] & 15) * 4, icmp = f.payload.subarray(ihl, f.payload.readUInt16BE(2));
      if (icmp[0] !== 8) return;
      const src = ipStr(f.payload.subarray(12, 16));
      this.send(eth(f.src, this.mac, 0x0800, icmpEcho(0, this.ip, src, icmp.readUInt16BE(4), icmp.readUInt16BE(6), icmp.subarray(8))));
    }
  }

  async waitFrame(pred: (f: Frame) => boolean, ms: number): Promise<Frame | undefined> {
    const end = Date.now() + ms;
    for (;;) {
      const i = this.inbox.findIndex(pred);
      if (i >= 0) return this.inbox.splice(i, 1)[0];
      if (Date.now() > end) return undefined;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** ARP for `ip`, then an ICMP echo to the MAC that answered: true when the reply comes back. */
  async pings(ip: string, ms = 600): Promise<boolean> {
    this.send(eth(BCAST, this.mac, 0x0806, arp(1, this.mac, this.ip, '00:00:00:00:00:00', ip)));
    const a = await this.waitFrame((f) => f.type === 0x0806 && f.payload.readUInt16BE(6) === 2 && ipStr(f.payload.subarray(14, 18)) === ip, ms);
    if (!a) return false;
    const id = Math.floor(Math.random() * 65535);
    this.send(eth(macStr(a.payload.subarray(8, 14)), this.mac, 0x0800, icmpEcho(8, this.ip, ip, id, 1, Buffer.from('vnetlink'))));
    return !!(await this.waitFrame((f) => f.type === 0x0800 && f.payload[9] === 1 && f.payload[20] === 0 && f.payload.readUInt16BE(24) === id, ms));
  }
}

// Every guest's fds are drained on a timer, so guests answer while the test awaits anything.
const guests = new Set<Guest>();
let pump: NodeJS.Timeout | undefined;
function watch(g: Guest): Guest {
  guests.add(g);
  pump ??= setInterval(() => { for (const x of guests) x.poll(); }, 2);
  return g;
}
function unwatch(g: Guest): void {
  guests.delete(g);
  if (!guests.size && pump) { clearInterval(pump); pump = undefined; }
}

const MAC_A = '52:54:00:00:01:0a', MAC_B = '52:54:00:00:01:0b';
const IP_A = '198.51.100.10', IP_B = '198.51.100.11', IP_OUT = '198.51.100.100';
const EXPERIMENTAL = 0x88b5;  // IEEE local experimental ethertype

describe.skipIf(skip)('macvtap and macvlan', () => {
  const nss = new Namespaces();
  let SW: Netns, HOST: Netns, OUT: Netns;
  let sw: Handle, host: Handle, out: Handle;

  async function hairpin(on: boolean): Promise<void> {
    await sw.bridge.setPort('sw-host', { hairpin: on });
  }

  /** Two guests on the uplink in `mode`; `fn` runs with them; links and fds are gone afterwards. */
  async function withPair(mode: MacvlanMode, fn: (a: Guest, b: Guest) => Promise<void>, opts: { hdrB?: number } = {}): Promise<void> {
    const made: string[] = [];
    const gs: Guest[] = [];
    try {
      for (const [name, mac] of [['mtA', MAC_A], ['mtB', MAC_B]]) {
        await host.link.add({ kind: 'macvtap', name, link: 'uplink', mode, mac, up: true });
        made.push(name);
      }
      const qa = await host.macvtap.open('mtA', { vnetHdr: false });
      gs.push(watch(new Guest(qa, MAC_A, IP_A)));
      const qb = opts.hdrB ? await host.macvtap.open('mtB', { vnetHdr: true, vnetHdrSize: opts.hdrB }) : await host.macvtap.open('mtB', { vnetHdr: false });
      gs.push(watch(new Guest(qb, MAC_B, IP_B, opts.hdrB ?? 0)));
      await fn(gs[0], gs[1]);
    } finally {
      for (const g of gs) { unwatch(g); await g.q.close(); }
      for (const n of made) await host.link.del(n);
    }
  }

  /** A raw unicast frame from a to b's MAC: delivered or not. */
  async function unicast(a: Guest, b: Guest): Promise<boolean> {
    const tag = Buffer.from(`u-${Math.random()}`);
    a.send(eth(b.mac, a.mac, EXPERIMENTAL, tag));
    return !!(await b.waitFrame((f) => f.type === EXPERIMENTAL && f.payload.subarray(0, tag.length).equals(tag), 400));
  }
  /** A broadcast from a: does b get a copy? */
  async function broadcast(a: Guest, b: Guest): Promise<boolean> {
    const tag = Buffer.from(`b-${Math.random()}`);
    a.send(eth(BCAST, a.mac, EXPERIMENTAL, tag));
    return !!(await b.waitFrame((f) => f.type === EXPERIMENTAL && f.payload.subarray(0, tag.length).equals(tag), 400));
  }
  /** Each guest reaches the outside host, and the outside host reaches each guest. */
  async function outsideBothWays(...gs: Guest[]): Promise<void> {
    for (const g of gs) {
      expect(await g.pings(IP_OUT, 2000), `${g.ip} -> outside`).toBe(true);
      const r = await nsRun(OUT, 'ping', ['-c', '1', '-W', '2', g.ip]);
      expect(r.code, `outside -> ${g.ip}: ${r.stdout}${r.stderr}`).toBe(0);
    }
  }

  beforeAll(async () => {
    SW = await nss.create('msw');
    HOST = await nss.create('mhost');
    OUT = await nss.create('mout');
    [sw, host, out] = await Promise.all([open({ netns: SW }), open({ netns: HOST }), open({ netns: OUT })]);
    await buildSwitch({ sw, host, out, SW, outAddress: IP_OUT });
  });
  afterAll(async () => {
    for (const g of [...guests]) unwatch(g);
    await Promise.all([sw, host, out].map((h) => h?.close()));
    await nss.cleanup();
  });

  it('creates macvtaps and macvlans in every mode, with flags and source MACs, as ip -d link shows them', async () => {
    const a = await host.link.add({ kind: 'macvtap', name: 'macvtap%d', link: 'uplink' });
    const b = await host.link.add({ kind: 'macvtap', name: 'macvtap%d', link: 'uplink', mode: 'bridge' });
    const c = await host.link.add({ kind: 'macvlan', name: 'mv-src', link: 'uplink', mode: 'source', flags: ['nodst'], macs: ['52:54:00:aa:00:01', '52:54:00:aa:00:02'] });
    const d = await host.link.add({ kind: 'macvlan', name: 'mv-priv', link: 'uplink', mode: 'private', mtu: 1400, txqueuelen: 77, group: 9 });
    try {
      // The pattern resolved to real names, and link.add echoed the created links.
      expect(a.name).toMatch(/^macvtap\d+$/);
      expect(b.name).toMatch(/^macvtap\d+$/);
      expect(b.name).not.toBe(a.name);
      expect(a).toMatchObject({ kind: 'macvtap', link: 'uplink', info: { mode: 'vepa', flags: [] } });
      expect(b.info.mode).toBe('bridge');
      expect(c.info).toMatchObject({ mode: 'source', flags: ['nodst'], macCount: 2 });
      expect([...c.info.macs].sort()).toEqual(['52:54:00:aa:00:01', '52:54:00:aa:00:02']);  // kernel hash order
      expect(d).toMatchObject({ kind: 'macvlan', mtu: 1400, txqueuelen: 77, group: 9, info: { mode: 'private' } });

      const byName = Object.fromEntries((await ipLinks(HOST)).map((l) => [l.ifname, l]));
      expect(byName[a.name].linkinfo).toMatchObject({ info_kind: 'macvtap', info_data: { mode: 'vepa' } });
      expect(byName[b.name].linkinfo.info_data.mode).toBe('bridge');
      expect(byName[a.name].link).toBe('uplink');
      const ipc = execFileSync('ip', ['-n', HOST.name, '-d', 'link', 'show', 'mv-src'], { encoding: 'utf8' });
      expect(ipc).toMatch(/macvlan mode source/);
      expect(ipc).toMatch(/nodst/);
      expect(ipc).toMatch(/remotes \(2\) /);
      expect(ipc).toMatch(/52:54:00:aa:00:01/);
      expect(ipc).toMatch(/52:54:00:aa:00:02/);
      expect(byName['mv-priv'].linkinfo.info_data.mode).toBe('private');

      // Changing a live link: mode, and the source MAC list.
      await host.link.set(a.name, { mode: 'bridge' });
      expect((await host.link.get(a.name)).info.mode).toBe('bridge');
      expect((await ipLinks(HOST, a.name))[0].linkinfo.info_data.mode).toBe('bridge');
      await host.link.set('mv-src', { macs: ['52:54:00:aa:00:03'] });
      expect((await host.link.get('mv-src')).info.macs).toEqual(['52:54:00:aa:00:03']);
      expect(execFileSync('ip', ['-n', HOST.name, '-d', 'link', 'show', 'mv-src'], { encoding: 'utf8' })).toMatch(/remotes \(1\) 52:54:00:aa:00:03/);
      await host.link.set('mv-priv', { mode: 'vepa' });
      expect((await host.link.get('mv-priv')).info.mode).toBe('vepa');

      const listed = (await host.link.list({ kind: 'macvtap' })).map((l) => l.name).sort();
      expect(listed).toEqual([a.name, b.name].sort());
    } finally {
      for (const l of [a, b, c, d]) await host.link.del(l.name);
    }
  });

  it('bridge mode: guest A reaches guest B inside the host, whatever the switch does', async () => {
    await hairpin(false);
    await withPair('bridge', async (a, b) => {
      expect(await a.pings(IP_B)).toBe(true);
      expect(await b.pings(IP_A)).toBe(true);
      expect(await unicast(a, b)).toBe(true);
      await outsideBothWays(a, b);
    });
  });

  it('VEPA: A does not reach B without hairpin on the switch port, and does with it', async () => {
    await withPair('vepa', async (a, b) => {
      await hairpin(false);
      expect(await broadcast(a, b)).toBe(false);
      expect(await a.pings(IP_B, 400)).toBe(false);
      expect(await unicast(a, b)).toBe(false);
      await hairpin(true);
      try {
        expect(await broadcast(a, b)).toBe(true);
        expect(await a.pings(IP_B)).toBe(true);
        expect(await b.pings(IP_A)).toBe(true);
        expect(await unicast(a, b)).toBe(true);
      } finally {
        await hairpin(false);
      }
      await outsideBothWays(a, b);
    });
  });

  it('private: A never reaches B at the IP level even with hairpin, but a hairpinned unicast to B\'s MAC is delivered', async () => {
    await withPair('private', async (a, b) => {
      await hairpin(false);
      expect(await a.pings(IP_B, 400)).toBe(false);
      expect(await unicast(a, b)).toBe(false);
      await hairpin(true);
      try {
        // B's copy of A's reflected broadcast is dropped, so ARP (and IP) fail...
        expect(await broadcast(a, b)).toBe(false);
        expect(await a.pings(IP_B, 400)).toBe(false);
        expect(await b.pings(IP_A, 400)).toBe(false);
        // ...but a unicast frame to B's known MAC comes back from the switch and is delivered.
        expect(await unicast(a, b)).toBe(true);
      } finally {
        await hairpin(false);
      }
      await outsideBothWays(a, b);
    });
  });

  it('passthru: one macvtap owns the uplink, a second is refused clearly, and the guest can change its MAC', async () => {
    const p = await host.link.add({ kind: 'macvtap', name: 'mtP', link: 'uplink', mode: 'passthru', up: true });
    let g: Guest | undefined;
    try {
      expect(p.info.mode).toBe('passthru');
      // The uplink's MAC is the guest's.
      expect(p.mac).toBe((await host.link.get('uplink')).mac);
      for (const mode of ['passthru', 'vepa', 'bridge'] as const) {
        const err = await host.link.add({ kind: 'macvtap', name: 'mtQ', link: 'uplink', mode }).catch((e) => e);
        expect(err).toBeInstanceOf(NetlinkError);
        expect(err.code).toBe('EINVAL');
        expect(err.message).toMatch(/uplink is owned by passthru macvtap mtP/);
      }
      expect((await ipLinks(HOST)).map((l) => l.ifname)).not.toContain('mtQ');

      const q = await host.macvtap.open('mtP', { vnetHdr: false });
      g = watch(new Guest(q, p.mac!, IP_A));
      await outsideBothWays(g);

      // The host sets the guest's new MAC: the uplink follows, and traffic flows with it.
      const newMac = '52:54:00:00:02:0c';
      await host.link.set('mtP', { mac: newMac });
      g.mac = newMac;
      expect((await ipLinks(HOST, 'uplink'))[0].address).toBe(newMac);
      await nsRun(OUT, 'ip', ['neigh', 'flush', 'dev', 'o0']);
      await outsideBothWays(g);

      // The guest alone picks another MAC: the uplink passes everything to its one owner.
      g.mac = '52:54:00:00:02:0d';
      await nsRun(OUT, 'ip', ['neigh', 'flush', 'dev', 'o0']);
      await outsideBothWays(g);
    } finally {
      if (g) { unwatch(g); await g.q.close(); }
      await host.link.del('mtP');
    }
  });

  it('passthru with noPromisc leaves the uplink out of promiscuous mode (without it the uplink goes promiscuous)', async () => {
    const promisc = async () => (await ipLinks(HOST, 'uplink'))[0].promiscuity;
    const base = await promisc();
    const p = await host.link.add({ kind: 'macvtap', name: 'mtP', link: 'uplink', mode: 'passthru', flags: ['noPromisc'], up: true });
    try {
      expect(p.info.flags).toEqual(['noPromisc']);
      expect(execFileSync('ip', ['-n', HOST.name, '-d', 'link', 'show', 'mtP'], { encoding: 'utf8' })).toMatch(/mode passthru nopromisc/);
      expect(await promisc()).toBe(base);
    } finally {
      await host.link.del('mtP');
    }
    await host.link.add({ kind: 'macvtap', name: 'mtP', link: 'uplink', mode: 'passthru', up: true });
    try {
      expect(await promisc()).toBe(base + 1);
    } finally {
      await host.link.del('mtP');
    }
  });

  it('a macvlan in bridge mode is a host interface on the uplink: the host pings the outside host over it', async () => {
    await host.link.add({ kind: 'macvlan', name: 'mvh', link: 'uplink', mode: 'bridge', up: true });
    try {
      await host.addr.add('mvh', '198.51.100.50/24');
      const r = await nsRun(HOST, 'ping', ['-c', '1', '-W', '2', IP_OUT]);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      expect((await ipLinks(HOST, 'mvh'))[0].linkinfo).toMatchObject({ info_kind: 'macvlan', info_data: { mode: 'bridge' } });
    } finally {
      await host.link.del('mvh');
    }
  });

  it('the vnet header is present on read when asked for, and a fresh fd\'s header is really cleared otherwise', async () => {
    await withPair('bridge', async (a, b) => {
      // b reads with a 12-byte header: frames start at offset 12.
      b.answer = false;
      const tag = Buffer.from('with-header');
      a.send(eth(b.mac, a.mac, EXPERIMENTAL, tag));
      const f = await b.waitFrame((x) => x.type === EXPERIMENTAL, 1000);
      expect(f?.dst).toBe(MAC_B);
      expect(f?.src).toBe(MAC_A);
      expect(f?.payload.subarray(0, tag.length).equals(tag)).toBe(true);
      // Writing through the header works too (a zero header: no offload).
      b.send(eth(a.mac, b.mac, EXPERIMENTAL, tag));
      expect(await a.waitFrame((x) => x.type === EXPERIMENTAL && x.src === MAC_B, 1000)).toBeTruthy();
    }, { hdrB: 12 });

    // Proof that vnetHdr:false cleared the flag: a fresh fd (header on) refuses a raw frame.
    await host.link.add({ kind: 'macvtap', name: 'mtH', link: 'uplink', mode: 'bridge', up: true });
    try {
      const on = await host.macvtap.open('mtH', { vnetHdrSize: 10, offloads: { csum: true, tso4: true, tso6: true } });
      const off = await host.macvtap.open('mtH', { vnetHdr: false });
      try {
        expect(on).toMatchObject({ vnetHdr: true, vnetHdrSize: 10, offloads: { csum: true, tso4: true, tso6: true } });
        expect(off.vnetHdr).toBe(false);
        const raw = eth(BCAST, '52:54:00:00:03:01', EXPERIMENTAL, Buffer.from('raw'));
        expect(() => fs.writeSync(on.fds[0], raw)).toThrow(/EINVAL/);
        expect(fs.writeSync(off.fds[0], raw)).toBe(raw.length);
      } finally {
        await on.close();
        await off.close();
      }
    } finally {
      await host.link.del('mtH');
    }
  });

  it('multi-queue gives distinct, non-blocking, close-on-exec fds that each carry frames', async () => {
    await host.link.add({ kind: 'macvtap', name: 'mtM', link: 'uplink', mode: 'bridge', mac: MAC_A, up: true });
    await host.link.add({ kind: 'macvtap', name: 'mtN', link: 'uplink', mode: 'bridge', mac: MAC_B, up: true });
    const q = await host.macvtap.open('mtM', { queues: 4, vnetHdr: false });
    const qb = await host.macvtap.open('mtN', { vnetHdr: false });
    const b = watch(new Guest(qb, MAC_B, IP_B));
    b.answer = false;
    try {
      expect(q.fds).toHaveLength(4);
      expect(new Set(q.fds).size).toBe(4);
      expect(q.multiQueue).toBe(true);
      for (const fd of q.fds) {
        const fdinfo = fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8');
        const flags = parseInt(/flags:\s+(\d+)/.exec(fdinfo)![1], 8);
        expect(flags & 0o4000, 'O_NONBLOCK').toBeTruthy();
        expect(flags & 0o2000000, 'O_CLOEXEC').toBeTruthy();
        // The node was private: it is already gone from every filesystem.
        expect(fs.readlinkSync(`/proc/self/fd/${fd}`)).toMatch(/\(deleted\)$/);
      }
      // Each queue sends on its own.
      for (const [i, fd] of q.fds.entries()) {
        const tag = Buffer.from(`queue-${i}`);
        fs.writeSync(fd, eth(MAC_B, MAC_A, EXPERIMENTAL, tag));
        expect(await b.waitFrame((f) => f.payload.subarray(0, tag.length).equals(tag), 1000), `queue ${i}`).toBeTruthy();
      }
      // And frames towards the guest are spread over the queues by flow: some queue gets each.
      const got = new Set<number>();
      for (let i = 0; i < 32; i++) {
        const p = icmpEcho(8, `198.51.100.${20 + i}`, IP_A, i, i, Buffer.from('x'));
        fs.writeSync(qb.fds[0], eth(MAC_A, MAC_B, 0x0800, p));
      }
      await new Promise((r) => setTimeout(r, 200));
      const buf = Buffer.alloc(2048);
      let total = 0;
      for (const [i, fd] of q.fds.entries()) {
        for (;;) {
          try { if (fs.readSync(fd, buf) > 0) { got.add(i); total++; } } catch (e: any) { if (e.code === 'EAGAIN') break; throw e; }
        }
      }
      expect(total).toBeGreaterThanOrEqual(32);
      expect(got.size).toBeGreaterThan(1);
    } finally {
      unwatch(b);
      await q.close();
      await qb.close();
      await host.link.del('mtM');
      await host.link.del('mtN');
    }
    // Closed on the handle's thread: the fds are gone.
    for (const fd of q.fds) expect(() => fs.fstatSync(fd)).toThrow();
  });

  it('opens this namespace\'s device even when another namespace has a macvtap with the same ifindex', async () => {
    const X = await nss.create('mx');
    const Y = await nss.create('my');
    const [x, y] = await Promise.all([open({ netns: X }), open({ netns: Y })]);
    try {
      for (const h of [x, y]) {
        await h.sysctl.set('net.ipv6.conf.all.disable_ipv6', '1');
        await h.sysctl.set('net.ipv6.conf.default.disable_ipv6', '1');
        await h.link.add({ kind: 'veth', name: 'u0', peer: { name: 'u1' }, up: true });
        await h.link.set('u1', { up: true });
        await h.link.add({ kind: 'macvtap', name: 'mt0', link: 'u0', mode: 'bridge', up: true });
      }
      const [lx, ly] = [await x.link.get('mt0'), await y.link.get('mt0')];
      expect(lx.index).toBe(ly.index);  // the case /dev/tap<ifindex> cannot tell apart
      const qx = await x.macvtap.open('mt0', { vnetHdr: false });
      const qy = await y.macvtap.open('mt0', { vnetHdr: false });
      try {
        expect(qx.device).not.toBe(qy.device);
        // Each matches what its own namespace's sysfs says (ip netns exec mounts that sysfs).
        expect((await nsExec(X, 'cat', [`/sys/class/net/mt0/macvtap/tap${lx.index}/dev`])).trim()).toBe(qx.device);
        expect((await nsExec(Y, 'cat', [`/sys/class/net/mt0/macvtap/tap${ly.index}/dev`])).trim()).toBe(qy.device);
        // And frames written into Y's fd come out of Y's uplink only.
        const rx = async () => [(await x.link.get('u1')).stats!.rxPackets, (await y.link.get('u1')).stats!.rxPackets];
        const [x0, y0] = await rx();
        for (let i = 0; i < 5; i++) fs.writeSync(qy.fds[0], eth(BCAST, ly.mac!, EXPERIMENTAL, Buffer.from('from-y')));
        const [x1, y1] = await rx();
        expect(y1 - y0).toBe(5);
        expect(x1 - x0).toBe(0);
      } finally {
        await qx.close();
        await qy.close();
      }
    } finally {
      await x.close();
      await y.close();
    }
  });

  it('queues opened from a handle that was closed since still close (on the process\'s own handle)', async () => {
    const h2 = await open({ netns: HOST });
    await host.link.add({ kind: 'macvtap', name: 'mtC', link: 'uplink', mode: 'bridge', up: true });
    try {
      const q = await h2.macvtap.open('mtC', { queues: 2 });
      await h2.close();
      await q.close();
      await q.close();  // twice is fine
      for (const fd of q.fds) expect(() => fs.fstatSync(fd)).toThrow();
    } finally {
      await h2.close();
      await host.link.del('mtC');
    }
  });

  it('rejects bad input clearly and leaves nothing behind', async () => {
    const before = (await ipLinks(HOST)).map((l) => l.ifname).sort();
    const add = (spec: any) => host.link.add(spec).catch((e) => e);
    // Checked in TypeScript, before any syscall.
    let e = await add({ kind: 'macvtap', name: 'mtX', link: 'uplink', mode: 'hairpin' });
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/mode: must be one of "vepa", "bridge", "private", "passthru", "source"/);
    e = await add({ kind: 'macvtap', name: 'mtX' });
    expect(e).toBeInstanceOf(TypeError);
    expect(e.message).toMatch(/link: is required/);
    e = await add({ kind: 'macvtap', name: 'mtX', link: 'uplink', flags: ['promisc'] });
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/flags\[0\]/);
    e = await add({ kind: 'macvtap', name: 'mtX', link: 'uplink', macs: ['52:54:00:00:00:01'] });
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/macs: is only meaningful with mode: 'source'/);
    // Refused by the kernel.
    e = await add({ kind: 'macvtap', name: 'mtX', link: 'nosuchlink' });
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e.code).toBe('ENODEV');
    expect(e.message).toMatch(/nosuchlink/);
    e = await add({ kind: 'macvtap', name: 'mtX', link: 'sw-host' });  // lives in the switch namespace
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e.code).toBe('ENODEV');
    expect(e.message).toMatch(/sw-host/);
    await host.link.add({ kind: 'macvtap', name: 'mtP', link: 'uplink', mode: 'passthru' });
    try {
      e = await add({ kind: 'macvtap', name: 'mtX', link: 'mtP' });
      expect(e).toBeInstanceOf(NetlinkError);
      expect(e.code).toBe('EINVAL');
      expect(e.message).toMatch(/lower link mtP is itself a passthru macvtap/);
      e = await host.link.set('mtP', { mode: 'bridge' }).catch((x) => x);
      expect(e).toBeInstanceOf(NetlinkError);  // the kernel does not move a link out of passthru
    } finally {
      await host.link.del('mtP');
    }
    // Opening something that is not a macvtap.
    const open_ = (name: any, o?: any) => host.macvtap.open(name, o).catch((x) => x);
    e = await open_('uplink');
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e.code).toBe('EINVAL');
    expect(e.message).toMatch(/'uplink' is a veth, not a macvtap/);
    e = await open_('nosuchlink');
    expect(e.code).toBe('ENODEV');
    e = await open_('uplink', { queues: 0 });
    expect(e).toBeInstanceOf(RangeError);
    e = await open_('uplink', { vnetHdr: false, offloads: { csum: true } });
    expect(e).toBeInstanceOf(RangeError);
    e = await open_('uplink', { vnetHdr: false, vnetHdrSize: 12 });
    expect(e).toBeInstanceOf(RangeError);
    e = await open_('bad/name');
    expect(e).toBeInstanceOf(RangeError);
    const set = (await host.link.set('uplink', { mode: 'bridge' }).catch((x) => x)) as Error;
    // A veth has no mode: refused by name before anything is sent.
    expect(set).toBeInstanceOf(RangeError);
    expect(set.message).toMatch(/^link\.set: mode: is not a setting of veth links/);
    expect((await ipLinks(HOST)).map((l) => l.ifname).sort()).toEqual(before);
    expect(fs.readdirSync('/dev').filter((n) => n.startsWith('.vnetlink-'))).toEqual([]);
  });
});
