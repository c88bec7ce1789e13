// Link flags (promisc, allmulticast, multicast, arp), carrier, and the GSO/GRO sizes: the bytes
// iproute2 6.1 sends for each `ip link add/set` word, and what the kernel then reports through
// `ip -d -j link show` (flags, promiscuity, allmulti, gso/gro sizes, NO-CARRIER on a tap), with
// link.get agreeing. Bad values are refused by name before any syscall.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkError, open, type Handle, type LinkChanges, type LinkSpec, type Netns } from '../lib/index.js';
import { Namespaces, ipLinks, waitFor } from './helpers.js';
import { goldenLayout } from './kinds/golden.js';

const golden = JSON.parse(fs.readFileSync(new URL('./fixtures/link-flags-golden.json', import.meta.url), 'utf8')) as
  { tool: string; requests: Record<string, string> };

type Case = { add: LinkSpec } | { set: LinkChanges };
const cases: Record<string, Case> = {
  'ip link add promisc on allmulticast on multicast off arp off name dummy2 type dummy':
    { add: { kind: 'dummy', name: 'dummy2', promisc: true, allmulti: true, multicast: false, arp: false } },
  'ip link add gso_max_size 32768 gso_max_segs 100 gro_max_size 32768 name dummy3 type dummy':
    { add: { kind: 'dummy', name: 'dummy3', gsoMaxSize: 32768, gsoMaxSegs: 100, groMaxSize: 32768 } },
  'ip link set dev vp0 promisc on': { set: { promisc: true } },
  'ip link set dev vp0 promisc off': { set: { promisc: false } },
  'ip link set dev vp0 allmulticast on': { set: { allmulti: true } },
  'ip link set dev vp0 allmulticast off': { set: { allmulti: false } },
  'ip link set dev vp0 multicast off': { set: { multicast: false } },
  'ip link set dev vp0 arp off': { set: { arp: false } },
  'ip link set dev vp0 arp on': { set: { arp: true } },
  'ip link set dev vp0 up promisc on allmulticast on multicast on arp on': { set: { up: true, promisc: true, allmulti: true, multicast: true, arp: true } },
  'ip link set dev vp0 carrier off': { set: { carrier: false } },
  'ip link set dev vp0 carrier on': { set: { carrier: true } },
  'ip link set dev vp0 gso_max_size 32768': { set: { gsoMaxSize: 32768 } },
  'ip link set dev vp0 gso_max_segs 100': { set: { gsoMaxSegs: 100 } },
  'ip link set dev vp0 gro_max_size 65536': { set: { groMaxSize: 65536 } },
  'ip link set dev vp0 mtu 1400 txqueuelen 500 gso_max_size 16384 gso_max_segs 64 gro_max_size 16384':
    { set: { mtu: 1400, txqueuelen: 500, gsoMaxSize: 16384, gsoMaxSegs: 64, groMaxSize: 16384 } },
};

