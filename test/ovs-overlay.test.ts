// The overlay of test/neigh-fdb-rule.test.ts again, but with Open vSwitch as the switch: three
// (then four) "machines", each a namespace with an uplink on a shared underlay bridge and its own
// ovsdb-server + ovs-vswitchd, and vxlan tunnel ports to every other host added over OVSDB.
//
// This kernel has no openvswitch module, so the switch is OVS's userspace (netdev) datapath, and
// userspace tunnelling works as Documentation/howto/userspace-tunneling.rst describes: the uplink
// is a port of a second bridge (br-phy) whose internal port carries the underlay address, and
// ovs-vswitchd takes the route to each remote endpoint from the namespace's routing table (it
// listens to rtnetlink) and resolves its MAC itself (ARP out of br-phy, `tnl/arp/show`). br-int
// holds the guest's port and the tunnels; the tunnels are protected ports (split horizon), since
// a standalone bridge floods out of every port and a full mesh of three would loop forever.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, Ovsdb, type Handle, type Netns, type OvsPort } from '../lib/index.js';
import { Namespaces, hasTool, nsRun, privilegedSkipReason, waitFor } from './helpers.js';
import { parseVsctlShow, rowCount, startOvs, ovsSkipReason, type OvsDaemons } from './ovs-helpers.js';

const execFileP = promisify(execFile);
const skip = privilegedSkipReason() ?? ovsSkipReason();
const VNI = '42';

