// Traffic control: what vnetlink sends is byte for byte what iproute2's tc sends (for every
// kind, including those this kernel lacks), `tc -j ... show` sees what we created, our
// listings decode what the kernel holds, and shaping holds real traffic to its rate.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkError, open, type Handle, type Netns } from '../lib/index.js';
import { Namespaces, hasTool, ipLinks, nsExec, privilegedSkipReason } from './helpers.js';
import { goldenCases } from './tc-golden-cases.js';
import { iperfMbps } from './iperf.js';

const skip = privilegedSkipReason();
const golden = JSON.parse(fs.readFileSync(new URL('./fixtures/tc-golden.json', import.meta.url), 'utf8')) as { tool: string; requests: Record<string, string> };

const tcJson = async (ns: Netns, ...args: string[]) => JSON.parse((await nsExec(ns, 'tc', ['-j', ...args])) || '[]');

describe.skipIf(skip)('tc', () => {
  const nss = new Namespaces();
  let A: Netns;
  let a: Handle;

  beforeAll(async () => {
    hasTool('tc');
    A = await nss.create('tc');
    a = await open({ netns: A });
  });
  afterAll(async () => {
    await a?.close();
    await nss.cleanup();
  });

  it(`encodes every request exactly as ${golden.tool} does, including kinds this kernel lacks`, async () => {
    // The namespace the bytes were captured in: lo is ifindex 1, ifb0 ifindex 2.
    const ns = await nss.create('tcgold');
    await using g = await open({ netns: ns });
    const ifb = await g.link.add({ kind: 'ifb', name: 'ifb0' });
    expect(ifb.index).toBe(2);
    const labels = Object.keys(golden.requests);
    expect(labels.length).toBeGreaterThanOrEqual(30);
    for (const label of labels) {
      const c = goldenCases[label];
      expect(c, `a vnetlink call for "${label}"`).toBeDefined();
      const bytes = await g.tc[c.object].encode(c.cmd as any, 'lo', c.spec as any);
      bytes.fill(0, 8, 16); // seq and port id, as in the capture
      expect(bytes.toString('hex'), label).toBe(golden.requests[label]);
    }
    // Every case has a captured counterpart (no case is checked against nothing).
    expect(Object.keys(goldenCases).sort()).toEqual(labels.sort());
  });

  it('builds htb with classes, tbf, ingress and clsact that tc -j shows as created, and lists them the same way', async () => {
    await a.link.add({ kind: 'veth', name: 'tv0', peer: { name: 'tv1' }, up: true });
    await a.link.set('tv1', { up: true });
    await a.tc.qdisc.add('tv0', { kind: 'htb', parent: 'root', handle: '1:', defaultClass: '1:10' });
    await a.tc.class.add('tv0', { kind: 'htb', parent: '1:', classid: '1:1', rate: '200mbit' });
    await a.tc.class.add('tv0', { kind: 'htb', parent: '1:1', classid: '1:10', rate: '100mbit', ceil: '200mbit', burst: '15k', prio: 1 });
    await a.tc.qdisc.add('tv0', { kind: 'tbf', parent: '1:10', handle: '10:', rate: '5mbit', burst: '10k', latency: '20ms' });
    await a.tc.qdisc.add('tv0', { kind: 'ingress' });
    await a.tc.qdisc.add('tv1', { kind: 'clsact' });

    const seen = await tcJson(A, 'qdisc', 'show');
    const byHandle = (dev: string, h: string) => seen.find((q: any) => q.dev === dev && q.handle === h);
    expect(byHandle('tv0', '1:')).toMatchObject({ kind: 'htb', root: true, options: { r2q: 10, default: '0x10' } });
    expect(byHandle('tv0', '10:')).toMatchObject({ kind: 'tbf', parent: '1:10', options: { rate: 625000, burst: 10240 } });
    expect(byHandle('tv0', 'ffff:')).toMatchObject({ kind: 'ingress', parent: 'ffff:fff1' });
    expect(byHandle('tv1', 'ffff:')).toMatchObject({ kind: 'clsact', parent: 'ffff:fff1' });

    const ours = await a.tc.qdisc.list('tv0');
    expect(ours.map((q) => [q.kind, q.handle, q.parent]).sort()).toEqual([['htb', '1:', 'root'], ['ingress', 'ffff:', 'ffff:fff1'], ['tbf', '10:', '1:10']]);
    expect(ours.find((q) => q.kind === 'htb')).toMatchObject({ r2q: 10, default: '0x10', dev: 'tv0' });
    // tc prints tbf's burst from the same ticks: 10k becomes 10240 bytes again.
    expect(ours.find((q) => q.kind === 'tbf')).toMatchObject({ rate: 625000, burst: byHandle('tv0', '10:').options.burst });
    const all = await a.tc.qdisc.list();
    expect(all.some((q) => q.dev === 'tv1' && q.kind === 'clsact')).toBe(true);

    // tc 6.1 has no JSON for htb classes: compare with its text, which names rate, ceil and burst.
    const text = await nsExec(A, 'tc', ['class', 'show', 'dev', 'tv0']);
    expect(text).toMatch(/class htb 1:10 parent 1:1 leaf 10: prio 1 rate 100Mbit ceil 200Mbit burst (\d+)b/);
    const tcBurst = Number(/class htb 1:10 .* burst (\d+)b/.exec(text)![1]);
    const classes = await a.tc.class.list('tv0');
    const c10 = classes.find((c) => c.handle === '1:10')!;
    expect(c10).toMatchObject({ kind: 'htb', parent: '1:1', rate: 12_500_000, ceil: 25_000_000, prio: 1, burst: tcBurst });
    expect(classes.find((c) => c.handle === '1:1')).toMatchObject({ parent: 'root', rate: 25_000_000 });

    await a.tc.class.change('tv0', { kind: 'htb', parent: '1:1', classid: '1:10', rate: '50mbit' });
    expect((await a.tc.class.list('tv0')).find((c) => c.handle === '1:10')).toMatchObject({ rate: 6_250_000, ceil: 6_250_000 });
  });

  it('adds u32 filters with flowid and a mirred redirect to an ifb, as tc -j filter show prints them', async () => {
    await a.link.add({ kind: 'ifb', name: 'ifb7', up: true });
    await a.tc.filter.add('tv0', { kind: 'u32', parent: '1:', protocol: 'ip', prio: 1, match: [{ ip: { dst: '192.168.122.0/24' } }, { ip: { protocol: 'tcp', dport: 22 } }], flowid: '1:10' });
    await a.tc.filter.add('tv0', { kind: 'u32', parent: 'ffff:', protocol: 'all', prio: 1, actions: [{ kind: 'mirred', egress: true, redirect: true, dev: 'ifb7' }] });
    await a.tc.filter.add('tv1', { kind: 'u32', parent: 'ingress', protocol: 'ipv6', prio: 3, actions: [{ kind: 'mirred', egress: true, mirror: true, dev: 'ifb7' }] });

    const seen = await tcJson(A, 'filter', 'show', 'dev', 'tv0', 'parent', 'ffff:');
    const rule = seen.find((f: any) => f.options?.actions);
    expect(rule).toMatchObject({ protocol: 'all', pref: 1, kind: 'u32', options: { match: { value: '0', mask: '0' }, actions: [{ kind: 'mirred', mirred_action: 'redirect', direction: 'egress', to_dev: 'ifb7' }] } });
    const cls = (await tcJson(A, 'filter', 'show', 'dev', 'tv0', 'parent', '1:')).find((f: any) => f.options?.flowid);
    expect(cls).toMatchObject({ protocol: 'ip', pref: 1, kind: 'u32', options: { flowid: '1:10' } });

    const ours = await a.tc.filter.list('tv0');
    const redirect = ours.find((f) => f.actions?.length);
    expect(redirect).toMatchObject({ kind: 'u32', parent: 'ffff:', protocol: 'all', prio: 1, match: [{ val: 0, mask: 0, off: 0 }], actions: [{ kind: 'mirred', direction: 'egress', op: 'redirect', dev: 'ifb7', control: 'stolen' }] });
    const byDst = ours.find((f) => f.flowid === '1:10')!;
    expect(byDst).toMatchObject({ protocol: 'ip', prio: 1 });
    // 192.168.122.0/24 at offset 16; protocol 6 at byte 9; port 22 at bytes 22-23.
    expect(byDst.match).toEqual(expect.arrayContaining([
      { val: 0xc0a87a00, mask: 0xffffff00, off: 16, offmask: 0 },
      { val: 0x00060000, mask: 0x00ff0000, off: 8, offmask: 0 },
      { val: 0x00000016, mask: 0x0000ffff, off: 20, offmask: 0 },
    ]));
    const ingress6 = await a.tc.filter.list('tv1');
    expect(ingress6.find((f) => f.actions?.length)).toMatchObject({ parent: 'ffff:fff2', protocol: 'ipv6', prio: 3, actions: [{ op: 'mirror', dev: 'ifb7' }] });

    await a.tc.filter.del('tv0', { parent: 'ffff:', protocol: 'all', prio: 1 });
    expect((await tcJson(A, 'filter', 'show', 'dev', 'tv0', 'parent', 'ffff:')).length).toBe(0);
    await a.tc.qdisc.del('tv0', { parent: 'root' });
    await a.tc.qdisc.del('tv0', { kind: 'ingress' });
    expect((await tcJson(A, 'qdisc', 'show', 'dev', 'tv0')).filter((q: any) => q.kind !== 'noqueue')).toEqual([]);
  });

  it('says plainly which kind this kernel lacks, as a NetlinkError with the kernel\'s own words', async () => {
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => a.tc.qdisc.add('tv1', { kind: 'netem', delay: '10ms' }), /qdisc kind netem is not available in this kernel/],
      [() => a.tc.qdisc.add('tv1', { kind: 'fq_codel' }), /qdisc kind fq_codel is not available in this kernel/],
      [() => a.tc.filter.add('tv1', { kind: 'matchall', parent: 'ingress', actions: [{ kind: 'gact', action: 'drop' }] }), /filter kind matchall is not available in this kernel/],
      [() => a.tc.filter.add('tv1', { kind: 'u32', parent: 'ingress', actions: [{ kind: 'police', rate: '1mbit', burst: '10k', exceed: 'drop' }] }), /action kind police is not available in this kernel/],
    ];
    for (const [call, msg] of cases) {
      const e = await call().then(() => undefined, (x) => x);
      expect(e).toBeInstanceOf(NetlinkError);
      expect(['ENOENT', 'EOPNOTSUPP']).toContain(e.code);
      expect(e.message).toMatch(msg);
      expect(e.extack).toBeTruthy();
      expect(e.op).toMatch(/^tc\./);
    }
    // Nothing was left behind by the refusals.
    expect((await tcJson(A, 'qdisc', 'show', 'dev', 'tv1')).map((q: any) => q.kind)).toEqual(['noqueue', 'clsact']);
  });

  it('refuses bad input with an error naming the field, before anything is sent', async () => {
    const before = JSON.stringify(await tcJson(A, 'qdisc', 'show'));
    const bad: [() => Promise<unknown>, RegExp][] = [
      [() => a.tc.qdisc.add('tv1', { kind: 'sfqq' } as any), /kind: .*unknown|kind: must be one of/],
      [() => a.tc.qdisc.add('tv1', { kind: 'tbf', rate: '10mbps', burst: '10k', latency: '1ms' }), /rate: "10mbps" is ambiguous/],
      [() => a.tc.qdisc.add('tv1', { kind: 'tbf', rate: -1, burst: '10k', latency: '1ms' }), /rate: must be at least 1/],
      [() => a.tc.qdisc.add('tv1', { kind: 'tbf', rate: '1mbit', burst: '10k' }), /latency: give latency or limit/],
      [() => a.tc.qdisc.add('tv1', { kind: 'tbf', rate: '1mbit', burst: 'lots', latency: '1ms' }), /burst: "lots" is not a number/],
      [() => a.tc.qdisc.add('tv1', { kind: 'tbf', rate: '1mbit', burst: '10k', latency: '5' }), /latency: "5" needs a unit/],
      [() => a.tc.qdisc.add('tv1', { kind: 'htb', handle: '1:10' }), /handle: a qdisc handle has no minor/],
      [() => a.tc.qdisc.add('tv1', { kind: 'htb', handle: '10000:' }), /handle: "10000:" is not a handle/],
      [() => a.tc.qdisc.add('tv1', { kind: 'htb', rate: '1mbit' } as any), /rate: unknown option/],
      [() => a.tc.qdisc.add('tv1', { kind: 'netem', loss: '150%' }), /loss: must be within 0..1/],
      [() => a.tc.qdisc.add('tv1', { kind: 'netem', jitter: '1ms' }), /jitter: needs a delay/],
      [() => a.tc.class.add('tv1', { kind: 'htb', parent: '1:', classid: '1:10000', rate: '1mbit' }), /classid: "1:10000" is not a handle/],
      [() => a.tc.class.add('tv1', { kind: 'htb', parent: '1:', classid: '1:', rate: '1mbit' }), /classid: needs a minor number/],
      [() => a.tc.class.add('tv1', { kind: 'htb', parent: '1:', classid: '1:5', rate: '10mbit', ceil: '1mbit' }), /ceil: is below rate/],
      [() => a.tc.filter.add('tv1', { kind: 'u32', parent: 'ingress', protocol: 'ipx' as any }), /protocol: unknown protocol/],
      [() => a.tc.filter.add('tv1', { kind: 'u32', parent: 'ingress', match: [{ ip: { dst: '2001:db8::/32' } }] }), /match\[0\].ip.dst: .* is not an IPv4 prefix/],
      [() => a.tc.filter.add('tv1', { kind: 'u32', parent: 'ingress', match: [{ ip: { dport: 70000 } }] }), /match\[0\].ip.dport/],
      [() => a.tc.filter.add('tv1', { kind: 'u32', parent: 'ingress', match: [{ ip: { protocol: 6 } }, { ip: { protocol: 17 } }] }), /match\[1\].ip.protocol: contradicts/],
      [() => a.tc.filter.add('tv1', { kind: 'u32', parent: 'ingress', actions: [{ kind: 'mirred', dev: 'bad name' }] }), /actions\[0\].dev/],
      [() => a.tc.filter.add('tv1', { kind: 'u32', parent: 'ingress', actions: [{ kind: 'mirred', egress: true, ingress: true, dev: 'ifb7' }] }), /actions\[0\].ingress: give egress or ingress/],
      [() => a.tc.filter.add('tv1', { kind: 'u32', parent: 'ingress', prio: 0 }), /prio/],
      [() => a.tc.filter.add('tv1', { kind: 'u32', parent: 'ingress', match: [{ u32: { value: 1, mask: 1, at: 2 } }] }), /at: must be a multiple of 4/],
      [() => a.tc.filter.add('tv1', { kind: 'matchall', parent: 'ingress', match: [] } as any), /match: unknown option/],
      [() => a.tc.qdisc.add('tv1/x', { kind: 'ingress' }), /dev/],
    ];
    for (const [call, msg] of bad) {
      const e = await call().then(() => undefined, (x) => x);
      expect(e, String(msg)).toBeInstanceOf(Error);
      expect(e).not.toBeInstanceOf(NetlinkError);
      expect(e.message).toMatch(msg);
    }
    // The kernel's own refusals: a parent or qdisc that does not exist.
    const noParent = await a.tc.class.add('tv1', { kind: 'htb', parent: '7:', classid: '7:1', rate: '1mbit' }).catch((x) => x);
    expect(noParent).toBeInstanceOf(NetlinkError);
    const noQdisc = await a.tc.filter.add('tv1', { kind: 'u32', parent: '9:', protocol: 'ip', match: [] }).catch((x) => x);
    expect(noQdisc).toBeInstanceOf(NetlinkError);
    const noDev = await a.tc.qdisc.add('nosuch0', { kind: 'ingress' }).catch((x) => x);
    expect(noDev).toBeInstanceOf(NetlinkError);
    expect(noDev.code).toBe('ENODEV');
    expect(JSON.stringify(await tcJson(A, 'qdisc', 'show'))).toBe(before);
  });

  it('shape and unshape never touch a tc tree vnetlink did not add', async () => {
    await a.link.add({ kind: 'veth', name: 'tf0', peer: { name: 'tf1' }, up: true });
    // Someone else's shaping, as libvirt or a user would leave it: htb 1: at the root and an
    // ingress hook with a policing-less u32 filter of their own.
    await nsExec(A, 'tc', ['qdisc', 'add', 'dev', 'tf0', 'root', 'handle', '1:', 'htb', 'default', '1']);
    await nsExec(A, 'tc', ['class', 'add', 'dev', 'tf0', 'parent', '1:', 'classid', '1:1', 'htb', 'rate', '5mbit']);
    await nsExec(A, 'tc', ['qdisc', 'add', 'dev', 'tf0', 'ingress']);
    await nsExec(A, 'tc', ['filter', 'add', 'dev', 'tf0', 'parent', 'ffff:', 'protocol', 'all', 'prio', '5', 'u32', 'match', 'u32', '0', '0', 'flowid', ':1']);
    const show = async () => JSON.stringify([await tcJson(A, 'qdisc', 'show', 'dev', 'tf0'), await nsExec(A, 'tc', ['class', 'show', 'dev', 'tf0']),
      await tcJson(A, 'filter', 'show', 'dev', 'tf0', 'parent', 'ffff:')]);
    const foreign = await show();
    expect(foreign).toContain('"handle":"1:"');
    expect(await a.tc.unshape('tf0')).toBe(false);
    expect(await show()).toBe(foreign);
    // shape() refuses to build over them, naming what is in the way, and changes nothing.
    const e1 = await a.tc.shape('tf0', { egress: { rate: '10mbit' } }).catch((x) => x);
    expect(e1.code).toBe('EBUSY');
    expect(e1.message).toMatch(/tf0 has a root qdisc htb 1: that shape\(\) did not add/);
    const e2 = await a.tc.shape('tf0', { ingress: { rate: '10mbit' } }).catch((x) => x);
    expect(e2.code).toBe('EBUSY');
    expect(e2.message).toMatch(/tf0 has an ingress qdisc that shape\(\) did not add/);
    expect(await show()).toBe(foreign);
    expect((await ipLinks(A)).filter((l) => l.ifname.startsWith('vnlifb'))).toEqual([]);

    // With the root free, egress shaping works beside their ingress hook and unshape removes only its own.
    await nsExec(A, 'tc', ['qdisc', 'del', 'dev', 'tf0', 'root']);
    await a.tc.shape('tf0', { egress: { rate: '10mbit' } });
    expect((await tcJson(A, 'qdisc', 'show', 'dev', 'tf0')).map((q: any) => q.kind).sort()).toEqual(['htb', 'ingress']);
    expect(await a.tc.unshape('tf0')).toBe(true);
    expect((await tcJson(A, 'qdisc', 'show', 'dev', 'tf0')).map((q: any) => q.kind).sort()).toEqual(['ingress', 'noqueue']);
    expect((await tcJson(A, 'filter', 'show', 'dev', 'tf0', 'parent', 'ffff:')).some((f: any) => f.pref === 5)).toBe(true);

    // A filter someone adds later to the ingress hook shape() made keeps that hook alive.
    await nsExec(A, 'tc', ['qdisc', 'del', 'dev', 'tf0', 'ingress']);
    await a.tc.shape('tf0', { ingress: { rate: '10mbit' } });
    await nsExec(A, 'tc', ['filter', 'add', 'dev', 'tf0', 'parent', 'ffff:', 'protocol', 'all', 'prio', '7', 'u32', 'match', 'u32', '0', '0', 'flowid', ':1']);
    expect(await a.tc.unshape('tf0')).toBe(true);
    const left = await tcJson(A, 'filter', 'show', 'dev', 'tf0', 'parent', 'ffff:');
    expect([...new Set(left.map((f: any) => f.pref))]).toEqual([7]);
    expect((await ipLinks(A)).filter((l) => l.ifname.startsWith('vnlifb'))).toEqual([]);
    expect(await a.tc.unshape('tf0')).toBe(false);
    await a.link.del('tf0');
  });

  it("takes over its own leftovers (a bare ingress hook beside shape()'s ifb, as a crash between the two left it) instead of refusing them", async () => {
    await a.link.add({ kind: 'veth', name: 'tl0', peer: { name: 'tl1' }, up: true });
    const r = await a.tc.shape('tl0', { ingress: { rate: '10mbit' } });
    expect(r.ingress).toBe('ifb');
    // What a process that died after making the hook and the ifb but before the redirect left.
    await nsExec(A, 'tc', ['filter', 'del', 'dev', 'tl0', 'parent', 'ffff:', 'prio', '189']);
    expect(await tcJson(A, 'filter', 'show', 'dev', 'tl0', 'parent', 'ffff:')).toEqual([]);
    const again = await a.tc.shape('tl0', { ingress: { rate: '10mbit' } });
    expect(again.ifb).toBe(r.ifb);
    const f = await tcJson(A, 'filter', 'show', 'dev', 'tl0', 'parent', 'ffff:');
    expect(JSON.stringify(f)).toContain(r.ifb!);
    expect((await ipLinks(A)).filter((l) => l.ifname.startsWith('vnlifb'))).toHaveLength(1);
    // The same bare hook with no ifb of ours is someone else's: still refused.
    await a.tc.unshape('tl0');
    await nsExec(A, 'tc', ['qdisc', 'add', 'dev', 'tl0', 'ingress']);
    expect((await a.tc.shape('tl0', { ingress: { rate: '10mbit' } }).catch((x) => x)).code).toBe('EBUSY');
    await a.link.del('tl0');
  });

  it("finds its ifb by the link's index and namespace, so a renamed link's shaping is still removed, and a namesake's is not taken", async () => {
    await a.link.add({ kind: 'veth', name: 'tr0', peer: { name: 'tr1' }, up: true });
    const r = await a.tc.shape('tr0', { egress: { rate: '10mbit' }, ingress: { rate: '10mbit' } });
    await a.link.set('tr0', { up: false });
    await a.link.set('tr0', { name: 'tr5', up: true });
    // A new link now has the old name: the ifb is not its.
    await a.link.add({ kind: 'veth', name: 'tr0', peer: { name: 'tr2' }, up: true });
    expect(await a.tc.unshape('tr0')).toBe(false);
    expect((await ipLinks(A)).some((l) => l.ifname === r.ifb)).toBe(true);
    expect(await a.tc.unshape('tr5')).toBe(true);
    expect((await ipLinks(A)).some((l) => l.ifname === r.ifb)).toBe(false);
    expect((await tcJson(A, 'qdisc', 'show', 'dev', 'tr5')).map((q: any) => q.kind)).toEqual(['noqueue']);
    await a.link.del('tr5');
    await a.link.del('tr0');
  });
});

