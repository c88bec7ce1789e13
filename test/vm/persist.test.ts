// Persistent taps for VMMs that open taps by name (Firecracker, cloud-hypervisor, jailed VMMs):
// vnetlink creates the tap with persist, an owner uid, a vnet header and two queues, then closes
// its fds. A process running as that uid, with no capability, opens it by name with TUNSETIFF
// (IFF_TAP | IFF_NO_PI | IFF_VNET_HDR | IFF_MULTI_QUEUE) as those VMMs do, and hands the queues to
// a QEMU guest that reaches the host end; another uid is refused. The tap outlives the VM.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns } from '../../lib/index.js';
import { Namespaces, ipLinks, privilegedSkipReason, waitFor } from '../helpers.js';
import { Vm, helperBinary, killAll, vmSkipReason } from './vm.js';

const skip = privilegedSkipReason() ?? vmSkipReason();
const OWNER = 64123;
const GUEST_MAC = '52:54:00:15:00:51';

describe.skipIf(skip)('a persistent tap opened by name by an unprivileged VMM', () => {
  const nss = new Namespaces();
  let H: Netns;
  let h: Handle;
  let vm: Vm | undefined;

  beforeAll(async () => {
    H = await nss.create('vmpt');
    h = await open({ netns: H });
  });
  afterAll(async () => {
    await vm?.kill();
    await killAll();
    await h?.close();
    await nss.cleanup();
  });

  it('the owner uid attaches both queues by name and the guest reaches the host; another uid gets EPERM', async () => {
    const tap = await h.tap.create({ name: 'fc0', persist: true, uid: OWNER, vnetHdr: true, queues: 2 });
    await tap.close();
    await h.addr.add('fc0', '198.51.100.1/24');
    await h.link.set('fc0', { up: true });
    const [l] = await ipLinks(H, 'fc0');
    expect(l.linkinfo.info_data).toMatchObject({ type: 'tap', persist: true, user: OWNER, multi_queue: true, vnet_hdr: true, numqueues: 0 });

    const helper = helperBinary();
    const other = spawnSync('ip', ['netns', 'exec', H.name, helper, 'tapexec', 'fc0', '2', String(OWNER + 1), String(OWNER + 1), 'true'], { encoding: 'utf8', timeout: 20_000 });
    expect(other.status).toBe(1);
    expect(other.stderr).toMatch(/TUNSETIFF fc0: Operation not permitted/);

    // What a jailed VMM does: drop to its uid, open the tap by name (fds 3 and 4), run the guest.
    vm = await Vm.start({ name: 'persist-guest', netns: H.name, wrapper: [helper, 'tapexec', 'fc0', '2', String(OWNER), String(OWNER)],
      args: ['-netdev', 'tap,id=n0,fds=3:4,vhost=off', '-device', `virtio-net-pci,netdev=n0,mac=${GUEST_MAC},mq=on,vectors=6`] });
    expect(await vm.ready()).toBe(GUEST_MAC);
    expect(vm.stderr).toContain(`tapexec: opened 2 as uid ${OWNER}`);
    // QEMU runs as the owner, not root.
    const status = spawnSync('cat', [`/proc/${vm.pid}/status`], { encoding: 'utf8' }).stdout;
    expect(status).toMatch(new RegExp(`^Uid:\\s+${OWNER}\\s`, 'm'));
    await waitFor(async () => (await ipLinks(H, 'fc0'))[0].linkinfo.info_data.numqueues >= 1, 'the VMM to attach', 10_000);

    await vm.cmd('addr 198.51.100.2/24');
    expect((await vm.cmd('ping 198.51.100.1 3 30')).ping).toBe('0');

    await vm.kill();
    // Persistent: the device stays after the VMM's fds are gone, with no queue attached.
    const [after] = await ipLinks(H, 'fc0');
    expect(after.linkinfo.info_data).toMatchObject({ persist: true, numqueues: 0 });
    await h.link.del('fc0');
    expect((await ipLinks(H)).map((x) => x.ifname)).toEqual(['lo']);
  }, 300_000);
});
