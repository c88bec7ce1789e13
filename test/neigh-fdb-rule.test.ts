// Neighbours, the forwarding database and policy rules: the bytes iproute2 sends, what
// `ip -j neigh`, `bridge -j fdb` and `ip -j rule` show after our calls, and an overlay across
// three hosts built from nothing but links, FDB and neighbour entries (flannel's vxlan recipe).
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkError, open, type Handle, type Netns } from '../lib/index.js';
import { Namespaces, hasTool, nsExec, nsRun, privilegedSkipReason, waitFor } from './helpers.js';
import { neighGoldenCases } from './neigh-rule-golden-cases.js';

const skip = privilegedSkipReason();
const golden = JSON.parse(fs.readFileSync(new URL('./fixtures/neigh-golden.json', import.meta.url), 'utf8')) as { tool: string; requests: Record<string, string> };
const json = async (ns: Netns, cmd: string, ...args: string[]) => JSON.parse((await nsExec(ns, cmd, args)) || '[]');

describe.skipIf(skip)('neigh, fdb and rule', () => {
  const nss = new Namespaces();
  let A: Netns;
  let a: Handle;

  beforeAll(async () => {
    hasTool('bridge');
    A = await nss.create('nfr');
    a = await open({ netns: A });
    // The layout the golden bytes were captured in: ifb0 = 2, br0 = 3, vx0 = 4, vp0 = 6.
    await a.link.add({ kind: 'ifb', name: 'ifb0' });
    await a.link.add({ kind: 'bridge', name: 'br0', up: true });
    await a.link.add({ kind: 'vxlan', name: 'vx0', vni: 42, learning: false });
    // The kernel registers a veth's peer first: vp1 is 5, vp0 6, as in the capture.
    await a.link.add({ kind: 'veth', name: 'vp0', peer: { name: 'vp1' }, master: 'br0' });
    expect((await a.link.get('vp0')).index).toBe(6);
    // br0 came up with carrier; enslaving the down vp0 takes it away, and the kernel's link
    // watcher reports that later (NETDEV_CHANGE), flushing br0's non-permanent neighbours (the
    // NOARP one below) whenever it runs. Wait until it has, so it cannot run mid-test.
    await waitFor(async () => {
      const [l] = await json(A, 'ip', '-j', 'link', 'show', 'br0');
      return l.operstate === 'DOWN' && l.flags.includes('NO-CARRIER') ? l : undefined;
    }, 'br0 without carrier', 30_000);
  });
  afterAll(async () => {
    await a?.close();
    await nss.cleanup();
  });

  it(`encodes neighbour, FDB and rule requests exactly as ${golden.tool} does`, async () => {
    const labels = Object.keys(golden.requests);
    expect(labels.length).toBe(17);
    for (const label of labels) {
      const c = neighGoldenCases[label];
      expect(c, label).toBeDefined();
      const b = await (a[c.ops] as any).encode(c.cmd, c.spec);
      b.fill(0, 8, 16);
      expect(b.toString('hex'), label).toBe(golden.requests[label]);
    }
    expect(Object.keys(neighGoldenCases).sort()).toEqual(labels.sort());
  });

  it('adds, replaces, lists and deletes neighbours as ip -j neigh shows them, proxies included', async () => {
    await a.neigh.add({ dev: 'br0', dst: '192.0.2.7', lladdr: '52:54:00:00:00:07' });
    await a.neigh.add({ dev: 'br0', dst: '2001:db8::9', lladdr: '52:54:00:00:00:09', state: 'noarp' });
    await a.neigh.add({ dev: 'br0', dst: '192.0.2.10', proxy: true });
    // `nud all`: ip hides NOARP entries by default (the kernel's own multicast ones included).
    const seen = await json(A, 'ip', '-j', 'neigh', 'show', 'nud', 'all', 'dev', 'br0');
    expect(seen).toEqual(expect.arrayContaining([
      expect.objectContaining({ dst: '192.0.2.7', lladdr: '52:54:00:00:00:07', state: ['PERMANENT'] }),
      expect.objectContaining({ dst: '2001:db8::9', lladdr: '52:54:00:00:00:09', state: ['NOARP'] }),
    ]));
    // The kernel adds its own multicast entries (ff02::1:ff..., 33:33:...) on br0 whenever MLD
    // gets to it, so one may appear between the two listings: compare the unicast ones.
    const unicast = (dst: string) => !/^(ff[0-9a-f]{2}:|22[4-9]\.|23\d\.)/i.test(dst);
    const ours = (await a.neigh.list({ dev: 'br0' })).filter((n) => unicast(n.dst));
    expect(ours.map((n) => [n.dst, n.lladdr, n.state]).sort()).toEqual(seen.filter((n: any) => unicast(n.dst)).map((n: any) => [n.dst, n.lladdr, n.state]).sort());
    const six = await a.neigh.list({ dev: 'br0', family: 'inet6' });
    expect(six.every((n) => n.family === 'inet6')).toBe(true);
    expect(six.map((n) => n.dst)).toContain('2001:db8::9');
    expect(await json(A, 'ip', '-j', 'neigh', 'show', 'proxy')).toEqual([expect.objectContaining({ dst: '192.0.2.10', dev: 'br0' })]);
    expect(await a.neigh.list({ proxy: true })).toEqual([expect.objectContaining({ dst: '192.0.2.10', dev: 'br0', proxy: true })]);

    const dup = await a.neigh.add({ dev: 'br0', dst: '192.0.2.7', lladdr: '52:54:00:00:00:77' }).catch((e) => e);
    expect(dup).toBeInstanceOf(NetlinkError);
    expect(dup.code).toBe('EEXIST');
    await a.neigh.replace({ dev: 'br0', dst: '192.0.2.7', lladdr: '52:54:00:00:00:77' });
    expect((await json(A, 'ip', '-j', 'neigh', 'show', '192.0.2.7', 'dev', 'br0'))[0]).toMatchObject({ lladdr: '52:54:00:00:00:77' });

    await a.neigh.del({ dev: 'br0', dst: '192.0.2.7' });
    await a.neigh.del({ dev: 'br0', dst: '192.0.2.10', proxy: true });
    await a.neigh.del({ dev: 'br0', dst: '2001:db8::9' });
    const mine = ['192.0.2.7', '192.0.2.10', '2001:db8::9'];
    expect((await json(A, 'ip', '-j', 'neigh', 'show', 'nud', 'all', 'dev', 'br0')).filter((n: any) => mine.includes(n.dst))).toEqual([]);
    expect(await json(A, 'ip', '-j', 'neigh', 'show', 'proxy')).toEqual([]);
  });

  it('keeps VXLAN head-end replication lists and static entries in the FDB, as bridge -j fdb shows them', async () => {
    await a.fdb.append({ dev: 'vx0', mac: '00:00:00:00:00:00', dst: '198.51.100.2' });
    await a.fdb.append({ dev: 'vx0', mac: '00:00:00:00:00:00', dst: '198.51.100.3' });
    await a.fdb.add({ dev: 'vx0', mac: '52:54:00:00:00:08', dst: '198.51.100.3', vni: 42, port: 4789 });
    await a.fdb.add({ dev: 'vp0', mac: '52:54:00:aa:bb:cc', master: true, state: 'static' });
    const seen = await json(A, 'bridge', '-j', 'fdb', 'show', 'dev', 'vx0');
    const zero = seen.filter((e: any) => e.mac === '00:00:00:00:00:00').map((e: any) => e.dst).sort();
    expect(zero).toEqual(['198.51.100.2', '198.51.100.3']);
    expect(seen.find((e: any) => e.mac === '52:54:00:00:00:08')).toMatchObject({ dst: '198.51.100.3', flags: ['self'], state: 'permanent' });

    const ours = await a.fdb.list({ dev: 'vx0' });
    expect(ours.filter((e) => e.mac === '00:00:00:00:00:00').map((e) => e.dst).sort()).toEqual(zero);
    expect(ours.find((e) => e.mac === '52:54:00:00:00:08')).toMatchObject({ family: 'bridge', dev: 'vx0', dst: '198.51.100.3', flags: ['self'], state: 'permanent' });
    const port = (await a.fdb.list({ master: 'br0' })).find((e) => e.mac === '52:54:00:aa:bb:cc');
    expect(port).toMatchObject({ dev: 'vp0', master: 'br0', flags: [], state: 'static' });
    expect((await a.fdb.list({ master: 'br0' })).every((e) => e.master === 'br0' || e.dev === 'br0')).toBe(true);
    expect((await json(A, 'bridge', '-j', 'fdb', 'show', 'br', 'br0')).some((e: any) => e.mac === '52:54:00:aa:bb:cc' && e.ifname === 'vp0' && e.state === 'static')).toBe(true);

    await a.fdb.del({ dev: 'vx0', mac: '00:00:00:00:00:00', dst: '198.51.100.2' });
    expect((await json(A, 'bridge', '-j', 'fdb', 'show', 'dev', 'vx0')).filter((e: any) => e.mac === '00:00:00:00:00:00').map((e: any) => e.dst)).toEqual(['198.51.100.3']);
  });

  it('adds policy rules that ip -j rule shows, lists and deletes them', async () => {
    await a.rule.add({ priority: 100, from: '198.51.100.0/24', table: 100 });
    await a.rule.add({ priority: 200, to: '203.0.113.0/24', iif: 'br0', fwmark: 0x10, fwmask: 0xff, table: 200 });
    await a.rule.add({ priority: 300, from: '2001:db8::/32', table: 'main', suppressPrefixlen: 0 });
    await a.rule.add({ priority: 400, not: true, from: '203.0.113.0/24', action: 'blackhole' });
    await a.rule.add({ priority: 500, from: '198.51.100.7', table: 1000 });
    const seen4 = await json(A, 'ip', '-j', 'rule', 'show');
    expect(seen4.find((r: any) => r.priority === 100)).toMatchObject({ src: '198.51.100.0', srclen: 24, table: '100' });
    expect(seen4.find((r: any) => r.priority === 200)).toMatchObject({ dst: '203.0.113.0', dstlen: 24, iif: 'br0', fwmark: '0x10', fwmask: '0xff', table: '200' });
    expect(seen4.find((r: any) => r.priority === 400)).toMatchObject({ not: null, src: '203.0.113.0', action: 'blackhole' });
    expect(seen4.find((r: any) => r.priority === 500)).toMatchObject({ src: '198.51.100.7', table: '1000' });
    const seen6 = await json(A, 'ip', '-j', '-6', 'rule', 'show');
    expect(seen6.find((r: any) => r.priority === 300)).toMatchObject({ src: '2001:db8::', srclen: 32, table: 'main', suppress_prefixlen: 0 });

    const ours = await a.rule.list();
    expect(ours.find((r) => r.priority === 200)).toEqual({ family: 'inet', priority: 200, from: 'all', to: '203.0.113.0/24', iif: 'br0', fwmark: 16, fwmask: 255, table: 200, action: 'table' });
    expect(ours.find((r) => r.priority === 400)).toMatchObject({ not: true, from: '203.0.113.0/24', action: 'blackhole' });
    expect(ours.find((r) => r.priority === 500)).toMatchObject({ from: '198.51.100.7/32', table: 1000 });
    expect((await a.rule.list({ family: 'inet6' })).find((r) => r.priority === 300)).toMatchObject({ family: 'inet6', from: '2001:db8::/32', table: 254, suppressPrefixlen: 0 });
    // The kernel's own rules are listed too, as ip shows them.
    expect(ours.map((r) => r.priority)).toEqual(expect.arrayContaining([0, 32766, 32767]));

    for (const priority of [100, 200, 400, 500]) await a.rule.del({ priority });
    await a.rule.del({ priority: 300, family: 'inet6' });
    expect((await json(A, 'ip', '-j', 'rule', 'show')).map((r: any) => r.priority)).toEqual([0, 32766, 32767]);
    const gone = await a.rule.del({ priority: 100 }).catch((e) => e);
    expect(gone).toBeInstanceOf(NetlinkError);
    expect(gone.code).toBe('ENOENT');
  });

  it('refuses bad input naming the field, before anything is sent', async () => {
    const bad: [() => Promise<unknown>, RegExp][] = [
      [() => a.neigh.add({ dev: 'br0', dst: '192.0.2.300', lladdr: '52:54:00:00:00:01' }), /neigh.add: dst/],
      [() => a.neigh.add({ dev: 'br0', dst: '192.0.2.1', lladdr: '52:54:00:00:00' }), /neigh.add: lladdr/],
      [() => a.neigh.add({ dev: 'br0', dst: '192.0.2.1', state: 'sleepy' as any }), /neigh.add: state/],
      [() => a.neigh.add({ dev: 'br0', dst: '192.0.2.1', proxy: true, lladdr: '52:54:00:00:00:01' }), /lladdr: a proxy entry has no lladdr/],
      [() => a.neigh.add({ dev: 'br 0', dst: '192.0.2.1' }), /neigh.add: dev/],
      [() => a.neigh.add({ dev: 'br0', dst: '192.0.2.1', colour: 'red' } as any), /colour: unknown option/],
      [() => a.fdb.add({ dev: 'vx0', mac: 'zz:54:00:00:00:01' }), /fdb.add: mac/],
      [() => a.fdb.add({ dev: 'vx0', mac: '52:54:00:00:00:01', vlan: 4095 }), /fdb.add: vlan/],
      [() => a.fdb.add({ dev: 'vx0', mac: '52:54:00:00:00:01', vni: 1 << 24 }), /fdb.add: vni/],
      [() => a.fdb.add({ dev: 'vx0', mac: '52:54:00:00:00:01', port: 0 }), /fdb.add: port/],
      [() => a.fdb.add({ dev: 'vx0', mac: '52:54:00:00:00:01', state: 'sticky' as any }), /fdb.add: state/],
      [() => a.rule.add({ priority: 1, from: '198.51.100.0/24' }), /rule.add: table: a rule needs a table/],
      [() => a.rule.add({ priority: 1, from: '198.51.100.0/24', to: '2001:db8::/32', table: 5 }), /rule.add: to: .* is not inet/],
      [() => a.rule.add({ priority: 1, table: 'mainn' as any }), /rule.add: table/],
      [() => a.rule.add({ priority: 1, action: 'blackhole', table: 5 }), /table: does not go with action 'blackhole'/],
      [() => a.rule.add({ priority: 1, action: 'goto' }), /goto: is required/],
      [() => a.rule.add({ priority: -1, table: 5 }), /rule.add: priority/],
      [() => a.rule.add({ priority: 1, table: 5, fwmask: 3 }), /fwmask: needs fwmark/],
      [() => a.rule.add({ priority: 1, table: 5, iif: 'x'.repeat(16) }), /rule.add: iif/],
    ];
    for (const [call, msg] of bad) {
      const e = await call().then(() => undefined, (x) => x);
      expect(e, String(msg)).toBeInstanceOf(Error);
      expect(e).not.toBeInstanceOf(NetlinkError);
      expect(e.message).toMatch(msg);
    }
    expect((await json(A, 'ip', '-j', 'neigh', 'show', 'nud', 'all', 'dev', 'br0')).filter((n: any) => /^192\.0\.2\./.test(n.dst))).toEqual([]);
    expect((await json(A, 'ip', '-j', 'rule', 'show')).map((r: any) => r.priority)).toEqual([0, 32766, 32767]);
    const noDev = await a.neigh.add({ dev: 'nosuch0', dst: '192.0.2.1', lladdr: '52:54:00:00:00:01' }).catch((e) => e);
    expect(noDev).toBeInstanceOf(NetlinkError);
    expect(noDev.code).toBe('ENODEV');
  });
});

