// Scenario 3, macvtap: two macvtaps in bridge mode on a veth uplink into a "LAN" namespace, each
// opened with macvtap.open(name, { vnetHdr: true }) and handed to a QEMU guest whose MAC is the
// macvtap's. Both guests reach the LAN host; they reach each other in bridge mode, and no longer
// once both macvtaps are switched to private mode (while the LAN stays reachable).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, qemuNetdev, type Handle, type MacvtapQueues, type Netns } from '../../lib/index.js';
import { Namespaces, ipLinks, privilegedSkipReason } from '../helpers.js';
import { Vm, killAll, vmSkipReason } from './vm.js';

const skip = privilegedSkipReason() ?? vmSkipReason();
const LAN_HOST = '198.51.100.254';

describe.skipIf(skip)('QEMU guests on macvtaps', () => {
  const nss = new Namespaces();
  let H: Netns, L: Netns;
  let h: Handle, l: Handle;
  const queues: MacvtapQueues[] = [];
  const vms: Vm[] = [];

  beforeAll(async () => {
    [H, L] = await Promise.all([nss.create('vmvh'), nss.create('vmvl')]);
    [h, l] = await Promise.all([open({ netns: H }), open({ netns: L })]);
    // The uplink: up0 in the host, its peer lan0 is the LAN (a host at .254).
    await h.link.add({ kind: 'veth', name: 'up0', peer: { name: 'lan0', netns: L }, up: true });
    await l.link.set('lan0', { up: true });
    await l.addr.add('lan0', `${LAN_HOST}/24`);
  });
  afterAll(async () => {
    await Promise.all(vms.map((vm) => vm.kill()));
    await killAll();
    await Promise.all(queues.map((q) => q.close().catch(() => {})));
    await Promise.all([h?.close(), l?.close()]);
    await nss.cleanup();
  });

  it('guests take the macvtaps\' MACs, reach the LAN host, and each other in bridge mode but not in private mode', async () => {
    for (const name of ['mvt0', 'mvt1']) {
      await h.link.add({ kind: 'macvtap', name, link: 'up0', mode: 'bridge', up: true });
      const q = await h.macvtap.open(name, { vnetHdr: true });
      queues.push(q);
      const [shown] = await ipLinks(H, name);
      expect(q.mac).toBe(shown.address);   // what `ip link` shows is what the guest must use
    }
    const started = await Promise.all(queues.map(async (q, i) => {
      const { args, stdio } = qemuNetdev(q, { id: 'n0' });
      expect(args[3]).toBe(`virtio-net-pci,netdev=n0,mac=${q.mac}`);
      const vm = await Vm.start({ name: `macvtap-guest-${i}`, netns: H.name, args, fds: stdio.slice(3) as number[] });
      vms.push(vm);
      return vm;
    }));
    await Promise.all(queues.map((q) => q.close()));
    const macs = await Promise.all(started.map((vm) => vm.ready()));
    expect(macs).toEqual(queues.map((q) => q.mac));
    const [a, b] = started;
    await a.cmd('addr 198.51.100.11/24');
    await b.cmd('addr 198.51.100.12/24');

    const both = (cmd: [string, string]) => Promise.all([a.cmd(cmd[0]), b.cmd(cmd[1])]);
    expect((await both([`ping ${LAN_HOST} 2 20`, `ping ${LAN_HOST} 2 20`])).map((r) => r.ping)).toEqual(['0', '0']);
    expect((await both(['ping 198.51.100.12 2 20', 'ping 198.51.100.11 2 20'])).map((r) => r.ping)).toEqual(['0', '0']);

    await h.link.set('mvt0', { mode: 'private' });
    await h.link.set('mvt1', { mode: 'private' });
    for (const n of ['mvt0', 'mvt1']) expect((await ipLinks(H, n))[0].linkinfo.info_data.mode).toBe('private');
    // Private: frames between siblings go out the uplink and never come back to the other one.
    expect((await both(['ping 198.51.100.12 2 5', 'ping 198.51.100.11 2 5'])).map((r) => r.ping)).toEqual(['1', '1']);
    // ... while both guests still reach the LAN, so the failure above is the mode, not a dead guest.
    expect((await both([`ping ${LAN_HOST} 2 20`, `ping ${LAN_HOST} 2 20`])).map((r) => r.ping)).toEqual(['0', '0']);
  }, 300_000);
});
