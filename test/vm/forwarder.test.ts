// Scenario 5, the Forwarder: two QEMU guests wired by a 'switch' Forwarder over socketpairs (a
// guest cannot share a tap with the forwarder: both would read the same side). Guest A gets a
// SOCK_SEQPACKET pair through `-netdev dgram,local.type=fd` (QEMU ≥ 7.2), guest B a SOCK_DGRAM
// pair through `-netdev socket,fd=` (which refuses seqpacket); both with the default large send
// buffer. They ping and move a file, and the forwarder's counters match what each guest's NIC counted.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Forwarder, type Netns } from '../../lib/index.js';
import { Namespaces, privilegedSkipReason, waitFor } from '../helpers.js';
import { Vm, killAll, qemuHasDgram, vmSkipReason } from './vm.js';

const skip = privilegedSkipReason() ?? vmSkipReason();
const MACS = ['52:54:00:15:00:61', '52:54:00:15:00:62'];

describe.skipIf(skip)('QEMU guests wired by a switch Forwarder over socketpairs', () => {
  const nss = new Namespaces();
  let N: Netns;
  let fw: Forwarder | undefined;
  const ours: number[] = [];
  const vms: Vm[] = [];

  beforeAll(async () => {
    N = await nss.create('vmfw');
  });
  afterAll(async () => {
    await Promise.all(vms.map((vm) => vm.kill()));
    await killAll();
    await fw?.close().catch(() => {});
    for (const fd of ours.splice(0)) { try { fs.closeSync(fd); } catch { /* closed already */ } }
    await nss.cleanup();
  });

  it('the guests ping each other and move a file; the forwarder counted every frame each guest sent and got', async () => {
    expect(qemuHasDgram(), 'QEMU >= 7.2 has -netdev dgram').toBe(true);
    const [vmA, portA] = Forwarder.socketpair({ type: 'seqpacket' });
    const [vmB, portB] = Forwarder.socketpair({ type: 'dgram' });
    ours.push(vmA, portA, vmB, portB);
    fw = new Forwarder({ mode: 'switch' });
    fw.add('a', portA);
    fw.add('b', portB);
    fw.start();
    // QEMU checks the socket type itself: `socket,fd=` refuses a seqpacket fd (type=5).
    const netdevs = ['dgram,id=n0,local.type=fd,local.str=3', 'socket,id=n0,fd=3'];
    for (const [i, fd] of [vmA, vmB].entries()) {
      vms.push(await Vm.start({ name: `fwd-guest-${i}`, netns: N.name, fds: [fd],
        args: ['-netdev', netdevs[i], '-device', `virtio-net-pci,netdev=n0,mac=${MACS[i]}`] }));
    }
    // QEMU holds the VM ends now, and the forwarder its own copies of the port ends.
    for (const fd of ours.splice(0)) fs.closeSync(fd);
    expect(await Promise.all(vms.map((vm) => vm.ready()))).toEqual(MACS);
    const [a, b] = vms;
    await a.cmd('addr 198.51.100.61/24');
    await b.cmd('addr 198.51.100.62/24');
    expect((await a.cmd('ping 198.51.100.62 3 30')).ping).toBe('0');
    const blob = await b.cmd('serve 1048576');
    expect(await a.cmd('get http://198.51.100.62/blob', { timeoutMs: 120_000 })).toMatchObject({ sha: blob.sha, bytes: '1048576' });
    expect(fw.fdb().map((e) => [e.mac, e.port]).sort()).toEqual([[MACS[0], 'a'], [MACS[1], 'b']]);

    // Every frame a guest's NIC sent reached the forwarder, and every frame the forwarder sent
    // a guest its NIC received (nothing else talks: the guests run IPv4 only).
    await waitFor(async () => {
      const [ca, cb] = [await a.cmd('counters'), await b.cmd('counters')];
      const s = fw!.stats();
      return s.a.rxPackets === Number(ca.tx_packets) && s.b.rxPackets === Number(cb.tx_packets) &&
        s.a.txPackets === Number(ca.rx_packets) && s.b.txPackets === Number(cb.rx_packets);
    }, 'the forwarder\'s counters to match the guests\'', 20_000, 200);
    const s = fw.stats();
    // B served 1 MiB to A, in frames of at most 1514 bytes (no vnet header: no GSO).
    expect(s.b.rxPackets).toBeGreaterThan(690);
    expect(s.a.txPackets).toBeGreaterThan(690);
    for (const p of ['a', 'b']) expect(s[p].drops).toMatchObject({ txError: 0, rxError: 0, malformed: 0 });
  }, 300_000);
});
