// Routes and address lifetimes: the bytes iproute2 sends, and what `ip -j route`, `ip route get`,
// ping and `ip -j addr` show after our calls (multipath, blackhole/unreachable/prohibit/local,
// onlink, src/scope/proto/table, IPv6 metrics, valid_lft/preferred_lft).
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkError, open, type Handle, type Netns } from '../lib/index.js';
import type { RouteSpec } from '../lib/route.js';
import type { AddrOptions } from '../lib/addr.js';
import { Namespaces, hasTool, nsExec, nsRun, privilegedSkipReason } from './helpers.js';

const skip = privilegedSkipReason();
const golden = JSON.parse(fs.readFileSync(new URL('./fixtures/route-golden.json', import.meta.url), 'utf8')) as { tool: string; requests: Record<string, string> };
const json = async (ns: Netns, cmd: string, ...args: string[]) => JSON.parse((await nsExec(ns, cmd, args)) || '[]');

type Case = { ops: 'route'; cmd: 'add' | 'replace' | 'del'; spec: RouteSpec } | { ops: 'addr'; cmd: 'add' | 'replace'; dev: string; cidr: string; opts: AddrOptions };
const cases: Record<string, Case> = {
  'ip route add 203.0.113.0/24 via 198.51.100.2 dev vp0': { ops: 'route', cmd: 'add', spec: { dst: '203.0.113.0/24', via: '198.51.100.2', dev: 'vp0' } },
  'ip route add 203.0.113.0/24 nexthop via 198.51.100.2 dev vp0 weight 1 nexthop via 198.51.100.3 dev br0 weight 3': { ops: 'route', cmd: 'add', spec: { dst: '203.0.113.0/24', nexthops: [{ via: '198.51.100.2', dev: 'vp0', weight: 1 }, { via: '198.51.100.3', dev: 'br0', weight: 3 }] } },
  'ip route add 203.0.113.0/24 via 198.51.100.2 dev vp0 onlink': { ops: 'route', cmd: 'add', spec: { dst: '203.0.113.0/24', via: '198.51.100.2', dev: 'vp0', onlink: true } },
  'ip route add 203.0.113.0/24 dev vp0 src 198.51.100.1 metric 10 table 100 proto static scope link': { ops: 'route', cmd: 'add', spec: { dst: '203.0.113.0/24', dev: 'vp0', src: '198.51.100.1', metric: 10, table: 100, protocol: 'static', scope: 'link' } },
  'ip route add 203.0.113.0/24 via 198.51.100.2 table 1000 proto 42': { ops: 'route', cmd: 'add', spec: { dst: '203.0.113.0/24', via: '198.51.100.2', table: 1000, protocol: 42 } },
  'ip route add blackhole 203.0.113.0/24': { ops: 'route', cmd: 'add', spec: { dst: '203.0.113.0/24', type: 'blackhole' } },
  'ip route add unreachable 203.0.113.0/24 table 100': { ops: 'route', cmd: 'add', spec: { dst: '203.0.113.0/24', type: 'unreachable', table: 100 } },
  'ip route add prohibit 203.0.113.0/24 metric 5': { ops: 'route', cmd: 'add', spec: { dst: '203.0.113.0/24', type: 'prohibit', metric: 5 } },
  'ip route add local 198.51.100.9 dev vp0': { ops: 'route', cmd: 'add', spec: { dst: '198.51.100.9', type: 'local', dev: 'vp0' } },
  'ip route replace 203.0.113.0/24 via 198.51.100.2 dev vp0': { ops: 'route', cmd: 'replace', spec: { dst: '203.0.113.0/24', via: '198.51.100.2', dev: 'vp0' } },
  'ip -6 route add 2001:db8:1::/64 via 2001:db8::2 dev vp0 mtu 1400 advmss 1300 hoplimit 10': { ops: 'route', cmd: 'add', spec: { dst: '2001:db8:1::/64', via: '2001:db8::2', dev: 'vp0', mtu: 1400, advmss: 1300, hoplimit: 10 } },
  'ip -6 route add 2001:db8:2::/64 nexthop via 2001:db8::2 dev vp0 weight 2 nexthop via 2001:db8::3 dev vp0 weight 5': { ops: 'route', cmd: 'add', spec: { dst: '2001:db8:2::/64', nexthops: [{ via: '2001:db8::2', dev: 'vp0', weight: 2 }, { via: '2001:db8::3', dev: 'vp0', weight: 5 }] } },
  'ip -6 route add blackhole 2001:db8:3::/64': { ops: 'route', cmd: 'add', spec: { dst: '2001:db8:3::/64', type: 'blackhole' } },
  'ip route del 203.0.113.0/24': { ops: 'route', cmd: 'del', spec: { dst: '203.0.113.0/24' } },
  'ip route del blackhole 203.0.113.0/24 table 100': { ops: 'route', cmd: 'del', spec: { dst: '203.0.113.0/24', type: 'blackhole', table: 100 } },
  'ip -6 route del 2001:db8:1::/64': { ops: 'route', cmd: 'del', spec: { dst: '2001:db8:1::/64' } },
  'ip route del local 198.51.100.9': { ops: 'route', cmd: 'del', spec: { dst: '198.51.100.9', type: 'local' } },
  'ip addr add 198.51.100.1/24 dev vp0 valid_lft 300 preferred_lft 100': { ops: 'addr', cmd: 'add', dev: 'vp0', cidr: '198.51.100.1/24', opts: { validLft: 300, preferredLft: 100 } },
  'ip -6 addr add 2001:db8::1/64 dev vp0 valid_lft 600 preferred_lft 0 nodad': { ops: 'addr', cmd: 'add', dev: 'vp0', cidr: '2001:db8::1/64', opts: { validLft: 600, preferredLft: 0, nodad: true } },
  'ip addr replace 198.51.100.1/24 dev vp0 valid_lft forever preferred_lft forever': { ops: 'addr', cmd: 'replace', dev: 'vp0', cidr: '198.51.100.1/24', opts: { validLft: 'forever', preferredLft: 'forever' } },
};