// Three (then four) "machines", each a namespace with an uplink on a shared underlay bridge,
// a Linux bridge with a VXLAN port (learning off), and a guest namespace on that bridge. The
// L2 segment is made only of FDB entries: head-end replication (all-zero MAC -> every other
// host) for broadcast and unknown unicast, plus an entry per known guest MAC, and permanent
// neighbour entries in the guests so known peers need no ARP at all.
describe.skipIf(skip)('an overlay across many hosts from FDB and neighbour entries', () => {
  const nss = new Namespaces();
  const handles: Handle[] = [];
  let U: Netns;
  let u: Handle;
  interface Host { H: Netns; h: Handle; G: Netns; g: Handle; ip: string; guestIp: string; guestMac: string }
  const hosts: Host[] = [];

  async function addHost(i: number): Promise<Host> {
    const [H, G] = await Promise.all([nss.create(`ovh${i}`), nss.create(`ovg${i}`)]);
    const [h, g] = await Promise.all([open({ netns: H }), open({ netns: G })]);
    handles.push(h, g);
    const ip = `198.51.100.${i}`, guestIp = `192.168.122.${10 + i}`, guestMac = `52:54:00:00:01:0${i}`;
    await u.link.add({ kind: 'veth', name: `up${i}`, peer: { name: 'eth0', netns: H }, master: 'ul', up: true });
    await h.link.set('eth0', { up: true });
    await h.addr.add('eth0', `${ip}/24`);
    await h.link.add({ kind: 'bridge', name: 'br0', up: true });
    await h.link.add({ kind: 'vxlan', name: 'vx0', vni: 42, local: ip, link: 'eth0', dstPort: 4789, learning: false, master: 'br0', up: true });
    await h.link.add({ kind: 'veth', name: 'gp0', peer: { name: 'eth0', netns: G, mac: guestMac }, master: 'br0', up: true });
    await g.link.set('eth0', { up: true });
    await g.addr.add('eth0', `${guestIp}/24`);
    return { H, h, G, g, ip, guestIp, guestMac };
  }

  beforeAll(async () => {
    hasTool('ping');
    U = await nss.create('ovu');
    u = await open({ netns: U });
    handles.push(u);
    await u.link.add({ kind: 'bridge', name: 'ul', up: true });
    for (const i of [1, 2, 3]) hosts.push(await addHost(i));
  });
  afterAll(async () => {
    for (const h of handles) await h.close();
    await nss.cleanup();
  });

  const ping = (from: Host, to: Host) => nsRun(from.G, 'ping', ['-c', '1', '-W', '2', to.guestIp]);

  it('every guest pings every other across three hosts, and a fourth host joins with one call per existing host', async () => {
    for (const x of hosts) {
      for (const y of hosts) {
        if (x === y) continue;
        await x.h.fdb.append({ dev: 'vx0', mac: '00:00:00:00:00:00', dst: y.ip });
        await x.h.fdb.append({ dev: 'vx0', mac: y.guestMac, dst: y.ip });
        await x.g.neigh.add({ dev: 'eth0', dst: y.guestIp, lladdr: y.guestMac });
      }
    }
    for (const x of hosts) for (const y of hosts) if (x !== y) expect((await ping(x, y)).code, `${x.guestIp} -> ${y.guestIp}`).toBe(0);
    // The traffic went where the FDB sent it: host 1's entry for guest 2 points at host 2.
    const own = (await hosts[0].h.fdb.list({ dev: 'vx0' })).filter((e) => e.mac === hosts[1].guestMac && e.flags.includes('self'));
    expect(own).toEqual([expect.objectContaining({ dst: hosts[1].ip })]);

    const h4 = await addHost(4);
    for (const x of hosts) await x.h.fdb.append({ dev: 'vx0', mac: '00:00:00:00:00:00', dst: h4.ip });
    for (const y of hosts) await h4.h.fdb.append({ dev: 'vx0', mac: '00:00:00:00:00:00', dst: y.ip });
    hosts.push(h4);
    // Without per-guest entries, ARP and unknown unicast reach the new guest by replication.
    for (const x of hosts.slice(0, 3)) {
      expect((await ping(x, h4)).code, `${x.guestIp} -> ${h4.guestIp}`).toBe(0);
      expect((await ping(h4, x)).code, `${h4.guestIp} -> ${x.guestIp}`).toBe(0);
    }
  }, 60_000);
});
