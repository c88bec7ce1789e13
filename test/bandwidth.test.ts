// A guest's <bandwidth> (libvirt's units: average/peak kilobytes/s, burst KiB) on a NAT
// network's tap and on an Open vSwitch port: tc -j and ovs-vsctl see what libvirt would have
// made, the state file keeps it across restart and replace, detach and delPort take it away,
// and iperf3 through the tap (a wire Forwarder playing QEMU) is held to the rates.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Forwarder, Ovsdb, open, type Handle, type Netns, type Network, type NetworkSpec, type Tap } from '../lib/index.js';
import { _simulateCrash } from '../lib/network.js';
import { Namespaces, hasTool, ipLinks, nsExec, privilegedSkipReason } from './helpers.js';
import { iperfMbps } from './iperf.js';
import { ovsMap, ovsRows, ovsSkipReason, rowCount, startOvsWorld, stopOvsWorld, type OvsDaemons, type OvsWorld } from './ovs-helpers.js';

const skip = privilegedSkipReason();
const offloads = { csum: true, tso4: true, tso6: true };
const tcJson = async (ns: Netns, ...args: string[]) => JSON.parse((await nsExec(ns, 'tc', ['-j', ...args])) || '[]');
const GUEST = '192.168.122.10';
// 50 Mbit/s to the guest, 30 Mbit/s from it, in libvirt's kilobytes per second.
const BW = { inbound: { average: 6250, peak: 6250, burst: 64 }, outbound: { average: 3750 } };

