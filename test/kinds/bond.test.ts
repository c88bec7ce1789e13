// bond: golden bytes everywhere; where the kernel has the bonding driver, an active-backup
// bond over two veth ports carries traffic to a peer, reports each port's state (IFLA_BOND_SLAVE_*)
// as `ip -d -j link` does, and keeps carrying it when the active port fails; where it lacks the
// driver, a clear refusal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Link, type Netns } from '../../lib/index.js';
import { Namespaces, inKernelGuest, ipLinks, kindAvailable, nsRun, waitFor } from '../helpers.js';
import { expectGolden, expectKindRefused, goldenLayout, linkGolden } from './golden.js';

const bond1 = 'ip link add bond1 type bond mode 802.3ad miimon 100 updelay 200 downdelay 200 xmit_hash_policy layer3+4 min_links 1 lacp_rate fast ad_select bandwidth ad_actor_sys_prio 100 ad_user_port_key 5 ad_actor_system 52:54:00:00:00:03 lacp_active on';
const bond2 = 'ip link add bond2 type bond mode active-backup active_slave vp0 miimon 50 use_carrier 1 arp_interval 0 arp_validate none arp_all_targets any primary vp0 primary_reselect better fail_over_mac active resend_igmp 2 num_grat_arp 2 all_slaves_active 1 peer_notify_delay 0 arp_missed_max 3';