// iperf3 across a veth pair: the host side (`hv0`) is what a tap is to a VM manager; its egress
// is what the guest receives, its ingress what the guest sends.
describe.skipIf(skip)('tc.shape on real traffic', () => {
  const nss = new Namespaces();
  let H: Netns, G: Netns;
  let h: Handle;

  beforeAll(async () => {
    hasTool('iperf3');
    [H, G] = await Promise.all([nss.create('shh'), nss.create('shg')]);
    h = await open({ netns: H });
    await h.link.add({ kind: 'veth', name: 'hv0', peer: { name: 'eth0', netns: G }, up: true });
    await h.addr.add('hv0', '198.51.100.1/24');
    await using g = await open({ netns: G });
    await g.link.set('eth0', { up: true });
    await g.addr.add('eth0', '198.51.100.2/24');
    await g.link.set('lo', { up: true });
  });
  afterAll(async () => {
    await h?.close();
    await nss.cleanup();
  });

  // One 2-second TCP run host -> guest (reverse: guest -> host); the receiver's Mbit/s.
  const iperf = (reverse: boolean) => iperfMbps(G, H, '198.51.100.2', { reverse });

  // A loaded machine only ever makes a run slower (CPU-starved sender or receiver), never
  // faster than the shaper lets it: up to three runs, the best one, stopping once it reaches
  // `atLeast`. An upper bound checked against the best run is the strictest one.
  async function best(reverse: boolean, atLeast: number): Promise<number> {
    let top = 0;
    for (let i = 0; i < 3 && top < atLeast; i++) top = Math.max(top, await iperf(reverse));
    return top;
  }

  it('holds the guest to 50 Mbit/s down and 30 Mbit/s up (ifb path here), and unshape restores full speed', async () => {
    const free = await best(false, 200);
    const r = await h.tc.shape('hv0', { egress: { rate: '50mbit' }, ingress: { rate: '30mbit' } });
    // This kernel has no police action, so ingress goes through an ifb device.
    expect(r).toMatchObject({ ingress: 'ifb', ifb: expect.stringMatching(/^vnlifb\d+$/) });
    const links = await ipLinks(H);
    // Its alias names hv0 by ifindex and the namespace's cookie, not by name.
    expect(links.find((l) => l.ifname === r.ifb)).toMatchObject({ linkinfo: { info_kind: 'ifb' },
      ifalias: expect.stringMatching(new RegExp(`^vnetlink:shape:[^:]+:${(await h.link.get('hv0')).index}$`)) });
    const down = await best(false, 40);   // host -> guest: hv0's egress
    const up = await best(true, 24);      // guest -> host: hv0's ingress, via the ifb
    expect(down).toBeGreaterThanOrEqual(40);
    expect(down).toBeLessThanOrEqual(55);
    expect(up).toBeGreaterThanOrEqual(24);
    expect(up).toBeLessThanOrEqual(33);
    expect(free).toBeGreaterThan(200);
    fs.appendFileSync(process.env.VNETLINK_SHAPE_LOG ?? '/dev/null', JSON.stringify({ free, down, up }) + '\n');

    // Idempotent: shaping again replaces, it does not stack or fail.
    const again = await h.tc.shape('hv0', { egress: { rate: '50mbit' }, ingress: { rate: '30mbit' } });
    expect(again.ifb).toBe(r.ifb);
    expect((await h.tc.qdisc.list('hv0')).map((q) => q.kind).sort()).toEqual(['htb', 'ingress']);

    expect(await h.tc.unshape('hv0')).toBe(true);
    expect((await ipLinks(H)).some((l) => l.ifname === r.ifb)).toBe(false);
    expect((await h.tc.qdisc.list('hv0')).filter((q) => q.kind !== 'noqueue')).toEqual([]);
    expect(await h.tc.unshape('hv0')).toBe(false);
    const after = await best(false, 200);
    expect(after).toBeGreaterThan(200);
  }, 300_000);

  it('rolls back when a later step fails, and never deletes a device it did not make', async () => {
    await h.tc.unshape('hv0');
    // A link of another kind already holds the ifb's name: the ingress step fails after the
    // egress qdisc and the ingress hook were added.
    const idx = (await h.link.get('hv0')).index;
    await h.link.add({ kind: 'veth', name: `vnlifb${idx}`, peer: { name: 'squat1' } });
    const e = await h.tc.shape('hv0', { egress: { rate: '50mbit' }, ingress: { rate: '30mbit' } }).catch((x) => x);
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e.code).toBe('EEXIST');
    expect((await h.tc.qdisc.list('hv0')).filter((q) => q.kind !== 'noqueue')).toEqual([]);
    const squat = (await ipLinks(H)).find((l) => l.ifname === `vnlifb${idx}`);
    expect(squat?.linkinfo?.info_kind).toBe('veth');
    expect(await h.tc.unshape('hv0')).toBe(false);
    await h.link.del(`vnlifb${idx}`);
  });
});
