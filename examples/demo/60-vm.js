// A real VM: a QEMU guest (Debian's cloud kernel, busybox) on the NAT network, its virtio NIC
// on a vnet-header tap whose fd qemuNetdev hands over. Runs when qemu-system-x86_64 is installed;
// the guest image is fetched with apt-get download and cached (examples/vm/image.js).
import { spawnSync } from 'node:child_process';
import { open, qemuNetdev } from '../../dist/index.js';
import { guestImage } from '../vm/image.js';
import { QEMU, Vm, accelArgs } from '../vm/qemu-guest.js';

export const title = 'A real VM: a QEMU guest on the NAT network through a tap fd';

const MAC = '52:54:00:60:00:01';

export async function run(ctx) {
  if (spawnSync('sh', ['-c', `command -v ${QEMU}`]).status !== 0) {
    ctx.say(`skipped: ${QEMU} is not installed (apt-get install qemu-system-x86)`);
    return;
  }
  const t0 = performance.now();
  const img = guestImage();
  const accel = await accelArgs();
  ctx.say(`guest: ${img.key} (${(performance.now() - t0).toFixed(0)} ms to build or find), accelerator ${accel[1]}`);

  const H = await ctx.ns('vm');
  const h = await open({ netns: H });
  ctx.defer(() => h.close());
  const net = await h.network.create({ name: 'default', bridge: 'virbr0', stp: false, address: '192.168.122.1/24',
    dhcp: { start: '192.168.122.2', end: '192.168.122.254', ping: false } });
  ctx.defer(() => net.destroy());
  const tap = await h.tap.create({ name: 'vnet%d', vnetHdr: true, offloads: { csum: true, tso4: true, tso6: true }, master: 'virbr0', up: true });
  const { args, stdio } = qemuNetdev(tap, { id: 'n0', mac: MAC });
  ctx.say(`${QEMU} ... ${args.join(' ')}   (fd 3 = ${tap.name})`);
  const vm = await Vm.start({ name: 'demo-guest', netns: H.name, args, fds: stdio.slice(3) });
  ctx.defer(() => vm.kill());
  await tap.close();  // QEMU holds its own copy: the tap stays on virbr0
  const t1 = performance.now();
  const seen = await vm.ready();
  ctx.say(`guest booted in ${((performance.now() - t1) / 1000).toFixed(1)} s, eth0 ${seen}`);
  const lease = await vm.cmd('dhcp');
  ctx.say(`guest leased ${lease.lease} (router ${lease.router}); net.leases(): ${JSON.stringify((await net.leases()).map((l) => [l.mac, l.ip]))}`);
  const ping = await vm.cmd('ping 192.168.122.1 3 20');
  if (ping.ping !== '0') throw new Error('the guest could not ping its gateway');
  ctx.say('guest pinged the gateway 192.168.122.1');
  await vm.cmd('poweroff').catch(() => {});
  await vm.kill();
}