describe.skipIf(skip)('the same L2 segment over Open vSwitch, with vxlan tunnel ports added over OVSDB', () => {
  const nss = new Namespaces();
  const handles: Handle[] = [];
  const daemons: OvsDaemons[] = [];
  const clients: Ovsdb[] = [];
  let u: Handle;
  interface Host {
    i: number; H: Netns; h: Handle; G: Netns; g: Handle; ovsd: OvsDaemons; ovs: Ovsdb;
    ip: string; guestIp: string; guestMac: string; guestPort: OvsPort; tunnels: Map<number, OvsPort>;
  }
  const hosts: Host[] = [];

  const appctl = async (x: Host, ...args: string[]) => (await execFileP('ip',
    ['netns', 'exec', x.H.name, 'ovs-appctl', '-t', path.join(x.ovsd.dir, 'ovs-vswitchd.ctl'), '--timeout=20', ...args], { timeout: 30_000 })).stdout;

  async function addHost(i: number): Promise<Host> {
    const [H, G] = await Promise.all([nss.create(`oovh${i}`), nss.create(`oovg${i}`)]);
    const [h, g] = await Promise.all([open({ netns: H }), open({ netns: G })]);
    handles.push(h, g);
    const ip = `198.51.100.${i}`, guestIp = `192.168.122.${10 + i}`, guestMac = `52:54:00:00:02:0${i}`;
    await u.link.add({ kind: 'veth', name: `up${i}`, peer: { name: 'eth0', netns: H }, master: 'ul', up: true });
    await h.link.set('eth0', { up: true });
    // 50 bytes of VXLAN over IPv4 under a 1500-byte underlay: the guest gets 1450, as flannel's do.
    await h.link.add({ kind: 'veth', name: 'gp0', peer: { name: 'eth0', netns: G, mac: guestMac, mtu: 1450 }, mtu: 1450, up: true });
    await g.link.set('eth0', { up: true });
    await g.addr.add('eth0', `${guestIp}/24`);

    const ovsd = await startOvs(H);
    daemons.push(ovsd);
    for (const pid of ovsd.pids) nss.track(pid);
    const ovs = await Ovsdb.connect(ovsd.sock, { timeout: 30_000 });
    clients.push(ovs);
    // br-phy: the uplink as a port, the underlay address on the bridge's internal port.
    await ovs.addBridge('br-phy', { datapathType: 'netdev', failMode: 'standalone' });
    await ovs.addPort('br-phy', 'eth0');
    await waitFor(() => h.link.get('br-phy'), 'ovs-vswitchd to create the br-phy tap', 20_000);
    await h.addr.add('br-phy', `${ip}/24`);
    await h.link.set('br-phy', { up: true });
    // br-int: the guest's port; the tunnels come later, one per other host.
    await ovs.addBridge('br-int', { datapathType: 'netdev', failMode: 'standalone' });
    const guestPort = await ovs.addPort('br-int', 'gp0', { externalIds: { 'attached-mac': guestMac } });
    return { i, H, h, G, g, ovsd, ovs, ip, guestIp, guestMac, guestPort, tunnels: new Map() };
  }

  /** The one call that connects host x to host y (y needs the mirror call to answer). */
  async function tunnel(x: Host, y: Host, key: string = VNI): Promise<OvsPort> {
    const p = await x.ovs.addPort('br-int', `vxlan${y.i}`, {
      type: 'vxlan', protected: true, options: { remote_ip: y.ip, key, dst_port: '4789' },
    });
    x.tunnels.set(y.i, p);
    return p;
  }

  /** What OVS knows on host x, for a failure message. */
  async function diagnostics(x: Host): Promise<string> {
    const parts: string[] = [];
    for (const args of [['fdb/show', 'br-int'], ['fdb/show', 'br-phy'], ['ovs/route/show'], ['tnl/arp/show'], ['dpif/show'], ['dpctl/dump-flows']]) {
      parts.push(`$ ovs-appctl ${args.join(' ')} (host ${x.i})\n${await appctl(x, ...args).catch((e) => String(e))}`.slice(0, 4000));
    }
    return parts.join('\n');
  }

  /**
   * Pings until one answer or a 90 s deadline: the first packets wait for OVS's own ARP towards
   * the remote endpoint and for the guests' ARP over the tunnels, both slow on a loaded machine.
   */
  async function reaches(x: Host, y: Host, size?: number): Promise<void> {
    const end = Date.now() + 90_000;
    let tries = 0, last = '';
    const sz = size ? ['-s', String(size), '-M', 'do'] : [];
    while (Date.now() < end) {
      tries++;
      const r = await nsRun(x.G, 'ping', ['-c', '1', '-W', '2', ...sz, y.guestIp]);
      if (r.code === 0) return;
      last = `${r.stdout}${r.stderr}`;
      await new Promise((res) => setTimeout(res, 250));
    }
    throw new Error(`guest ${x.guestIp} (host ${x.i}) never reached ${y.guestIp} (host ${y.i}) in ${tries} pings: ${last}\n`
      + `${await diagnostics(x)}\n${await diagnostics(y)}`);
  }

  beforeAll(async () => {
    hasTool('ping');
    hasTool('ovs-appctl');
    const U = await nss.create('oovu');
    u = await open({ netns: U });
    handles.push(u);
    await u.link.add({ kind: 'bridge', name: 'ul', up: true });
    for (const i of [1, 2, 3]) hosts.push(await addHost(i));
  }, 180_000);

  afterAll(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    for (const h of handles) await h.close().catch(() => undefined);
    for (const d of daemons) await d.stop().catch(() => undefined);
    await nss.cleanup();
  }, 60_000);

  it('refuses tunnel options OVS would misread, naming the field, before anything is sent', async () => {
    const x = hosts[0];
    const rows = await rowCount(x.ovsd, 'Interface');
    const bad: [Record<string, string>, RegExp, boolean?][] = [
      [{ key: VNI }, /ovsdb\.addPort: options\.remote_ip: a vxlan port needs the remote tunnel endpoint/],
      [{ remote_ip: '198.51.100.300' }, /options\.remote_ip: must be an IPv4 or IPv6 address/],
      [{ remote_ip: '239.1.1.1' }, /options\.remote_ip: must be a unicast address/],
      [{ remote_ip: '198.51.100.2', key: '16777216' }, /options\.key: must be "flow", a decimal integer .*between 0 and 16777215/],
      [{ remote_ip: '198.51.100.2', key: '042' }, /options\.key: .*no leading zero/],
      [{ remote_ip: '198.51.100.2', dst_port: 'abc' }, /options\.dst_port: must be a decimal integer between 1 and 65535/],
      [{ remote_ip: '198.51.100.2', dst_port: '0' }, /options\.dst_port/],
      [{ remote_ip: '198.51.100.2', local_ip: '2001:db8::1' }, /options\.local_ip: is inet6 but remote_ip is inet/],
      [{ remote_ip: '198.51.100.2', local_ip: 'flow' }, /options\.local_ip: "flow" needs remote_ip "flow"/],
      [{ remote_ip: '198.51.100.2', csum: 'yes' }, /options\.csum: must be "true" or "false"/],
      [{ remote_ip: '198.51.100.2', ttl: '256' }, /options\.ttl/],
      [{ remote_ip: '198.51.100.2\nkey=1' }, /options\.remote_ip: must not contain control characters/],
      [{ remote_ip: '198.51.100.2', 'key b': '1' }, /options\.key b: keys are words/],
    ];
    for (const [options, msg] of bad) {
      const e = await x.ovs.addPort('br-int', 'vxbad', { type: 'vxlan', options }).then(() => undefined, (err) => err);
      expect(e, String(msg)).toBeInstanceOf(Error);
      expect(e.name, String(msg)).toMatch(/^(TypeError|RangeError)$/);
      expect(e.message).toMatch(msg);
    }
    // No options at all is the first case too; a non-tunnel type keeps its own options unchecked
    // but printable; `protected` is a boolean.
    await expect(x.ovs.addPort('br-int', 'vxbad', { type: 'geneve' })).rejects.toThrow(/options\.remote_ip: a geneve port needs/);
    await expect(x.ovs.addPort('br-int', 'pbad', { type: 'patch', options: { peer: 'p\u0007' } })).rejects.toThrow(/options\.peer: must not contain control characters/);
    await expect(x.ovs.addPort('br-int', 'vxbad', { type: 'vxlan', protected: 'yes' as any, options: { remote_ip: '198.51.100.2' } })).rejects.toThrow(/ovsdb\.addPort: protected: must be true or false/);
    expect(await rowCount(x.ovsd, 'Interface')).toBe(rows);
    expect(await x.ovsd.vsctl(['list-ports', 'br-int'])).toBe('gp0\n');
  });

  it('every guest pings every other across three hosts, and a fourth host joins with one addPort per existing host', async () => {
    for (const x of hosts) for (const y of hosts) if (x !== y) await tunnel(x, y);

    // OVS's own view: br-int on the userspace datapath with a vxlan port per other host.
    for (const x of hosts) {
      const shown = parseVsctlShow(await x.ovsd.vsctl(['show']));
      expect(shown.bridges['br-int'].datapathType).toBe('netdev');
      expect(Object.keys(shown.bridges['br-phy'].ports).sort()).toEqual(['br-phy', 'eth0']);
      for (const y of hosts) {
        if (x === y) continue;
        const iface = shown.bridges['br-int'].ports[`vxlan${y.i}`]?.interfaces[`vxlan${y.i}`];
        expect(iface, `host ${x.i}: vxlan${y.i}`).toMatchObject({ type: 'vxlan' });
        expect(iface.error).toBeUndefined();
        expect(iface.options).toBe(`{dst_port="4789", key="${VNI}", remote_ip="${y.ip}"}`);
      }
      const ports = JSON.parse(await x.ovsd.vsctl(['--format=json', '--columns=name,protected', 'list', 'Port'])).data as [string, boolean][];
      expect(Object.fromEntries(ports)).toEqual({ 'br-phy': false, 'br-int': false, eth0: false, gp0: false,
        ...Object.fromEntries(hosts.filter((y) => y !== x).map((y) => [`vxlan${y.i}`, true])) });
      // ovs-vswitchd opened them as tunnels of its userspace datapath, listening on 4789.
      const dpif = await appctl(x, 'dpif/show');
      expect(dpif).toMatch(/^netdev@ovs-netdev:/);
      for (const y of hosts) if (y !== x) expect(dpif).toContain(`vxlan${y.i} ${x.tunnels.get(y.i)!.ofport}/`);
      for (const y of hosts) if (y !== x) expect(dpif).toMatch(new RegExp(`vxlan${y.i} \\d+/\\d+: \\(vxlan: .*remote_ip=${y.ip.replace(/\./g, '\\.')}`));
      expect(await appctl(x, 'tnl/ports/show')).toMatch(/vxlan_sys_4789/);
      // The underlay route came from the namespace's kernel table, not from us (ovs-vswitchd
      // reads it from rtnetlink notifications, on its own time).
      const route = new RegExp(`198\\.51\\.100\\.0/24 dev br-phy SRC ${x.ip.replace(/\./g, '\\.')}`);
      await waitFor(async () => route.test(await appctl(x, 'ovs/route/show')), `host ${x.i}: ovs/route/show to list 198.51.100.0/24 dev br-phy`, 20_000, 200);
    }

    for (const x of hosts) for (const y of hosts) if (x !== y) await reaches(x, y);
    // A full-size guest packet (1450 bytes, DF) fits the tunnel.
    await reaches(hosts[0], hosts[1], 1450 - 28);

    for (const x of hosts) {
      // br-int learned each remote guest's MAC on the tunnel to its host, and its own on gp0:
      // nothing came back over another tunnel (that would be the loop protected ports prevent).
      const fdb = await appctl(x, 'fdb/show', 'br-int');
      const learned = new Map(fdb.split('\n').slice(1).map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 3).map((f) => [f[2], f[0]]));
      expect(learned.get(x.guestMac), fdb).toBe(String(x.guestPort.ofport));
      for (const y of hosts) if (y !== x) expect(learned.get(y.guestMac), `host ${x.i}: ${y.guestMac}\n${fdb}`).toBe(String(x.tunnels.get(y.i)!.ofport));
      // And OVS resolved the other endpoints' MACs out of br-phy itself.
      const arp = await appctl(x, 'tnl/arp/show');
      for (const y of hosts) if (y !== x) expect(arp).toMatch(new RegExp(`^${y.ip.replace(/\./g, '\\.')}\\s+[0-9a-f:]{17}\\s+br-phy`, 'm'));
    }

    // A fourth machine: its own tunnels to each existing host, and one addPort on each of them.
    // Its side writes the VNI in hex, which ovs-vswitchd reads with strtoull(s, NULL, 0): the
    // pings below prove it is the same VNI, and dpif/show prints what it parsed.
    const h4 = await addHost(4);
    const hexVni = `0x${Number(VNI).toString(16)}`;
    for (const y of hosts) await tunnel(h4, y, hexVni);
    for (const x of hosts) await tunnel(x, h4);
    hosts.push(h4);
    for (const x of hosts.slice(0, 3)) {
      expect(parseVsctlShow(await x.ovsd.vsctl(['show'])).bridges['br-int'].ports.vxlan4.interfaces.vxlan4.options).toContain('remote_ip="198.51.100.4"');
      await reaches(x, h4);
      await reaches(h4, x);
    }
    const dpif4 = await appctl(h4, 'dpif/show');
    for (const y of hosts.slice(0, 3)) expect(dpif4).toMatch(new RegExp(`vxlan${y.i} \\d+/\\d+: \\(vxlan: .*key=${VNI}\\b`));
    const fdb4 = await appctl(h4, 'fdb/show', 'br-int');
    for (const y of hosts.slice(0, 3)) expect(fdb4).toMatch(new RegExp(`^\\s*${h4.tunnels.get(y.i)!.ofport}\\s+0\\s+${y.guestMac}`, 'm'));
  }, 600_000);
});
