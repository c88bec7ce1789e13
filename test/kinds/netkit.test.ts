// netkit (Linux 6.7+): the bare kind against iproute2 6.1's bytes (it knows no netkit options),
// and the options (policy, peer policy, mode, the peer nest) against the uapi header's layout,
// written out by hand below. Neither this machine's kernel nor the guest's 6.1 has netkit: where
// a kernel has it, a pair is made and `ip -d -j link` shows it; where not, a clear refusal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns } from '../../lib/index.js';
import { Namespaces, inKernelGuest, ipLinks, kindAvailable } from '../helpers.js';
import { expectGolden, goldenLayout } from './golden.js';
import { expectRefused, kernelAtLeast } from './tunnel-helpers.js';

describe('netkit link kind', () => {
  const nss = new Namespaces();
  let h: Handle;
  let ns: Netns;
  let nl: Handle;
  beforeAll(async () => { h = await goldenLayout(nss, 'knkg'); ns = await nss.create('knk'); nl = await open({ netns: ns }); });
  afterAll(async () => { await h?.close(); await nl?.close(); await nss.cleanup(); });

  it('encodes the bare kind as iproute2 does, and the options as include/uapi/linux/if_link.h lays them out', async () => {
    await expectGolden(h, 'netkit', { 'ip link add nk0 type netkit': { kind: 'netkit', name: 'nk0' } });
    // ip link add nk0 type netkit mode l2 forward peer blackhole name nk1 (iproute2 6.7+ words)
    const want = Buffer.from([
      '70000000 1000 0506 00000000 00000000',    // nlmsghdr: 112 bytes, RTM_NEWLINK, REQUEST|ACK|EXCL|CREATE
      '00000000 00000000 00000000 00000000',     // ifinfomsg
      '0800 0300 6e6b3000',                      // IFLA_IFNAME "nk0"
      '4800 1200',                               // IFLA_LINKINFO, 72 bytes
      '0a00 0100 6e65746b 69740000',             //   IFLA_INFO_KIND "netkit"
      '3800 0200',                               //   IFLA_INFO_DATA, 56 bytes
      '0800 0300 00000000',                      //     IFLA_NETKIT_POLICY NETKIT_PASS (forward)
      '0800 0400 02000000',                      //     IFLA_NETKIT_PEER_POLICY NETKIT_DROP (blackhole)
      '0800 0500 00000000',                      //     IFLA_NETKIT_MODE NETKIT_L2
      '1c00 0100',                               //     IFLA_NETKIT_PEER_INFO, 28 bytes: an ifinfomsg, then the peer's attributes
      '00000000 00000000 00000000 00000000',
      '0800 0300 6e6b3100',                      //       IFLA_IFNAME "nk1"
    ].join('').replace(/\s+/g, ''), 'hex');
    const b = await h.link.encode({ kind: 'netkit', name: 'nk0', mode: 'l2', policy: 'forward', peerPolicy: 'blackhole', peer: { name: 'nk1' } });
    b.fill(0, 8, 16);
    expect(b.toString('hex')).toBe(want.toString('hex'));
    const l = await h.link.decode(want);
    expect(l.kind === 'netkit' && l.info).toEqual({ policy: 'forward', peerPolicy: 'blackhole', mode: 'l2' });
    await expect(h.link.encode({ kind: 'netkit', name: 'nk0', policy: 'drop' as never })).rejects.toThrow(/policy: must be one of "forward", "blackhole"/);
  });

  it('makes a pair ip shows, or the kernel refuses clearly (netkit needs Linux 6.7)', async () => {
    const present = await kindAvailable('netkit');
    if (inKernelGuest && kernelAtLeast(6, 7)) expect(present, 'netkit in a 6.7+ guest kernel').toBe(true);
    if (!present) {
      await expectRefused(ns, nl.link.add({ kind: 'netkit', name: 'nk0', mode: 'l2', peer: { name: 'nk1' } }), 'netkit', ['lo']);
    } else {
      await nl.link.add({ kind: 'netkit', name: 'nk0', mode: 'l2', peerPolicy: 'blackhole', peer: { name: 'nk1' } });
      const names = (await ipLinks(ns)).map((l: any) => l.ifname).sort();
      expect(names).toEqual(['lo', 'nk0', 'nk1']);
      const l = await nl.link.get('nk0');
      expect(l.kind === 'netkit' && l.info).toMatchObject({ mode: 'l2', peerPolicy: 'blackhole', primary: true });
    }
  });
});
