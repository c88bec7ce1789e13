// geneve: iproute2's bytes for IPv4 and IPv6 peers, decoded back; where the kernel has the
// driver, two hosts ping over a Geneve overlay on a veth underlay and `ip -d -j link` shows
// the settings; where it lacks it, a clear refusal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Handle } from '../../lib/index.js';
import { Namespaces, inKernelGuest, ipLinks, kindAvailable, nsRun, waitFor } from '../helpers.js';
import { expectGolden, goldenLayout, linkGolden } from './golden.js';
import { expectRefused, twoHosts, type Hosts } from './tunnel-helpers.js';

describe('geneve link kind', () => {
  const nss = new Namespaces();
  let h: Handle;
  let hosts: Hosts;
  beforeAll(async () => { h = await goldenLayout(nss, 'kgnvg'); hosts = await twoHosts(nss, 'kgnv'); });
  afterAll(async () => { await h?.close(); await hosts?.a.close(); await hosts?.b.close(); await nss.cleanup(); });

  it('encodes as iproute2 does, and decodes its request', async () => {
    const six = 'ip link add gnv1 type geneve id 7 remote 2001:db8::2 ttl 5 tos 3 dstport 6082 df set udpcsum';
    await expectGolden(h, 'geneve', {
      'ip link add gnv0 type geneve id 42 remote 198.51.100.2': { kind: 'geneve', name: 'gnv0', vni: 42, remote: '198.51.100.2' },
      [six]: { kind: 'geneve', name: 'gnv1', vni: 7, remote: '2001:db8::2', ttl: 5, tos: 3, dstPort: 6082, df: 'set', udpCsum: true },
    });
    const l = await h.link.decode(Buffer.from(linkGolden.requests[six], 'hex'));
    expect(l.kind === 'geneve' && l.info).toEqual({ df: 'set', vni: 7, remote: '2001:db8::2', label: 0, ttl: 5, tos: 3, dstPort: 6082, udpCsum: true });
    await expect(h.link.encode({ kind: 'geneve', name: 'g', vni: 1 << 24 })).rejects.toThrow(/vni: must be between 0 and 16777215/);
    await expect(h.link.encode({ kind: 'geneve', name: 'g' } as never)).rejects.toThrow(/vni: is required for a geneve link/);
  });

  it('two hosts ping over a geneve overlay, or the kernel refuses clearly', async () => {
    const present = await kindAvailable('geneve');
    if (inKernelGuest) expect(present, 'the geneve module in the guest kernel').toBe(true);
    const { A, B, a, b } = hosts;
    if (!present) {
      await expectRefused(A, a.link.add({ kind: 'geneve', name: 'gnv0', vni: 42, remote: '198.51.100.2' }), 'geneve', ['lo', 'u0']);
    } else {
      await a.link.add({ kind: 'geneve', name: 'gnv0', vni: 42, remote: '198.51.100.2', ttl: 9, up: true });
      await b.link.add({ kind: 'geneve', name: 'gnv0', vni: 42, remote: '198.51.100.1', up: true });
      const [j] = await ipLinks(A, 'gnv0');
      expect(j.linkinfo.info_kind).toBe('geneve');
      expect(j.linkinfo.info_data).toMatchObject({ id: 42, remote: '198.51.100.2', ttl: 9 });
      const l = await a.link.get('gnv0');
      expect(l.kind === 'geneve' && l.info).toMatchObject({ vni: 42, remote: '198.51.100.2', ttl: 9 });
      await a.addr.add('gnv0', '198.51.100.129/25');
      await b.addr.add('gnv0', '198.51.100.130/25');
      await waitFor(async () => (await nsRun(A, 'ping', ['-c', '1', '-W', '2', '198.51.100.130'])).code === 0, 'a ping over geneve', 30_000, 200);
      // Only the settings a live geneve may change are accepted by link.set.
      await expect(a.link.set('gnv0', { vni: 43 } as never)).rejects.toThrow(/^link\.set: vni: cannot be changed on a live link \(vxlan\/geneve take it only at creation/);
      expect((await ipLinks(B, 'gnv0'))[0].linkinfo.info_data.id).toBe(42);
    }
  });
});
