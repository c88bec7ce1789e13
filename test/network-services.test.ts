// The NAT network's services as libvirt users rely on them, seen from a guest: DNS through the
// gateway (an upstream server in the outside namespace, the network's own records), a fixed
// DHCP host getting exactly its address, the MTU option, isolated networks, no IPv6 on an
// IPv4-only bridge; port forwards from the outside, the host itself and another guest, with
// conntrack entries removed with the forward.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns, type Network } from '../lib/index.js';
import { Namespaces, hasTool, inCI, ipAddrs, nsExec, nsRun, privilegedSkipReason, waitFor } from './helpers.js';
import { execFile } from 'node:child_process';
import { NsProc } from '../examples/nat-helpers.js';

const skip = privilegedSkipReason();

/** A udhcpc script that prints what the lease carries (busybox exports the options as variables). */
function leaseScript(dir: string): string {
  const file = path.join(dir, 'lease.sh');
  fs.writeFileSync(file, '#!/bin/sh\n[ "$1" = bound ] && echo "LEASE ip=$ip mask=$mask router=$router mtu=$mtu dns=$dns domain=$domain"\nexit 0\n', { mode: 0o755 });
  return file;
}
/** One lease with busybox udhcpc, asking for the MTU option too (clients ask for what they use). */
function udhcpc(ns: Netns, dev: string, script: string, timeoutMs = 20_000): Promise<string> {
  const args = ['netns', 'exec', ns.name, 'busybox', 'udhcpc', '-i', dev, '-n', '-q', '-f', '-t', '5', '-T', '1', '-O', 'mtu', '-s', script];
  return new Promise((resolve, reject) => execFile('ip', args, { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) =>
    err ? reject(new Error(`udhcpc on ${dev}: ${stderr || err.message}`)) : resolve(stdout)));
}
const field = (out: string, k: string) => new RegExp(`LEASE .*\\b${k}=(\\S*)`).exec(out)?.[1];

/** `busybox nslookup NAME SERVER` inside a namespace: the addresses of the answer. */
async function lookup(ns: Netns, name: string, server: string): Promise<string[]> {
  const r = await nsRun(ns, 'busybox', ['nslookup', name, server], 15_000);
  // Skip the "Server:/Address: SERVER#53" header; the rest are the answer's addresses.
  const body = r.stdout.split(/\n\s*\n/).slice(1).join('\n');
  return [...body.matchAll(/Address(?: \d+)?:\s*([0-9a-f.:]+)/gi)].map((m) => m[1]);
}

