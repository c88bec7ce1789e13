// The seed's NAT picture, switch half: virbr0 with STP and libvirt's pinned MAC, a guest tap
// vnet0 as its port, and what `ip -d link show`, `bridge link` and sysfs say about them.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, NetlinkError, type Handle, type Netns, type Tap } from '../lib/index.js';
import { Namespaces, ipLinks, nsExec, privilegedSkipReason } from './helpers.js';

const skip = privilegedSkipReason();

async function bridgeLink(ns: Netns, dev: string): Promise<any> {
  const out = await nsExec(ns, 'bridge', ['-j', '-d', 'link', 'show', 'dev', dev]);
  return JSON.parse(out)[0];
}

describe.skipIf(skip)('bridge', () => {
  const nss = new Namespaces();
  let N: Netns;
  let nl: Handle;
  let tap: Tap | undefined;

  beforeAll(async () => {
    N = await nss.create('br');
    nl = await open({ netns: N });
  });
  afterAll(async () => {
    await tap?.close();
    await nl?.close();
    await nss.cleanup();
  });

  it('builds virbr0 (STP, MAC 52:54:00:82:32:7e) with vnet0 attached, as brctl show and ip -d link show print it', async () => {
    const br = await nl.link.add({ kind: 'bridge', name: 'virbr0', stp: true, forwardDelay: 2, mac: '52:54:00:82:32:7e', up: true });
    expect(br.info).toMatchObject({ stp: true, forwardDelay: 2, bridgeId: '8000.52540082327e' });
    tap = await nl.tap.create({ name: 'vnet%d', master: 'virbr0', up: true });
    expect(tap.name).toBe('vnet0');
    // With STP on a new port listens and learns for 2 x forwardDelay before it forwards.
    await nl.bridge.waitPort('vnet0', 'forwarding', 20_000);

    const [ipbr] = await ipLinks(N, 'virbr0');
    expect(ipbr.address).toBe('52:54:00:82:32:7e');
    expect(ipbr.linkinfo.info_kind).toBe('bridge');
    expect(ipbr.linkinfo.info_data.stp_state).toBe(1);
    expect(ipbr.linkinfo.info_data.forward_delay).toBe(200);  // centiseconds
    const [iptap] = await ipLinks(N, 'vnet0');
    expect(iptap.master).toBe('virbr0');
    expect(iptap.address).toMatch(/^fe:/);  // a guest tap never becomes the bridge's address
    expect(iptap.linkinfo.info_slave_kind).toBe('bridge');
    expect(iptap.linkinfo.info_slave_data.state).toBe('forwarding');

    const shown = await nl.bridge.show();
    expect(shown).toEqual([{ name: 'virbr0', id: '8000.52540082327e', stp: true, interfaces: ['vnet0'],
      ports: [{ name: 'vnet0', index: tap.index, state: 'forwarding' }] }]);
    // brctl reads the id from sysfs; so does this (sysfs inside the namespace).
    const sysId = (await nsExec(N, 'cat', ['/sys/class/net/virbr0/bridge/bridge_id'])).trim();
    expect(sysId).toBe(shown[0].id);
    expect((await nsExec(N, 'ls', ['/sys/class/net/virbr0/brif'])).trim()).toBe('vnet0');

    const port = (await nl.link.get('vnet0')).port!;
    expect(port).toMatchObject({ kind: 'bridge', state: 'forwarding', learning: true, flood: true, hairpin: false });
  });

  it('sets port flags as bridge link set does, and bridge link shows them', async () => {
    await nl.bridge.setPort('vnet0', { hairpin: true, learning: false, flood: false, isolated: true, cost: 42, priority: 7, guard: true });
    const bl = await bridgeLink(N, 'vnet0');
    expect(bl).toMatchObject({ hairpin: true, learning: false, flood: false, isolated: true, cost: 42, priority: 7, guard: true });
    const port = (await nl.link.get('vnet0')).port!;
    expect(port).toMatchObject({ hairpin: true, learning: false, flood: false, isolated: true, cost: 42, priority: 7, guard: true });
    await nl.bridge.setPort('vnet0', { hairpin: false, learning: true, flood: true, isolated: false, guard: false });
    expect(await bridgeLink(N, 'vnet0')).toMatchObject({ hairpin: false, learning: true, flood: true, isolated: false, cost: 42 });
  });

  // vlanFiltering/defaultPvid are sent the same way, but this kernel is built without bridge
  // VLAN filtering: it refuses IFLA_BR_VLAN_FILTERING (EOPNOTSUPP) and ignores the PVID.
  it('creates a bridge with every timer and option, and changes them with link.set', async () => {
    await nl.link.add({ kind: 'bridge', name: 'br1', stp: false, forwardDelay: 4, helloTime: 1, maxAge: 12, priority: 4096,
      ageingTime: 60, mcastSnooping: false, group: 9 });
    let d = (await ipLinks(N, 'br1'))[0];
    expect(d.group).toBe('9');
    expect(d.linkinfo.info_data).toMatchObject({ stp_state: 0, forward_delay: 400, hello_time: 100, max_age: 1200, priority: 4096,
      ageing_time: 6000, mcast_snooping: 0 });
    // A bridge with no ports and no pinned MAC has an all-zero address part, as brctl shows too.
    const sysId = (await nsExec(N, 'cat', ['/sys/class/net/br1/bridge/bridge_id'])).trim();
    expect(sysId.startsWith('1000.')).toBe(true);
    expect((await nl.bridge.show('br1'))[0]).toMatchObject({ id: sysId, stp: false, interfaces: [] });
    await nl.link.set('br1', { stp: true, ageingTime: 30.5, mcastSnooping: true });
    d = (await ipLinks(N, 'br1'))[0];
    expect(d.linkinfo.info_data).toMatchObject({ stp_state: 1, ageing_time: 3050, mcast_snooping: 1 });
    const got = await nl.link.get('br1');
    expect(got.info).toMatchObject({ stp: true, ageingTime: 30.5, priority: 4096 });
    await nl.link.delGroup(9);
    expect((await ipLinks(N)).map((l) => l.ifname)).not.toContain('br1');
  });

  it('rejects bad input before any syscall and reports kernel refusals with errno', async () => {
    const before = (await ipLinks(N)).map((l) => l.ifname).sort();
    await expect(nl.link.add({ kind: 'bridge', name: 'bx', forwardDelay: 'x' as any })).rejects.toThrow(TypeError);
    await expect(nl.link.add({ kind: 'bridge', name: 'bx', defaultPvid: 5000 })).rejects.toThrow(/defaultPvid/);
    await expect(nl.link.add({ kind: 'bridge', name: 'bx', stpp: true } as any)).rejects.toThrow(/stpp: unknown option/);
    await expect(nl.bridge.setPort('vnet0', { cost: 0 })).rejects.toThrow(RangeError);
    await expect(nl.bridge.setPort('vnet0', { priority: 64 })).rejects.toThrow(/priority/);
    await expect(nl.bridge.setPort('vnet0', {})).rejects.toThrow(/nothing to change/);
    await expect(nl.bridge.show('lo')).rejects.toThrow(/not a bridge/);
    // The kernel keeps max_age within 6–40 s: ERANGE, and no bridge is left.
    const e = await nl.link.add({ kind: 'bridge', name: 'bx', maxAge: 100 }).catch((x) => x);
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e.code).toBe('ERANGE');
    expect(e.op).toBe('link.add');
    // The port of a veth is no bridge port.
    await nl.link.add({ kind: 'veth', name: 've0', peer: { name: 've1' } });
    const e2 = await nl.bridge.setPort('ve0', { hairpin: true }).catch((x) => x);
    expect(e2).toBeInstanceOf(NetlinkError);
    expect(e2.op).toBe('bridge.setPort');
    await nl.link.del('ve0');
    expect((await ipLinks(N)).map((l) => l.ifname).sort()).toEqual(before);
  });
});
