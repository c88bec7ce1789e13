// bridge on its table: iproute2's bytes (timers in centiseconds, VLAN filtering, its protocol
// and default PVID), decode of the same, and what this kernel does with VLAN filtering.
// (STP, ports and brctl: test/bridge.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkError, type Handle } from '../../lib/index.js';
import { Namespaces, inKernelGuest, ipLinks } from '../helpers.js';
import { expectGolden, goldenLayout, linkGolden } from './golden.js';

const br2 = 'ip link add br2 type bridge stp_state 1 forward_delay 400 hello_time 100 max_age 1200 ageing_time 30000 priority 4096 vlan_filtering 1 vlan_protocol 802.1ad group_fwd_mask 8 vlan_default_pvid 10 mcast_snooping 0';

describe('bridge link kind', () => {
  const nss = new Namespaces();
  let h: Handle;
  beforeAll(async () => { h = await goldenLayout(nss, 'kbridge'); });
  afterAll(async () => {
    await h?.close();
    await nss.cleanup();
  });

  it('encodes as iproute2 does, seconds to centiseconds', async () => {
    await expectGolden(h, 'bridge', {
      'ip link add br1 type bridge': { kind: 'bridge', name: 'br1' },
      [br2]: { kind: 'bridge', name: 'br2', stp: true, forwardDelay: 4, helloTime: 1, maxAge: 12, ageingTime: 300, priority: 4096,
        vlanFiltering: true, vlanProtocol: '802.1ad', groupFwdMask: 8, defaultPvid: 10, mcastSnooping: false },
    });
    const l = await h.link.decode(Buffer.from(linkGolden.requests[br2], 'hex'));
    expect(l.kind === 'bridge' && l.info).toEqual({ stp: true, forwardDelay: 4, helloTime: 1, maxAge: 12, ageingTime: 300, priority: 4096,
      vlanFiltering: true, vlanProtocol: '802.1ad', groupFwdMask: 8, defaultPvid: 10, mcastSnooping: false });
  });

  it('turns VLAN filtering on with its protocol and PVID where the kernel allows it, else reports the refusal clearly', async () => {
    const r = await h.link.add({ kind: 'bridge', name: 'brv', vlanFiltering: true, vlanProtocol: '802.1ad', defaultPvid: 10 }).catch((e) => e);
    // Debian's guest kernel has CONFIG_BRIDGE_VLAN_FILTERING, so there the filtering branch runs (npm run test:kernel).
    if (inKernelGuest) expect(r, 'VLAN filtering in the guest kernel').not.toBeInstanceOf(Error);
    if (r instanceof Error) {
      // This kernel may be built without CONFIG_BRIDGE_VLAN_FILTERING: the refusal is the kernel's, named, and nothing stays.
      expect(r).toBeInstanceOf(NetlinkError);
      expect((r as NetlinkError).op).toBe('link.add');
      expect(r.message).toMatch(/brv/);
      expect((await ipLinks(nss.made[0])).some((l) => l.ifname === 'brv')).toBe(false);
    } else {
      const [j] = await ipLinks(nss.made[0], 'brv');
      expect(j.linkinfo.info_data).toMatchObject({ vlan_filtering: 1, vlan_protocol: '802.1ad', vlan_default_pvid: 10 });
      await h.link.set('brv', { vlanProtocol: '802.1Q', defaultPvid: 20 });
      const [k] = await ipLinks(nss.made[0], 'brv');
      expect(k.linkinfo.info_data).toMatchObject({ vlan_protocol: '802.1Q', vlan_default_pvid: 20 });
    }
  });

  it('link.set takes every settable bridge key and refuses one the bridge cannot change by name', async () => {
    await h.link.add({ kind: 'bridge', name: 'brs' });
    await h.link.set('brs', { priority: 8192, groupFwdMask: 8, ageingTime: 12.5 });
    const [j] = await ipLinks(nss.made[0], 'brs');
    expect(j.linkinfo.info_data).toMatchObject({ priority: 8192, group_fwd_mask: '0x8', ageing_time: 1250 });
    await expect(h.link.set('brs', { bridgeId: 'x' } as never)).rejects.toThrow(/bridgeId: unknown option/);
    await expect(h.link.set('brs', { vni: 5 } as never)).rejects.toThrow(/^link\.set: vni: unknown option|vni/);
  });
});
