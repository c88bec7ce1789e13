// The NAT network with the guest played as QEMU would: the host holds the fd of its tap vnet0
// (on virbr0), the guest namespace holds the fd of its NIC tap eth0, and a 'wire' Forwarder moves
// frames between the two fds with vnet headers. DHCP, ping and the masquerade all cross it.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Forwarder, open, type Handle, type Netns, type Network, type Tap } from '../lib/index.js';
import { Namespaces, hasTool, needTools, ipLinks, nsExec, nsRun, privilegedSkipReason, waitFor } from './helpers.js';
import { NsProc, parseLease, udhcpc, udhcpcScript } from '../examples/nat-helpers.js';
import { expectMasqueradedOutside } from './nat-check.js';

const skip = privilegedSkipReason();
const offloads = { csum: true, tso4: true, tso6: true };
const GUEST_MAC = '52:54:00:aa:bb:35';

// Outside: counts the bytes of one TCP upload on port 7002.
const SINK = `
require('node:net').createServer((s) => { let n = 0; s.on('data', (d) => { n += d.length; }); s.on('end', () => { console.log('got ' + n); s.end(); }); })
  .listen(7002, '0.0.0.0', () => console.log('ready'));`;
const UPLOAD = `
const s = require('node:net').connect({ host: '203.0.113.2', port: 7002 }, () => s.end(Buffer.alloc(8 << 20, 7)));
s.on('close', () => process.exit(0));
setTimeout(() => process.exit(1), 10000).unref();`;

/** `ip -s -j link show DEV`: the kernel's own counters of a device. */
async function kernelStats(ns: Netns, dev: string): Promise<{ rx: number; tx: number }> {
  const [l] = JSON.parse(await nsExec(ns, 'ip', ['-s', '-j', 'link', 'show', 'dev', dev]));
  return { rx: l.stats64.rx.packets, tx: l.stats64.tx.packets };
}

