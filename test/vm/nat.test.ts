// Scenario 1, the seed's NAT network with a real guest: network.create (virbr0, dnsmasq, NAT)
// plus a vnet-header tap with offloads whose fd QEMU's virtio-net-pci uses. The guest leases,
// pings the gateway, resolves a host record through it, reaches an outside server that sees the
// host's address, and moves several MB each way with the payload checked. The tap is closed by
// us right after QEMU starts: QEMU's copy of the fd keeps it alive until QEMU exits.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, qemuNetdev, type Handle, type Netns, type Network, type Tap } from '../../lib/index.js';
import { Namespaces, hasTool, ipLinks, nsExec, privilegedSkipReason, waitFor } from '../helpers.js';
import { NsProc } from '../../examples/nat-helpers.js';
import { Vm, killAll, vmSkipReason } from './vm.js';
import { httpServer } from './servers.js';

const skip = privilegedSkipReason() ?? vmSkipReason() ?? (['dnsmasq', 'nft', 'ethtool'].find((t) => !hasTool(t)) && 'dnsmasq, nft and ethtool are needed');
const GUEST_MAC = '52:54:00:15:00:01';
const BYTES = 3 << 20;

describe.skipIf(skip)('a QEMU guest on the NAT network, through a vnet-header tap fd', () => {
  const nss = new Namespaces();
  let H: Netns, O: Netns;
  let h: Handle, o: Handle;
  let net: Network | undefined;
  let tap: Tap | undefined;
  let vm: Vm | undefined;
  let server: NsProc | undefined;

  beforeAll(async () => {
    [H, O] = await Promise.all([nss.create('vmnh'), nss.create('vmno')]);
    [h, o] = await Promise.all([open({ netns: H }), open({ netns: O })]);
    // host h1 203.0.113.1 -- o0 203.0.113.2 outside (which has no route back to the guests' subnet)
    await h.link.add({ kind: 'veth', name: 'h1', peer: { name: 'o0', netns: O }, up: true });
    await h.addr.add('h1', '203.0.113.1/24');
    await o.link.set('o0', { up: true });
    await o.addr.add('o0', '203.0.113.2/24');
  });
  afterAll(async () => {
    server?.stop();
    await vm?.kill();
    await killAll();
    await tap?.close().catch(() => {});
    await net?.destroy().catch(() => {});
    await Promise.all([h?.close(), o?.close()]);
    await nss.cleanup();
  });

  it('leases from .2–.254, pings the gateway, resolves a name through it, is seen outside as the host, and moves MBs both ways intact', async () => {
    net = await h.network.create({ name: 'default', bridge: 'virbr0', stp: true, address: '192.168.122.1/24',
      dhcp: { start: '192.168.122.2', end: '192.168.122.254', ping: false },
      dns: { domain: 'lan', localOnly: true, hosts: [{ ip: '203.0.113.2', names: ['outside'] }] } });
    tap = await h.tap.create({ name: 'vnet%d', vnetHdr: true, offloads: { csum: true, tso4: true, tso6: true }, master: 'virbr0', up: true });
    const { args, stdio } = qemuNetdev(tap, { id: 'n0', mac: GUEST_MAC });
    expect(args).toEqual(['-netdev', 'tap,id=n0,fd=3,vhost=off', '-device', `virtio-net-pci,netdev=n0,mac=${GUEST_MAC}`]);
    server = new NsProc(O, httpServer(8080, BYTES));
    vm = await Vm.start({ name: 'nat-guest', netns: H.name, args, fds: stdio.slice(3) as number[] });
    // The documented hand-over: QEMU has its own copy once spawned, so ours can go now.
    const tapName = tap.name;
    await tap.close();
    const mac = await vm.ready();
    expect(mac).toBe(GUEST_MAC);
    // The tap outlived our fds: QEMU holds one, and it is still virbr0's port.
    const [l] = await ipLinks(H, tapName);
    expect(l.master).toBe('virbr0');
    expect(l.linkinfo.info_data).toMatchObject({ type: 'tap', pi: false, vnet_hdr: true });
    await h.bridge.waitPort(tapName, 'forwarding', 15_000);

    const lease = await vm.cmd('dhcp', { timeoutMs: 60_000 });
    const last = Number(lease.lease.split('.')[3]);
    expect(lease.lease.startsWith('192.168.122.')).toBe(true);
    expect(last).toBeGreaterThanOrEqual(2);
    expect(last).toBeLessThanOrEqual(254);
    expect(lease.router).toBe('192.168.122.1');
    await waitFor(async () => (await net!.leases()).some((x) => x.mac === GUEST_MAC && x.ip === lease.lease), 'the lease in net.leases()', 10_000);

    expect((await vm.cmd('ping 192.168.122.1 3 20')).ping).toBe('0');
    // The gateway answers DNS: the lease named it, and it resolves the network's host record.
    expect(lease.dns).toBe('192.168.122.1');
    expect((await vm.cmd('nslookup outside.lan 192.168.122.1')).resolved).toBe('203.0.113.2');

    // QEMU renegotiated the tap's offloads from what the guest's driver accepted (TUNSETOFFLOAD):
    // the host may now send the guest whole TSO frames with partial checksums.
    const k = await nsExec(H, 'ethtool', ['-k', tapName]);
    expect(k).toMatch(/tx-checksumming: on/);
    expect(k).toMatch(/tx-tcp-segmentation: on/);

    const down = JSON.parse(await server.line(/^\{"down"/, 'the outside server', 15_000)).down;
    await server.line(/^ready$/, 'the outside server');
    const got = await vm.cmd('get http://203.0.113.2:8080/down', { timeoutMs: 120_000 });
    expect(got).toMatchObject({ sha: down, bytes: String(BYTES) });

    const up = await vm.cmd(`post http://203.0.113.2:8080/up ${BYTES}`, { timeoutMs: 120_000 });
    const seen = JSON.parse(await server.line(/^\{"up"/, 'the upload', 15_000));
    expect(seen).toEqual({ up: up.sha, bytes: BYTES, from: '203.0.113.1' });  // masqueraded: the host's address
    expect(JSON.parse(up.reply)).toEqual(seen);

    // The guest's traffic went through the masquerade rule.
    expect(await nsExec(H, 'nft', ['list', 'chain', 'ip', net.table, 'nat']))
      .toMatch(/meta l4proto tcp counter packets [1-9]\d* bytes \d+ masquerade to :1024-65535/);
  }, 300_000);

  it('the tap goes when QEMU exits (its fd was the last), and nothing is left', async () => {
    expect(vm, 'the guest of the test before').toBeDefined();
    const pid = vm!.pid!;
    await vm!.cmd('poweroff').catch(() => {});
    await Promise.race([vm!.exited, new Promise((r) => setTimeout(r, 20_000))]);
    await vm!.kill();
    expect(fs.existsSync(`/proc/${pid}`)).toBe(false);
    await waitFor(async () => !(await ipLinks(H)).some((x) => x.ifname.startsWith('vnet')), 'the tap to go with QEMU', 10_000);
    await net!.destroy();
    net = undefined;
    expect((await ipLinks(H)).map((x) => x.ifname).sort()).toEqual(['h1', 'lo']);
    expect(await nsExec(H, 'nft', ['list', 'ruleset'])).toBe('');
  }, 60_000);
});
