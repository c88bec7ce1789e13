// vxlan on its table: iproute2's bytes for unicast, multicast and IPv6 endpoints, and what
// link.decode and `ip -d -j link` read back. (Traffic over vxlan: test/vxlan.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Handle } from '../../lib/index.js';
import { Namespaces, ipLinks } from '../helpers.js';
import { expectGolden, goldenLayout, linkGolden } from './golden.js';

describe('vxlan link kind', () => {
  const nss = new Namespaces();
  let h: Handle;
  beforeAll(async () => { h = await goldenLayout(nss, 'kvxlan'); });
  afterAll(async () => {
    await h?.close();
    await nss.cleanup();
  });

  it('encodes as iproute2 does', async () => {
    await expectGolden(h, 'vxlan', {
      'ip link add vx1 type vxlan id 42 remote 198.51.100.2 local 198.51.100.1 dstport 4789':
        { kind: 'vxlan', name: 'vx1', vni: 42, remote: '198.51.100.2', local: '198.51.100.1', learning: true },
      'ip link add vx2 type vxlan dev vp0 ttl 5 tos 3 srcport 1000 2000 proxy l2miss l3miss ageing 300 maxaddress 10 udpcsum id 7 local 198.51.100.1 group 239.1.1.1 nolearning dstport 4790':
        { kind: 'vxlan', name: 'vx2', link: 'vp0', ttl: 5, tos: 3, srcPorts: [1000, 2000], proxy: true, l2miss: true, l3miss: true,
          ageing: 300, maxAddresses: 10, udpCsum: true, vni: 7, local: '198.51.100.1', mcastGroup: '239.1.1.1', learning: false, dstPort: 4790 },
      'ip link add vx3 type vxlan id 16777215 local 2001:db8::1 remote 2001:db8::2 dstport 4789':
        { kind: 'vxlan', name: 'vx3', vni: 16777215, local: '2001:db8::1', remote: '2001:db8::2', learning: true },
    });
  });

  it('decodes every setting the table has from the captured request', async () => {
    const l = await h.link.decode(Buffer.from(linkGolden.requests['ip link add vx2 type vxlan dev vp0 ttl 5 tos 3 srcport 1000 2000 proxy l2miss l3miss ageing 300 maxaddress 10 udpcsum id 7 local 198.51.100.1 group 239.1.1.1 nolearning dstport 4790'], 'hex'));
    expect(l.kind === 'vxlan' && l.info).toEqual({ linkIndex: 6, ttl: 5, tos: 3, srcPortMin: 1000, srcPortMax: 2000, proxy: true, l2miss: true,
      l3miss: true, ageing: 300, maxAddresses: 10, udpCsum: true, vni: 7, local: '198.51.100.1', mcastGroup: '239.1.1.1', learning: false, dstPort: 4790 });
  });

  it('creates what it encodes: ip -d -j link shows the same settings', async () => {
    await h.link.add({ kind: 'vxlan', name: 'vx9', vni: 9, link: 'vp0', local: '2001:db8::1', remote: '2001:db8::2', ttl: 7, srcPorts: [2000, 3000] });
    const [j] = await ipLinks(nss.made[0], 'vx9');
    expect(j.linkinfo.info_data).toMatchObject({ id: 9, remote6: '2001:db8::2', local6: '2001:db8::1', ttl: 7, port: 4789, port_range: { low: 2000, high: 3000 } });
    const l = await h.link.get('vx9');
    expect(l.kind === 'vxlan' && l.info).toMatchObject({ vni: 9, remote: '2001:db8::2', local: '2001:db8::1', linkIndex: 6, ttl: 7, dstPort: 4789 });
  });
});
