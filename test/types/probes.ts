// Type probes, compiled by `npm test` (tsc -p test/types): what must compile does, and every
// `@ts-expect-error` line must be an error against the published .d.ts.
import { open, Ovsdb, type Link, type LinkChanges, type MonitorEvent } from 'vnetlink';

export async function links(): Promise<void> {
  const nl = await open();
  const l: Link = await nl.link.get('br0');

  // Link is a union on kind: info is typed once the kind is known.
  if (l.kind === 'bridge') {
    const stp: boolean | undefined = l.info.stp;
    const id: string | undefined = l.info.bridgeId;
    void stp; void id;
    // @ts-expect-error a bridge has no macvlan mode
    void l.info.mode;
  }
  if (l.kind === 'macvtap') {
    const mode: 'vepa' | 'bridge' | 'private' | 'passthru' | 'source' = l.info.mode;
    void mode;
  }
  if (l.kind === 'tun') void (l.info.mode === 'tap');
  if (l.kind === 'vxlan') void (l.info.vni! + 1);
  // @ts-expect-error before narrowing, info is no bridge's
  void l.info.stp;
  // @ts-expect-error no such kind
  if (l.kind === 'bridgee') void 0;
  // @ts-expect-error operState is one of the RFC 2863 states
  if (l.operState === 'upp') void 0;
  // @ts-expect-error no any: info of a veth has nothing to read
  const n: number = l.kind === 'veth' ? l.info.peerIndex : 0;
  void n;
  // The port of an enslaved link, narrowed on its kind.
  if (l.port?.kind === 'bridge') void (l.port.state === 'forwarding');
  // @ts-expect-error a bridge port state that does not exist
  if (l.port?.kind === 'bridge' && l.port.state === 'forwardin') void 0;

  // link.set: typed changes, no index signature.
  await nl.link.set('v0', { mtu: 1400, up: true, master: null });
  await nl.link.set('mv0', { mode: 'vepa' });
  await nl.link.set('br0', { stp: true, forwardDelay: 4 });
  // @ts-expect-error a misspelt key
  await nl.link.set('v0', { mtuu: 1400 });
  // @ts-expect-error a macvlan mode that does not exist
  await nl.link.set('mv0', { mode: 'vepaa' });
  // Flags are booleans (iproute2's on/off), carrier only on a live link.
  await nl.link.set('v0', { promisc: true, allmulti: false, multicast: true, arp: false, carrier: false, gsoMaxSize: 32768, groMaxSize: 32768 });
  const enc: Buffer = await nl.link.encodeSet('v0', { promisc: true });
  void enc;
  if (l.promisc && !l.arp) void (l.promiscuity ?? 0);
  // @ts-expect-error promisc is a boolean, not 'on'
  await nl.link.set('v0', { promisc: 'on' });
  // @ts-expect-error carrier is changed on an existing link, not at creation
  await nl.link.add({ kind: 'veth', name: 'v0', peer: { name: 'v1' }, carrier: false });
  // @ts-expect-error mtu is a number
  const c: LinkChanges = { mtu: '1400' };
  void c;

  // Bridge VLANs: a range has no PVID key of its own, del takes no pvid/untagged.
  await nl.bridge.vlan.add('vnet0', { vid: 10, pvid: true, untagged: true });
  await nl.bridge.vlan.add('vnet0', { vid: 20, vidEnd: 30 });
  const vl: boolean = (await nl.bridge.vlan.list('vnet0'))[0].pvid;
  void vl;
  // @ts-expect-error del does not take pvid
  await nl.bridge.vlan.del('vnet0', { vid: 10, pvid: true });
  // @ts-expect-error vid is a number
  await nl.bridge.vlan.add('vnet0', { vid: '10' });

  // link.list filters by a known kind only.
  await nl.link.list({ kind: 'veth' });
  // @ts-expect-error no such kind
  await nl.link.list({ kind: 'vethh' });

  // Internals are not in the published types.
  // @ts-expect-error _call is internal
  await nl._call('link.get', { name: 'lo' });
  await nl.close();
}

export async function monitor(): Promise<void> {
  const nl = await open();
  const mon = nl.monitor({ groups: ['link', 'route'] });
  mon.on('newlink', (ev) => { void ev.link.name; });
  mon.on('resync', (ev) => { void ev.links; });
  mon.on('event', (ev: MonitorEvent) => { void ev.type; });
  mon.on('error', (e) => { void e.message; });
  // @ts-expect-error no such event
  mon.on('newlnk', () => {});
  mon.on('newroute', (ev) => {
    void ev.route.dst;
    // @ts-expect-error a route has no such field
    void ev.route.nonexistent;
  });
  for await (const ev of mon) {
    if (ev.type === 'newaddr') void ev.addr.cidr;
    // @ts-expect-error no such group
    if (ev.type === 'newlnk') void 0;
  }
  // @ts-expect-error no such group
  nl.monitor({ groups: ['links'] });
}

export async function ovs(): Promise<void> {
  const db = await Ovsdb.connect('/run/openvswitch/db.sock');
  await db.addBridge('ovsbr0', { datapathType: 'netdev' });
  // @ts-expect-error a datapath type that does not exist
  await db.addBridge('ovsbr0', { datapathType: 'netdevv' });
  // A tunnel of a full mesh: a protected port, options as OVS's strings.
  await db.addPort('br-int', 'vxlan2', { type: 'vxlan', protected: true, options: { remote_ip: '198.51.100.2', key: '42' } });
  // @ts-expect-error option values are strings, as in the database
  await db.addPort('br-int', 'vxlan3', { type: 'vxlan', options: { remote_ip: '198.51.100.3', key: 42 } });
  await db.close();
}

export async function bandwidth(): Promise<void> {
  const nl = await open();
  const net = await nl.network.get('default');
  // libvirt's <bandwidth>, in its units.
  await net.attach('vnet0', { bandwidth: { inbound: { average: 6250, peak: 12500, burst: 64 }, outbound: { average: 3750 } } });
  // @ts-expect-error average is required
  await net.attach('vnet0', { bandwidth: { inbound: { peak: 10 } } });
  // @ts-expect-error floor is not supported
  await net.attach('vnet0', { bandwidth: { inbound: { average: 1, floor: 1 } } });
  const ovs = await Ovsdb.connect();
  await ovs.addPort('ovsbr0', 'vnet1', { bandwidth: { outbound: { average: 1000 } } });
  await ovs.setBandwidth('vnet1', null);
}
