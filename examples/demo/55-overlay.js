// One L2 segment across three "machines" (namespaces with an uplink each on a shared underlay
// bridge), built twice. First as flannel's vxlan backend does it with the kernel alone: a Linux
// bridge and a VXLAN port with learning off per host, FDB head-end replication (the all-zero MAC
// towards every other host) and an FDB entry per known guest MAC. Then over Open vSwitch: an OVS
// per host (userspace datapath: the uplink on br-phy, which carries the underlay address) and a
// vxlan tunnel port per other host, added over OVSDB. Every guest pings every other, both times.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { open, Ovsdb } from '../../dist/index.js';
import { ovsMissing, startOvs } from './ovs-daemons.js';

export const title = 'an overlay across three hosts: bridge + VXLAN + FDB head-end replication, then OVS vxlan ports over OVSDB';

const execFileP = promisify(execFile);
const HOSTS = [1, 2, 3];

/** The first ping that answers, within a deadline (the first ones wait for ARP over the overlay). */
async function ping(from, ip, ms = 30_000) {
  const end = Date.now() + ms;
  for (let tries = 1; ; tries++) {
    const ok = await execFileP('ip', ['netns', 'exec', from.name, 'ping', '-c', '1', '-W', '2', ip]).then(() => true, () => false);
    if (ok) return tries;
    if (Date.now() > end) throw new Error(`${from.name} never reached ${ip} (${tries} pings)`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function allPairs(ctx, hosts) {
  const t0 = performance.now();
  let n = 0;
  for (const x of hosts) for (const y of hosts) if (x !== y) { await ping(x.G, y.guestIp); n++; }
  ctx.say(`all ${n} guest pairs ping (${hosts.map((x) => x.guestIp).join(', ')}) in ${(performance.now() - t0).toFixed(0)} ms`);
}

/**
 * A "machine": namespace H with eth0 on the underlay bridge, and a guest namespace G on gp0.
 * The two overlays share the underlay, so `base` keeps their addresses apart.
 */
async function machine(ctx, u, tag, i, base) {
  const [H, G] = [await ctx.ns(`${tag}h${i}`), await ctx.ns(`${tag}g${i}`)];
  const [h, g] = [await open({ netns: H }), await open({ netns: G })];
  ctx.defer(() => h.close());
  ctx.defer(() => g.close());
  const x = { i, H, G, h, g, ip: `198.51.100.${base + i}`, guestIp: `192.168.122.${base + 10 + i}`, guestMac: `52:54:00:00:${base + 10}:0${i}` };
  await u.link.add({ kind: 'veth', name: `${tag}${i}`, peer: { name: 'eth0', netns: H }, master: 'ul', up: true });
  await h.link.set('eth0', { up: true });
  await h.link.add({ kind: 'veth', name: 'gp0', mtu: 1450, peer: { name: 'eth0', netns: G, mac: x.guestMac, mtu: 1450 }, up: true });
  await g.link.set('eth0', { up: true });
  await g.addr.add('eth0', `${x.guestIp}/24`);
  return x;
}

export async function run(ctx) {
  const U = await ctx.ns('ul');
  const u = await open({ netns: U });
  ctx.defer(() => u.close());
  await u.link.add({ kind: 'bridge', name: 'ul', up: true });

  // The kernel's overlay.
  const lb = [];
  for (const i of HOSTS) {
    const x = await machine(ctx, u, 'lb', i, 0);
    await x.h.addr.add('eth0', `${x.ip}/24`);
    await x.h.link.add({ kind: 'bridge', name: 'br0', up: true });
    await x.h.link.add({ kind: 'vxlan', name: 'vx0', vni: 42, local: x.ip, link: 'eth0', dstPort: 4789, learning: false, master: 'br0', up: true });
    await x.h.link.set('gp0', { master: 'br0' });
    lb.push(x);
  }
  for (const x of lb) {
    for (const y of lb) {
      if (x === y) continue;
      await x.h.fdb.append({ dev: 'vx0', mac: '00:00:00:00:00:00', dst: y.ip });   // broadcast, unknown unicast
      await x.h.fdb.append({ dev: 'vx0', mac: y.guestMac, dst: y.ip });            // a known guest
    }
  }
  ctx.say('Linux bridge: per host br0 + vx0 (vni 42, learning off), 2 fdb entries per other host; host 1:');
  const fdb = (await lb[0].h.fdb.list({ dev: 'vx0' })).filter((e) => e.dst);
  for (const e of fdb) ctx.say(`  bridge fdb: ${e.mac} dev vx0 dst ${e.dst} self ${e.state}`);
  await allPairs(ctx, lb);
  ctx.say('(a fourth host would join with one fdb.append per existing host)');

  const missing = ovsMissing(['ovsdb-server', 'ovs-vswitchd', 'ovsdb-tool', 'ovs-appctl']);
  if (missing) {
    ctx.say(`the Open vSwitch half is left out: ${missing} not installed.`);
    ctx.say('To see it: apt-get install --no-install-recommends openvswitch-switch, then npm run demo overlay');
    return;
  }

  // The same segment over Open vSwitch, on three more machines (underlay .11-.13, guests .21-.23).
  const ov = [];
  for (const i of HOSTS) {
    const x = await machine(ctx, u, 'ov', i, 10);
    x.d = startOvs(ctx, x.H);
    x.ovs = await Ovsdb.connect(x.d.sock, { timeout: 30_000 });
    ctx.defer(() => x.ovs.close());
    await x.ovs.addBridge('br-phy', { datapathType: 'netdev', failMode: 'standalone' });
    await x.ovs.addPort('br-phy', 'eth0');
    await x.h.addr.add('br-phy', `${x.ip}/24`);   // ovs-vswitchd learns the route from this table
    await x.h.link.set('br-phy', { up: true });
    await x.ovs.addBridge('br-int', { datapathType: 'netdev', failMode: 'standalone' });
    await x.ovs.addPort('br-int', 'gp0');
    ov.push(x);
  }
  for (const x of ov) {
    for (const y of ov) {
      // One call per other host; protected ports do not flood to each other (no loop in the mesh).
      if (x !== y) await x.ovs.addPort('br-int', `vxlan${y.i}`, { type: 'vxlan', protected: true, options: { remote_ip: y.ip, key: '42' } });
    }
  }
  ctx.say('Open vSwitch (netdev datapath): per host br-phy (eth0, the underlay address) + br-int (gp0, vxlan ports); host 1:');
  for (const line of ov[0].d.vsctl(['show']).split('\n').filter((l) => /Bridge|Port|type: vxlan|options/.test(l))) ctx.say(line);
  await allPairs(ctx, ov);
  ctx.say('ovs-appctl fdb/show br-int on host 1 (remote guests learned on their tunnels\' ofports):');
  for (const line of ov[0].d.appctl(['fdb/show', 'br-int']).trimEnd().split('\n')) ctx.say(`  ${line}`);
}
