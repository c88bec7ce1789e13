// vrf: golden bytes everywhere; where the kernel has the driver, a port enslaved to a VRF
// routes through the VRF's table (the connected route lands in table 100, not main, and
// `ping -I vrf0` reaches the peer); where it lacks it, a clear refusal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Link, type Netns } from '../../lib/index.js';
import { Namespaces, inKernelGuest, ipLinks, kindAvailable, nsExec, nsRun, waitFor } from '../helpers.js';
import { expectGolden, expectKindRefused, goldenLayout, linkGolden } from './golden.js';

describe('vrf link kind', () => {
  const nss = new Namespaces();
  let g: Handle;
  let A: Netns, B: Netns;
  let a: Handle, b: Handle;

  beforeAll(async () => {
    g = await goldenLayout(nss, 'kvrfg');
    A = await nss.create('kvrfa');
    B = await nss.create('kvrfb');
    a = await open({ netns: A });
    b = await open({ netns: B });
    await a.link.add({ kind: 'veth', name: 'e0', peer: { name: 'e1', netns: B, up: true } });
  });
  afterAll(async () => {
    for (const h of [g, a, b]) await h?.close();
    await nss.cleanup();
  });

  it('encodes as iproute2 does', async () => {
    await expectGolden(g, 'vrf', { 'ip link add vrf0 type vrf table 100': { kind: 'vrf', name: 'vrf0', table: 100 } });
    const l = await g.link.decode(Buffer.from(linkGolden.requests['ip link add vrf0 type vrf table 100'], 'hex'));
    expect(l.kind === 'vrf' && l.info).toEqual({ table: 100 });
    await expect(a.link.add({ kind: 'vrf', name: 'vrfx' } as never)).rejects.toThrow(/^link\.add: table: is required for a vrf link/);
    await expect(a.link.add({ kind: 'vrf', name: 'vrfx', table: 0 })).rejects.toThrow(/^link\.add: table: must be between 1 and 4294967295/);
  });

  it('routes a port through its table, or is refused clearly', async () => {
    const present = await kindAvailable('vrf');
    if (inKernelGuest) expect(present, 'the vrf module in the guest kernel').toBe(true);
    const add = a.link.add({ kind: 'vrf', name: 'vrf0', table: 100, up: true });
    if (!present) await expectKindRefused(add, 'vrf', A, ['e0', 'lo']);
    else await vrfRouting(await add);
  });

  async function vrfRouting(l: Link): Promise<void> {
    expect(l.kind === 'vrf' && l.info).toEqual({ table: 100 });
    const [j] = await ipLinks(A, 'vrf0');
    expect(j.linkinfo).toMatchObject({ info_kind: 'vrf', info_data: { table: 100 } });
    await a.link.set('e0', { master: 'vrf0', up: true });
    await a.addr.add('e0', '198.51.100.1/24');
    await b.addr.add('e1', '198.51.100.2/24');
    const port = await a.link.get('e0');
    expect(port.port).toEqual({ kind: 'vrf', table: 100 });
    const [pj] = await ipLinks(A, 'e0');
    expect(pj.linkinfo).toMatchObject({ info_slave_kind: 'vrf', info_slave_data: { table: 100 } });
    // The connected route is in the VRF's table, not in main.
    const t100 = await waitFor(async () => {
      const rs = JSON.parse(await nsExec(A, 'ip', ['-j', 'route', 'show', 'table', '100']));
      return rs.some((r: any) => r.dst === '198.51.100.0/24' && r.dev === 'e0') ? rs : undefined;
    }, 'the connected route in table 100');
    expect(t100.length).toBeGreaterThan(0);
    const main = JSON.parse(await nsExec(A, 'ip', ['-j', 'route', 'show', 'table', 'main']));
    expect(main.some((r: any) => r.dst === '198.51.100.0/24')).toBe(false);
    const r = await nsRun(A, 'ping', ['-c', '2', '-W', '5', '-I', 'vrf0', '198.51.100.2']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    // Outside the VRF there is no route to the peer at all.
    const out = await nsRun(A, 'ping', ['-c', '1', '-W', '1', '198.51.100.2']);
    expect(out.code).not.toBe(0);
  }
});
