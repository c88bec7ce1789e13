// The seed's NAT network end to end, with three namespaces: "host" runs the network (bridge,
// firewall, dnsmasq), "guest" sits behind the bridge and asks for a DHCP lease with busybox
// udhcpc, "outside" (203.0.113.0/24) is the world the guest reaches through the masquerade.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, NetlinkError, NETWORK_STEPS, type Handle, type Netns, type Network, VnetlinkError } from '../lib/index.js';
import { _injectNetworkFault, _simulateCrash } from '../lib/network.js';
import { Namespaces, hasTool, needTools, ipAddrs, ipLinks, nsExec, nsRun, privilegedSkipReason, waitFor } from './helpers.js';
// Shared with the NAT demos and test/nat-forwarder.test.ts.
import { NsProc, parseLease, udhcpc, udhcpcScript } from '../examples/nat-helpers.js';
import { expectMasqueradedOutside } from './nat-check.js';

const skip = privilegedSkipReason();

// Guest service for the port forward: says who connected.
const GUEST_SERVICE = `
require('node:net').createServer((s) => s.end('guest saw ' + s.remoteAddress + '\\n')).listen(80, '0.0.0.0', () => console.log('ready'));`;

const CONNECT = (host: string, port: number) => `
const s = require('node:net').connect({ host: '${host}', port: ${port} });
s.setTimeout(2000, () => { console.log('timeout'); process.exit(2); });
s.on('data', (d) => process.stdout.write(String(d)));
s.on('error', (e) => { console.log('error ' + e.code); process.exit(1); });`;

