// Bridge per-port VLANs (`bridge vlan add|del|show`) and VLAN filtering on the bridge:
// iproute2 6.1's bytes everywhere; where the kernel has CONFIG_BRIDGE_VLAN_FILTERING, guests on
// access ports of the same PVID ping and of different PVIDs do not, a tagged trunk reaches an
// access port untagged, and `bridge -j vlan show` agrees with bridge.vlan.list; where it lacks
// it, the clear refusal, with nothing left behind. Inside the kernel guest absence fails.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkError, open, type BridgeVlan, type Handle, type Netns } from '../../lib/index.js';
import { Namespaces, inKernelGuest, ipLinks, kindAvailable, nsExec, nsRun } from '../helpers.js';
import { goldenLayout } from './golden.js';

const golden = JSON.parse(fs.readFileSync(new URL('../fixtures/bridge-vlan-golden.json', import.meta.url), 'utf8')) as
  { tool: string; requests: Record<string, string> };

/** `bridge -j vlan show` in a namespace, one { port, vid, pvid, untagged } per VLAN id (ranges expanded). */
async function bridgeVlans(ns: Netns): Promise<Omit<BridgeVlan, 'index' | 'master'>[]> {
  const out = JSON.parse((await nsExec(ns, 'bridge', ['-j', 'vlan', 'show'])) || '[]') as
    { ifname: string; vlans?: { vlan: number; vlanEnd?: number; flags?: string[] }[] }[];
  return out.flatMap((p) => (p.vlans ?? []).flatMap((e) => {
    const ids = Array.from({ length: (e.vlanEnd ?? e.vlan) - e.vlan + 1 }, (_, i) => e.vlan + i);
    return ids.map((vid) => ({ port: p.ifname, vid, pvid: (e.flags ?? []).includes('PVID'), untagged: (e.flags ?? []).includes('Egress Untagged') }));
  }));
}
const mine = (rows: BridgeVlan[]) => rows.map(({ port, vid, pvid, untagged }) => ({ port, vid, pvid, untagged }));
const byPortVid = (a: { port: string; vid: number }, b: { port: string; vid: number }) => (a.port < b.port ? -1 : a.port > b.port ? 1 : a.vid - b.vid);

