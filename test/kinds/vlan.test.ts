// vlan: golden bytes everywhere; where the kernel has 8021q, two namespaces ping over a VLAN
// on a veth (and not across two different VLAN ids), as `ip -d -j link` describes it; where it
// lacks it, a clear refusal that leaves nothing behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Link, type Netns } from '../../lib/index.js';
import { Namespaces, inKernelGuest, ipLinks, kindAvailable, nsRun } from '../helpers.js';
import { expectGolden, expectKindRefused, goldenLayout, linkGolden } from './golden.js';

const qinq = 'ip link add link vp0 name vp0.20 type vlan protocol 802.1ad id 20 reorder_hdr off gvrp on mvrp on loose_binding on';

describe('vlan link kind', () => {
  const nss = new Namespaces();
  let g: Handle;
  let A: Netns, B: Netns;
  let a: Handle, b: Handle;

  beforeAll(async () => {
    g = await goldenLayout(nss, 'kvlang');
    A = await nss.create('kvlana');
    B = await nss.create('kvlanb');
    a = await open({ netns: A });
    b = await open({ netns: B });
    await a.link.add({ kind: 'veth', name: 'e0', peer: { name: 'e1', netns: B }, up: true });
    await b.link.set('e1', { up: true });
  });
  afterAll(async () => {
    for (const h of [g, a, b]) await h?.close();
    await nss.cleanup();
  });

  it('encodes as iproute2 does and decodes the flags back', async () => {
    await expectGolden(g, 'vlan', {
      'ip link add link vp0 name vp0.10 type vlan id 10': { kind: 'vlan', name: 'vp0.10', link: 'vp0', id: 10 },
      [qinq]: { kind: 'vlan', name: 'vp0.20', link: 'vp0', protocol: '802.1ad', id: 20, reorderHdr: false, gvrp: true, mvrp: true, looseBinding: true },
    });
    const l = await g.link.decode(Buffer.from(linkGolden.requests[qinq], 'hex'));
    expect(l.kind === 'vlan' && l.info).toEqual({ protocol: '802.1ad', id: 20, reorderHdr: false, gvrp: true, looseBinding: true, mvrp: true });
    expect(l.link).toBe('vp0');
  });

  it('refuses bad input by name before any syscall', async () => {
    await expect(a.link.add({ kind: 'vlan', name: 'e0.5000', link: 'e0', id: 5000 })).rejects.toThrow(/^link\.add: id: must be between 0 and 4094/);
    await expect(a.link.add({ kind: 'vlan', name: 'e0.x', link: 'e0' } as never)).rejects.toThrow(/^link\.add: id: is required for a vlan link/);
    await expect(a.link.add({ kind: 'vlan', name: 'e0.x', id: 1 } as never)).rejects.toThrow(/^link\.add: link: is required for a vlan link/);
    await expect(a.link.add({ kind: 'vlan', name: 'e0.x', link: 'e0', id: 1, protocol: '802.1x' as never })).rejects.toThrow(/protocol: must be one of "802.1Q", "802.1ad"/);
    expect((await ipLinks(A)).map((l) => l.ifname).sort()).toEqual(['e0', 'lo']);
  });

  it('carries traffic between two namespaces over VLAN 10 on a veth, or is refused clearly', async () => {
    const present = await kindAvailable('vlan');
    if (inKernelGuest) expect(present, 'the 8021q module in the guest kernel').toBe(true);
    const add = a.link.add({ kind: 'vlan', name: 'e0.10', link: 'e0', id: 10, gvrp: false, up: true });
    if (!present) await expectKindRefused(add, 'vlan', A, ['e0', 'lo']);
    else await vlanTraffic(await add);
  });

  async function vlanTraffic(l: Link): Promise<void> {
    expect(l.kind === 'vlan' && l.info).toMatchObject({ id: 10, protocol: '802.1Q', reorderHdr: true, gvrp: false });
    await b.link.add({ kind: 'vlan', name: 'e1.10', link: 'e1', id: 10, up: true });
    await b.link.add({ kind: 'vlan', name: 'e1.11', link: 'e1', id: 11, protocol: '802.1Q', up: true });
    const [j] = await ipLinks(A, 'e0.10');
    expect(j.link).toBe('e0');
    expect(j.linkinfo.info_kind).toBe('vlan');
    expect(j.linkinfo.info_data).toMatchObject({ protocol: '802.1Q', id: 10 });
    expect(j.linkinfo.info_data.flags).toContain('REORDER_HDR');
    await a.addr.add('e0.10', '198.51.100.1/24');
    await b.addr.add('e1.10', '198.51.100.2/24');
    const r = await nsRun(A, 'ping', ['-c', '2', '-W', '5', '198.51.100.2']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // A flag changes on the live link, as `ip link set e0.10 type vlan gvrp on` would.
    await a.link.set('e0.10', { gvrp: true });
    const [k] = await ipLinks(A, 'e0.10');
    expect(k.linkinfo.info_data.flags).toEqual(expect.arrayContaining(['REORDER_HDR', 'GVRP']));
    await expect(a.link.set('e0.10', { id: 11 } as never)).rejects.toThrow(/^link\.set: id: cannot be changed on a live link/);
    // The VLAN id separates: an address on VLAN 11 in B is not reachable from VLAN 10.
    await b.addr.add('e1.11', '203.0.113.2/24');
    await a.addr.add('e0.10', '203.0.113.1/24');
    const miss = await nsRun(A, 'ping', ['-c', '1', '-W', '1', '203.0.113.2']);
    expect(miss.code).not.toBe(0);
  }
});