describe.skipIf(skip)('the NAT network through a forwarder between two tap fds', () => {
  const nss = new Namespaces();
  let H: Netns, G: Netns, O: Netns;
  let h: Handle, g: Handle, o: Handle;
  let net: Network | undefined;
  let vnet0: Tap | undefined, eth0: Tap | undefined;
  let fw: Forwarder | undefined;
  let tmp: string;
  let script: string;

  beforeAll(async () => {
    [H, G, O] = await Promise.all([nss.create('nfh'), nss.create('nfg'), nss.create('nfo')]);
    [h, g, o] = await Promise.all([open({ netns: H }), open({ netns: G }), open({ netns: O })]);
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-natfwd-'));
    script = udhcpcScript(tmp);
    // host h1 203.0.113.1 -- o0 203.0.113.2 outside (no route back to the guest's subnet)
    await h.link.add({ kind: 'veth', name: 'h1', peer: { name: 'o0', netns: O }, up: true });
    await h.addr.add('h1', '203.0.113.1/24');
    await o.link.set('o0', { up: true });
    await o.addr.add('o0', '203.0.113.2/24');
    await g.link.set('lo', { up: true });
  });
  afterAll(async () => {
    await fw?.close().catch(() => {});
    await Promise.all([vnet0?.close(), eth0?.close()].map((p) => p?.catch(() => {})));
    await net?.destroy().catch(() => {});
    await Promise.all([h?.close(), g?.close(), o?.close()]);
    await nss.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('wires the host\'s vnet0 fd to the guest\'s eth0 fd; the guest leases, pings out and is seen as the host', async (ctx) => {
    needTools(ctx, 'nft', 'dnsmasq', 'busybox', 'ping');
    // STP off: the seed's STP path is proven in network.test.ts; here the port forwards at once.
    net = await h.network.create({ name: 'natfwd', bridge: 'virbr0', stp: false, address: '192.168.122.1/24',
      dhcp: { start: '192.168.122.2', end: '192.168.122.254', ping: false } });
    // The QEMU side: the guest's tap on the bridge, its fd kept.
    vnet0 = await h.tap.create({ name: 'vnet0', vnetHdr: true, offloads, master: 'virbr0', up: true });
    // The guest's NIC: a tap in the guest namespace, whose fd plays the guest's virtio device.
    eth0 = await g.tap.create({ name: 'eth0', vnetHdr: true, offloads, mac: GUEST_MAC, up: true });
    fw = new Forwarder({ mode: 'wire' });
    fw.add('vnet0', vnet0.fds);
    fw.add('eth0', eth0.fds);
    fw.start();
    await h.bridge.waitPort('vnet0', 'forwarding', 5_000);

    // What a user sees: two vnet_hdr taps, vnet0 a port of virbr0, eth0 with the guest's MAC.
    const [hl] = await ipLinks(H, 'vnet0');
    expect(hl.linkinfo.info_data).toMatchObject({ type: 'tap', pi: false, vnet_hdr: true });
    expect(hl.master).toBe('virbr0');
    expect(hl.flags).toEqual(expect.arrayContaining(['UP', 'LOWER_UP']));
    const [gl] = await ipLinks(G, 'eth0');
    expect(gl.linkinfo.info_data).toMatchObject({ type: 'tap', pi: false, vnet_hdr: true });
    expect(gl.address).toBe(GUEST_MAC);
    expect(gl.flags).toEqual(expect.arrayContaining(['UP', 'LOWER_UP']));
    expect((await h.bridge.show()).find((b) => b.name === 'virbr0')?.interfaces).toEqual(['vnet0']);

    const out = await udhcpc(G, 'eth0', script);
    const lease = parseLease(out);
    expect(lease, out).toBeTruthy();
    const last = Number(lease!.ip.split('.')[3]);
    expect(lease!.ip.startsWith('192.168.122.')).toBe(true);
    expect(last).toBeGreaterThanOrEqual(2);
    expect(last).toBeLessThanOrEqual(254);
    expect(lease).toMatchObject({ mask: '24', router: '192.168.122.1' });
    expect(await net.leases()).toContainEqual(expect.objectContaining({ mac: GUEST_MAC, ip: lease!.ip }));
    await g.addr.add('eth0', `${lease!.ip}/24`);
    await g.route.add({ dst: 'default', via: lease!.router });

    expect((await nsRun(G, 'ping', ['-c', '1', '-W', '2', '192.168.122.1'])).code).toBe(0);
    expect((await nsRun(G, 'ping', ['-c', '1', '-W', '2', '203.0.113.2'])).code).toBe(0);
    await expectMasqueradedOutside(G, O);
    // The masquerade rules counted the guest's traffic.
    expect(await nsExec(H, 'nft', ['list', 'chain', 'ip', net.table, 'nat']))
      .toMatch(/meta l4proto tcp counter packets [1-9]\d* bytes \d+ masquerade to :1024-65535/);
  });

  it('GSO frames cross whole: an 8 MiB upload to the outside passes frames larger than the MTU', async () => {
    expect(fw?.running, 'the forwarder of the test before').toBe(true);
    const sink = new NsProc(O, SINK);
    const frames = fw!.frames('eth0');
    try {
      await sink.line(/^ready$/, 'the outside sink');
      let biggest = 0;
      const watch = (async () => {
        for await (const f of frames) {
          if (f.direction === 'rx') biggest = Math.max(biggest, f.length);
          if (biggest > 1514) break;
        }
      })();
      expect((await nsRun(G, process.execPath, ['-e', UPLOAD], 15_000)).code).toBe(0);
      expect(await sink.line(/^got /, 'the upload')).toBe(`got ${8 << 20}`);
      await Promise.race([watch, waitFor(() => biggest > 1514, 'a GSO frame', 5_000)]);
      expect(biggest).toBeGreaterThan(1514);
      expect(fw!.stats().eth0.drops.gso).toBe(0);
    } finally {
      await frames.return?.();
      sink.stop();
    }
  });

  it('the forwarder counted both ports both ways, matching the kernel\'s own tap counters', async () => {
    expect(fw?.running, 'the forwarder of the test before').toBe(true);
    const s = fw!.stats();
    for (const p of ['vnet0', 'eth0']) {
      expect(s[p].rxPackets, `${p} rx`).toBeGreaterThan(0);
      expect(s[p].txPackets, `${p} tx`).toBeGreaterThan(0);
      expect(s[p].drops).toMatchObject({ txError: 0, rxError: 0, malformed: 0, noRoute: 0 });
      expect(s[p].vnetHdrSize).toBe(10);
    }
    // What the forwarder wrote into vnet0 the host kernel received there (ip -s link), and what
    // the guest kernel sent on eth0 the forwarder read. Waits out frames still in flight.
    await waitFor(async () => {
      const [k, f] = [await kernelStats(H, 'vnet0'), fw!.stats().vnet0];
      return k.rx === f.txPackets && k.tx === f.rxPackets;
    }, 'vnet0 counters to agree', 5_000);
    await waitFor(async () => {
      const [k, f] = [await kernelStats(G, 'eth0'), fw!.stats().eth0];
      return k.rx === f.txPackets && k.tx === f.rxPackets;
    }, 'eth0 counters to agree', 5_000);
  });

  it('removes everything: forwarder, both taps, the network, its firewall and dnsmasq', async () => {
    expect(net, 'the network of the first test').toBeDefined();
    const pid = net!.dnsmasqPid!;
    const dir = net!.stateDir;
    await fw!.close();
    expect(fw!.running).toBe(false);
    await vnet0!.close();
    await eth0!.close();
    await net!.destroy();
    expect((await ipLinks(H)).map((l) => l.ifname).sort()).toEqual(['h1', 'lo']);
    expect((await ipLinks(G)).map((l) => l.ifname)).toEqual(['lo']);
    expect(await nsExec(H, 'nft', ['list', 'ruleset'])).toBe('');
    expect(fs.existsSync(`/proc/${pid}/cmdline`) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('dnsmasq')).toBe(false);
    expect(spawnSync('ip', ['netns', 'pids', H.name], { encoding: 'utf8' }).stdout.trim()).toBe('');
    expect(fs.existsSync(dir)).toBe(false);
  });
});