describe('bridge per-port VLANs', () => {
  const nss = new Namespaces();
  let g: Handle;
  let S: Netns;
  let s: Handle;
  let filtering = false;
  const guests: Record<string, { ns: Netns; h: Handle; addr: string }> = {};

  beforeAll(async () => {
    g = await goldenLayout(nss, 'kbvlang');
    S = await nss.create('kbvlans');
    s = await open({ netns: S });
    // What the kernel offers, asked as a user would (with iproute2, not this library).
    const probe = spawnSync('ip', ['-n', S.name, 'link', 'add', 'probe0', 'type', 'bridge', 'vlan_filtering', '1'], { encoding: 'utf8', timeout: 30_000 });
    filtering = probe.status === 0;
    if (filtering) spawnSync('ip', ['-n', S.name, 'link', 'del', 'probe0'], { timeout: 30_000 });
    for (const [n, i] of [['a', 1], ['b', 2], ['c', 3], ['t', 4]] as const) {
      const ns = await nss.create(`kbvlan${n}`);
      guests[n] = { ns, h: await open({ netns: ns }), addr: `198.51.100.${i}` };
    }
  });
  afterAll(async () => {
    for (const x of [g, s, ...Object.values(guests).map((q) => q.h)]) await x?.close();
    await nss.cleanup();
  });

  it('encodes as iproute2 does: bridge vlan add/del, and vlan_filtering on the bridge', async () => {
    const cases: Record<string, () => Promise<Buffer>> = {
      'bridge vlan add dev vp0 vid 10 pvid untagged': () => g.bridge.vlan.encode('add', 'vp0', { vid: 10, pvid: true, untagged: true }),
      'bridge vlan add dev vp0 vid 20-30': () => g.bridge.vlan.encode('add', 'vp0', { vid: 20, vidEnd: 30 }),
      'bridge vlan add dev vp0 vid 40-50 untagged': () => g.bridge.vlan.encode('add', 'vp0', { vid: 40, vidEnd: 50, untagged: true }),
      'bridge vlan add dev vp0 vid 60 master': () => g.bridge.vlan.encode('add', 'vp0', { vid: 60, master: true }),
      'bridge vlan add dev br0 vid 10 pvid untagged self': () => g.bridge.vlan.encode('add', 'br0', { vid: 10, pvid: true, untagged: true, self: true }),
      'bridge vlan del dev vp0 vid 10': () => g.bridge.vlan.encode('del', 'vp0', { vid: 10 }),
      'bridge vlan del dev vp0 vid 20-30': () => g.bridge.vlan.encode('del', 'vp0', { vid: 20, vidEnd: 30 }),
      'ip link set dev br0 type bridge vlan_filtering 1': () => g.link.encodeSet('br0', { vlanFiltering: true }),
    };
    expect(Object.keys(cases).sort()).toEqual(Object.keys(golden.requests).sort());
    for (const [label, enc] of Object.entries(cases)) {
      const b = await enc();
      b.fill(0, 8, 16);
      expect(b.toString('hex'), label).toBe(golden.requests[label]);
    }
  });

  it('refuses bad input by name before any syscall', async () => {
    await s.link.add({ kind: 'bridge', name: 'brx' });
    await s.link.add({ kind: 'veth', name: 'px', peer: { name: 'py' }, master: 'brx' });
    const before = await s.bridge.vlan.list();
    const bad: [Promise<unknown>, RegExp][] = [
      [s.bridge.vlan.add('px', { vid: 0 }), /^bridge\.vlan\.add: vid: must be between 1 and 4094/],
      [s.bridge.vlan.add('px', { vid: 4095 }), /^bridge\.vlan\.add: vid: must be between 1 and 4094/],
      [s.bridge.vlan.add('px', {} as never), /^bridge\.vlan\.add: vid: is required/],
      [s.bridge.vlan.add('px', { vid: 30, vidEnd: 20 }), /^bridge\.vlan\.add: vidEnd: must be between 31 and 4094/],
      [s.bridge.vlan.add('px', { vid: 20, vidEnd: 30, pvid: true }), /^bridge\.vlan\.add: pvid: a range \(vid 20-30\) cannot be the PVID/],
      [s.bridge.vlan.add('px', { vid: 10, untagged: 'yes' as never }), /^bridge\.vlan\.add: untagged: must be true or false/],
      [s.bridge.vlan.add('px', { vid: 10, vlan: 10 } as never), /^bridge\.vlan\.add: vlan: unknown option/],
      [s.bridge.vlan.del('px', { vid: 10, pvid: true } as never), /^bridge\.vlan\.del: pvid: unknown option/],
      [s.bridge.vlan.add('bad/name', { vid: 10 }), /^bridge\.vlan\.add: port: /],
      [s.bridge.vlan.encode('set' as never, 'px', { vid: 10 }), /^bridge\.vlan\.encode: cmd: /],
      // A veth outside any bridge has no VLAN table (checked by one lookup, before any change).
      [s.bridge.vlan.add('py', { vid: 10 }), /^bridge\.vlan\.add: port: "py" is a veth that is neither a bridge nor a bridge port/],
    ];
    for (const [p, re] of bad) await expect(p).rejects.toThrow(re);
    await expect(s.bridge.vlan.list('nosuch0')).rejects.toMatchObject({ code: 'ENODEV' });
    expect(await s.bridge.vlan.list()).toEqual(before);
    expect(mine(before).sort(byPortVid)).toEqual((await bridgeVlans(S)).sort(byPortVid));
    await s.link.del('brx');
    await s.link.del('px');
  });

  it('VLANs separate access ports and a trunk carries them tagged, or the kernel refuses clearly', async () => {
    if (inKernelGuest) expect(filtering, 'CONFIG_BRIDGE_VLAN_FILTERING in the guest kernel').toBe(true);
    if (!filtering) await refused();
    else await separates();
  });

  /** Guest `n` on a new port `p<n>` of br0 in S (up, addressed, forwarding). */
  async function plug(n: string): Promise<void> {
    const q = guests[n];
    await s.link.add({ kind: 'veth', name: `p${n}`, peer: { name: 'eth0', netns: q.ns }, master: 'br0', up: true });
    await q.h.link.set('eth0', { up: true });
    await s.bridge.waitPort(`p${n}`, 'forwarding', { timeout: 60_000 });
  }
  const ping = (from: string, to: string, count = 2) => nsRun(guests[from].ns, 'ping', ['-c', String(count), '-W', '3', guests[to].addr]);

  async function refused(): Promise<void> {
    // This kernel: a bridge takes no vlan_filtering, and a port no VLAN; both are refused by the kernel.
    const e1 = await s.link.add({ kind: 'bridge', name: 'br0', vlanFiltering: true }).then(() => undefined, (x) => x);
    expect(e1).toBeInstanceOf(NetlinkError);
    expect((await ipLinks(S)).some((l) => l.ifname === 'br0')).toBe(false);
    await s.link.add({ kind: 'bridge', name: 'br0', up: true });
    const e2 = await s.link.set('br0', { vlanFiltering: true }).then(() => undefined, (x) => x);
    expect(e2).toBeInstanceOf(NetlinkError);
    expect((await ipLinks(S, 'br0'))[0].linkinfo.info_data.vlan_filtering ?? 0).toBe(0);
    await plug('a');
    const e = await s.bridge.vlan.add('pa', { vid: 10, pvid: true, untagged: true }).then(() => undefined, (x) => x);
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e).toMatchObject({ code: 'EOPNOTSUPP', errno: 95, op: 'bridge.vlan.add', subject: 'pa' });
    expect(e.message).toMatch(/bridge VLANs are not available in this kernel \(it is built without CONFIG_BRIDGE_VLAN_FILTERING\)/);
    // Nothing took: neither `bridge vlan show` nor our list has a VLAN anywhere.
    expect(await bridgeVlans(S)).toEqual([]);
    expect(await s.bridge.vlan.list()).toEqual([]);
    expect(await s.bridge.vlan.list('pa')).toEqual([]);
  }

  async function separates(): Promise<void> {
    await s.link.add({ kind: 'bridge', name: 'br0', vlanFiltering: true, up: true });
    const [br] = await ipLinks(S, 'br0');
    expect(br.linkinfo.info_data.vlan_filtering).toBe(1);
    for (const n of ['a', 'b', 'c', 't']) await plug(n);
    for (const n of ['a', 'b', 'c']) await guests[n].h.addr.add('eth0', `${guests[n].addr}/24`);
    // A new port is in the default PVID (1), untagged, as `bridge vlan show` says and list agrees.
    const start = await bridgeVlans(S);
    expect(start).toContainEqual({ port: 'pa', vid: 1, pvid: true, untagged: true });
    expect(mine(await s.bridge.vlan.list()).sort(byPortVid)).toEqual(start.sort(byPortVid));

    // Access ports: a and b in VLAN 10, c in VLAN 20; VLAN 1 leaves them.
    for (const [n, vid] of [['a', 10], ['b', 10], ['c', 20]] as const) {
      await s.bridge.vlan.add(`p${n}`, { vid, pvid: true, untagged: true });
      await s.bridge.vlan.del(`p${n}`, { vid: 1 });
    }
    const pa = await s.bridge.vlan.list('pa');
    expect(pa).toEqual([{ port: 'pa', index: pa[0].index, master: 'br0', vid: 10, pvid: true, untagged: true }]);
    expect((await bridgeVlans(S)).filter((v) => v.port === 'pa')).toEqual([{ port: 'pa', vid: 10, pvid: true, untagged: true }]);
    expect((await bridgeVlans(S)).filter((v) => v.port === 'pc')).toEqual([{ port: 'pc', vid: 20, pvid: true, untagged: true }]);

    const ab = await ping('a', 'b');
    expect(ab.code, ab.stdout + ab.stderr).toBe(0);
    const ac = await ping('a', 'c', 1);
    expect(ac.code, 'a (VLAN 10) must not reach c (VLAN 20)').not.toBe(0);
    // The VLAN was the difference: c moves to VLAN 10 and a reaches it.
    await s.bridge.vlan.add('pc', { vid: 10, pvid: true, untagged: true });
    await s.bridge.vlan.del('pc', { vid: 20 });
    const ac2 = await ping('a', 'c');
    expect(ac2.code, ac2.stdout + ac2.stderr).toBe(0);

    // A trunk: pt carries VLANs 10 and 20-30 tagged (no PVID); t's 802.1Q device eth0.10 talks
    // to a, whose port sends and takes the same frames untagged.
    await s.bridge.vlan.del('pt', { vid: 1 });
    await s.bridge.vlan.add('pt', { vid: 10 });
    await s.bridge.vlan.add('pt', { vid: 20, vidEnd: 30 });
    const pt = (await bridgeVlans(S)).filter((v) => v.port === 'pt');
    expect(pt.map((v) => v.vid)).toEqual([10, ...Array.from({ length: 11 }, (_, i) => 20 + i)]);
    expect(pt.every((v) => !v.pvid && !v.untagged)).toBe(true);
    expect(mine(await s.bridge.vlan.list('pt'))).toEqual(pt);
    const has8021q = await kindAvailable('vlan');
    if (inKernelGuest) expect(has8021q, 'the 8021q module in the guest kernel').toBe(true);
    if (has8021q) {
      const t = guests.t;
      await t.h.link.add({ kind: 'vlan', name: 'eth0.10', link: 'eth0', id: 10, up: true });
      await t.h.addr.add('eth0.10', `${t.addr}/24`);
      const at = await ping('a', 't');
      expect(at.code, at.stdout + at.stderr).toBe(0);
    }
    await s.bridge.vlan.del('pt', { vid: 20, vidEnd: 30 });
    expect((await s.bridge.vlan.list('pt')).map((v) => v.vid)).toEqual([10]);
    // Deleting a VLAN the port does not have is not an error for the kernel; nothing changes.
    await s.bridge.vlan.del('pt', { vid: 99 });
    expect((await bridgeVlans(S)).filter((v) => v.port === 'pt').map((v) => v.vid)).toEqual([10]);
    // The bridge's own entry (`self`): its port toward the host.
    await s.bridge.vlan.add('br0', { vid: 10, self: true });
    expect((await bridgeVlans(S)).filter((v) => v.port === 'br0').map((v) => v.vid)).toContain(10);
    expect((await s.bridge.vlan.list('br0')).map((v) => v.vid)).toContain(10);
  }
});
