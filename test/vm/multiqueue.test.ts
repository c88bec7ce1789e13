// Scenario 2, multi-queue: a two-queue vnet-header tap handed to QEMU as fds=3:4,queues=2 with
// virtio-net-pci,mq=on,vectors=6. The guest turns its second queue pair on (ETHTOOL_SCHANNELS
// from a static helper: busybox has no ethtool -L), QEMU attaches the tap's second queue, and
// the guest driver's own per-queue counters show traffic on both queues both ways.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, qemuNetdev, type Handle, type Netns, type Tap } from '../../lib/index.js';
import { Namespaces, ipLinks, privilegedSkipReason, waitFor } from '../helpers.js';
import { NsProc } from '../../examples/nat-helpers.js';
import { Vm, killAll, vmSkipReason } from './vm.js';
import { parallelFetch } from './servers.js';

const skip = privilegedSkipReason() ?? vmSkipReason();
const GUEST_MAC = '52:54:00:15:00:02';

describe.skipIf(skip)('a QEMU guest on a two-queue tap', () => {
  const nss = new Namespaces();
  let H: Netns;
  let h: Handle;
  let tap: Tap | undefined;
  let vm: Vm | undefined;

  beforeAll(async () => {
    H = await nss.create('vmmq');
    h = await open({ netns: H });
  });
  afterAll(async () => {
    await vm?.kill();
    await killAll();
    await tap?.close().catch(() => {});
    await h?.close();
    await nss.cleanup();
  });

  it('the guest enables both queue pairs and both carry frames each way', async () => {
    tap = await h.tap.create({ name: 'vnet%d', queues: 2, vnetHdr: true, offloads: { csum: true, tso4: true, tso6: true }, up: true });
    await h.addr.add(tap.name, '198.51.100.1/24');
    const { args, stdio } = qemuNetdev(tap, { id: 'n0', mac: GUEST_MAC });
    expect(args).toEqual(['-netdev', 'tap,id=n0,fds=3:4,vhost=off',
      '-device', `virtio-net-pci,netdev=n0,mac=${GUEST_MAC},mq=on,vectors=6`]);
    vm = await Vm.start({ name: 'mq-guest', netns: H.name, args, fds: stdio.slice(3) as number[] });
    const name = tap.name;
    await tap.close();
    expect(await vm.ready()).toBe(GUEST_MAC);

    // One vCPU: the guest driver starts with one queue pair, and QEMU detaches the tap's other
    // queue (ip -d link: numqueues counts attached queues, numdisabled detached ones).
    const info = async () => (await ipLinks(H, name))[0].linkinfo.info_data;
    expect(await info()).toMatchObject({ type: 'tap', multi_queue: true, vnet_hdr: true, numqueues: 1, numdisabled: 1 });
    expect(await vm.cmd('queues')).toMatchObject({ rx: '1', tx: '1' });

    expect(await vm.cmd('channels 2')).toMatchObject({ combined: '2', max: '2' });
    expect(await vm.cmd('queues')).toMatchObject({ rx: '2', tx: '2' });
    await waitFor(async () => { const i = await info(); return i.numqueues === 2 && i.numdisabled === 0; }, 'QEMU to attach the second tap queue', 10_000);
    // Spread the guest's transmit by flow hash rather than by its only CPU.
    await vm.cmd('noxps');
    await vm.cmd('addr 198.51.100.2/24');
    const blob = await vm.cmd('serve 262144');

    // Sixteen connections from the host: their flows hash onto both queues.
    const fetch = new NsProc(H, parallelFetch('http://198.51.100.2/blob', 16));
    try {
      const r = JSON.parse(await fetch.line(/^\{"sha"/, 'the parallel fetch', 120_000));
      expect(r.sha).toHaveLength(16);
      for (const s of r.sha) expect(s).toBe(blob.sha);
    } finally {
      fetch.stop();
    }

    const st = await vm.cmd('stats');
    for (const k of ['rx_queue_0_packets', 'rx_queue_1_packets', 'tx_queue_0_packets', 'tx_queue_1_packets']) {
      expect(Number(st[k]), `${k} in ${JSON.stringify(st)}`).toBeGreaterThan(10);
    }
  }, 300_000);
});