describe.skipIf(skip)('routes and address lifetimes', () => {
  const nss = new Namespaces();
  let A: Netns, B: Netns, G: Netns;
  let a: Handle, b: Handle, g: Handle;

  beforeAll(async () => {
    hasTool('ping');
    [A, B, G] = await Promise.all([nss.create('rta'), nss.create('rtb'), nss.create('rtg')]);
    [a, b, g] = await Promise.all([open({ netns: A }), open({ netns: B }), open({ netns: G })]);
    // G has the golden bytes' layout: ifb0 = 2, br0 = 3, vx0 = 4, vp1 = 5, vp0 = 6.
    await g.link.add({ kind: 'ifb', name: 'ifb0' });
    await g.link.add({ kind: 'bridge', name: 'br0' });
    await g.link.add({ kind: 'vxlan', name: 'vx0', vni: 42, learning: false });
    await g.link.add({ kind: 'veth', name: 'vp0', peer: { name: 'vp1' } });
    expect((await g.link.get('vp0')).index).toBe(6);
    // A and B: a point-to-point veth, IPv4 and IPv6 (lo up in A: local routes deliver through it).
    await a.link.set('lo', { up: true });
    await a.link.add({ kind: 'veth', name: 'a0', up: true, peer: { name: 'b0', netns: B, up: true } });
    await a.addr.add('a0', '198.51.100.1/24');
    await b.addr.add('b0', '198.51.100.2/24');
    await a.addr.add('a0', '2001:db8::1/64', { nodad: true });
    await b.addr.add('b0', '2001:db8::2/64', { nodad: true });
  });
  afterAll(async () => {
    for (const h of [a, b, g]) await h?.close();
    await nss.cleanup();
  });

  it(`encodes route and address requests exactly as ${golden.tool} does`, async () => {
    const labels = Object.keys(golden.requests);
    expect(labels.length).toBe(20);
    expect(Object.keys(cases).sort()).toEqual([...labels].sort());
    for (const label of labels) {
      const c = cases[label];
      const bytes = c.ops === 'route' ? await g.route.encode(c.cmd, c.spec) : await g.addr.encode(c.cmd, c.dev, c.cidr, c.opts);
      bytes.fill(0, 8, 16);
      expect(bytes.toString('hex'), label).toBe(golden.requests[label]);
    }
  });

  it('adds a multipath route that ip -j route show agrees with, both families', async () => {
    await b.addr.add('b0', '198.51.100.3/24');
    await a.route.add({ dst: '203.0.113.0/24', nexthops: [{ via: '198.51.100.2', dev: 'a0', weight: 1 }, { via: '198.51.100.3', dev: 'a0', weight: 3 }] });
    const [seen] = await json(A, 'ip', '-j', 'route', 'show', '203.0.113.0/24');
    expect(seen.nexthops).toEqual([
      expect.objectContaining({ gateway: '198.51.100.2', dev: 'a0', weight: 1 }),
      expect.objectContaining({ gateway: '198.51.100.3', dev: 'a0', weight: 3 }),
    ]);
    const ours = (await a.route.list()).find((r) => r.dst === '203.0.113.0/24')!;
    expect(ours.nexthops).toEqual([
      { via: '198.51.100.2', dev: 'a0', devIndex: ours.nexthops![0].devIndex, weight: 1, flags: [] },
      { via: '198.51.100.3', dev: 'a0', devIndex: ours.nexthops![1].devIndex, weight: 3, flags: [] },
    ]);
    expect(ours.via).toBeUndefined();

    await a.route.add({ dst: '2001:db8:2::/64', nexthops: [{ via: '2001:db8::2', dev: 'a0', weight: 2 }, { via: '2001:db8::3', dev: 'a0', weight: 5 }] });
    const [six] = await json(A, 'ip', '-j', '-6', 'route', 'show', '2001:db8:2::/64');
    expect(six.nexthops.map((n: any) => [n.gateway, n.dev, n.weight])).toEqual([['2001:db8::2', 'a0', 2], ['2001:db8::3', 'a0', 5]]);
    const ours6 = (await a.route.list({ family: 'inet6' })).find((r) => r.dst === '2001:db8:2::/64')!;
    expect(ours6.nexthops!.map((n) => [n.via, n.dev, n.weight])).toEqual([['2001:db8::2', 'a0', 2], ['2001:db8::3', 'a0', 5]]);

    await a.route.del({ dst: '203.0.113.0/24' });
    await a.route.del({ dst: '2001:db8:2::/64' });
    expect(await json(A, 'ip', '-j', 'route', 'show', '203.0.113.0/24')).toEqual([]);
    await b.addr.del('b0', '198.51.100.3/24');
  });

  it('a blackhole route stops pings that get through without it; unreachable and prohibit fail ip route get with their errors', async () => {
    expect((await nsRun(A, 'ping', ['-c', '1', '-W', '5', '198.51.100.2'])).code).toBe(0);
    await a.route.add({ dst: '198.51.100.2/32', type: 'blackhole' });
    expect((await json(A, 'ip', '-j', 'route', 'show', 'type', 'blackhole'))).toEqual([expect.objectContaining({ type: 'blackhole', dst: '198.51.100.2' })]);
    expect((await a.route.list()).find((r) => r.dst === '198.51.100.2/32')).toMatchObject({ type: 'blackhole', protocol: 'boot', scope: 'global' });
    const get = await nsRun(A, 'ip', ['route', 'get', '198.51.100.2']);
    expect(get.code).not.toBe(0);
    expect(get.stderr).toMatch(/Invalid argument/);
    const ping = await nsRun(A, 'ping', ['-c', '1', '-W', '2', '198.51.100.2']);
    expect(ping.code).not.toBe(0);
    await a.route.del({ dst: '198.51.100.2/32', type: 'blackhole' });
    expect((await nsRun(A, 'ping', ['-c', '1', '-W', '5', '198.51.100.2'])).code).toBe(0);

    await a.route.add({ dst: '203.0.113.0/25', type: 'unreachable' });
    await a.route.add({ dst: '203.0.113.128/25', type: 'prohibit', metric: 5 });
    expect((await nsRun(A, 'ip', ['route', 'get', '203.0.113.1'])).stderr).toMatch(/No route to host/);
    expect((await nsRun(A, 'ip', ['route', 'get', '203.0.113.129'])).stderr).toMatch(/Permission denied/);
    const seen = await json(A, 'ip', '-j', 'route', 'show');
    expect(seen).toEqual(expect.arrayContaining([
      expect.objectContaining({ type: 'unreachable', dst: '203.0.113.0/25' }),
      expect.objectContaining({ type: 'prohibit', dst: '203.0.113.128/25', metric: 5 }),
    ]));
    await a.route.del({ dst: '203.0.113.0/25', type: 'unreachable' });
    await a.route.del({ dst: '203.0.113.128/25', type: 'prohibit', metric: 5 });
  });

  it('local, onlink, src/scope/proto/table routes and IPv6 metrics read back as ip shows them', async () => {
    await a.route.add({ dst: '198.51.100.9', type: 'local', dev: 'a0' });
    expect((await json(A, 'ip', '-j', 'route', 'show', 'table', 'local', '198.51.100.9'))[0]).toMatchObject({ type: 'local', dev: 'a0', scope: 'host' });
    expect((await a.route.list({ table: 'local' })).find((r) => r.dst === '198.51.100.9/32')).toMatchObject({ type: 'local', table: 255, scope: 'host', dev: 'a0' });
    expect((await nsRun(A, 'ping', ['-c', '1', '-W', '5', '198.51.100.9'])).code).toBe(0);
    await a.route.del({ dst: '198.51.100.9', type: 'local' });

    // A gateway outside every prefix of the link: refused, unless onlink.
    const off = await a.route.add({ dst: '203.0.113.0/24', via: '192.0.2.1', dev: 'a0' }).catch((e) => e);
    expect(off).toBeInstanceOf(NetlinkError);
    await a.route.add({ dst: '203.0.113.0/24', via: '192.0.2.1', dev: 'a0', onlink: true });
    expect((await json(A, 'ip', '-j', 'route', 'show', '203.0.113.0/24'))[0]).toMatchObject({ gateway: '192.0.2.1', flags: ['onlink'] });
    expect((await a.route.list()).find((r) => r.dst === '203.0.113.0/24')).toMatchObject({ via: '192.0.2.1', flags: ['onlink'] });
    await a.route.del({ dst: '203.0.113.0/24' });

    await a.route.add({ dst: '203.0.113.0/24', dev: 'a0', src: '198.51.100.1', metric: 10, table: 100, protocol: 'static', scope: 'link' });
    // 77 has no name in iproute2's rt_protos (42 would print as babel).
    await a.route.add({ dst: '203.0.113.0/24', via: '198.51.100.2', table: 1000, protocol: 77 });
    expect((await json(A, 'ip', '-j', 'route', 'show', 'table', '100'))[0]).toMatchObject({ dst: '203.0.113.0/24', dev: 'a0', protocol: 'static', scope: 'link', prefsrc: '198.51.100.1', metric: 10 });
    expect((await json(A, 'ip', '-j', 'route', 'show', 'table', '1000'))[0]).toMatchObject({ dst: '203.0.113.0/24', gateway: '198.51.100.2', protocol: '77' });
    expect((await a.route.list({ table: 100 }))[0]).toMatchObject({ dst: '203.0.113.0/24', dev: 'a0', src: '198.51.100.1', metric: 10, table: 100, protocol: 'static', scope: 'link' });
    expect((await a.route.list({ table: 1000 }))[0]).toMatchObject({ via: '198.51.100.2', table: 1000, protocol: '77', scope: 'global' });
    await a.route.del({ dst: '203.0.113.0/24', table: 100 });
    await a.route.del({ dst: '203.0.113.0/24', table: 1000 });

    await a.route.add({ dst: '2001:db8:1::/64', via: '2001:db8::2', dev: 'a0', mtu: 1400, advmss: 1300, hoplimit: 10 });
    const [six] = await json(A, 'ip', '-j', '-6', 'route', 'show', '2001:db8:1::/64');
    expect(six).toMatchObject({ gateway: '2001:db8::2', dev: 'a0' });
    expect(six.metrics).toEqual([expect.objectContaining({ mtu: 1400, advmss: 1300, hoplimit: 10 })]);
    expect((await a.route.list({ family: 'inet6' })).find((r) => r.dst === '2001:db8:1::/64')).toMatchObject({ via: '2001:db8::2', mtu: 1400, advmss: 1300, hoplimit: 10 });
    await a.route.add({ dst: '203.0.113.0/24', via: '198.51.100.2', mtu: 1300 });
    expect((await json(A, 'ip', '-j', 'route', 'show', '203.0.113.0/24'))[0].metrics).toEqual([expect.objectContaining({ mtu: 1300 })]);
    await a.route.del({ dst: '203.0.113.0/24' });
    await a.route.del({ dst: '2001:db8:1::/64' });
  });

  it('gives addresses lifetimes that ip -j addr shows, and replaces them with forever', async () => {
    await a.addr.add('a0', '198.51.100.5/24', { validLft: 300, preferredLft: 100 });
    await a.addr.add('a0', '2001:db8::5/64', { nodad: true, validLft: 600, preferredLft: 0 });
    const [seen] = await json(A, 'ip', '-j', 'addr', 'show', 'dev', 'a0');
    const v4 = seen.addr_info.find((x: any) => x.local === '198.51.100.5');
    const v6 = seen.addr_info.find((x: any) => x.local === '2001:db8::5');
    // Lifetimes count down: wide bounds for a loaded machine.
    expect(v4.valid_life_time).toBeGreaterThan(200);
    expect(v4.valid_life_time).toBeLessThanOrEqual(300);
    expect(v4.preferred_life_time).toBeLessThanOrEqual(100);
    expect(v4.preferred_life_time).toBeGreaterThan(0);
    expect(v6).toMatchObject({ preferred_life_time: 0, deprecated: true });
    const ours = await a.addr.list('a0');
    const o4 = ours.find((x) => x.address === '198.51.100.5')!;
    expect(o4.validLft).toBeGreaterThan(200);
    expect(o4.validLft).toBeLessThanOrEqual(300);
    expect(o4.preferredLft).toBeLessThanOrEqual(100);
    expect(ours.find((x) => x.address === '2001:db8::5')).toMatchObject({ preferredLft: 0, flags: expect.arrayContaining(['deprecated']) });
    expect(ours.find((x) => x.address === '198.51.100.1')).toMatchObject({ validLft: 'forever', preferredLft: 'forever' });

    await a.addr.add('a0', '198.51.100.5/24', { replace: true, validLft: 'forever', preferredLft: 'forever' });
    const [again] = await json(A, 'ip', '-j', 'addr', 'show', 'dev', 'a0');
    expect(again.addr_info.find((x: any) => x.local === '198.51.100.5')).toMatchObject({ valid_life_time: 4294967295, preferred_life_time: 4294967295 });
    expect((await a.addr.list('a0')).find((x) => x.address === '198.51.100.5')).toMatchObject({ validLft: 'forever', preferredLft: 'forever' });
    await a.addr.del('a0', '198.51.100.5/24');
    await a.addr.del('a0', '2001:db8::5/64');
  });

  it('refuses bad routes and lifetimes naming the field, before anything is sent', async () => {
    // Every route but the IPv6 link-local and multicast ones, which the kernel adds by itself
    // whenever a0's link-local address finishes its DAD (on a loaded machine, during this test).
    const routes = async () => (JSON.parse(await nsExec(A, 'ip', ['-j', 'route', 'show', 'table', 'all'])) as { dst: string }[])
      .filter((r) => !/^(fe80|ff00)::/.test(r.dst));
    const before = await routes();
    expect(before.map((r) => r.dst)).toEqual(expect.arrayContaining(['198.51.100.0/24', '2001:db8::/64']));
    const bad: [() => Promise<unknown>, RegExp][] = [
      [() => a.route.add({ dst: '203.0.113.0/24', nexthops: [] }), /route.add: nexthops/],
      [() => a.route.add({ dst: '203.0.113.0/24', via: '198.51.100.2', nexthops: [{ via: '198.51.100.3' }] }), /nexthops: goes instead of via/],
      [() => a.route.add({ dst: '203.0.113.0/24', nexthops: [{ via: '198.51.100.2', weight: 0 }] }), /nexthops\[0\]\.weight/],
      [() => a.route.add({ dst: '203.0.113.0/24', nexthops: [{ via: '198.51.100.2' }, { via: '2001:db8::2' }] }), /nexthops\[1\]\.via: is inet6/],
      [() => a.route.add({ dst: '203.0.113.0/24', nexthops: [{ weight: 2 }] }), /nexthops\[0\]\.via: a path needs/],
      [() => a.route.add({ dst: '203.0.113.0/24', type: 'blackhole', via: '198.51.100.2' }), /via: a blackhole route has no gateway/],
      [() => a.route.add({ dst: '203.0.113.0/24', type: 'anycast' as any, dev: 'a0' }), /route.add: type/],
      [() => a.route.add({ dst: '203.0.113.0/24', dev: 'a0', scope: 'galaxy' as any }), /route.add: scope/],
      [() => a.route.add({ dst: '203.0.113.0/24', dev: 'a0', protocol: 256 }), /route.add: protocol/],
      [() => a.route.add({ dst: '203.0.113.0/24', dev: 'a0', protocol: 'bgp' as any }), /route.add: protocol/],
      [() => a.route.add({ dst: '203.0.113.0/24', dev: 'a0', hoplimit: 256 }), /route.add: hoplimit/],
      [() => a.route.add({ dst: '203.0.113.0/24', dev: 'a0', table: 'mainn' as any }), /route.add: table/],
      [() => a.route.add({ dst: '203.0.113.0/24', dev: 'a0', src: '2001:db8::1' }), /route.add: src: is inet6/],
      [() => a.route.add({ dst: '203.0.113.0/24' }), /route.add: via: a route needs/],
      [() => a.addr.add('a0', '198.51.100.6/24', { validLft: 0 }), /addr.add: validLft/],
      [() => a.addr.add('a0', '198.51.100.6/24', { validLft: 10, preferredLft: 20 }), /addr.add: preferredLft: must not exceed/],
      [() => a.addr.add('a0', '198.51.100.6/24', { validLft: 'never' as any }), /addr.add: validLft/],
      [() => a.addr.add('a0', '198.51.100.6/24', { preferredLft: -1 }), /addr.add: preferredLft/],
    ];
    for (const [call, msg] of bad) {
      const e = await call().then(() => undefined, (x) => x);
      expect(e, String(msg)).toBeInstanceOf(Error);
      expect(e).not.toBeInstanceOf(NetlinkError);
      expect(e.message).toMatch(msg);
    }
    expect(await routes()).toEqual(before);
    expect((await a.addr.list('a0')).map((x) => x.address)).not.toContain('198.51.100.6');
  });
});
