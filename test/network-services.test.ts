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
import { Namespaces, hasTool, ipAddrs, nsExec, nsRun, privilegedSkipReason, waitFor } from './helpers.js';
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
