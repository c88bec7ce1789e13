// Two "hosts" joined by an underlay veth, each with a bridge, a VXLAN port (VNI 42) and a
// guest namespace behind a veth on the bridge: the guests ping each other across the overlay.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns } from '../lib/index.js';
import { Namespaces, hasTool, needTools, ipLinks, nsRun, privilegedSkipReason, waitFor } from './helpers.js';

const skip = privilegedSkipReason();

describe.skipIf(skip)('vxlan', () => {
  const nss = new Namespaces();
  const handles: Handle[] = [];
  let H1: Netns, H2: Netns, G1: Netns, G2: Netns;
  let h1: Handle, h2: Handle, g1: Handle, g2: Handle;

  beforeAll(async () => {
    [H1, H2, G1, G2] = await Promise.all(['vh1', 'vh2', 'vg1', 'vg2'].map((p) => nss.create(p)));
    [h1, h2, g1, g2] = await Promise.all([H1, H2, G1, G2].map((n) => open({ netns: n })));
    handles.push(h1, h2, g1, g2);
  });
  afterAll(async () => {
    for (const h of handles) await h.close();
    await nss.cleanup();
  });

  it('joins two bridges over VNI 42 so guests on either host ping each other', async (ctx) => {
    // Underlay: 198.51.100.0/24 between the hosts.
    await h1.link.add({ kind: 'veth', name: 'u0', peer: { name: 'u0', netns: H2 }, up: true });
    await h2.link.set('u0', { up: true });
    await h1.addr.add('u0', '198.51.100.1/24');
    await h2.addr.add('u0', '198.51.100.2/24');
    const hosts: Array<[Handle, Netns, Handle, string, string, string]> = [
      [h1, G1, g1, '198.51.100.1', '198.51.100.2', '192.168.122.11/24'],
      [h2, G2, g2, '198.51.100.2', '198.51.100.1', '192.168.122.12/24'],
    ];
    for (const [h, G, g, local, remote, guestIp] of hosts) {
      await h.link.add({ kind: 'bridge', name: 'br0', up: true });
      const vx = await h.link.add({ kind: 'vxlan', name: 'vx0', vni: 42, remote, local, link: 'u0', dstPort: 4789, ttl: 8, master: 'br0', up: true });
      expect(vx.info).toMatchObject({ vni: 42, remote, local, dstPort: 4789, ttl: 8 });
      await h.link.add({ kind: 'veth', name: 'gp0', peer: { name: 'eth1', netns: G }, master: 'br0', up: true });
      await g.link.set('eth1', { up: true });
      await g.addr.add('eth1', guestIp);
    }
    const [d] = await ipLinks(H1, 'vx0');
    expect(d.linkinfo.info_kind).toBe('vxlan');
    expect(d.linkinfo.info_data).toMatchObject({ id: 42, remote: '198.51.100.2', local: '198.51.100.1', link: 'u0', port: 4789, ttl: 8 });
    expect(d.master).toBe('br0');
    expect((await h1.bridge.show('br0'))[0].interfaces).toEqual(['gp0', 'vx0']);

    needTools(ctx, 'ping');
    await waitFor(async () => (await nsRun(G1, 'ping', ['-c', '1', '-W', '1', '192.168.122.12'])).code === 0, 'ping across the overlay', 15_000);
    // The frames really crossed the tunnel: the VXLAN devices counted them.
    const vx1 = await h1.link.get('vx0');
    const vx2 = await h2.link.get('vx0');
    expect(vx1.stats!.txPackets).toBeGreaterThan(0);
    expect(vx2.stats!.rxPackets).toBeGreaterThan(0);
    // And the remote guest's MAC was learned behind the VXLAN port (bridge fdb).
    const mac2 = (await g2.link.get('eth1')).mac!;
    const fdb = await nsRun(H1, 'bridge', ['fdb', 'show', 'br', 'br0']);
    expect(fdb.stdout).toMatch(new RegExp(`${mac2} dev vx0`));
  });

  it('uses the IANA port 4789 when dstPort is unset (the kernel alone would pick 8472)', async () => {
    try {
      await h1.link.add({ kind: 'vxlan', name: 'vxd', vni: 7, remote: '198.51.100.9' });
      const [d] = await ipLinks(H1, 'vxd');
      expect(d.linkinfo.info_data.port).toBe(4789);
    } finally {
      await h1.link.del('vxd').catch(() => {});
    }
  });

  it('rejects bad VXLAN input naming the field, creating nothing', async () => {
    const before = (await ipLinks(H1)).map((l) => l.ifname).sort();
    await expect(h1.link.add({ kind: 'vxlan', name: 'vx9', vni: 1 << 24, remote: '198.51.100.2' })).rejects.toThrow(/vni: must be between 0 and 16777215/);
    await expect(h1.link.add({ kind: 'vxlan', name: 'vx9' } as any)).rejects.toThrow(/vni: is required/);
    await expect(h1.link.add({ kind: 'vxlan', name: 'vx9', vni: 5, remote: '198.51.100.2', mcastGroup: '239.1.1.1', link: 'u0' })).rejects.toThrow(/not both/);
    await expect(h1.link.add({ kind: 'vxlan', name: 'vx9', vni: 5, mcastGroup: '239.1.1.1' })).rejects.toThrow(/needs the underlay device/);
    await expect(h1.link.add({ kind: 'vxlan', name: 'vx9', vni: 5, remote: '239.1.1.1' })).rejects.toThrow(/use mcastGroup/);
    await expect(h1.link.add({ kind: 'vxlan', name: 'vx9', vni: 5, remote: 'nope' })).rejects.toThrow(TypeError);
    await expect(h1.link.add({ kind: 'vxlan', name: 'vx9', vni: 5, remote: '198.51.100.2', local: 'fd00::1' })).rejects.toThrow(/local/);
    await expect(h1.link.add({ kind: 'vxlan', name: 'vx9', vni: 5, srcPorts: [2000, 1000] })).rejects.toThrow(/srcPorts/);
    // The kernel refuses a second device on the same VNI and port: a NetlinkError, nothing made.
    const e = await h1.link.add({ kind: 'vxlan', name: 'vx9', vni: 42, remote: '198.51.100.2', local: '198.51.100.1', link: 'u0' }).catch((x) => x);
    expect(e?.name).toBe('NetlinkError');
    expect((await ipLinks(H1)).map((l) => l.ifname).sort()).toEqual(before);
  });
});