describe('link flags, carrier and GSO/GRO sizes', () => {
  const nss = new Namespaces();
  let g: Handle;
  let ns: Netns;
  let h: Handle;
  const show = async (dev: string) => (await ipLinks(ns, dev))[0];

  beforeAll(async () => {
    g = await goldenLayout(nss, 'lflagg');
    ns = await nss.create('lflag');
    h = await open({ netns: ns });
    await h.link.add({ kind: 'veth', name: 'f0', peer: { name: 'f1' } });
    await h.link.add({ kind: 'bridge', name: 'fbr' });
  });
  afterAll(async () => {
    for (const x of [g, h]) await x?.close();
    await nss.cleanup();
  });

  it('encodes as iproute2 does (link.encode for add, link.encodeSet for set) and decodes the flags and sizes back', async () => {
    expect(Object.keys(cases).sort()).toEqual(Object.keys(golden.requests).sort());
    for (const [label, c] of Object.entries(cases)) {
      const b = 'add' in c ? await g.link.encode(c.add) : await g.link.encodeSet('vp0', c.set);
      b.fill(0, 8, 16);
      expect(b.toString('hex'), label).toBe(golden.requests[label]);
    }
    const d2 = await g.link.decode(Buffer.from(golden.requests['ip link add promisc on allmulticast on multicast off arp off name dummy2 type dummy'], 'hex'));
    expect(d2).toMatchObject({ name: 'dummy2', kind: 'dummy', promisc: true, allmulti: true, multicast: false, arp: false, up: false });
    expect(d2.flags).toEqual(expect.arrayContaining(['NOARP', 'ALLMULTI', 'PROMISC']));
    const d3 = await g.link.decode(Buffer.from(golden.requests['ip link add gso_max_size 32768 gso_max_segs 100 gro_max_size 32768 name dummy3 type dummy'], 'hex'));
    expect(d3).toMatchObject({ gsoMaxSize: 32768, gsoMaxSegs: 100, groMaxSize: 32768 });
    // The master + up split of link.set encodes as its two requests, back to back.
    const two = await g.link.encodeSet('vp0', { master: 'br0', up: true, promisc: true });
    expect(two.readUInt32LE(0)).toBeLessThan(two.length);
    expect(two.readUInt32LE(0) + two.readUInt32LE(two.readUInt32LE(0))).toBe(two.length);
  });

  it('promisc, allmulticast, multicast and arp turn on and off as ip -d -j link show reports them', async () => {
    const base = await show('f0');
    expect(base.flags).toContain('MULTICAST');
    expect(base.flags).not.toContain('NOARP');
    expect(base.promiscuity).toBe(0);

    await h.link.set('f0', { promisc: true });
    let j = await show('f0');
    expect(j.flags).toContain('PROMISC');
    expect(j.promiscuity).toBe(1);
    let l = await h.link.get('f0');
    expect(l).toMatchObject({ promisc: true, promiscuity: 1 });
    // The flag is one user of the counter: setting it twice does not count twice.
    await h.link.set('f0', { promisc: true });
    expect((await show('f0')).promiscuity).toBe(1);
    await h.link.set('f0', { promisc: false });
    j = await show('f0');
    expect(j.flags).not.toContain('PROMISC');
    expect(j.promiscuity).toBe(0);
    expect((await h.link.get('f0')).promisc).toBe(false);

    await h.link.set('f0', { allmulti: true });
    j = await show('f0');
    expect(j.flags).toContain('ALLMULTI');
    l = await h.link.get('f0');
    expect(l.allmulti).toBe(true);
    expect(l.allmultiCount).toBe(j.allmulti);
    await h.link.set('f0', { allmulti: false });
    expect((await show('f0')).flags).not.toContain('ALLMULTI');
    expect((await h.link.get('f0')).allmulti).toBe(false);

    await h.link.set('f0', { multicast: false, arp: false });
    j = await show('f0');
    expect(j.flags).not.toContain('MULTICAST');
    expect(j.flags).toContain('NOARP');
    expect(await h.link.get('f0')).toMatchObject({ multicast: false, arp: false });
    expect((await h.link.get('f0')).flags).toContain('NOARP');
    await h.link.set('f0', { multicast: true, arp: true });
    j = await show('f0');
    expect(j.flags).toContain('MULTICAST');
    expect(j.flags).not.toContain('NOARP');
    expect(await h.link.get('f0')).toMatchObject({ multicast: true, arp: true });
    // Other flags are left alone: ifi_change names only what was given.
    await h.link.set('f0', { up: true });
    await h.link.set('f0', { promisc: true });
    expect((await show('f0')).flags).toEqual(expect.arrayContaining(['UP', 'PROMISC', 'MULTICAST']));
    await h.link.set('f0', { promisc: false, up: false });
  });

  it('a bridge port counts one promiscuity user without the PROMISC flag; promisc on adds the caller\'s', async () => {
    await h.link.set('f1', { master: 'fbr' });
    let j = await show('f1');
    expect(j.flags).not.toContain('PROMISC');
    expect(j.promiscuity).toBe(1);
    expect(await h.link.get('f1')).toMatchObject({ promisc: false, promiscuity: 1 });
    await h.link.set('f1', { promisc: true });
    j = await show('f1');
    expect(j.flags).toContain('PROMISC');
    expect(j.promiscuity).toBe(2);
    expect(await h.link.get('f1')).toMatchObject({ promisc: true, promiscuity: 2 });
    await h.link.set('f1', { promisc: false, master: null });
    expect((await show('f1')).promiscuity).toBe(0);
  });

  it('txqueuelen, gso_max_size, gso_max_segs and gro_max_size change on a live link and at creation', async () => {
    const before = await show('f0');
    await h.link.set('f0', { txqueuelen: 250, gsoMaxSize: 32768, gsoMaxSegs: 100, groMaxSize: 32000 });
    let j = await show('f0');
    expect(j).toMatchObject({ txqlen: 250, gso_max_size: 32768, gso_max_segs: 100, gro_max_size: 32000 });
    const l = await h.link.get('f0');
    expect(l).toMatchObject({ txqueuelen: 250, gsoMaxSize: 32768, gsoMaxSegs: 100, groMaxSize: 32000 });
    expect(l.tsoMaxSize).toBe(j.tso_max_size);
    expect(l.tsoMaxSegs).toBe(j.tso_max_segs);
    await h.link.set('f0', { txqueuelen: before.txqlen, gsoMaxSize: before.gso_max_size, gsoMaxSegs: before.gso_max_segs, groMaxSize: before.gro_max_size });
    j = await show('f0');
    expect(j).toMatchObject({ txqlen: before.txqlen, gso_max_size: before.gso_max_size, gso_max_segs: before.gso_max_segs, gro_max_size: before.gro_max_size });
    expect(await h.link.get('f0')).toMatchObject({ gsoMaxSize: before.gso_max_size, groMaxSize: before.gro_max_size });

    // At creation the kernel takes the flags in the header and the sizes as attributes.
    const made = await h.link.add({ kind: 'veth', name: 'c0', peer: { name: 'c1' }, promisc: true, allmulti: true, arp: false, multicast: false,
      gsoMaxSize: 16384, gsoMaxSegs: 64, groMaxSize: 20000, txqueuelen: 100 });
    expect(made).toMatchObject({ promisc: true, allmulti: true, arp: false, multicast: false, gsoMaxSize: 16384, gsoMaxSegs: 64, groMaxSize: 20000 });
    j = await show('c0');
    expect(j.flags).toEqual(expect.arrayContaining(['PROMISC', 'ALLMULTI', 'NOARP']));
    expect(j.flags).not.toContain('MULTICAST');
    expect(j).toMatchObject({ promiscuity: 1, txqlen: 100, gso_max_size: 16384, gso_max_segs: 64, gro_max_size: 20000 });
    // The peer keeps its own defaults.
    expect((await show('c1')).flags).not.toContain('PROMISC');
    await h.link.del('c0');
  });

  it('carrier off on a tap shows NO-CARRIER and operstate DOWN; on brings LOWER_UP back; a veth refuses it', async () => {
    const tap = await h.tap.create({ name: 'ftap0', up: true });
    try {
      await waitFor(async () => (await show('ftap0')).flags.includes('LOWER_UP'), 'ftap0 to have carrier', 20_000);
      await h.link.set('ftap0', { carrier: false });
      const off = await waitFor(async () => { const j = await show('ftap0'); return j.operstate === 'DOWN' && j; }, 'ftap0 operstate DOWN', 20_000);
      expect(off.flags).toContain('NO-CARRIER');
      expect(off.flags).not.toContain('LOWER_UP');
      expect(await h.link.get('ftap0')).toMatchObject({ carrier: false, lowerUp: false, up: true, operState: 'down' });
      await h.link.set('ftap0', { carrier: true });
      const on = await waitFor(async () => { const j = await show('ftap0'); return j.operstate !== 'DOWN' && j; }, 'ftap0 operstate back', 20_000);
      expect(on.flags).toContain('LOWER_UP');
      expect(['UP', 'UNKNOWN']).toContain(on.operstate);
      expect(await h.link.get('ftap0')).toMatchObject({ carrier: true, lowerUp: true });
    } finally {
      await tap.close();
    }
    // veth has no carrier switch (ndo_change_carrier): the kernel's refusal, as a NetlinkError.
    const e = await h.link.set('f0', { carrier: false }).then(() => undefined, (x) => x);
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e).toMatchObject({ code: 'EOPNOTSUPP', op: 'link.set' });
  });

  it('refuses bad values by name before any syscall, and the kernel\'s own limits as NetlinkError', async () => {
    const names = async () => (await ipLinks(ns)).map((l) => l.ifname).sort();
    const had = await names();
    const bad: [LinkSpec, RegExp][] = [
      [{ kind: 'veth', name: 'b0', peer: { name: 'b1' }, promisc: 'on' as never }, /^link\.add: promisc: must be true or false/],
      [{ kind: 'veth', name: 'b0', peer: { name: 'b1' }, gsoMaxSize: 0 }, /^link\.add: gsoMaxSize: must be between 1 and 524280/],
      [{ kind: 'veth', name: 'b0', peer: { name: 'b1' }, gsoMaxSize: 600000 }, /^link\.add: gsoMaxSize: must be between 1 and 524280/],
      [{ kind: 'veth', name: 'b0', peer: { name: 'b1' }, gsoMaxSegs: 65536 }, /^link\.add: gsoMaxSegs: must be between 0 and 65535/],
      [{ kind: 'veth', name: 'b0', peer: { name: 'b1' }, groMaxSize: 1.5 }, /^link\.add: groMaxSize: /],
      [{ kind: 'veth', name: 'b0', peer: { name: 'b1' }, carrier: false } as never, /^link\.add: carrier: is changed on an existing link only/],
    ];
    for (const [spec, re] of bad) await expect(h.link.add(spec)).rejects.toThrow(re);
    await expect(h.link.set('f0', { arp: 1 as never })).rejects.toThrow(/^link\.set: arp: must be true or false/);
    await expect(h.link.set('f0', { groMaxSize: -1 })).rejects.toThrow(/^link\.set: groMaxSize: /);
    await expect(h.link.set('f0', { carrier: 'off' as never })).rejects.toThrow(/^link\.set: carrier: must be true or false/);
    await expect(h.link.encodeSet('f0', { gsoMaxSize: 1e9 })).rejects.toThrow(/^link\.encodeSet: gsoMaxSize: /);
    expect(await names()).toEqual(had);
    // Within our bounds but beyond this device's ceiling (a new bridge's tso_max_size is the
    // legacy 64 KiB): the kernel says which (extack), nothing changes.
    await h.link.add({ kind: 'bridge', name: 'fbr2' });
    const ceiling = (await h.link.get('fbr2')).tsoMaxSize!;
    expect(ceiling).toBe((await show('fbr2')).tso_max_size);
    expect(ceiling).toBeLessThan(524280);
    const big = await h.link.set('fbr2', { gsoMaxSize: ceiling + 1 }).then(() => undefined, (x) => x);
    expect(big).toBeInstanceOf(NetlinkError);
    expect(big.op).toBe('link.set');
    expect(big.extack).toMatch(/gso_max_size/);
    // Below the TCP header room (MAX_TCP_HEADER, config-dependent): the netlink policy refuses it.
    const small = await h.link.set('fbr2', { gsoMaxSize: 100 }).then(() => undefined, (x) => x);
    expect(small).toBeInstanceOf(NetlinkError);
    expect(small.op).toBe('link.set');
    expect((await show('fbr2')).gso_max_size).toBe(65536);
  });
});
