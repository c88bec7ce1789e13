// ipvtap: iproute2's bytes for its modes and flags; where the kernel has the driver, the
// link's /dev/tapN queue (opened as a macvtap's, through nl.macvtap.open) carries frames both
// ways: an ARP request written to the fd is answered by the host on the other end of the
// lower link, and the reply is read back from the fd. Where it lacks it, a clear refusal.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Handle } from '../../lib/index.js';
import { Namespaces, inKernelGuest, ipLinks, kindAvailable, waitFor } from '../helpers.js';
import { expectGolden, goldenLayout, linkGolden } from './golden.js';
import { expectRefused, twoHosts, type Hosts } from './tunnel-helpers.js';

const mac = (s: string) => Buffer.from(s.replace(/:/g, ''), 'hex');
const ip4 = (s: string) => Buffer.from(s.split('.').map(Number));
function arpRequest(sha: string, spa: string, tpa: string): Buffer {
  const arp = Buffer.concat([Buffer.from('0001080006040001', 'hex'), mac(sha), ip4(spa), Buffer.alloc(6), ip4(tpa)]);
  return Buffer.concat([mac('ff:ff:ff:ff:ff:ff'), mac(sha), Buffer.from('0806', 'hex'), arp]);
}

describe('ipvtap link kind', () => {
  const nss = new Namespaces();
  let h: Handle;
  let hosts: Hosts;
  beforeAll(async () => { h = await goldenLayout(nss, 'kipvg'); hosts = await twoHosts(nss, 'kipv'); });
  afterAll(async () => { await h?.close(); await hosts?.a.close(); await hosts?.b.close(); await nss.cleanup(); });

  it('encodes as iproute2 does, and decodes its requests', async () => {
    const l3s = 'ip link add link vp0 name ipvt1 type ipvtap mode l3s private';
    await expectGolden(h, 'ipvtap', {
      'ip link add link vp0 name ipvt0 type ipvtap mode l2 bridge': { kind: 'ipvtap', name: 'ipvt0', link: 'vp0', mode: 'l2', flags: [] },
      [l3s]: { kind: 'ipvtap', name: 'ipvt1', link: 'vp0', mode: 'l3s', flags: ['private'] },
    });
    const l = await h.link.decode(Buffer.from(linkGolden.requests[l3s], 'hex'));
    expect(l.kind === 'ipvtap' && l.info).toEqual({ mode: 'l3s', flags: ['private'] });
    await expect(h.link.encode({ kind: 'ipvtap', name: 'x', link: 'vp0', flags: ['private', 'vepa'] })).rejects.toThrow(/flags: private and vepa exclude each other/);
    await expect(h.link.encode({ kind: 'ipvtap', name: 'x', link: 'vp0', mode: 'l4' as never })).rejects.toThrow(/mode: must be one of "l2", "l3", "l3s"/);
  });

  it("a queue fd carries frames to and from the lower link's other end, or the kernel refuses clearly", async () => {
    const present = await kindAvailable('ipvtap');
    if (inKernelGuest) expect(present, 'the ipvtap module in the guest kernel').toBe(true);
    const { A, a } = hosts;
    if (!present) {
      await expectRefused(A, a.link.add({ kind: 'ipvtap', name: 'ipvt0', link: 'u0', mode: 'l2' }), 'ipvtap', ['lo', 'u0']);
    } else {
      // The ipvtap takes the address; the lower link keeps none of its own for this test.
      await a.addr.del('u0', '198.51.100.1/25');
      const l = await a.link.add({ kind: 'ipvtap', name: 'ipvt0', link: 'u0', mode: 'l2', up: true });
      expect(l.kind === 'ipvtap' && l.info).toMatchObject({ mode: 'l2' });
      const [j] = await ipLinks(A, 'ipvt0');
      expect(j.linkinfo.info_kind).toBe('ipvtap');
      expect(j.linkinfo.info_data).toMatchObject({ mode: 'l2' });
      await a.addr.add('ipvt0', '198.51.100.10/25');
      await using q = await a.macvtap.open('ipvt0', { vnetHdr: false });
      expect(q.fds).toHaveLength(1);
      const fd = q.fds[0];
      const me = l.mac!;
      const reply = await waitFor((): Buffer | undefined => {
        fs.writeSync(fd, arpRequest(me, '198.51.100.10', '198.51.100.2'));
        const buf = Buffer.alloc(2048);
        for (let i = 0; i < 64; i++) {
          let n = 0;
          try { n = fs.readSync(fd, buf); } catch (e: any) { if (e.code === 'EAGAIN') break; throw e; }
          const f = buf.subarray(0, n);
          // An ARP reply (op 2) from 198.51.100.2, to us.
          if (n >= 42 && f.readUInt16BE(12) === 0x0806 && f.readUInt16BE(20) === 2 && f.subarray(28, 32).equals(ip4('198.51.100.2'))) return Buffer.from(f);
        }
        return undefined;
      }, 'an ARP reply read from the ipvtap fd', 30_000, 200);
      expect(reply!.subarray(0, 6).equals(mac(me))).toBe(true);
      expect(reply!.subarray(38, 42).equals(ip4('198.51.100.10'))).toBe(true);
    }
  });
});
