// gre, gretap and ip6gretap: iproute2's bytes (it sends every setting, defaults included) and
// the keys it sets flags for; where the kernel has the drivers, two hosts ping over a gretap
// and a gre tunnel on a veth underlay, and `ip -d -j link` shows keys and endpoints; where it
// lacks them, a clear refusal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Handle } from '../../lib/index.js';
import { Namespaces, inKernelGuest, ipLinks, kindAvailable, nsRun, waitFor } from '../helpers.js';
import { expectGolden, goldenLayout, linkGolden } from './golden.js';
import { expectRefused, twoHosts, type Hosts } from './tunnel-helpers.js';

describe('gre, gretap and ip6gretap link kinds', () => {
  const nss = new Namespaces();
  let h: Handle;
  let hosts: Hosts;
  beforeAll(async () => { h = await goldenLayout(nss, 'kgreg'); hosts = await twoHosts(nss, 'kgre'); });
  afterAll(async () => { await h?.close(); await hosts?.a.close(); await hosts?.b.close(); await nss.cleanup(); });

  it('encodes as iproute2 does, and decodes its requests', async () => {
    const gre = 'ip link add gre1 type gre remote 198.51.100.2 local 198.51.100.1 ttl 64 tos 3 ikey 5 okey 6 nopmtudisc dev vp0';
    await expectGolden(h, 'gretap', {
      'ip link add gt0 type gretap remote 198.51.100.2 local 198.51.100.1': { kind: 'gretap', name: 'gt0', remote: '198.51.100.2', local: '198.51.100.1' },
    });
    await expectGolden(h, 'gre', {
      [gre]: { kind: 'gre', name: 'gre1', remote: '198.51.100.2', local: '198.51.100.1', ttl: 64, tos: 3, ikey: 5, okey: 6, pmtudisc: false, link: 'vp0' },
    });
    await expectGolden(h, 'ip6gretap', {
      'ip link add g6 type ip6gretap remote 2001:db8::2 local 2001:db8::1 key 9': { kind: 'ip6gretap', name: 'g6', remote: '2001:db8::2', local: '2001:db8::1', key: 9 },
    });
    const l = await h.link.decode(Buffer.from(linkGolden.requests[gre], 'hex'));
    expect(l.kind === 'gre' && l.info).toMatchObject({ ikey: 5, okey: 6, iflags: 0x2000, oflags: 0x2000, local: '198.51.100.1', remote: '198.51.100.2', pmtudisc: false, tos: 3, linkIndex: 6, ttl: 64 });
    await expect(h.link.encode({ kind: 'gretap', name: 'g', local: '2001:db8::1' })).rejects.toThrow(/local: must be an IPv4 address/);
    await expect(h.link.encode({ kind: 'ip6gretap', name: 'g', key: 1, ikey: 2 })).rejects.toThrow(/key: give key, or ikey\/okey, not both/);
  });

  it('two hosts ping over gretap (Ethernet) and gre (IP) tunnels, or the kernel refuses clearly', async () => {
    const present = await kindAvailable('gretap');
    if (inKernelGuest) expect(present, 'the ip_gre module in the guest kernel').toBe(true);
    const { A, B, a, b } = hosts;
    if (!present) {
      await expectRefused(A, a.link.add({ kind: 'gretap', name: 'gt0', local: '198.51.100.1', remote: '198.51.100.2' }), 'gretap', ['lo', 'u0']);
      await expectRefused(A, a.link.add({ kind: 'gre', name: 'gre1', local: '198.51.100.1', remote: '198.51.100.2' }), 'gre', ['lo', 'u0']);
    } else {
      await a.link.add({ kind: 'gretap', name: 'gt0', local: '198.51.100.1', remote: '198.51.100.2', key: 77, up: true });
      await b.link.add({ kind: 'gretap', name: 'gt0', local: '198.51.100.2', remote: '198.51.100.1', key: 77, up: true });
      const [j] = await ipLinks(A, 'gt0');
      expect(j.linkinfo.info_kind).toBe('gretap');
      expect(j.linkinfo.info_data).toMatchObject({ remote: '198.51.100.2', local: '198.51.100.1' });
      const l = await a.link.get('gt0');
      expect(l.kind === 'gretap' && l.info).toMatchObject({ ikey: 77, okey: 77, local: '198.51.100.1', remote: '198.51.100.2' });
      await a.addr.add('gt0', '198.51.100.129/26');
      await b.addr.add('gt0', '198.51.100.130/26');
      await waitFor(async () => (await nsRun(A, 'ping', ['-c', '1', '-W', '2', '198.51.100.130'])).code === 0, 'a ping over gretap', 30_000, 200);
      // An IP-only gre tunnel next to it, on its own keys (the kernel tells tunnels apart by them).
      await a.link.add({ kind: 'gre', name: 'gre1', local: '198.51.100.1', remote: '198.51.100.2', ikey: 5, okey: 6, up: true });
      await b.link.add({ kind: 'gre', name: 'gre1', local: '198.51.100.2', remote: '198.51.100.1', ikey: 6, okey: 5, up: true });
      await a.addr.add('gre1', '198.51.100.193/26');
      await b.addr.add('gre1', '198.51.100.194/26');
      await waitFor(async () => (await nsRun(A, 'ping', ['-c', '1', '-W', '2', '198.51.100.194'])).code === 0, 'a ping over gre', 30_000, 200);
      expect((await ipLinks(B, 'gre1'))[0].linkinfo.info_kind).toBe('gre');
      // ip6gretap: created with its endpoints as ip shows them.
      await a.addr.add('u0', '2001:db8::1/64');
      await a.link.add({ kind: 'ip6gretap', name: 'g6', local: '2001:db8::1', remote: '2001:db8::2' });
      const [g6] = await ipLinks(A, 'g6');
      expect(g6.linkinfo.info_kind).toBe('ip6gretap');
      expect(g6.linkinfo.info_data).toMatchObject({ remote: '2001:db8::2', local: '2001:db8::1' });
    }
  });
});