describe.skipIf(skip)('NAT network services', () => {
  const nss = new Namespaces();
  let H: Netns, G: Netns, O: Netns;
  let h: Handle, g: Handle, o: Handle;
  let tmp: string;
  let script: string;
  let upstream: number | undefined;

  beforeAll(async () => {
    [H, G, O] = await Promise.all([nss.create('svch'), nss.create('svcg'), nss.create('svco')]);
    [h, g, o] = await Promise.all([open({ netns: H }), open({ netns: G }), open({ netns: O })]);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-svc-'));
    script = leaseScript(tmp);
    // host h1 203.0.113.1 -- o0 203.0.113.2 outside, where the upstream DNS server runs.
    await h.link.add({ kind: 'veth', name: 'h1', peer: { name: 'o0', netns: O }, up: true });
    await h.addr.add('h1', '203.0.113.1/24');
    await o.link.set('o0', { up: true });
    await o.link.set('lo', { up: true });
    await o.addr.add('o0', '203.0.113.2/24');
    await h.link.add({ kind: 'veth', name: 'vnet0', peer: { name: 'eth0', netns: G, mac: '52:54:00:aa:bb:50' } });
    await g.link.set('lo', { up: true });
    // The upstream server knows one name nobody else does.
    const pidFile = path.join(tmp, 'upstream.pid');
    const r = spawnSync('ip', ['netns', 'exec', O.name, 'dnsmasq', '--port=53', '--listen-address=203.0.113.2', '--bind-interfaces',
      '--no-resolv', '--no-hosts', '--address=/upstream.test/203.0.113.77', `--pid-file=${pidFile}`, '--user=root'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    upstream = Number(fs.readFileSync(pidFile, 'utf8').trim());
    nss.track(upstream);
  });
  /** The guest's eth0 back to unconfigured and down (each test leases afresh). */
  async function resetGuest(): Promise<void> {
    for (const a of await g.addr.list('eth0', { family: 'inet' })) await g.addr.del('eth0', a.cidr);
    await g.link.set('eth0', { up: false });
  }
  afterAll(async () => {
    await Promise.all([h?.close(), g?.close(), o?.close()]);
    await nss.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a guest resolves an upstream-only name, a dns.hosts name and host.domain through the gateway; a fixed host gets exactly its address and the MTU option', async () => {
    expect(hasTool('busybox')).toBe(true);
    const net = await h.network.create({ name: 'svc', bridge: 'virbr0', address: '192.168.122.1/24', stp: false, mtu: 1400,
      dhcp: { start: '192.168.122.100', end: '192.168.122.200', hosts: [{ mac: '52:54:00:aa:bb:50', ip: '192.168.122.50', name: 'web' }] },
      dns: { forwarders: [{ addr: '203.0.113.2' }], domain: 'vm.test', localOnly: true, hosts: [{ ip: '192.168.122.77', names: ['printer', 'printer.vm.test'] }] } });
    try {
      await net.attach('vnet0');
      await g.link.set('eth0', { up: true });
      const out = await udhcpc(G, 'eth0', script);
      // The fixed host's address, not one from the pool: dnsmasq could read its hosts file.
      expect(field(out, 'ip')).toBe('192.168.122.50');
      expect(field(out, 'router')).toBe('192.168.122.1');
      expect(field(out, 'mtu')).toBe('1400');
      expect(field(out, 'dns')).toBe('192.168.122.1');
      expect(field(out, 'domain')).toBe('vm.test');
      expect((await net.leases()).map((l) => [l.mac, l.ip, l.hostname])).toEqual([['52:54:00:aa:bb:50', '192.168.122.50', 'web']]);
      await g.addr.add('eth0', '192.168.122.50/24');
      await g.link.set('eth0', { up: true });
      await g.route.add({ dst: 'default', via: '192.168.122.1' });
      // Through the gateway: the upstream server's name, the network's own records.
      expect(await lookup(G, 'upstream.test', '192.168.122.1')).toEqual(['203.0.113.77']);
      expect(await lookup(G, 'printer', '192.168.122.1')).toEqual(['192.168.122.77']);
      expect(await lookup(G, 'printer.vm.test', '192.168.122.1')).toEqual(['192.168.122.77']);
      expect(await lookup(G, 'web.vm.test', '192.168.122.1')).toEqual(['192.168.122.50']);
      // localOnly: a name in the domain that nobody defined is not asked upstream.
      expect(await lookup(G, 'nobody.vm.test', '192.168.122.1')).toEqual([]);
      const conf = fs.readFileSync(path.join(net.stateDir, 'dnsmasq.conf'), 'utf8').split('\n');
      for (const l of ['user=root', 'no-resolv', 'server=203.0.113.2', 'domain=vm.test', 'local=/vm.test/', 'expand-hosts', 'domain-needed',
        `addn-hosts=${path.join(net.stateDir, 'dnsmasq.addnhosts')}`, 'dhcp-option=option:mtu,1400', `dhcp-hostsfile=${path.join(net.stateDir, 'dnsmasq.hostsfile')}`])
        expect(conf).toContain(l);
      // No IPv6 on an IPv4-only network's bridge: no link-local address for a guest to reach.
      expect(await h.sysctl.get('net/ipv6/conf/virbr0/disable_ipv6')).toBe('1');
      expect((await ipAddrs(H, 'virbr0')).flatMap((a: any) => a.addr_info).filter((a: any) => a.family === 'inet6')).toEqual([]);
    } finally {
      await resetGuest();
      await net.destroy();
    }
  });

  it('with DNS off dnsmasq listens on no port 53; dhcp.hostsOnly hands out only the fixed hosts', async () => {
    const net = await h.network.create({ name: 'svc2', bridge: 'virbr1', address: '192.168.122.1/24', stp: false, dns: false,
      dhcp: { hostsOnly: true, hosts: [{ mac: '52:54:00:aa:bb:50', ip: '192.168.122.60' }], leaseTime: 600 } });
    try {
      const conf = fs.readFileSync(path.join(net.stateDir, 'dnsmasq.conf'), 'utf8').split('\n');
      expect(conf).toContain('port=0');
      expect(conf).toContain('dhcp-range=192.168.122.0,static,255.255.255.0,600');
      expect(await nsExec(H, 'ss', ['-Hlnu', 'sport = :53'])).toBe('');
      await net.attach('vnet0');
      await g.link.set('eth0', { up: true });
      const out = await udhcpc(G, 'eth0', script);
      expect(field(out, 'ip')).toBe('192.168.122.60');
      const lease = (await net.leases())[0];
      expect(lease?.ip).toBe('192.168.122.60');
      // The lease time asked for: expiry about 600 s from now.
      expect(Math.abs((lease!.expires!.getTime() - Date.now()) / 1000 - 600)).toBeLessThan(30);
      await net.detach('vnet0');
      // A guest the network does not know gets nothing.
      await h.link.add({ kind: 'veth', name: 'vnet9', peer: { name: 'eth9', netns: G, mac: '52:54:00:aa:bb:99' } });
      await net.attach('vnet9');
      await g.link.set('eth9', { up: true });
      await expect(udhcpc(G, 'eth9', script, 6000)).rejects.toThrow();
    } finally {
      await h.link.del('vnet9').catch(() => {});
      await net.destroy();
    }
  });

  it('an isolated network (nat: false): the lease carries no router, dnsmasq asks no upstream, the guest cannot reach the outside', async () => {
    const net = await h.network.create({ name: 'iso', bridge: 'virbr2', address: '192.168.122.1/24', stp: false, nat: false,
      dhcp: { start: '192.168.122.100', end: '192.168.122.200' } });
    try {
      await net.attach('vnet0');
      await g.link.set('eth0', { up: true });
      const out = await udhcpc(G, 'eth0', script);
      expect(field(out, 'router')).toBe('');
      const ip = field(out, 'ip')!;
      expect(ip).toMatch(/^192\.168\.122\.(1\d\d|200)$/);
      const conf = fs.readFileSync(path.join(net.stateDir, 'dnsmasq.conf'), 'utf8').split('\n');
      expect(conf).toContain('dhcp-option=3');
      expect(conf).toContain('no-resolv');
      await g.addr.add('eth0', `${ip}/24`);
      await g.link.set('eth0', { up: true });
      // The gateway answers; upstream.test is unknown (no upstream); the outside is unreachable.
      expect((await nsRun(G, 'ping', ['-c1', '-W2', '192.168.122.1'])).code).toBe(0);
      expect(await lookup(G, 'upstream.test', '192.168.122.1')).toEqual([]);
      await g.route.add({ dst: 'default', via: '192.168.122.1' });
      expect((await nsRun(G, 'ping', ['-c1', '-W2', '203.0.113.2'])).code).not.toBe(0);
    } finally {
      await resetGuest();
      await net.destroy();
    }
  });
});

/** A TCP service in a guest: greets each connection with who it saw, and keeps it open. */
const SERVICE = `
require('node:net').createServer((s) => { s.write('guest saw ' + s.remoteAddress + '\\n'); s.on('error', () => {}); }).listen(22, '0.0.0.0', () => console.log('ready'));`;
/** Connects, prints the greeting, and holds the connection for holdMs (0: closes at once). */
const CLIENT = (host: string, port: number, holdMs = 0) => `
const s = require('node:net').connect({ host: '${host}', port: ${port} });
s.setTimeout(3000, () => { console.log('timeout'); process.exit(2); });
s.on('data', (d) => { process.stdout.write(String(d)); s.setTimeout(0); setTimeout(() => process.exit(0), ${holdMs}); });
s.on('error', (e) => { console.log('error ' + e.code); process.exit(1); });`;

describe.skipIf(skip)('port forwards from anywhere', () => {
  const nss = new Namespaces();
  let H: Netns, G: Netns, O: Netns, G2: Netns;
  let h: Handle, g: Handle, o: Handle, g2: Handle;
  let net: Network;
  let service: NsProc | undefined;

  beforeAll(async () => {
    [H, G, O, G2] = await Promise.all([nss.create('pfh'), nss.create('pfg'), nss.create('pfo'), nss.create('pfq')]);
    [h, g, o, g2] = await Promise.all([open({ netns: H }), open({ netns: G }), open({ netns: O }), open({ netns: G2 })]);
    await h.link.add({ kind: 'veth', name: 'h1', peer: { name: 'o0', netns: O }, up: true });
    await h.addr.add('h1', '203.0.113.1/24');
    await o.link.set('o0', { up: true });
    await o.addr.add('o0', '203.0.113.2/24');
    await h.link.set('lo', { up: true });
    net = await h.network.create({ name: 'pf', bridge: 'virbr0', address: '192.168.122.1/24', stp: false, dhcp: false, dns: false });
    // Two guests with fixed addresses, default route through the gateway.
    for (const [hh, ns, port, ip] of [[g, G, 'vnet0', '192.168.122.50'], [g2, G2, 'vnet1', '192.168.122.51']] as const) {
      await h.link.add({ kind: 'veth', name: port, peer: { name: 'eth0', netns: ns } });
      await net.attach(port);
      await hh.link.set('lo', { up: true });
      await hh.link.set('eth0', { up: true });
      await hh.addr.add('eth0', `${ip}/24`);
      await hh.route.add({ dst: 'default', via: '192.168.122.1' });
    }
    service = new NsProc(G, SERVICE);
    await service.line(/^ready$/, 'the guest service');
  });
  afterAll(async () => {
    service?.stop();
    await net?.destroy().catch(() => {});
    await Promise.all([h?.close(), g?.close(), o?.close(), g2?.close()]);
    await nss.cleanup();
  });

  const connect = async (ns: Netns, host: string, port: number) => (await nsRun(ns, process.execPath, ['-e', CLIENT(host, port)], 10_000)).stdout.trim();

  it('reaches the guest from the outside, from the host (its own address and 127.0.0.1 with localhost: true) and from another guest via the host\'s address', async () => {
    const pf = await net.forwardPort({ proto: 'tcp', hostPort: 2222, guest: '192.168.122.50', guestPort: 22, localhost: true });
    try {
      expect(await connect(O, '203.0.113.1', 2222)).toBe('guest saw 203.0.113.2');
      expect(await connect(H, '203.0.113.1', 2222)).toBe('guest saw 203.0.113.1');
      // Loopback-sourced: masqueraded to the gateway on the way out of the bridge.
      expect(await connect(H, '127.0.0.1', 2222)).toBe('guest saw 192.168.122.1');
      expect(await h.sysctl.get('net/ipv4/conf/virbr0/route_localnet')).toBe('1');
      expect(await h.sysctl.get('net/ipv4/conf/h1/route_localnet')).toBe('0');
      // Hairpin: the second guest's connection comes back through the host, from the gateway.
      expect(await connect(G2, '203.0.113.1', 2222)).toBe('guest saw 192.168.122.1');
      expect(await connect(G2, '192.168.122.1', 2222)).toBe('guest saw 192.168.122.1');
    } finally {
      await pf.remove();
    }
    // Gone: nothing answers on 2222 any more, from anywhere.
    expect(await connect(O, '203.0.113.1', 2222)).toMatch(/^error|^timeout/);
    expect(await connect(H, '127.0.0.1', 2222)).toMatch(/^error|^timeout/);
  });

  it('without localhost, 127.0.0.1 is not forwarded while the host\'s own address is', async () => {
    const pf = await net.forwardPort({ proto: 'tcp', hostPort: 2223, guest: '192.168.122.50', guestPort: 22 });
    try {
      expect(await connect(H, '203.0.113.1', 2223)).toBe('guest saw 203.0.113.1');
      expect(await connect(H, '127.0.0.1', 2223)).toBe('error ECONNREFUSED');
    } finally {
      await pf.remove();
    }
  });

  it('remove() deletes the conntrack entries of existing flows (seen with the conntrack CLI)', async () => {
    expect(hasTool('conntrack')).toBe(true);
    const pf = await net.forwardPort({ proto: 'tcp', hostPort: 2224, guest: '192.168.122.50', guestPort: 22 });
    const flows = () => nsExec(H, 'conntrack', ['-L', '-p', 'tcp', '--dport', '2224']).catch((e) => String(e.stdout ?? ''));
    // A flow held open from the outside.
    const holder = new NsProc(O, CLIENT('203.0.113.1', 2224, 60_000));
    try {
      await holder.line(/guest saw 203\.0\.113\.2/, 'the held connection');
      const before = await flows();
      expect(before).toMatch(/dst=203\.0\.113\.1 sport=\d+ dport=2224 src=192\.168\.122\.50/);
      expect(before).toContain('ESTABLISHED');
      // An unrelated flow stays.
      const other = await net.forwardPort({ proto: 'tcp', hostPort: 2225, guest: '192.168.122.50', guestPort: 22 });
      const keep = new NsProc(O, CLIENT('203.0.113.1', 2225, 60_000));
      try {
        await keep.line(/guest saw/, 'the other connection');
        await pf.remove();
        expect(await flows()).not.toMatch(/dport=2224/);
        expect(await nsExec(H, 'conntrack', ['-L', '-p', 'tcp', '--dport', '2225'])).toMatch(/dport=2225 src=192\.168\.122\.50/);
      } finally {
        keep.stop();
        await other.remove();
      }
    } finally {
      holder.stop();
      await pf.remove();
    }
  });
});

describe.skipIf(skip)('firewall coexistence', () => {
  const nss = new Namespaces();
  let H: Netns;
  let h: Handle;
  beforeAll(async () => {
    H = await nss.create('fwc');
    h = await open({ netns: H });
  });
  afterAll(async () => {
    await h?.close();
    await nss.cleanup();
  });

  it('reports another table\'s drop-policy forward base chain (Docker-style) in create\'s result, and none when there is none', async () => {
    expect(hasTool('nft')).toBe(true);
    const clean = await h.network.create({ name: 'fwc0', bridge: 'virbr0', address: '192.168.122.1/24', stp: false, dhcp: false, dns: false });
    expect(clean.firewallConflicts).toEqual([]);
    await clean.destroy();
    await nsExec(H, 'nft', ['add table ip filter; add chain ip filter FORWARD { type filter hook forward priority filter; policy drop; }; add table inet other; add chain inet other pass { type filter hook forward priority 10; policy accept; }']);
    const net = await h.network.create({ name: 'fwc1', bridge: 'virbr0', address: '192.168.122.1/24', stp: false, dhcp: false, dns: false });
    try {
      // The accepting chain is no problem; the dropping one is.
      expect(net.firewallConflicts).toEqual([{ family: 'ip', table: 'filter', chain: 'FORWARD', priority: 0 }]);
    } finally {
      await net.destroy();
      await nsExec(H, 'nft', ['flush ruleset']);
    }
  });
});

/** Outside: prints who each TCP connection (port 7001) came from, over IPv4 or IPv6. */
const WHO = `
require('node:net').createServer((s) => { console.log('from ' + s.remoteAddress); s.end('pong\\n'); }).listen(7001, '::', () => console.log('ready'));`;

describe.skipIf(skip)('dual-stack networks', () => {
  const nss = new Namespaces();
  let H: Netns, G: Netns, O: Netns;
  let h: Handle, g: Handle, o: Handle;
  let who: NsProc | undefined;

  beforeAll(async () => {
    [H, G, O] = await Promise.all([nss.create('v6h'), nss.create('v6g'), nss.create('v6o')]);
    [h, g, o] = await Promise.all([open({ netns: H }), open({ netns: G }), open({ netns: O })]);
    await h.link.add({ kind: 'veth', name: 'h1', peer: { name: 'o0', netns: O }, up: true });
    await h.addr.add('h1', '203.0.113.1/24');
    await h.addr.add('h1', '2001:db8:ff::1/64', { nodad: true });
    await o.link.set('o0', { up: true });
    await o.link.set('lo', { up: true });
    await o.addr.add('o0', '203.0.113.2/24');
    await o.addr.add('o0', '2001:db8:ff::2/64', { nodad: true });
    await h.link.add({ kind: 'veth', name: 'vnet0', peer: { name: 'eth0', netns: G } });
    await g.link.set('lo', { up: true });
    who = new NsProc(O, WHO);
    await who.line(/^ready$/, 'the outside server');
  });
  afterAll(async () => {
    who?.stop();
    await Promise.all([h?.close(), g?.close(), o?.close()]);
    await nss.cleanup();
  });

  /** The guest's global IPv6 address in `prefix`, once SLAAC made it (and DAD finished). */
  const slaac = (prefix: string) => waitFor(async () => (await ipAddrs(G, 'eth0')).flatMap((a: any) => a.addr_info)
    .find((a: any) => a.family === 'inet6' && a.scope === 'global' && a.local.startsWith(prefix) && !a.tentative)?.local as string | undefined,
  `a SLAAC address in ${prefix} on the guest`, 20_000);
  const connect6 = async (host: string) => (await nsRun(G, process.execPath, ['-e', CLIENT(host, 7001)], 10_000)).stdout.trim();

  it('the guest configures an address by RA (SLAAC), pings the gateway over IPv6 and reaches an IPv6 server outside through NAT66', async () => {
    const fwdBefore = await h.sysctl.get('net.ipv6.conf.all.forwarding');
    expect(fwdBefore).toBe('0');
    const net = await h.network.create({ name: 'ds', bridge: 'virbr0', address: '192.168.122.1/24', address6: 'fd00:122::1/64', stp: false,
      nat: { ipv6: true }, dhcp: { start: '192.168.122.2', end: '192.168.122.254' } });
    try {
      expect(net.address6).toEqual(['fd00:122::1/64']);
      expect(await h.sysctl.get('net.ipv6.conf.all.forwarding')).toBe('1');
      expect(await h.sysctl.get('net/ipv6/conf/virbr0/disable_ipv6')).toBe('0');
      const conf = fs.readFileSync(path.join(net.stateDir, 'dnsmasq.conf'), 'utf8').split('\n');
      expect(conf).toContain('enable-ra');
      expect(conf).toContain('dhcp-range=fd00:122::,ra-only,64');
      await net.attach('vnet0');
      await g.link.set('eth0', { up: true });
      const addr = await slaac('fd00:122:');
      expect((await nsRun(G, 'ping', ['-6', '-c1', '-W3', 'fd00:122::1'])).code).toBe(0);
      // The default route came with the RA; the outside sees the host's address (NAT66).
      expect(await connect6('2001:db8:ff::2')).toBe('pong');
      await who!.line(/^from 2001:db8:ff::1$/, 'the masqueraded IPv6 connection');
      expect(await nsExec(H, 'nft', ['list', 'table', 'ip6', net.table])).toMatch(/ip6 saddr fd00:122::\/64 ip6 daddr != fd00:122::\/64 counter packets [1-9]\d* bytes \d+ masquerade/);
      expect(addr).toMatch(/^fd00:122:/);
    } finally {
      await net.destroy();
      for (const a of (await g.addr.list('eth0', { family: 'inet6' })).filter((x) => !x.cidr.startsWith('fe80'))) await g.addr.del('eth0', a.cidr).catch(() => {});
      await g.link.set('eth0', { up: false });
    }
    // Forwarding back to what it was; the ip6 table gone.
    expect(await h.sysctl.get('net.ipv6.conf.all.forwarding')).toBe('0');
    expect(await nsExec(H, 'nft', ['list', 'tables'])).not.toContain('vnetlink_ds');
  });

  it('routed IPv6 (no NAT66): the outside host, given a route back, sees the guest\'s own address; a DHCPv6 range gives dhclient -6 a lease', async () => {
    await o.route.add({ dst: 'fd00:123::/64', via: '2001:db8:ff::1' });
    const net = await h.network.create({ name: 'ds2', bridge: 'virbr1', address: '192.168.123.1/24', stp: false,
      address6: [{ address: 'fd00:123::1/64' }, { address: 'fd00:124::1/64', dhcp: { start: 'fd00:124::100', end: 'fd00:124::1ff' } }] });
    try {
      const conf = fs.readFileSync(path.join(net.stateDir, 'dnsmasq.conf'), 'utf8').split('\n');
      expect(conf).toContain('dhcp-range=fd00:124::100,fd00:124::1ff,64');
      await net.attach('vnet0');
      await g.link.set('eth0', { up: true });
      const addr = await slaac('fd00:123:');
      expect(await connect6('2001:db8:ff::2')).toBe('pong');
      await who!.line(new RegExp(`^from ${addr}$`), 'the routed IPv6 connection');
      // Stateful DHCPv6 from the second subnet's range, seen in dnsmasq's lease file (dhclient
      // configures nothing here: its script is /bin/true, its files are in a temp dir).
      if (hasTool('dhclient') || inCI) {
        const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-dhc6-'));
        try {
          const r = await nsRun(G, 'dhclient', ['-6', '-1', '-v', '-sf', '/bin/true', '-lf', path.join(tmp, 'leases'), '-pf', path.join(tmp, 'pid'), 'eth0'], 30_000);
          expect(r.code, r.stderr).toBe(0);
          const v6 = await waitFor(async () => (await net.leases()).find((l) => l.iaid !== undefined), 'a DHCPv6 lease');
          expect(v6.ip).toMatch(/^fd00:124::1[0-9a-f]{2}$/);
          expect(v6.mac).toBe('');
          expect(fs.readFileSync(path.join(tmp, 'leases'), 'utf8')).toContain(`iaaddr ${v6.ip}`);
        } finally {
          try { process.kill(Number(fs.readFileSync(path.join(tmp, 'pid'), 'utf8')), 'SIGKILL'); } catch { /* exited */ }
          fs.rmSync(tmp, { recursive: true, force: true });
        }
      }
      const rules = await nsExec(H, 'nft', ['list', 'table', 'ip6', net.table]);
      expect(rules).not.toContain('masquerade');
      expect(rules).toContain('ip6 daddr fd00:123::/64 oifname "virbr1" counter');
    } finally {
      await net.destroy();
      await o.route.del({ dst: 'fd00:123::/64', via: '2001:db8:ff::1' }).catch(() => {});
    }
  });
});