describe('bond link kind', () => {
  const nss = new Namespaces();
  let g: Handle;
  let A: Netns, B: Netns;
  let a: Handle, b: Handle;

  beforeAll(async () => {
    g = await goldenLayout(nss, 'kbondg');
    A = await nss.create('kbonda');
    B = await nss.create('kbondb');
    a = await open({ netns: A });
    b = await open({ netns: B });
    // Two cables from A to a switch (a bridge) in B; the ports stay down until they join the bond.
    await b.link.add({ kind: 'bridge', name: 'sw0', up: true });
    for (const i of [1, 2]) await a.link.add({ kind: 'veth', name: `p${i}`, peer: { name: `q${i}`, netns: B } });
    for (const i of [1, 2]) await b.link.set(`q${i}`, { master: 'sw0', up: true });
  });
  afterAll(async () => {
    for (const h of [g, a, b]) await h?.close();
    await nss.cleanup();
  });

  it('encodes as iproute2 does and decodes every option back', async () => {
    await expectGolden(g, 'bond', {
      'ip link add bond0 type bond': { kind: 'bond', name: 'bond0' },
      [bond1]: { kind: 'bond', name: 'bond1', mode: '802.3ad', miimon: 100, updelay: 200, downdelay: 200, xmitHashPolicy: 'layer3+4', minLinks: 1,
        lacpRate: 'fast', adSelect: 'bandwidth', adActorSysPrio: 100, adUserPortKey: 5, adActorSystem: '52:54:00:00:00:03', lacpActive: true },
      [bond2]: { kind: 'bond', name: 'bond2', mode: 'active-backup', activePort: 'vp0', miimon: 50, useCarrier: true, arpInterval: 0, arpValidate: 'none',
        arpAllTargets: 'any', primary: 'vp0', primaryReselect: 'better', failOverMac: 'active', resendIgmp: 2, numPeerNotif: 2, allPortsActive: true,
        peerNotifDelay: 0, missedMax: 3 },
      'ip link add bond3 type bond mode balance-tlb lp_interval 1 packets_per_slave 1 tlb_dynamic_lb 1':
        { kind: 'bond', name: 'bond3', mode: 'balance-tlb', lpInterval: 1, packetsPerPort: 1, tlbDynamicLb: true },
    });
    const l = await g.link.decode(Buffer.from(linkGolden.requests[bond2], 'hex'));
    expect(l.kind === 'bond' && l.info).toEqual({ mode: 'active-backup', activePortIndex: 6, miimon: 50, useCarrier: true, arpInterval: 0, arpValidate: 'none',
      arpAllTargets: 'any', primaryIndex: 6, primaryReselect: 'better', failOverMac: 'active', resendIgmp: 2, numPeerNotif: 2, allPortsActive: true,
      peerNotifDelay: 0, missedMax: 3 });
    await expect(a.link.add({ kind: 'bond', name: 'bx', mode: 'round-robin' as never })).rejects.toThrow(/^link\.add: mode: must be one of "balance-rr", "active-backup"/);
    await expect(a.link.add({ kind: 'bond', name: 'bx', adUserPortKey: 1024 })).rejects.toThrow(/adUserPortKey: must be between 0 and 1023/);
  });

  it('bonds two veth ports, passes traffic and fails over, or is refused clearly', async () => {
    const present = await kindAvailable('bond');
    if (inKernelGuest) expect(present, 'the bonding module in the guest kernel').toBe(true);
    const add = a.link.add({ kind: 'bond', name: 'bond0', mode: 'active-backup', miimon: 100, up: true });
    if (!present) await expectKindRefused(add, 'bond', A, ['lo', 'p1', 'p2']);
    else await bondTraffic(await add);
  });

  async function bondTraffic(l: Link): Promise<void> {
    expect(l.kind === 'bond' && l.info).toMatchObject({ mode: 'active-backup', miimon: 100 });
    // A port joins down and comes up in the same call (the kernel refuses to enslave an up link).
    await a.link.set('p1', { master: 'bond0', up: true });
    await a.link.set('p2', { master: 'bond0', up: true });
    await a.addr.add('bond0', '198.51.100.1/24');
    await b.addr.add('sw0', '198.51.100.2/24');
    const [j] = await ipLinks(A, 'bond0');
    expect(j.linkinfo).toMatchObject({ info_kind: 'bond', info_data: { mode: 'active-backup', miimon: 100 } });
    const ports = await waitFor(async () => {
      const ps = await Promise.all(['p1', 'p2'].map((n) => a.link.get(n)));
      return ps.every((p) => p.port?.kind === 'bond' && p.port.miiStatus === 'up') ? ps : undefined;
    }, 'both bond ports up');
    const states = ports.map((p) => (p.port?.kind === 'bond' ? p.port.state : undefined)).sort();
    expect(states).toEqual(['active', 'backup']);
    for (const p of ports) {
      const [pj] = await ipLinks(A, p.name);
      expect(pj.master).toBe('bond0');
      expect(pj.linkinfo.info_slave_kind).toBe('bond');
      expect(pj.linkinfo.info_slave_data.state).toBe(p.port?.kind === 'bond' && p.port.state === 'active' ? 'ACTIVE' : 'BACKUP');
      expect(pj.linkinfo.info_slave_data.mii_status).toBe('UP');
    }
    let r = await nsRun(A, 'ping', ['-c', '2', '-W', '5', '198.51.100.2']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // The active port's cable is cut: the backup takes over and traffic still flows.
    const active = ports.find((p) => p.port?.kind === 'bond' && p.port.state === 'active')!;
    const other = ports.find((p) => p !== active)!;
    await b.link.set(active.name.replace('p', 'q'), { up: false });
    await waitFor(async () => {
      const p = await a.link.get(other.name);
      return p.port?.kind === 'bond' && p.port.state === 'active';
    }, `${other.name} to become the active port`, 20_000);
    r = await waitFor(async () => {
      const x = await nsRun(A, 'ping', ['-c', '1', '-W', '2', '198.51.100.2']);
      return x.code === 0 ? x : undefined;
    }, 'a ping after failover', 30_000, 200);
    expect(r.code).toBe(0);
    // Bond options change on the live bond; a key the bond does not have is refused by name.
    await a.link.set('bond0', { miimon: 200 });
    expect((await ipLinks(A, 'bond0'))[0].linkinfo.info_data.miimon).toBe(200);
    await expect(a.link.set('bond0', { stp: true } as never)).rejects.toThrow(/stp: is not a setting of bond links/);
  }
});