describe.skipIf(skip)('network.attach with bandwidth on a NAT network tap', () => {
  const nss = new Namespaces();
  let H: Netns, G: Netns;
  let h: Handle, g: Handle;
  let net: Network | undefined;
  let vnet0: Tap | undefined, eth0: Tap | undefined;
  let fw: Forwarder | undefined;
  const spec: NetworkSpec = { name: 'bwnet', bridge: 'virbr0', stp: false, address: '192.168.122.1/24', dns: false };

  // The ifbs shape() made for the link with this index (their alias names it by index and namespace).
  const shapeIfbs = async (index: number) => (await ipLinks(H)).filter((l) => /^vnetlink:shape:[^:]+:\d+$/.test(l.ifalias ?? '') && l.ifalias.endsWith(`:${index}`));
  const indexOf = async (dev: string) => (await ipLinks(H, dev))[0].ifindex as number;

  beforeAll(async () => {
    hasTool('iperf3');
    [H, G] = await Promise.all([nss.create('bwh'), nss.create('bwg')]);
    [h, g] = await Promise.all([open({ netns: H }), open({ netns: G })]);
    await g.link.set('lo', { up: true });
    net = await h.network.create(spec);
    // QEMU's side: the guest's tap, whose fd the forwarder wires to the guest's NIC tap.
    vnet0 = await h.tap.create({ name: 'vnet0', vnetHdr: true, offloads, up: true });
    eth0 = await g.tap.create({ name: 'eth0', vnetHdr: true, offloads, mac: '52:54:00:aa:bb:40', up: true });
    fw = new Forwarder({ mode: 'wire' });
    fw.add('vnet0', vnet0.fds);
    fw.add('eth0', eth0.fds);
    fw.start();
    await g.addr.add('eth0', `${GUEST}/24`);
    await g.route.add({ dst: 'default', via: '192.168.122.1' });
  });
  afterAll(async () => {
    await fw?.close().catch(() => {});
    await Promise.all([vnet0?.close(), eth0?.close()].map((p) => p?.catch(() => {})));
    await net?.destroy().catch(() => {});
    await Promise.all([h?.close(), g?.close()]);
    await nss.cleanup();
  });

  // One 2-second TCP run host -> guest (reverse: guest -> host); the receiver's Mbit/s.
  const iperf = (reverse: boolean) => iperfMbps(G, H, GUEST, { reverse });
  // A loaded machine only ever makes a run slower (the forwarder or iperf3 starved of CPU),
  // never faster than the shaper lets it: up to three runs, the best one, stopping once it
  // reaches `atLeast`. The upper bound checked against the best run is the strictest one.
  async function best(reverse: boolean, atLeast: number): Promise<number> {
    let top = 0;
    for (let i = 0; i < 3 && top < atLeast; i++) top = Math.max(top, await iperf(reverse));
    return top;
  }

  const state = () => JSON.parse(fs.readFileSync(path.join(net!.stateDir, 'network.json'), 'utf8'));
  const qdiscs = async (dev: string) => (await tcJson(H, 'qdisc', 'show', 'dev', dev)).map((q: any) => `${q.kind} ${q.handle}`).sort();

  it('refuses bad bandwidth naming the field, before anything changes', async () => {
    const bad: [unknown, RegExp][] = [
      [{ inbound: { average: 0 } }, /bandwidth\.inbound\.average/],
      [{ inbound: { peak: 10 } }, /bandwidth\.inbound\.average: is required/],
      [{ outbound: { average: 100, peak: 50 } }, /bandwidth\.outbound\.peak: 50 is below average 100/],
      [{ inbound: { average: 100, floor: 10 } }, /bandwidth\.inbound\.floor: is not supported/],
      [{ inbound: { average: 100, burst: -1 } }, /bandwidth\.inbound\.burst/],
      [{ inbound: { average: '10mbit' } }, /bandwidth\.inbound\.average/],
      [{ sideways: {} }, /bandwidth\.sideways/],
    ];
    for (const [bw, msg] of bad) {
      const e = await net!.attach('vnet0', { bandwidth: bw as any }).catch((x) => x);
      expect(e, String(msg)).toBeInstanceOf(Error);
      expect(e.message).toMatch(msg);
    }
    expect((await ipLinks(H, 'vnet0'))[0].master).toBeUndefined();
    // A root qdisc someone else put on the tap: shape refuses, and the port is not left on the bridge.
    await nsExec(H, 'tc', ['qdisc', 'add', 'dev', 'vnet0', 'root', 'handle', '1:', 'htb']);
    const busy = await net!.attach('vnet0', { bandwidth: BW }).catch((x) => x);
    expect(busy.code).toBe('EBUSY');
    expect((await ipLinks(H, 'vnet0'))[0].master).toBeUndefined();
    expect(await qdiscs('vnet0')).toContain('htb 1:');
    await nsExec(H, 'tc', ['qdisc', 'del', 'dev', 'vnet0', 'root']);
    expect(state().ports ?? []).toEqual([]);
  });

  it('shapes the tap as libvirt does (htb to the guest, ingress via an ifb from it); iperf3 through it holds both rates', async () => {
    // (The unshaped anchor is tc.test.ts's, over a veth: a userspace forwarder's own speed under
    // ASan on a loaded machine is no anchor.)
    await net!.attach('vnet0', { bandwidth: BW });
    expect((await ipLinks(H, 'vnet0'))[0].master).toBe('virbr0');
    expect(await qdiscs('vnet0')).toEqual(['htb bd:', 'ingress ffff:']);
    // 6250 kilobytes/s is tc's 50Mbit; burst 64 KiB.
    const cls = await nsExec(H, 'tc', ['class', 'show', 'dev', 'vnet0']);
    expect(cls).toMatch(/class htb bd:1 root prio 0 rate 50Mbit ceil 50Mbit burst 64Kb/);
    const [ifb] = await shapeIfbs(await indexOf('vnet0'));
    expect(ifb?.linkinfo?.info_kind).toBe('ifb');
    expect(await nsExec(H, 'tc', ['class', 'show', 'dev', ifb.ifname])).toMatch(/rate 30Mbit/);
    expect(state().ports).toMatchObject([{ name: 'vnet0', bandwidth: BW, kind: 'tun', index: expect.any(Number) }]);
    expect(net!.bandwidths()).toEqual([{ port: 'vnet0', bandwidth: BW }]);

    const down = await best(false, 40);  // host -> guest: inbound, the tap's egress
    const up = await best(true, 24);     // guest -> host: outbound, the tap's ingress
    expect(down).toBeGreaterThanOrEqual(40);
    expect(down).toBeLessThanOrEqual(55);
    expect(up).toBeGreaterThanOrEqual(24);
    expect(up).toBeLessThanOrEqual(33);
    fs.appendFileSync(process.env.VNETLINK_SHAPE_LOG ?? '/dev/null', JSON.stringify({ path: 'network.attach tap', down, up }) + '\n');
  }, 120_000);

  it('restart puts the shaping back; replace (after the owner died) attaches and shapes the port again', async () => {
    await nsExec(H, 'tc', ['qdisc', 'del', 'dev', 'vnet0', 'root']);
    expect(await qdiscs('vnet0')).not.toContain('htb bd:');
    await net!.restart();
    expect(await qdiscs('vnet0')).toEqual(['htb bd:', 'ingress ffff:']);

    // The owning process is gone; the state file remembers the port and its bandwidth.
    _simulateCrash(net!);
    const rebuilt = await h.network.create(spec, { replace: true });
    net = rebuilt;
    expect((await ipLinks(H, 'vnet0'))[0].master).toBe('virbr0');
    expect(await qdiscs('vnet0')).toEqual(['htb bd:', 'ingress ffff:']);
    expect(state().ports).toMatchObject([{ name: 'vnet0', bandwidth: BW, kind: 'tun', index: expect.any(Number) }]);
    expect(await shapeIfbs(await indexOf('vnet0'))).toHaveLength(1);
  });

  it('detach removes exactly the shaping attach made, and the ifb', async () => {
    await net!.detach('vnet0');
    expect((await ipLinks(H, 'vnet0'))[0].master).toBeUndefined();
    expect(await qdiscs('vnet0')).not.toContain('htb bd:');
    expect(await qdiscs('vnet0')).not.toContain('ingress ffff:');
    expect((await ipLinks(H)).filter((l) => l.ifalias?.startsWith('vnetlink:shape:'))).toEqual([]);
    expect(state().ports).toEqual([]);
  });

  it("a network's own bandwidth shapes its bridge, and destroy leaves no ifb behind", async () => {
    const n2 = await h.network.create({ name: 'bwnet2', bridge: 'virbr1', stp: false, address: '192.168.123.1/24', dns: false,
      bandwidth: { inbound: { average: 12500 }, outbound: { average: 12500, burst: 128 } } });
    const virbr1 = await indexOf('virbr1');
    try {
      expect(await qdiscs('virbr1')).toEqual(['htb bd:', 'ingress ffff:']);
      expect(await nsExec(H, 'tc', ['class', 'show', 'dev', 'virbr1'])).toMatch(/rate 100Mbit/);
      expect(await shapeIfbs(virbr1)).toHaveLength(1);
    } finally {
      await n2.destroy();
    }
    expect(await shapeIfbs(virbr1)).toEqual([]);
    const bad = await h.network.create({ ...spec, name: 'bwnet3', bridge: 'virbr3', address: '192.168.124.1/24', bandwidth: { outbound: { average: 1, floor: 1 } } as any }).catch((x) => x);
    expect(bad.message).toMatch(/bandwidth\.outbound\.floor/);
    expect((await ipLinks(H)).some((l) => l.ifname === 'virbr3')).toBe(false);
  });
});

