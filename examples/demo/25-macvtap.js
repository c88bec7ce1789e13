// The seed's macvtap mode table, measured: an external switch (a Linux bridge in its own
// namespace), a host whose uplink is plugged into it, two macvtap guests on that uplink played
// through their fds, and an outside host on the switch.
import fs from 'node:fs';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { open } from '../../dist/index.js';
import { buildSwitch } from '../macvtap-switch.js';

export const title = 'macvtap modes (ip link add ... type macvtap mode vepa|bridge|private|passthru), guests on /dev/tapN fds';

const mb = (m) => Buffer.from(m.split(':').map((x) => parseInt(x, 16)));
const ib = (a) => Buffer.from(a.split('.').map(Number));
const ms = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
const is = (b) => [...b].join('.');
function csum(b) {
  let s = 0;
  for (let i = 0; i + 1 < b.length; i += 2) s += b.readUInt16BE(i);
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return ~s & 0xffff;
}
function eth(dst, src, type, payload) {
  const h = Buffer.alloc(14);
  mb(dst).copy(h, 0); mb(src).copy(h, 6); h.writeUInt16BE(type, 12);
  const f = Buffer.concat([h, payload]);
  return f.length < 60 ? Buffer.concat([f, Buffer.alloc(60 - f.length)]) : f;
}
function arp(op, sha, spa, tha, tpa) {
  const p = Buffer.alloc(28);
  p.writeUInt16BE(1, 0); p.writeUInt16BE(0x0800, 2); p[4] = 6; p[5] = 4; p.writeUInt16BE(op, 6);
  mb(sha).copy(p, 8); ib(spa).copy(p, 14); mb(tha).copy(p, 18); ib(tpa).copy(p, 24);
  return p;
}
function echo(type, src, dst, id) {
  const icmp = Buffer.alloc(16);
  icmp[0] = type; icmp.writeUInt16BE(id, 4); icmp.writeUInt16BE(csum(icmp), 2);
  const ip = Buffer.alloc(20);
  ip[0] = 0x45; ip.writeUInt16BE(36, 2); ip[8] = 64; ip[9] = 1; ib(src).copy(ip, 12); ib(dst).copy(ip, 16);
  ip.writeUInt16BE(csum(ip), 10);
  return Buffer.concat([ip, icmp]);
}

// A guest on a macvtap fd (opened with vnetHdr: false, so frames are raw Ethernet): it answers
// ARP and ping for its address and keeps what it receives.
class Guest {
  constructor(q, mac, ip) { Object.assign(this, { q, mac, ip, inbox: [] }); }
  send(f) { fs.writeSync(this.q.fds[0], f); }
  poll() {
    const buf = Buffer.alloc(2048);
    for (;;) {
      let n;
      try { n = fs.readSync(this.q.fds[0], buf); } catch (e) { if (e.code === 'EAGAIN') return; throw e; }
      const f = Buffer.from(buf.subarray(0, n));
      const type = f.readUInt16BE(12), p = f.subarray(14);
      if (type === 0x0806 && p.readUInt16BE(6) === 1 && is(p.subarray(24, 28)) === this.ip)
        this.send(eth(ms(p.subarray(8, 14)), this.mac, 0x0806, arp(2, this.mac, this.ip, ms(p.subarray(8, 14)), is(p.subarray(14, 18)))));
      else if (type === 0x0800 && p[9] === 1 && p[20] === 8 && is(p.subarray(16, 20)) === this.ip)
        this.send(eth(ms(f.subarray(6, 12)), this.mac, 0x0800, echo(0, this.ip, is(p.subarray(12, 16)), p.readUInt16BE(24))));
      else this.inbox.push(f);
    }
  }
  async wait(pred, ms) {
    for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 5))) {
      const i = this.inbox.findIndex(pred);
      if (i >= 0) return this.inbox.splice(i, 1)[0];
    }
    return undefined;
  }
  async ping(ip, ms = 400) {
    this.send(eth('ff:ff:ff:ff:ff:ff', this.mac, 0x0806, arp(1, this.mac, this.ip, '00:00:00:00:00:00', ip)));
    const a = await this.wait((f) => f.readUInt16BE(12) === 0x0806 && f.readUInt16BE(20) === 2 && is(f.subarray(28, 32)) === ip, ms);
    if (!a) return false;
    const id = (Math.random() * 65535) | 0;
    this.send(eth(ms_(a), this.mac, 0x0800, echo(8, this.ip, ip, id)));
    return !!(await this.wait((f) => f.readUInt16BE(12) === 0x0800 && f[34] === 0 && f.readUInt16BE(38) === id, ms));
  }
  async unicastTo(other) {
    const tag = Buffer.from(`t${Math.random()}`);
    this.send(eth(other.mac, this.mac, 0x88b5, tag));
    return !!(await other.wait((f) => f.subarray(14, 14 + tag.length).equals(tag), 300));
  }
}
// The outside host pings a guest (asynchronously: the guest answers from this event loop).
const pingFrom = (ns, ip) => promisify(execFile)('ip', ['netns', 'exec', ns.name, 'ping', '-c1', '-W1', ip]).then(() => true, () => false);
const ms_ = (arpFrame) => ms(arpFrame.subarray(22, 28));

