// The NAT picture with the VM played as QEMU plays it: the host makes the guest's tap vnet0 on
// virbr0 and keeps its fd (the "QEMU side"); the guest namespace's NIC eth0 is a tap too, whose
// fd stands for the guest's virtio device; a 'wire' Forwarder moves frames between the two fds
// with virtio-net headers, so GSO frames cross whole. DHCP, ping and the masquerade all cross it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { Forwarder, open } from '../../dist/index.js';
import { GUEST_CLIENT, NsProc, OUTSIDE_SERVER, parseLease, udhcpc, udhcpcScript } from '../nat-helpers.js';

export const title = 'NAT network with the guest behind a forwarder between two tap fds (as QEMU would)';

const inNs = (ns, cmd, args) => execFileSync('ip', ['netns', 'exec', ns.name, cmd, ...args], { encoding: 'utf8' });
const MiB = 2 ** 20;

// Outside: counts an upload; guest: sends 64 MiB and says how long it took.
const SINK = `
require('node:net').createServer((s) => { let n = 0; s.on('data', (d) => { n += d.length; }); s.on('end', () => { console.log('got ' + n); s.end(); }); })
  .listen(7002, '0.0.0.0', () => console.log('ready'));`;
const UPLOAD = `
const buf = Buffer.alloc(1 << 20, 7); let left = 64; const t0 = performance.now();
const s = require('node:net').connect({ host: '203.0.113.2', port: 7002 }, function more() {
  while (left > 0) { left--; if (!s.write(buf)) return s.once('drain', more); }
  s.end();
});
s.on('close', () => console.log(((performance.now() - t0) / 1000).toFixed(3)));`;

export async function run(ctx) {
  const [host, guest, outside] = [await ctx.ns('natfw-host'), await ctx.ns('natfw-guest'), await ctx.ns('natfw-out')];
  const h = await open({ netns: host });
  const g = await open({ netns: guest });
  const o = await open({ netns: outside });
  ctx.defer(() => Promise.all([h.close(), g.close(), o.close()]));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-demo-natfw-'));
  ctx.defer(() => fs.rmSync(tmp, { recursive: true, force: true }));

  // The outside world: 203.0.113.2, reached through the host's 203.0.113.1.
  await h.link.add({ kind: 'veth', name: 'uplink', peer: { name: 'o0', netns: outside }, up: true });
  await h.addr.add('uplink', '203.0.113.1/24');
  await o.link.set('o0', { up: true });
  await o.addr.add('o0', '203.0.113.2/24');
  await g.link.set('lo', { up: true });

  const net = await h.network.create({ name: 'default', bridge: 'virbr0', stp: true, address: '192.168.122.1/24',
    dhcp: { start: '192.168.122.2', end: '192.168.122.254' } });
  ctx.defer(() => net.destroy());
  ctx.say(`network.create: ${net.bridge} ${net.address} with STP, table ${net.table}, dnsmasq pid ${net.dnsmasqPid}`);

  // The QEMU side: vnet0 on virbr0, fd kept. The guest side: eth0 in the guest namespace.
  const offloads = { csum: true, tso4: true, tso6: true };
  const vnet0 = await h.tap.create({ name: 'vnet0', vnetHdr: true, offloads, master: 'virbr0', up: true });
  ctx.defer(() => vnet0.close());
  const eth0 = await g.tap.create({ name: 'eth0', vnetHdr: true, offloads, mac: '52:54:00:12:34:56', up: true });
  ctx.defer(() => eth0.close());
  const fw = new Forwarder({ mode: 'wire' });
  ctx.defer(() => fw.close());  // runs first: the forwarder lets go of its fd copies before the taps close
  fw.add('vnet0', vnet0.fds);
  fw.add('eth0', eth0.fds);
  fw.start();
  ctx.say(`host tap ${vnet0.name} (fd ${vnet0.fds[0]}, master virbr0) <-> forwarder (wire, vnet headers, TSO) <-> guest tap ${eth0.name} (fd ${eth0.fds[0]})`);
  let t0 = performance.now();
  await h.bridge.waitPort('vnet0', 'forwarding');
  ctx.say(`vnet0 forwarding after ${((performance.now() - t0) / 1000).toFixed(1)} s of STP listening/learning`);

  t0 = performance.now();
  const lease = parseLease(await udhcpc(guest, 'eth0', udhcpcScript(tmp)));
  if (!lease) throw new Error('udhcpc printed no lease');
  ctx.say(`guest lease through the forwarder: ${lease.ip}/${lease.mask} via ${lease.router} after ${(performance.now() - t0).toFixed(0)} ms`);
  for (const l of await net.leases()) ctx.say(`net.leases(): ${l.ip} ${l.mac}`);
  await g.addr.add('eth0', `${lease.ip}/${lease.mask}`);
  await g.route.add({ dst: 'default', via: lease.router });

  const ping = (dst) => inNs(guest, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', dst]).split('\n').find((l) => /packets/.test(l));
  ctx.say(`guest -> gateway ${lease.router}: ${ping(lease.router)}`);
  ctx.say(`guest -> outside 203.0.113.2:  ${ping('203.0.113.2')}`);

  const server = new NsProc(outside, OUTSIDE_SERVER);
  ctx.defer(() => server.stop());
  await server.line(/^ready$/, 'the outside server');
  inNs(guest, process.execPath, ['-e', GUEST_CLIENT]);
  for (const proto of ['udp', 'tcp']) {
    const seen = JSON.parse(await server.line(new RegExp(`"${proto}"`), proto));
    ctx.say(`outside saw the guest's ${proto} (from ${lease.ip}:${proto === 'udp' ? 53 : 80}) coming from ${seen.address}:${seen.port}`);
  }

  // Bulk TCP: the guest's GSO frames go through the forwarder whole, then NAT, then out.
  const sink = new NsProc(outside, SINK);
  ctx.defer(() => sink.stop());
  await sink.line(/^ready$/, 'the outside sink');
  const before = fw.stats().eth0;
  const secs = Number(inNs(guest, process.execPath, ['-e', UPLOAD]).trim());
  ctx.say(`outside: ${(await sink.line(/^got /, 'the upload')).slice(4) / MiB} MiB uploaded by the guest in ${secs.toFixed(2)} s = ${(64 * 8 * MiB / secs / 1e9).toFixed(1)} Gbit/s`);
  const after = fw.stats().eth0;
  ctx.say(`that upload left eth0 as ${after.rxPackets - before.rxPackets} frames, ${Math.round((after.rxBytes - before.rxBytes) / (after.rxPackets - before.rxPackets))} B on average: GSO frames, whole (the MTU is 1500)`);

  for (const [port, s] of Object.entries(fw.stats())) {
    const drops = Object.values(s.drops).reduce((x, y) => x + y, 0);
    ctx.say(`forwarder ${port}: rx ${s.rxPackets} frames / ${(s.rxBytes / MiB).toFixed(1)} MiB, tx ${s.txPackets} / ${(s.txBytes / MiB).toFixed(1)} MiB, drops ${drops}, vnet header ${s.vnetHdrSize} B`);
  }
  const k = JSON.parse(inNs(host, 'ip', ['-s', '-j', 'link', 'show', 'dev', 'vnet0']))[0].stats64;
  ctx.say(`ip -s link show vnet0 (host): rx ${k.rx.packets} packets, tx ${k.tx.packets} packets`);
  for (const r of await h.nft.listRules('ip', net.table, 'nat')) {
    const c = r.exprs.find((e) => e.type === 'counter');
    if (c?.packets) ctx.say(`nft counter: rule ${r.handle} of chain nat matched ${c.packets} packets`);
  }
}