const ovsSkip = skip ?? ovsSkipReason();

describe.skipIf(ovsSkip)('bandwidth on an Open vSwitch port, as OVS QoS', () => {
  const nss = new Namespaces();
  let w: OvsWorld;
  let nl: Handle, ovsd: OvsDaemons, ovs: Ovsdb, taps: Tap[];

  beforeAll(async () => {
    w = await startOvsWorld(nss, 'bwovs');
    ({ nl, ovsd, ovs, taps } = w);
    await ovs.addBridge('ovsbw0', { datapathType: 'netdev' });
  }, 30_000);
  afterAll(() => stopOvsWorld(w, nss));

  const list = (table: string) => ovsRows(ovsd, table);
  const iface = async (name: string) => (await list('Interface')).find((r: any) => r.name === name);

  it('sets ingress policing for outbound and a linux-htb QoS with one Queue for inbound, as libvirt does; ovs-vsctl agrees', async () => {
    const t = await nl.tap.create({ name: 'vnet%d', up: true });
    taps.push(t);
    await ovs.addPort('ovsbw0', t.name, { bandwidth: { inbound: { average: 6250, peak: 12500, burst: 64 }, outbound: { average: 3750, burst: 32 } } });
    const i = await iface(t.name);
    expect(i.ingress_policing_rate).toBe(30000);   // kbit/s
    expect(i.ingress_policing_burst).toBe(256);    // kbit
    const [qos] = await list('QoS');
    const [queue] = await list('Queue');
    expect(qos.type).toBe('linux-htb');
    expect(ovsMap(qos.other_config)).toMatchObject({ 'max-rate': '100000000', 'min-rate': '50000000', burst: String(64 * 8192) });
    expect(ovsMap(queue.other_config)).toEqual({ 'max-rate': '100000000', 'min-rate': '50000000', burst: String(64 * 8192) });
    expect(ovsMap(queue.external_ids)).toEqual({ 'vnetlink-port': t.name, ifname: t.name });
    expect(qos.queues).toEqual(['map', [[0, queue._uuid]]]);
    const port = (await list('Port')).find((r: any) => r.name === t.name);
    expect(port.qos).toEqual(qos._uuid);

    // Changed: the old rows go, new ones come; null removes them all and the policing.
    await ovs.setBandwidth(t.name, { inbound: { average: 1250 } });
    expect((await iface(t.name)).ingress_policing_rate).toBe(0);
    const qs = await list('QoS');
    expect(qs).toHaveLength(1);
    expect(qs[0]._uuid).not.toEqual(qos._uuid);
    expect(ovsMap((await list('Queue'))[0].other_config)).toEqual({ 'max-rate': '10000000', 'min-rate': '10000000' });
    await ovs.setBandwidth(t.name, null);
    expect(await rowCount(ovsd, 'QoS')).toBe(0);
    expect(await rowCount(ovsd, 'Queue')).toBe(0);
    expect((await list('Port')).find((r: any) => r.name === t.name).qos).toEqual(['set', []]);
    await ovs.setBandwidth(t.name, { outbound: { average: 1000 } });
    expect((await iface(t.name)).ingress_policing_rate).toBe(8000);
    expect(await rowCount(ovsd, 'QoS')).toBe(0);
  });

  it('addPort with mayExist on a port that exists applies the bandwidth asked for (as ovs-vsctl runs the set after --may-exist add-port)', async () => {
    const t = await nl.tap.create({ name: 'vnet%d', up: true });
    taps.push(t);
    await ovs.addPort('ovsbw0', t.name);
    expect((await iface(t.name)).ingress_policing_rate).toBe(0);
    await ovs.addPort('ovsbw0', t.name, { mayExist: true, bandwidth: { inbound: { average: 1000 }, outbound: { average: 2000, burst: 16 } } });
    const i = await iface(t.name);
    expect(i.ingress_policing_rate).toBe(16000);
    expect(i.ingress_policing_burst).toBe(128);
    expect(ovsMap(i.external_ids)['vnetlink-policing']).toBe('16000/128');
    const qos = (await list('QoS')).filter((q: any) => ovsMap(q.external_ids)['vnetlink-port'] === t.name);
    expect(qos).toHaveLength(1);
    expect((await list('Port')).find((r: any) => r.name === t.name).qos).toEqual(qos[0]._uuid);
    // Again with another bandwidth: replaced, not added to; without bandwidth: left as it is.
    await ovs.addPort('ovsbw0', t.name, { mayExist: true, bandwidth: { outbound: { average: 500 } } });
    expect((await iface(t.name)).ingress_policing_rate).toBe(4000);
    expect((await list('QoS')).filter((q: any) => ovsMap(q.external_ids)['vnetlink-port'] === t.name)).toHaveLength(0);
    await ovs.addPort('ovsbw0', t.name, { mayExist: true });
    expect((await iface(t.name)).ingress_policing_rate).toBe(4000);
    await ovs.delPort('ovsbw0', t.name);
  });

  it("ingress policing vnetlink did not set is refused (busy), never overwritten; null and an inbound-only change leave it", async () => {
    const t = await nl.tap.create({ name: 'vnet%d', up: true });
    taps.push(t);
    await ovs.addPort('ovsbw0', t.name);
    await ovsd.vsctl(['set', 'interface', t.name, 'ingress_policing_rate=5000', 'ingress_policing_burst=500']);
    const e = await ovs.setBandwidth(t.name, { outbound: { average: 1000 } }).catch((x) => x);
    expect(e.code).toBe('busy');
    expect(e.message).toMatch(new RegExp(`interface ${t.name} has ingress policing vnetlink did not set \\(ingress_policing_rate=5000, ingress_policing_burst=500\\)`));
    expect((await iface(t.name)).ingress_policing_rate).toBe(5000);
    // The same through addPort's mayExist.
    const e2 = await ovs.addPort('ovsbw0', t.name, { mayExist: true, bandwidth: { outbound: { average: 1000 } } }).catch((x) => x);
    expect(e2.code).toBe('busy');
    await ovs.setBandwidth(t.name, { inbound: { average: 1000 } });
    await ovs.setBandwidth(t.name, null);
    const i = await iface(t.name);
    expect([i.ingress_policing_rate, i.ingress_policing_burst]).toEqual([5000, 500]);
    expect(await rowCount(ovsd, 'QoS')).toBe(0);

    // Ours, then changed by someone else: theirs from then on.
    await ovsd.vsctl(['set', 'interface', t.name, 'ingress_policing_rate=0', 'ingress_policing_burst=0']);
    await ovs.setBandwidth(t.name, { outbound: { average: 1000 } });
    expect((await iface(t.name)).ingress_policing_rate).toBe(8000);
    await ovsd.vsctl(['set', 'interface', t.name, 'ingress_policing_rate=9999']);
    expect((await ovs.setBandwidth(t.name, { outbound: { average: 2000 } }).catch((x) => x)).code).toBe('busy');
    expect((await iface(t.name)).ingress_policing_rate).toBe(9999);
    await ovs.delPort('ovsbw0', t.name);
  });

  it('delPort and delBridge leave no QoS or Queue rows; a QoS vnetlink did not make is refused, not replaced', async () => {
    const a = await nl.tap.create({ name: 'vnet%d', up: true });
    const b = await nl.tap.create({ name: 'vnet%d', up: true });
    taps.push(a, b);
    await ovs.addPort('ovsbw0', a.name, { bandwidth: { inbound: { average: 1000 } } });
    expect(await rowCount(ovsd, 'QoS')).toBe(1);
    await ovs.delPort('ovsbw0', a.name);
    expect(await rowCount(ovsd, 'QoS')).toBe(0);
    expect(await rowCount(ovsd, 'Queue')).toBe(0);

    // Someone else's QoS on b: setBandwidth refuses and leaves it; delPort leaves it too.
    await ovs.addPort('ovsbw0', b.name);
    await ovsd.vsctl(['set', 'port', b.name, 'qos=@q', '--', '--id=@q', 'create', 'qos', 'type=linux-htb']);
    const e = await ovs.setBandwidth(b.name, { inbound: { average: 1000 } }).catch((x) => x);
    expect(e.code).toBe('busy');
    expect(e.message).toMatch(/did not add/);
    expect(await rowCount(ovsd, 'QoS')).toBe(1);
    await ovs.delPort('ovsbw0', b.name);
    expect(await rowCount(ovsd, 'QoS')).toBe(1);
    await ovsd.vsctl(['--all', 'destroy', 'qos']);

    // A bridge deleted with shaped ports on it takes their rows along.
    await ovs.addPort('ovsbw0', a.name, { bandwidth: { inbound: { average: 2000 } } });
    await ovs.addPort('ovsbw0', b.name, { bandwidth: { inbound: { average: 3000 } } });
    expect(await rowCount(ovsd, 'Queue')).toBe(2);
    await ovs.delBridge('ovsbw0');
    expect(await rowCount(ovsd, 'QoS')).toBe(0);
    expect(await rowCount(ovsd, 'Queue')).toBe(0);

    // Bad bandwidth is refused before anything is written.
    await ovs.addBridge('ovsbw0', { datapathType: 'netdev' });
    const bad = await ovs.addPort('ovsbw0', a.name, { bandwidth: { inbound: { average: 100, floor: 5 } } as any }).catch((x) => x);
    expect(bad.message).toMatch(/bandwidth\.inbound\.floor/);
    expect(await ovs.listPorts('ovsbw0')).toEqual([]);
  });
});