export async function run(ctx) {
  const [SW, HOST, OUT] = [await ctx.ns('msw'), await ctx.ns('mhost'), await ctx.ns('mout')];
  const [sw, host, out] = [await open({ netns: SW }), await open({ netns: HOST }), await open({ netns: OUT })];
  for (const h of [sw, host, out]) ctx.defer(() => h.close());
  await buildSwitch({ sw, host, out, SW, outAddress: '198.51.100.100' });
  const hairpin = (on) => sw.bridge.setPort('sw-host', { hairpin: on });
  ctx.say(`switch ${SW.name}: br0 [sw-host, sw-out]; host ${HOST.name}: uplink -> sw-host; outside ${OUT.name}: o0 198.51.100.100`);

  const guests = new Set();
  const pump = setInterval(() => guests.forEach((g) => g.poll()), 2);
  ctx.defer(() => clearInterval(pump));
  const reach = (ok) => (ok ? 'reaches' : 'blocked');
  const rows = [];
  for (const mode of ['bridge', 'vepa', 'private']) {
    const A = await host.link.add({ kind: 'macvtap', name: 'macvtap%d', link: 'uplink', mode, mac: '52:54:00:00:01:0a', up: true });
    const B = await host.link.add({ kind: 'macvtap', name: 'macvtap%d', link: 'uplink', mode, mac: '52:54:00:00:01:0b', up: true });
    const a = new Guest(await host.macvtap.open(A.name, { vnetHdr: false }), A.mac, '198.51.100.10');
    const b = new Guest(await host.macvtap.open(B.name, { vnetHdr: false }), B.mac, '198.51.100.11');
    guests.add(a); guests.add(b);
    try {
      for (const hp of [false, true]) {
        await hairpin(hp);
        const outToA = await pingFrom(OUT, a.ip);
        rows.push([mode, hp ? 'on' : 'off', reach(await a.ping(b.ip)), reach(await a.unicastTo(b)), reach(await a.ping('198.51.100.100')), reach(outToA)]);
      }
    } finally {
      await hairpin(false);
      guests.delete(a); guests.delete(b);
      await a.q.close(); await b.q.close();
      await host.link.del(A.name); await host.link.del(B.name);
    }
  }
  const P = await host.link.add({ kind: 'macvtap', name: 'macvtap%d', link: 'uplink', mode: 'passthru', up: true });
  const second = await host.link.add({ kind: 'macvtap', name: 'macvtap%d', link: 'uplink', mode: 'passthru' }).then(() => 'created?!', (e) => e.message);
  const p = new Guest(await host.macvtap.open(P.name, { vnetHdr: false }), '52:54:00:00:02:0c', '198.51.100.12');
  await host.link.set(P.name, { mac: p.mac });
  guests.add(p);
  rows.push(['passthru', '-', 'n/a', 'n/a', reach(await p.ping('198.51.100.100')), reach(await pingFrom(OUT, p.ip))]);
  guests.delete(p);
  await p.q.close();
  await host.link.del(P.name);

  const head = ['mode', 'hairpin', 'A->B (IP)', 'A->B unicast', 'A->outside', 'outside->A'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r) => r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd();
  ctx.say(line(head));
  for (const r of rows) ctx.say(line(r));
  ctx.say(`passthru: the guest set MAC ${p.mac} on the uplink; a second macvtap on it -> ${second}`);
}
