// The whole NAT picture of the seed: libvirt's "default" network made by one call (virbr0
// with STP, 192.168.122.1/24, masquerade rules, forwarding, dnsmasq), a guest behind it that
// gets a DHCP lease with busybox udhcpc, pings the gateway and reaches an outside host, which
// sees the host's address (and a source port moved into 1024-65535) instead of the guest's.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { open } from '../../dist/index.js';
import { parseLease, udhcpc, udhcpcScript } from '../nat-helpers.js';

export const title = 'NAT network (libvirt default): DHCP lease, ping out, masqueraded source seen outside, DNS via the gateway, IPv6 by RA';

const inNs = (ns, cmd, args, opts = {}) => execFileSync('ip', ['netns', 'exec', ns.name, cmd, ...args], { encoding: 'utf8', ...opts });

export async function run(ctx) {
  const [host, guest, outside] = [await ctx.ns('nat-host'), await ctx.ns('nat-guest'), await ctx.ns('nat-out')];
  const h = await open({ netns: host });
  const g = await open({ netns: guest });
  const o = await open({ netns: outside });
  ctx.defer(() => Promise.all([h.close(), g.close(), o.close()]));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-demo-nat-'));
  ctx.defer(() => fs.rmSync(tmp, { recursive: true, force: true }));

  // The outside world: 203.0.113.2, reached through the host's 203.0.113.1.
  await h.link.add({ kind: 'veth', name: 'uplink', peer: { name: 'o0', netns: outside }, up: true });
  await h.addr.add('uplink', '203.0.113.1/24');
  await o.link.set('o0', { up: true });
  await o.addr.add('o0', '203.0.113.2/24');

  let t0 = performance.now();
  const net = await h.network.create({ name: 'default', bridge: 'virbr0', stp: true, address: '192.168.122.1/24',
    address6: 'fd00:122::1/64', dhcp: { start: '192.168.122.2', end: '192.168.122.254' },
    dns: { domain: 'vm.test', hosts: [{ ip: '203.0.113.2', names: ['outside'] }] } });
  ctx.defer(() => net.destroy());
  ctx.say(`network.create: ${net.bridge} ${net.mac} ${net.address}, table ${net.table}, dnsmasq pid ${net.dnsmasqPid} (${(performance.now() - t0).toFixed(0)} ms)`);

  // The guest's cable: vnet0 on the bridge, eth0 in the guest namespace.
  await h.link.add({ kind: 'veth', name: 'vnet0', peer: { name: 'eth0', netns: guest, mac: '52:54:00:12:34:56' } });
  await g.link.set('eth0', { up: true });
  t0 = performance.now();
  await net.attach('vnet0', { wait: true });
  ctx.say(`vnet0 forwarding after ${((performance.now() - t0) / 1000).toFixed(1)} s of STP listening/learning`);
  for (const b of await h.bridge.show()) ctx.say(`brctl show: ${b.name}  ${b.id}  ${b.stp ? 'yes' : 'no'}  ${b.interfaces.join(' ')}`);

  // DHCP with busybox udhcpc (Debian ships it no default script; nat-helpers has one).
  t0 = performance.now();
  const lease = parseLease(await udhcpc(guest, 'eth0', udhcpcScript(tmp)));
  if (!lease) throw new Error('the guest got no DHCP lease');
  const cidr = `${lease.ip}/${lease.mask}`;
  const router = lease.router;
  ctx.say(`guest lease: ${cidr} via ${router} after ${(performance.now() - t0).toFixed(0)} ms (dnsmasq pings the address first)`);
  for (const l of await net.leases()) ctx.say(`net.leases(): ${l.ip} ${l.mac} expires ${l.expires?.toISOString()}`);
  await g.addr.add('eth0', cidr);
  await g.route.add({ dst: 'default', via: router });

  const ping = (dst) => inNs(guest, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', dst]).split('\n').find((l) => /packets/.test(l));
  ctx.say(`guest -> gateway 192.168.122.1: ${ping('192.168.122.1')}`);
  ctx.say(`guest -> outside 203.0.113.2:  ${ping('203.0.113.2')}`);

  // DNS through the gateway (the network's own record), and IPv6 by router advertisement.
  // (busybox nslookup exits 1 when the AAAA half finds nothing: read its output either way)
  const ns = spawnSync('ip', ['netns', 'exec', guest.name, 'busybox', 'nslookup', 'outside.vm.test', '192.168.122.1'], { encoding: 'utf8' });
  const answer = ns.stdout.split('\n').filter((l) => /Address/.test(l)).pop();
  ctx.say(`guest: nslookup outside.vm.test 192.168.122.1 -> ${answer?.trim()}`);
  let v6;
  for (let i = 0; i < 100 && !v6; i++) {
    v6 = JSON.parse(inNs(guest, 'ip', ['-j', '-6', 'addr', 'show', 'dev', 'eth0', 'scope', 'global']))[0]?.addr_info?.find((a) => !a.tentative)?.local;
    if (!v6) await new Promise((r) => setTimeout(r, 100));
  }
  ctx.say(`guest SLAAC address ${v6}; ping -6 fd00:122::1: ${inNs(guest, 'ping', ['-6', '-c', '2', '-i', '0.2', '-W', '2', 'fd00:122::1']).split('\n').find((l) => /packets/.test(l))}`);

  // The outside host tells who talked to it: a UDP datagram sent by the guest from port 53.
  const server = spawn('ip', ['netns', 'exec', outside.name, process.execPath, '-e', `
    const u = require('node:dgram').createSocket('udp4');
    u.on('message', (m, r) => { console.log(r.address + ':' + r.port); u.send(m, r.port, r.address); });
    u.bind(7000, '0.0.0.0', () => console.log('ready'));`], { stdio: ['ignore', 'pipe', 'inherit'] });
  ctx.defer(() => server.kill('SIGKILL'));
  const lines = [];
  server.stdout.on('data', (d) => lines.push(...String(d).trim().split('\n')));
  while (!lines.includes('ready')) await new Promise((r) => setTimeout(r, 20));
  inNs(guest, process.execPath, ['-e', `
    const u = require('node:dgram').createSocket('udp4');
    u.on('message', () => u.close());
    u.bind(53, () => u.send('hello', 7000, '203.0.113.2'));
    setTimeout(() => process.exit(1), 3000).unref();`]);
  while (lines.length < 2) await new Promise((r) => setTimeout(r, 20));
  ctx.say(`outside saw the guest's datagram (sent from ${cidr.split('/')[0]}:53) coming from ${lines[1]}`);

  for (const r of await h.nft.listRules('ip', net.table, 'nat')) {
    const c = r.exprs.find((e) => e.type === 'counter');
    if (c?.packets) ctx.say(`nft counter: rule ${r.handle} of chain nat matched ${c.packets} packets`);
  }
  ctx.say(inNs(host, 'nft', ['list', 'chain', 'ip', net.table, 'nat']).trim().split('\n').join('\n  '));
}