describe.skipIf(skip)('the NAT network', () => {
  const nss = new Namespaces();
  let H: Netns, G: Netns, O: Netns;
  let h: Handle, g: Handle, o: Handle;
  let net: Network;
  let tmp: string;
  let script: string;
  let guestIp = '';
  let forwardingBefore = '';

  beforeAll(async () => {
    [H, G, O] = await Promise.all([nss.create('neth'), nss.create('netg'), nss.create('neto')]);
    [h, g, o] = await Promise.all([open({ netns: H }), open({ netns: G }), open({ netns: O })]);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-net-'));
    script = udhcpcScript(tmp);  // prints the lease and configures nothing
    // host h1 203.0.113.1 -- o0 203.0.113.2 outside (no route back to the guests)
    await h.link.add({ kind: 'veth', name: 'h1', peer: { name: 'o0', netns: O }, up: true });
    await h.addr.add('h1', '203.0.113.1/24');
    await o.link.set('o0', { up: true });
    await o.link.set('lo', { up: true });
    await o.addr.add('o0', '203.0.113.2/24');
    // The guest's cable: vnet0 on the host side, eth0 in the guest.
    await h.link.add({ kind: 'veth', name: 'vnet0', peer: { name: 'eth0', netns: G, mac: '52:54:00:aa:bb:01' } });
    await g.link.set('lo', { up: true });
    forwardingBefore = await h.sysctl.get('net.ipv4.ip_forward');
  });
  afterAll(async () => {
    await net?.destroy().catch(() => {});
    await Promise.all([h?.close(), g?.close(), o?.close()]);
    await nss.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('builds the seed\'s picture: virbr0 with STP and a fixed MAC, the gateway, libvirt\'s firewall, forwarding and dnsmasq', async (ctx) => {
    needTools(ctx, 'nft', 'dnsmasq');
    net = await h.network.create({ name: 'default', bridge: 'virbr0', stp: true, address: '192.168.122.1/24',
      dhcp: { start: '192.168.122.2', end: '192.168.122.254', ping: false } });
    expect(net).toMatchObject({ subnet: '192.168.122.0/24', gateway: '192.168.122.1', table: 'vnetlink_default' });
    const [br] = await ipLinks(H, 'virbr0');
    expect(br.linkinfo.info_kind).toBe('bridge');
    expect(br.linkinfo.info_data.stp_state).toBe(1);
    expect(br.address).toBe(net.mac);
    expect(net.mac).toMatch(/^52:54:00:/);
    expect(br.ifalias).toBe('vnetlink:network:default');
    expect(br.flags).toContain('UP');
    expect((await ipAddrs(H, 'virbr0'))[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toEqual(['192.168.122.1/24']);
    for (const k of ['accept_ra', 'autoconf'])
      expect((await nsExec(H, 'cat', [`/proc/sys/net/ipv6/conf/virbr0/${k}`])).trim()).toBe('0');
    expect((await nsExec(H, 'cat', ['/proc/sys/net/ipv4/ip_forward'])).trim()).toBe('1');
    // (The bridge's own multicast may already have moved a counter.)
    const rules = (await nsExec(H, 'nft', ['list', 'table', 'ip', 'vnetlink_default'])).replace(/packets \d+ bytes \d+/g, 'packets 0 bytes 0');
    for (const line of [
      'type nat hook postrouting priority srcnat; policy accept;',
      'ip saddr 192.168.122.0/24 ip daddr 224.0.0.0/24 counter packets 0 bytes 0 return',
      'ip saddr 192.168.122.0/24 ip daddr 255.255.255.255 counter packets 0 bytes 0 return',
      'ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 meta l4proto tcp counter packets 0 bytes 0 masquerade to :1024-65535',
      'ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 meta l4proto udp counter packets 0 bytes 0 masquerade to :1024-65535',
      'ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 counter packets 0 bytes 0 masquerade',
      'ip daddr 192.168.122.0/24 oifname "virbr0" ct state established,related counter packets 0 bytes 0 accept',
      'ip saddr 192.168.122.0/24 iifname "virbr0" counter packets 0 bytes 0 accept',
      'oifname "virbr0" counter packets 0 bytes 0 reject',
    ]) expect(rules).toContain(line);
    // dnsmasq runs in the host namespace, from our conf, with libvirt's settings.
    const pids = spawnSync('ip', ['netns', 'pids', H.name], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
    expect(pids).toContain(net.dnsmasqPid);
    const conf = fs.readFileSync(path.join(net.stateDir, 'dnsmasq.conf'), 'utf8');
    for (const l of ['strict-order', 'except-interface=lo', 'bind-dynamic', 'interface=virbr0', 'dhcp-range=192.168.122.2,192.168.122.254,255.255.255.0', 'dhcp-no-override', 'dhcp-lease-max=253'])
      expect(conf.split('\n')).toContain(l);
    expect(fs.readFileSync(`/proc/${net.dnsmasqPid}/cmdline`, 'utf8').split('\0')).toEqual(['/usr/sbin/dnsmasq', `--conf-file=${path.join(net.stateDir, 'dnsmasq.conf')}`, '']);
  });

  it('a guest gets a lease from .2–.254, pings the gateway and reaches the outside through NAT, seen as the host', async (ctx) => {
    needTools(ctx, 'busybox', 'ping');
    expect(net, 'the network of the test before').toBeDefined();
    // A real tap on the bridge too (the seed's vnet port), next to the guest's veth.
    await g.link.set('eth0', { up: true });  // a port without carrier stays disabled
    const tap = await h.tap.create({ name: 'vnet1' });
    try {
      await net.attach('vnet1');
      const port = await net.attach('vnet0', { wait: true });  // STP: listening, learning, forwarding
      expect(port.port?.state).toBe('forwarding');
      // brctl show's line: virbr0 8000.52540082327e yes vnet0 vnet1
      expect(await h.bridge.show()).toContainEqual(expect.objectContaining({ name: 'virbr0', id: `8000.${net.mac.replace(/:/g, '')}`, stp: true, interfaces: ['vnet0', 'vnet1'] }));
      const ports = JSON.parse(await nsExec(H, 'bridge', ['-j', 'link', 'show']));
      expect(ports.filter((p: any) => p.master === 'virbr0').map((p: any) => p.ifname).sort()).toEqual(['vnet0', 'vnet1']);
    } finally {
      await tap.close();
    }
    const out = await udhcpc(G, 'eth0', script);
    const lease = parseLease(out);
    expect(lease, out).toBeTruthy();
    guestIp = lease!.ip;
    const last = Number(guestIp.split('.')[3]);
    expect(guestIp.startsWith('192.168.122.')).toBe(true);
    expect(last).toBeGreaterThanOrEqual(2);
    expect(last).toBeLessThanOrEqual(254);
    expect(lease!.mask).toBe('24');
    expect(lease!.router).toBe('192.168.122.1');
    expect(await net.leases()).toContainEqual(expect.objectContaining({ mac: '52:54:00:aa:bb:01', ip: guestIp }));
    await g.addr.add('eth0', `${guestIp}/24`);
    await g.route.add({ dst: 'default', via: '192.168.122.1' });
    expect((await nsRun(G, 'ping', ['-c', '1', '-W', '2', '192.168.122.1'])).code).toBe(0);

    await expectMasqueradedOutside(G, O);
    expect((await nsRun(G, 'ping', ['-c', '1', '-W', '2', '203.0.113.2'])).code).toBe(0);
  });

  it('forwards a host port into a guest: the outside reaches the guest\'s service through the host\'s address', async () => {
    expect(guestIp, 'the guest got no lease in the test before').not.toBe('');
    const svc = new NsProc(G, GUEST_SERVICE);
    try {
      await svc.line(/^ready$/, 'the guest service');
      // Before the forward nothing answers on the host's port 8080.
      expect((await nsRun(O, process.execPath, ['-e', CONNECT('203.0.113.1', 8080)], 10_000)).stdout).toMatch(/error|timeout/);
      const pf = await net.forwardPort({ proto: 'tcp', hostPort: 8080, guest: guestIp, guestPort: 80 });
      const r = await nsRun(O, process.execPath, ['-e', CONNECT('203.0.113.1', 8080)], 10_000);
      expect(r.stdout).toBe('guest saw 203.0.113.2\n');
      const rules = await nsExec(H, 'nft', ['list', 'table', 'ip', 'vnetlink_default']);
      expect(rules).toMatch(new RegExp(`fib daddr type local tcp dport 8080 counter packets [1-9]\\d* bytes \\d+ dnat to ${guestIp.replace(/\./g, '\\.')}:80 comment "vnetlink:pf:tcp:\\*:8080"`));
      expect(rules).toMatch(new RegExp(`oifname "virbr0" ip daddr ${guestIp.replace(/\./g, '\\.')} tcp dport 80 counter packets [1-9]`));
      await expect(net.forwardPort({ proto: 'tcp', hostPort: 8080, guest: guestIp })).rejects.toMatchObject({ code: 'EEXIST' });
      await pf.remove();
      expect(await nsExec(H, 'nft', ['list', 'table', 'ip', 'vnetlink_default'])).not.toContain('dnat to');
      expect((await nsRun(O, process.execPath, ['-e', CONNECT('203.0.113.1', 8080)], 10_000)).stdout).toMatch(/error|timeout/);
    } finally {
      svc.stop();
    }
    const bad: Array<[() => Promise<unknown>, RegExp, any]> = [
      [() => net.forwardPort({ proto: 'sctp' as any, hostPort: 1, guest: guestIp }), /proto: must be one of/, RangeError],
      [() => net.forwardPort({ proto: 'tcp', hostPort: 0, guest: guestIp }), /hostPort: must be between 1 and 65535/, RangeError],
      [() => net.forwardPort({ proto: 'tcp', hostPort: 80, guest: '10.1.1.1' }), /guest: 10\.1\.1\.1 is not in the network's subnet/, RangeError],
      [() => net.forwardPort({ proto: 'tcp', hostPort: 80, guest: '192.168.122.1' }), /guest: is the gateway/, RangeError],
    ];
    for (const [fn, re, cls] of bad) {
      const e = await fn().then(() => null, (x) => x);
      expect(e).toBeInstanceOf(cls);
      expect(e.message).toMatch(re);
    }
  });

  it('restarts dnsmasq when it dies, and it keeps serving leases', async () => {
    expect(guestIp, 'the guest got no lease in the test before').not.toBe('');
    const pid = net.dnsmasqPid!;
    process.kill(pid, 'SIGKILL');
    await waitFor(() => net.dnsmasqPid !== pid && net.dnsmasqRestarts === 1, 'dnsmasq to be restarted', 10_000);
    const again = await udhcpc(G, 'eth0', script);
    expect(again).toContain(`LEASE ${guestIp} `);  // the lease file survived the restart
  });

  it('destroy removes everything the network created and nothing else', async () => {
    expect(net, 'the network of the first test').toBeDefined();
    const pid = net.dnsmasqPid!;
    const dir = net.stateDir;
    await net.destroy();
    await net.destroy();  // twice is fine
    const names = (await ipLinks(H)).map((l) => l.ifname);
    expect(names).not.toContain('virbr0');
    expect(names).toEqual(expect.arrayContaining(['lo', 'h1', 'vnet0']));  // not ours: kept
    expect(await nsExec(H, 'nft', ['list', 'ruleset'])).toBe('');
    expect(fs.existsSync(`/proc/${pid}/cmdline`) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dnsmasq')).toBe(false);
    expect(fs.existsSync(dir)).toBe(false);
    expect(await h.sysctl.get('net.ipv4.ip_forward')).toBe(forwardingBefore);
    await expect(net.leases()).rejects.toThrow(/was destroyed/);
  });
});

/** What a user would compare: links, addresses, rules, forwarding, processes, our state. */
async function snapshot(ns: Netns, h: Handle) {
  return {
    links: (await ipLinks(ns)).map((l) => `${l.ifname} ${l.address} ${l.flags.join(',')} ${l.master ?? ''} ${l.ifalias ?? ''}`).sort(),
    addrs: (await ipAddrs(ns)).flatMap((l: any) => l.addr_info.map((a: any) => `${l.ifname} ${a.local}/${a.prefixlen}`)).sort(),
    nft: await nsExec(ns, 'nft', ['list', 'ruleset']),
    forwarding: await h.sysctl.get('net.ipv4.ip_forward'),
    pids: spawnSync('ip', ['netns', 'pids', ns.name], { encoding: 'utf8' }).stdout,
  };
}

describe.skipIf(skip)('network.create all-or-nothing', () => {
  const nss = new Namespaces();
  let F: Netns;
  let f: Handle;
  const spec = { name: 'failing', bridge: 'virbr9', stp: false, address: '192.168.122.1/24', dhcp: { start: '192.168.122.2', end: '192.168.122.254', ping: false } };

  beforeAll(async () => {
    F = await nss.create('netf');
    f = await open({ netns: F });
    await f.link.add({ kind: 'veth', name: 'keep0', peer: { name: 'keep1' } });
    await f.addr.add('keep0', '198.51.100.1/24');
  });
  afterAll(async () => {
    _injectNetworkFault(undefined);
    await f?.close();
    await nss.cleanup();
  });

  it('leaves the namespace exactly as before when any step fails', async (ctx) => {
    needTools(ctx, 'nft', 'dnsmasq');
    const before = await snapshot(F, f);
    expect(before.forwarding).toBe('0');
    for (const step of NETWORK_STEPS) {
      _injectNetworkFault(step);
      const e = await f.network.create(spec).then(() => null, (x) => x);
      expect(e, step).toBeInstanceOf(NetlinkError);
      expect(e.message).toContain(`injected failure after step ${step}`);
      expect(await snapshot(F, f), step).toEqual(before);
    }
    // And with nothing injected it comes up, then goes away cleanly.
    const net = await f.network.create(spec);
    expect((await snapshot(F, f)).links.some((l) => l.startsWith('virbr9 '))).toBe(true);
    await net.destroy();
    expect(await snapshot(F, f)).toEqual(before);
  });

  it('refuses bad input with errors naming the field, leaving nothing behind', async () => {
    const before = await snapshot(F, f);
    await f.link.add({ kind: 'veth', name: 'taken0', peer: { name: 'taken1' } });
    await f.link.add({ kind: 'veth', name: 'ov0', peer: { name: 'ov1' } });
    await f.addr.add('ov0', '10.7.0.9/16');
    const bad: Array<[object, RegExp, any]> = [
      [{ ...spec, address: '10.7.3.1/24', dhcp: false }, /address: subnet 10\.7\.3\.0\/24 overlaps 10\.7\.0\.9\/16 on ov0/, RangeError],
      [{ ...spec, dhcp: { start: '192.168.123.2', end: '192.168.122.254' } }, /dhcp\.start: 192\.168\.123\.2 is outside the subnet 192\.168\.122\.0\/24/, RangeError],
      [{ ...spec, dhcp: { start: '192.168.122.2', end: '192.168.122.255' } }, /dhcp\.end: .* broadcast address/, RangeError],
      [{ ...spec, dhcp: { start: '192.168.122.200', end: '192.168.122.100' } }, /dhcp: start 192\.168\.122\.200 is after end/, RangeError],
      [{ ...spec, dhcp: { start: '192.168.122.1', end: '192.168.122.9' } }, /dhcp: the range .* includes the gateway/, RangeError],
      [{ ...spec, address: '192.168.122.0/24' }, /address: 192\.168\.122\.0 is the subnet's network address, not a usable gateway/, RangeError],
      [{ ...spec, address: '192.168.122.255/24' }, /address: .* broadcast address, not a usable gateway/, RangeError],
      [{ ...spec, address: '192.168.122.1' }, /address: must include a prefix length/, TypeError],
      [{ ...spec, bridge: 'taken0' }, /bridge: "taken0" already exists \(a veth\) and is not this network's/, RangeError],
      [{ ...spec, bridge: 'a-very-long-bridge-name' }, /bridge: must be at most 15 bytes/, RangeError],
      [{ ...spec, dnsmasq: '/nonexistent/dnsmasq' }, /dnsmasq: "\/nonexistent\/dnsmasq" is not an executable file/, RangeError],
      [{ ...spec, name: 'no spaces' }, /name: must be 1-32 letters/, RangeError],
      [{ ...spec, mac: '01:00:5e:00:00:01' }, /mac: .*multicast/, RangeError],
      [{ ...spec, nat: { ports: [2000, 1000] } }, /nat\.ports: min 2000 is above max 1000/, RangeError],
      [{ ...spec, dhcp: { ...spec.dhcp, hosts: [{ mac: '52:54:00:00:00:01', ip: '10.0.0.1' }] } }, /dhcp\.hosts\[0\]\.ip: 10\.0\.0\.1 is outside the subnet/, RangeError],
      [{ ...spec, colour: 'red' }, /colour: unknown option/, TypeError],
      [{ ...spec, address: 'fd00::1/64' }, /address: must be an IPv4 gateway address/, RangeError],
    ];
    for (const [s, re, cls] of bad) {
      const e = await f.network.create(s as any).then(() => null, (x) => x);
      expect(e, String(re)).toBeInstanceOf(cls);
      expect(e.message).toMatch(re);
    }
    // dnsmasq that refuses to start (a binary that fails): not the kernel's error, so a
    // VnetlinkError (not a NetlinkError) with its words; nothing left.
    const fake = path.join(os.tmpdir(), `vnetlink-fake-dnsmasq-${process.pid}`);
    fs.writeFileSync(fake, '#!/bin/sh\necho "dnsmasq: failed to create listening socket: Address already in use" >&2\nexit 2\n', { mode: 0o755 });
    try {
      const e = await f.network.create({ ...spec, dnsmasq: fake }).then(() => null, (x) => x);
      expect(e).toBeInstanceOf(VnetlinkError);
      expect(e).not.toBeInstanceOf(NetlinkError);
      expect(e.message).toMatch(/dnsmasq did not start: dnsmasq: failed to create listening socket/);
    } finally {
      fs.rmSync(fake, { force: true });
    }
    await f.link.del('taken0');
    await f.link.del('ov0');
    expect(await snapshot(F, f)).toEqual(before);
  });

  it('makes an isolated network with nat: false, and writes fixed DHCP hosts for dnsmasq', async () => {
    const before = await snapshot(F, f);
    const net = await f.network.create({ ...spec, nat: false, dns: false,
      dhcp: { ...spec.dhcp, leaseTime: 600, hosts: [{ mac: '52:54:00:00:00:32', ip: '192.168.122.50', name: 'web' }] } });
    try {
      const rules = await nsExec(F, 'nft', ['list', 'table', 'ip', 'vnetlink_failing']);
      // No masquerade to the outside (only the port-forward hairpin, from the bridge back into it).
      expect(rules).not.toContain('chain nat');
      expect(rules.split('\n').filter((l) => l.includes('masquerade') && !l.includes('oifname "virbr9"'))).toEqual([]);
      expect(rules).not.toContain('ip saddr 192.168.122.0/24 iifname "virbr9" counter packets 0 bytes 0 accept');
      expect(rules).toContain('iifname "virbr9" oifname "virbr9" counter packets 0 bytes 0 accept');
      expect(rules).toContain('oifname "virbr9" counter packets 0 bytes 0 reject');
      expect(await f.sysctl.get('net.ipv4.ip_forward')).toBe('0');  // an isolated network forwards nothing
      const conf = fs.readFileSync(path.join(net.stateDir, 'dnsmasq.conf'), 'utf8').split('\n');
      expect(conf).toContain('port=0');
      expect(conf).toContain('dhcp-range=192.168.122.2,192.168.122.254,255.255.255.0,600');
      expect(conf).toContain(`dhcp-hostsfile=${path.join(net.stateDir, 'dnsmasq.hostsfile')}`);
      expect(fs.readFileSync(path.join(net.stateDir, 'dnsmasq.hostsfile'), 'utf8')).toBe('52:54:00:00:00:32,192.168.122.50,web\n');
      await expect(f.network.create(spec)).rejects.toMatchObject({ code: 'EEXIST', op: 'network.create' });
    } finally {
      await net.destroy();
    }
    expect(await snapshot(F, f)).toEqual(before);
  });

  it('keeps forwarding on while any network needs it, and restores it after the last one', async () => {
    const before = await snapshot(F, f);
    const a = await f.network.create({ ...spec, dhcp: false, dns: false });
    const b = await f.network.create({ ...spec, name: 'second', bridge: 'virbr7', address: '10.77.0.1/24', dhcp: false, dns: false });
    await a.destroy();
    expect(await f.sysctl.get('net.ipv4.ip_forward')).toBe('1');
    await b.destroy();
    expect(await snapshot(F, f)).toEqual(before);
  });

  it('cleans up the leftovers of a crashed run when the network is created again with replace, or on request', async (ctx) => {
    needTools(ctx, 'dnsmasq');
    const before = await snapshot(F, f);
    const first = await f.network.create(spec);
    const oldPid = first.dnsmasqPid!;
    _simulateCrash(first);  // bridge, table, running dnsmasq and state dir stay, as after a crash
    expect(spawnSync('ip', ['netns', 'pids', F.name], { encoding: 'utf8' }).stdout).toContain(String(oldPid));
    // It still runs: never torn down silently (EEXIST); replace rebuilds it.
    await expect(f.network.create(spec)).rejects.toMatchObject({ code: 'EEXIST' });
    const second = await f.network.create(spec, { replace: true });
    expect(second.dnsmasqPid).not.toBe(oldPid);
    const pids = spawnSync('ip', ['netns', 'pids', F.name], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
    expect(pids).toEqual([second.dnsmasqPid]);
    expect((await ipLinks(F)).filter((l) => l.linkinfo?.info_kind === 'bridge').map((l) => l.ifname)).toEqual(['virbr9']);
    expect((await f.nft.listTables()).map((t) => t.name)).toEqual(['vnetlink_failing']);
    // forwarding was 0 before the crashed run turned it on: destroy still restores 0.
    await second.destroy();
    expect(await snapshot(F, f)).toEqual(before);

    _simulateCrash(await f.network.create(spec));
    expect(await f.network.cleanup('failing')).toBe(true);
    expect(await snapshot(F, f)).toEqual(before);
    expect(await f.network.cleanup('failing')).toBe(false);
  });
});
