// ipvlan: golden bytes everywhere; where the kernel has the driver, an l2 ipvlan moved into
// its own namespace shares the lower device's MAC and reaches the far end of the veth; where it
// lacks it, a clear refusal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Link, type Netns } from '../../lib/index.js';
import { Namespaces, inKernelGuest, ipLinks, kindAvailable, nsRun } from '../helpers.js';
import { expectGolden, expectKindRefused, goldenLayout, linkGolden } from './golden.js';

describe('ipvlan link kind', () => {
  const nss = new Namespaces();
  let g: Handle;
  let A: Netns, B: Netns, C: Netns;
  let a: Handle, b: Handle, c: Handle;

  beforeAll(async () => {
    g = await goldenLayout(nss, 'kipvg');
    A = await nss.create('kipva');
    B = await nss.create('kipvb');
    C = await nss.create('kipvc');
    a = await open({ netns: A });
    b = await open({ netns: B });
    c = await open({ netns: C });
    await a.link.add({ kind: 'veth', name: 'e0', peer: { name: 'e1', netns: B, up: true }, up: true });
  });
  afterAll(async () => {
    for (const h of [g, a, b, c]) await h?.close();
    await nss.cleanup();
  });

  it('encodes as iproute2 does', async () => {
    await expectGolden(g, 'ipvlan', {
      'ip link add link vp0 name ipv0 type ipvlan mode l3 private': { kind: 'ipvlan', name: 'ipv0', link: 'vp0', mode: 'l3', flags: 'private' },
      'ip link add link vp0 name ipv1 type ipvlan mode l3s vepa': { kind: 'ipvlan', name: 'ipv1', link: 'vp0', mode: 'l3s', flags: 'vepa' },
      'ip link add link vp0 name ipv2 type ipvlan mode l2': { kind: 'ipvlan', name: 'ipv2', link: 'vp0', mode: 'l2', flags: 'bridge' },
    });
    const l = await g.link.decode(Buffer.from(linkGolden.requests['ip link add link vp0 name ipv1 type ipvlan mode l3s vepa'], 'hex'));
    expect(l.kind === 'ipvlan' && l.info).toEqual({ mode: 'l3s', flags: 'vepa' });
    await expect(a.link.add({ kind: 'ipvlan', name: 'ipvx', link: 'e0', mode: 'l4' as never })).rejects.toThrow(/^link\.add: mode: must be one of "l2", "l3", "l3s"/);
    await expect(a.link.add({ kind: 'ipvlan', name: 'ipvx' } as never)).rejects.toThrow(/^link\.add: link: is required for an ipvlan link/);
  });

  it('gives a namespace an address behind the lower device\'s MAC, or is refused clearly', async () => {
    const present = await kindAvailable('ipvlan');
    if (inKernelGuest) expect(present, 'the ipvlan module in the guest kernel').toBe(true);
    const add = a.link.add({ kind: 'ipvlan', name: 'ipv0', link: 'e0', mode: 'l2', flags: 'bridge' });
    if (!present) await expectKindRefused(add, 'ipvlan', A, ['e0', 'lo']);
    else await ipvlanTraffic(await add);
  });

  async function ipvlanTraffic(l: Link): Promise<void> {
    expect(l.kind === 'ipvlan' && l.info).toEqual({ mode: 'l2', flags: 'bridge' });
    const lower = await a.link.get('e0');
    expect(l.mac).toBe(lower.mac);  // what sets ipvlan apart from macvlan
    const [j] = await ipLinks(A, 'ipv0');
    expect(j.linkinfo).toMatchObject({ info_kind: 'ipvlan', info_data: { mode: 'l2', bridge: true } });
    await a.link.set('ipv0', { flags: 'private' });
    const [k] = await ipLinks(A, 'ipv0');
    expect(k.linkinfo.info_data).toMatchObject({ mode: 'l2', private: true });
    await a.link.set('ipv0', { netns: C });
    await c.link.set('ipv0', { up: true });
    await c.addr.add('ipv0', '198.51.100.3/24');
    await b.addr.add('e1', '198.51.100.2/24');
    const r = await nsRun(C, 'ping', ['-c', '2', '-W', '5', '198.51.100.2']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // B learned C's address at the lower device's MAC.
    const n = await b.neigh.list();
    expect(n.find((x: any) => x.dst === '198.51.100.3')?.lladdr).toBe(lower.mac);
  }
});
