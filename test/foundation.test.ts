// The foundation: namespaces, handles, links, addresses, routes, sysctls and errors, each
// checked against what `ip` itself reports, inside namespaces this file creates and deletes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, Netns, NetlinkError, type Handle } from '../lib/index.js';
import { Namespaces, fdCount, hasTool, ipAddrs, ipLinks, nsRun, privilegedSkipReason, threadCount, waitFor } from './helpers.js';

const skip = privilegedSkipReason();

describe.skipIf(skip)('foundation', () => {
  const nss = new Namespaces();
  let A: Netns, B: Netns;
  let a: Handle, b: Handle;

  beforeAll(async () => {
    A = await nss.create('fa');
    B = await nss.create('fb');
    a = await open({ netns: A.name });
    b = await open({ netns: B });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await nss.cleanup();
  });

  it('creates, lists and deletes named namespaces like ip netns', async () => {
    const ns = await Netns.create(`vt-nsl-${process.pid}`);
    try {
      expect(await Netns.list()).toContain(ns.name);
      const ipList = (await import('node:child_process')).spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout;
      expect(ipList).toContain(ns.name);
    } finally {
      await ns.delete();
    }
    expect(await Netns.list()).not.toContain(ns.name);
  });

  it('wires a veth pair across two namespaces, with addresses and a route, and pings across it', async () => {
    const v0 = await a.link.add({ kind: 'veth', name: 'v0', mtu: 1400, peer: { name: 'v1', netns: B, mtu: 1400 }, up: true });
    expect(v0.name).toBe('v0');
    expect(v0.kind).toBe('veth');
    expect(v0.mtu).toBe(1400);
    await b.link.set('v1', { up: true });
    await a.link.set('lo', { up: true });
    await b.link.set('lo', { up: true });
    await a.addr.add('v0', '198.51.100.1/24', { broadcast: true });
    await b.addr.add('v1', '198.51.100.2/24');
    await a.addr.add('v0', 'fd00:5::1/64', { nodad: true });
    await b.addr.add('v1', 'fd00:5::2/64', { nodad: true });
    await a.route.add({ dst: '203.0.113.0/24', via: '198.51.100.2', metric: 7 });

    // What ip itself says agrees with what the API returns.
    const [ipv0] = await ipLinks(A, 'v0');
    const got = await a.link.get('v0');
    expect(ipv0.ifindex).toBe(got.index);
    expect(ipv0.address).toBe(got.mac);
    expect(ipv0.mtu).toBe(1400);
    expect(ipv0.linkinfo.info_kind).toBe('veth');
    expect(ipv0.flags).toContain('UP');
    expect(got.up).toBe(true);
    expect(got.linkNetnsId).toBeTypeOf('number');  // the peer lives in another namespace
    const [ipv1] = await ipLinks(B, 'v1');
    expect(ipv1.mtu).toBe(1400);

    const ipa = (await ipAddrs(A, 'v0'))[0].addr_info.map((x: any) => `${x.local}/${x.prefixlen}`).sort();
    const apiA = (await a.addr.list('v0')).map((x) => x.cidr).sort();
    expect(apiA).toEqual(ipa);
    expect(apiA).toContain('198.51.100.1/24');
    expect(apiA).toContain('fd00:5::1/64');
    const v4 = (await a.addr.list('v0', { family: 'inet' }))[0];
    expect(v4.broadcast).toBe('198.51.100.255');

    const routes = await a.route.list();
    const r = routes.find((x) => x.dst === '203.0.113.0/24');
    expect(r).toMatchObject({ via: '198.51.100.2', dev: 'v0', metric: 7, table: 254 });
    const ipr = (await import('node:child_process')).spawnSync('ip', ['-n', A.name, 'route', 'show', '203.0.113.0/24'], { encoding: 'utf8' }).stdout;
    expect(ipr).toContain('via 198.51.100.2 dev v0');

    // hasTool throws in CI when ping is missing; elsewhere only the ping itself is skipped.
    if (hasTool('ping')) {
      await waitFor(async () => (await nsRun(A, 'ping', ['-c', '1', '-W', '1', '198.51.100.2'])).code === 0, 'ping over the veth');
      const ping6 = await nsRun(A, 'ping', ['-6', '-c', '1', '-W', '2', 'fd00:5::2']);
      expect(ping6.code).toBe(0);
    }

    await a.route.del({ dst: '203.0.113.0/24' });
    expect((await a.route.list()).find((x) => x.dst === '203.0.113.0/24')).toBeUndefined();
    await a.addr.del('v0', 'fd00:5::1/64');
    expect((await a.addr.list('v0')).map((x) => x.cidr)).not.toContain('fd00:5::1/64');
  });

  it('sets mtu, mac, name, group, alias, txqueuelen, master and netns as ip link set would', async () => {
    await a.link.add({ kind: 'veth', name: 's0', peer: { name: 's1' } });
    await a.link.set('s0', { mtu: 1300, mac: '02:00:00:00:00:01', group: 9, alias: 'guest uplink', txqueuelen: 500 });
    await a.link.set('s0', { name: 's0new' });
    const [ip] = await ipLinks(A, 's0new');
    expect(ip).toMatchObject({ mtu: 1300, address: '02:00:00:00:00:01', group: '9', ifalias: 'guest uplink', txqlen: 500 });
    const l = await a.link.get('s0new');
    expect(l).toMatchObject({ mtu: 1300, mac: '02:00:00:00:00:01', group: 9, alias: 'guest uplink', txqueuelen: 500 });
    // Move one end to B: it disappears here and appears there.
    await a.link.set('s1', { netns: B.name });
    await expect(a.link.get('s1')).rejects.toMatchObject({ code: 'ENODEV' });
    expect((await b.link.get('s1')).name).toBe('s1');
    await b.link.del('s1');
    await expect(a.link.get('s0new')).rejects.toMatchObject({ code: 'ENODEV' });  // veth pairs die together
  });

  it('returns strings exactly as the kernel holds them: quotes, backslashes, control characters, non-ASCII (results travel as JSON text)', async () => {
    const alias = 'q"b\\s/\u0001\t\u001f ü 名 😀 end';
    await a.link.add({ kind: 'bridge', name: 'js0', alias });
    // What the kernel holds, read from sysfs in the namespace (ip -j prints control characters raw).
    const sys = await nsRun(A, 'cat', ['/sys/class/net/js0/ifalias']);
    expect(sys.code).toBe(0);
    expect(sys.stdout).toBe(alias + '\n');
    const l = await a.link.get('js0');
    expect(l.alias).toBe(alias);
    expect((await a.link.list()).find((x) => x.name === 'js0')?.alias).toBe(alias);
    // Numbers stay numbers, booleans booleans, arrays arrays.
    expect(typeof l.index).toBe('number');
    expect(l.up).toBe(false);
    expect(Array.isArray(l.flags)).toBe(true);
    // A result JSON cannot carry (bytes) still arrives as a Buffer.
    expect(Buffer.isBuffer(await a.link.encode({ kind: 'bridge', name: 'js1' }))).toBe(true);
    await a.link.del('js0');
  });

  it('brings a veth peer up, in this namespace or in another one', async () => {
    const l = await a.link.add({ kind: 'veth', name: 'u0', up: true, peer: { name: 'u1', up: true } });
    expect((await ipLinks(A, 'u1'))[0].flags).toContain('UP');
    await waitFor(async () => (await a.link.get('u0')).lowerUp, 'carrier on u0');
    expect(l.linkIndex).toBe((await a.link.get('u1')).index);
    await a.link.add({ kind: 'veth', name: 'w0', peer: { name: 'w1', netns: B, up: true } });
    expect((await ipLinks(B, 'w1'))[0].flags).toContain('UP');
    await a.link.del('u0');
    await a.link.del('w0');
  });

  it('deletes a whole group in one call and lists by group', async () => {
    for (let i = 0; i < 5; i++) await a.link.add({ kind: 'veth', name: `g${i}a`, group: 7, peer: { name: `g${i}b`, group: 7 } });
    expect((await a.link.list({ group: 7 })).length).toBe(10);
    await a.link.delGroup(7);
    expect((await a.link.list({ group: 7 })).length).toBe(0);
    expect((await ipLinks(A)).filter((l) => l.group === '7')).toEqual([]);
    await expect(a.link.delGroup(0)).rejects.toThrow(/group: .*refusing/);
  });

  it('keeps sysctls per namespace', async () => {
    await a.sysctl.set('net.ipv4.ip_forward', '1');
    await b.sysctl.set('net.ipv4.ip_forward', 0);
    expect(await a.sysctl.get('net.ipv4.ip_forward')).toBe('1');
    expect(await b.sysctl.get('net.ipv4.ip_forward')).toBe('0');
    const seen = (await nsRun(A, 'cat', ['/proc/sys/net/ipv4/ip_forward'])).stdout.trim();
    expect(seen).toBe('1');
  });

  it('turns kernel refusals into NetlinkError with code, errno, op and the extended-ack text', async () => {
    const e1 = await a.link.get('nope').catch((e) => e);
    expect(e1).toBeInstanceOf(NetlinkError);
    expect(e1).toMatchObject({ code: 'ENODEV', errno: 19, op: 'link.get' });

    await a.link.add({ kind: 'veth', name: 'e0', peer: { name: 'e1' } });
    const e2 = await a.link.add({ kind: 'veth', name: 'e0' }).catch((e) => e);
    expect(e2).toBeInstanceOf(NetlinkError);
    expect(e2).toMatchObject({ code: 'EEXIST', op: 'link.add' });

    const e3 = await a.link.set('e0', { mtu: 70000 }).catch((e) => e);
    expect(e3).toBeInstanceOf(NetlinkError);
    expect(e3.code).toBe('EINVAL');
    expect(e3.extack).toMatch(/mtu greater than device maximum/);
    expect(e3.message).toMatch(/mtu greater than device maximum/);

    const e4 = await a.addr.add('e0', '198.51.100.9/24').then(() => a.addr.add('e0', '198.51.100.9/24')).catch((e) => e);
    expect(e4).toMatchObject({ code: 'EEXIST', op: 'addr.add' });
    await a.link.del('e0');
  });

  it('rejects bad input naming the field, before any syscall, leaving nothing behind', async () => {
    const before = (await ipLinks(A)).map((l) => l.ifname).sort();
    const bad: Array<[() => Promise<unknown>, RegExp, any]> = [
      [() => a.link.add({ kind: 'veth', name: 'averyveryverylongname' }), /name: must be at most 15 bytes/, RangeError],
      [() => a.link.add({ kind: 'veth', name: 'a/b' }), /name: must not contain/, RangeError],
      [() => a.link.add({ kind: 'veth', name: 'a b' }), /name: must not contain/, RangeError],
      [() => a.link.add({ kind: 'veth', name: '' }), /name: must not be empty/, RangeError],
      [() => a.link.add({ kind: 'veth', name: 'x0', mac: '52:54:00:zz:00:01' }), /mac: must be a MAC/, TypeError],
      [() => a.link.add({ kind: 'veth', name: 'x0', mac: '01:00:5e:00:00:01' }), /mac: .*multicast/, RangeError],
      [() => a.link.add({ kind: 'veth', name: 'x0', peer: { name: 'this-name-is-too-long' } }), /peer\.name: must be at most 15 bytes/, RangeError],
      [() => a.link.add({ kind: 'veth', name: 'x0', peer: { name: 'x1', netns: 'no-such-ns-here' } }), /peer\.netns: no network namespace/, RangeError],
      [() => a.link.add({ kind: 'veth', name: 'x0', netns: 99999 }), /netns: fd 99999 is not an open file descriptor/, TypeError],
      [() => a.link.add({ kind: 'warp' } as any), /kind: unknown link kind "warp"/, RangeError],
      [() => a.link.add({ kind: 'veth', name: 'x0', mtu: -5 }), /mtu: must be between/, RangeError],
      [() => a.link.add({ kind: 'veth', name: 'x0', colour: 'red' } as any), /colour: unknown option/, TypeError],
      [() => a.link.add({ kind: 'veth', name: 'vnet%d' }), /name: a name pattern/, RangeError],
      [() => a.addr.add('v0', '198.51.100.300/24'), /address: must be an address with prefix/, TypeError],
      [() => a.addr.add('v0', '198.51.100.3/33'), /address: prefix length must be 0–32/, RangeError],
      [() => a.addr.add('v0', '198.51.100.3'), /address: must include a prefix length/, TypeError],
      [() => a.route.add({ dst: '203.0.113.0/24', via: 'fd00::1' }), /via: is inet6 but dst is inet/, RangeError],
      [() => a.route.add({ dst: '203.0.113.0/24' }), /via: a route needs a gateway/, TypeError],
      [() => a.sysctl.set('kernel.hostname', 'x'), /key: must be a net\.\* sysctl/, RangeError],
      [() => a.sysctl.get('net/../../etc'), /key: must be a net\.\* sysctl/, RangeError],
      [() => a.link.set('v0', {}), /changes: names nothing to change/, TypeError],
      [() => open({ netns: 'no-such-namespace-x' }), /netns: no network namespace/, RangeError],
      [() => open({ netns: 'bad/name' } as any), /netns: no network namespace at bad\/name|netns: .*not a valid/, RangeError],
      [() => Netns.create('has space'), /name: .*not a valid namespace name/, RangeError],
    ];
    for (const [fn, re, cls] of bad) {
      const e = await fn().then(() => null, (err) => err);
      expect(e, String(re)).toBeInstanceOf(cls);
      expect(e.message).toMatch(re);
    }
    const closed = await open({ netns: A });
    await closed.close();
    const ec = await closed.link.list().catch((e) => e);
    expect(ec).toBeInstanceOf(TypeError);
    expect(ec.message).toMatch(/link\.list: handle: is closed/);
    const after = (await ipLinks(A)).map((l) => l.ifname).sort();
    expect(after).toEqual(before);
  });

  it('answers 1000 concurrent requests on one handle, each with its own answer', async () => {
    await a.link.add({ kind: 'veth', name: 'c0', peer: { name: 'c1' } });
    const names = ['lo', 'c0', 'c1'];
    const reqs = Array.from({ length: 1000 }, (_, i) => a.link.get(names[i % 3]));
    const res = await Promise.all(reqs);
    res.forEach((l, i) => expect(l.name).toBe(names[i % 3]));
    // errors interleaved with successes stay with their own request
    const mixed = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => a.link.get(i % 2 ? 'c0' : 'gone')));
    mixed.forEach((r, i) => expect(r.status).toBe(i % 2 ? 'fulfilled' : 'rejected'));
    await a.link.del('c0');
  });

  it('keeps each handle inside its own namespace', async () => {
    await a.link.add({ kind: 'veth', name: 'onlya0', peer: { name: 'onlya1' } });
    await expect(b.link.get('onlya0')).rejects.toMatchObject({ code: 'ENODEV' });
    expect((await b.link.list()).map((l) => l.name)).not.toContain('onlya0');
    expect((await ipLinks(B)).map((l) => l.ifname)).not.toContain('onlya0');
    await b.link.add({ kind: 'veth', name: 'onlyb0', peer: { name: 'onlyb1' } });
    expect((await a.link.list()).map((l) => l.name)).not.toContain('onlyb0');
    await a.link.del('onlya0');
    await b.link.del('onlyb0');
  });

  it('leaks no fds or threads when handles close', async () => {
    const fds0 = fdCount();
    const th0 = threadCount();
    for (let round = 0; round < 3; round++) {
      const hs = await Promise.all(Array.from({ length: 10 }, () => open({ netns: A })));
      await Promise.all(hs.map((h) => h.link.list()));
      expect(threadCount()).toBeGreaterThanOrEqual(th0 + 10);
      await Promise.all(hs.map((h) => h.close()));
    }
    expect(fdCount()).toBe(fds0);
    expect(threadCount()).toBe(th0);
  });

  it('supports await using', async () => {
    const th0 = threadCount();
    {
      await using h = await open({ netns: A });
      expect((await h.link.get('lo')).kind).toBe('loopback');
    }
    expect(threadCount()).toBe(th0);
  });
});
