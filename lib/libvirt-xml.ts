// libvirt XML in: a <network> document becomes a NetworkSpec and an <interface> document the
// plan of a guest port (a tap on a network or bridge, an OVS port, a macvtap). Parsed with
// saxes (strict well-formedness, no DTD or entity expansion); every element and attribute is
// either understood or refused with an error naming it, never dropped.
import { SaxesParser } from 'saxes';
import type { NetworkSpec } from './network.js';
import * as v from './validate.js';
import { bandwidth as bandwidthArg, type Bandwidth, type BandwidthRate } from './bandwidth.js';
import { qemuModel, qemuOptValue } from './qemu.js';

interface El { name: string; attrs: Record<string, string>; children: El[]; text: string; path: string }

const MAX_XML = 1 << 20;
const MAX_DEPTH = 16;
const MAX_ELEMENTS = 10_000;

/** The document's root element, or a RangeError naming the position of the first fault. */
function parseXml(op: string, xml: unknown): El {
  if (typeof xml !== 'string' && !Buffer.isBuffer(xml)) throw v.typeError(op, 'xml', 'must be a string or a Buffer');
  const text = typeof xml === 'string' ? xml : xml.toString('utf8');
  if (Buffer.byteLength(text) > MAX_XML) throw v.rangeError(op, 'xml', `is larger than ${MAX_XML} bytes`);
  const p = new SaxesParser({ position: true });
  const stack: El[] = [];
  let root: El | undefined;
  let count = 0;
  let fault: Error | undefined;
  const fail = (msg: string) => { fault ??= v.rangeError(op, 'xml', msg); };
  p.on('error', (e) => fail(e.message));
  p.on('doctype', () => fail('a DOCTYPE is not accepted (no DTDs or entities)'));
  p.on('opentag', (t) => {
    if (++count > MAX_ELEMENTS) return fail(`more than ${MAX_ELEMENTS} elements`);
    if (stack.length >= MAX_DEPTH) return fail(`nested deeper than ${MAX_DEPTH} elements`);
    const parent = stack[stack.length - 1];
    const el: El = { name: t.name, attrs: {}, children: [], text: '', path: `${parent ? parent.path : ''}<${t.name}>` };
    for (const [k, a] of Object.entries(t.attributes)) el.attrs[k] = typeof a === 'string' ? a : a.value;
    if (parent) parent.children.push(el);
    else root = el;
    stack.push(el);
  });
  p.on('text', (s) => { const top = stack[stack.length - 1]; if (top) top.text += s; });
  p.on('cdata', (s) => { const top = stack[stack.length - 1]; if (top) top.text += s; });
  p.on('closetag', () => { stack.pop(); });
  try {
    p.write(text).close();
  } catch (e: any) {
    fail(String(e?.message ?? e));
  }
  if (fault) throw fault;
  if (!root) throw v.rangeError(op, 'xml', 'has no root element');
  return root;
}

const unsupported = (op: string, el: El, what = 'is not supported by vnetlink') => v.rangeError(op, el.path, what);

/** Refuses attributes and child elements this element does not know. */
function only(op: string, el: El, attrs: string[], children: string[] = [], text = false): void {
  for (const a of Object.keys(el.attrs)) if (!attrs.includes(a)) throw v.rangeError(op, `${el.path} ${a}=`, `attribute is not supported by vnetlink${attrs.length ? ` (known: ${attrs.join(', ')})` : ''}`);
  for (const c of el.children) if (!children.includes(c.name)) throw unsupported(op, c);
  if (!text && !children.length && el.text.trim()) throw v.rangeError(op, el.path, 'must be empty');
  if (text && !el.text.trim()) throw v.rangeError(op, el.path, 'must not be empty');
}
function one(op: string, el: El, name: string): El | undefined {
  const cs = el.children.filter((c) => c.name === name);
  if (cs.length > 1) throw v.rangeError(op, cs[1].path, `appears ${cs.length} times; vnetlink takes one`);
  return cs[0];
}
function attr(op: string, el: El, name: string, required = false): string | undefined {
  const a = el.attrs[name];
  if (a === undefined && required) throw v.rangeError(op, `${el.path} ${name}=`, 'is required');
  return a;
}
function yesNo(op: string, el: El, name: string, yes = 'yes', no = 'no'): boolean | undefined {
  const a = el.attrs[name];
  if (a === undefined) return undefined;
  if (a !== yes && a !== no) throw v.rangeError(op, `${el.path} ${name}=`, `must be '${yes}' or '${no}' (got ${JSON.stringify(a)})`);
  return a === yes;
}
function int(op: string, el: El, name: string, min: number, max: number, required = false): number | undefined {
  const a = attr(op, el, name, required);
  if (a === undefined) return undefined;
  const n = /^\d+$/.test(a.trim()) ? Number(a.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw v.rangeError(op, `${el.path} ${name}=`, `must be an integer from ${min} to ${max} (got ${JSON.stringify(a)})`);
  return n;
}

function netmaskPrefix(op: string, el: El, mask: string): number {
  const x = v.ip(op, `${el.path} netmask=`, mask);
  if (x.family !== 'inet') throw v.rangeError(op, `${el.path} netmask=`, 'must be an IPv4 netmask');
  const n = x.address.split('.').reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0);
  const len = 32 - Math.log2(((~n) >>> 0) + 1);
  if (!Number.isInteger(len)) throw v.rangeError(op, `${el.path} netmask=`, `${mask} is not a contiguous netmask`);
  return len;
}

/**
 * `<bandwidth><inbound average= peak= burst=/><outbound .../></bandwidth>` in libvirt's units
 * (average/peak kilobytes per second, burst KiB). `floor=` needs libvirt's class tree on the
 * network's bridge, which vnetlink does not build: refused, like anything else it cannot do.
 */
function bandwidthOf(op: string, parent: El): Bandwidth | undefined {
  const bw = one(op, parent, 'bandwidth');
  if (!bw) return undefined;
  only(op, bw, [], ['inbound', 'outbound']);
  const out: Bandwidth = {};
  for (const dir of ['inbound', 'outbound'] as const) {
    const d = one(op, bw, dir);
    if (!d) continue;
    only(op, d, ['average', 'peak', 'burst', 'floor']);
    if (d.attrs.floor !== undefined) throw v.rangeError(op, `${d.path} floor=`, "is not supported by vnetlink (a guaranteed floor needs libvirt's per-network class tree on the bridge)");
    const r: BandwidthRate = { average: int(op, d, 'average', 1, 0xffffffff, true)! };
    const peak = int(op, d, 'peak', 1, 0xffffffff);
    if (peak !== undefined) {
      if (peak < r.average) throw v.rangeError(op, `${d.path} peak=`, `${peak} is below average=${r.average}`);
      r.peak = peak;
    }
    const burst = int(op, d, 'burst', 1, Math.floor(0xffffffff / 1024));
    if (burst !== undefined) r.burst = burst;
    out[dir] = r;
  }
  return bandwidthArg(op, bw.path, out);
}

const UNITS: Record<string, number> = { seconds: 1, minutes: 60, hours: 3600 };
const METADATA = ['uuid', 'title', 'description', 'metadata'];

/**
 * A libvirt `<network>` document as a NetworkSpec for `nl.network.create`. What libvirt
 * would do that vnetlink cannot (routed or bridged forward modes, several DHCP ranges,
 * DHCPv6, SRV/TXT records, port groups, ...) is a RangeError naming the element.
 * `<uuid>`, `<title>`, `<description>` and `<metadata>` are identity, not behaviour: ignored.
 *
 * @example
 * const spec = network.fromLibvirtXml(fs.readFileSync('/etc/libvirt/qemu/networks/default.xml', 'utf8'));
 * const net = await nl.network.create(spec);
 */
export function fromLibvirtXml(xml: string | Buffer): NetworkSpec {
  const op = 'network.fromLibvirtXml';
  const n = parseXml(op, xml);
  if (n.name !== 'network') throw v.rangeError(op, 'xml', `the root element must be <network> (got <${n.name}>)`);
  only(op, n, [], ['name', 'bridge', 'mac', 'mtu', 'forward', 'ip', 'dns', 'domain', 'bandwidth', ...METADATA]);
  const nameEl = one(op, n, 'name');
  if (!nameEl) throw v.rangeError(op, '<network><name>', 'is required');
  only(op, nameEl, [], [], true);
  const spec: Record<string, any> = { name: nameEl.text.trim() };

  const br = one(op, n, 'bridge');
  if (!br) throw v.rangeError(op, '<network><bridge>', 'is required (vnetlink does not choose bridge names)');
  only(op, br, ['name', 'stp', 'delay']);
  spec.bridge = attr(op, br, 'name', true);
  const stp = yesNo(op, br, 'stp', 'on', 'off');
  if (stp !== undefined) spec.stp = stp;
  const delay = int(op, br, 'delay', 0, 30);
  if (delay !== undefined) spec.forwardDelay = delay;

  const mac = one(op, n, 'mac');
  if (mac) { only(op, mac, ['address']); spec.mac = attr(op, mac, 'address', true); }
  const mtu = one(op, n, 'mtu');
  if (mtu) { only(op, mtu, ['size']); spec.mtu = int(op, mtu, 'size', 68, 65535, true); }
  const nbw = bandwidthOf(op, n);
  if (nbw) spec.bandwidth = nbw;

  // No <forward>: an isolated network. <forward> without a mode is NAT, as in libvirt.
  const fw = one(op, n, 'forward');
  let nat: Record<string, any> | false = false;
  if (fw) {
    only(op, fw, ['mode', 'dev'], ['nat', 'interface']);
    const mode = fw.attrs.mode ?? 'nat';
    if (mode !== 'nat') throw v.rangeError(op, `${fw.path} mode=`, `'${mode}' is not supported by vnetlink (only 'nat', or no <forward> for an isolated network)`);
    nat = {};
    const dev = fw.attrs.dev;
    if (dev !== undefined) nat.outInterface = dev;
    for (const i of fw.children.filter((c) => c.name === 'interface')) {
      only(op, i, ['dev']);
      if (attr(op, i, 'dev', true) !== dev) throw v.rangeError(op, i.path, 'vnetlink masquerades out of one interface: the forward dev= (another <interface> is not supported)');
    }
    const ne = one(op, fw, 'nat');
    if (ne) {
      only(op, ne, ['ipv6'], ['port']);
      const v6 = yesNo(op, ne, 'ipv6');
      if (v6) nat.ipv6 = true;
      const port = one(op, ne, 'port');
      if (port) {
        only(op, port, ['start', 'end']);
        nat.ports = [int(op, port, 'start', 1, 65535, true), int(op, port, 'end', 1, 65535, true)];
      }
    }
  }
  spec.nat = nat && Object.keys(nat).length ? nat : !!nat;

  const ips = n.children.filter((c) => c.name === 'ip');
  for (const ip of ips) {
    only(op, ip, ['address', 'netmask', 'prefix', 'family'], ['dhcp']);
    const fam = ip.attrs.family ?? 'ipv4';
    if (fam !== 'ipv4' && fam !== 'ipv6') throw v.rangeError(op, `${ip.path} family=`, `must be 'ipv4' or 'ipv6' (got ${JSON.stringify(fam)})`);
    const address = attr(op, ip, 'address', true)!;
    if (ip.attrs.netmask !== undefined && ip.attrs.prefix !== undefined) throw v.rangeError(op, ip.path, 'give netmask= or prefix=, not both');
    let prefix: number;
    if (ip.attrs.netmask !== undefined) {
      if (fam === 'ipv6') throw v.rangeError(op, `${ip.path} netmask=`, 'IPv6 takes prefix=');
      prefix = netmaskPrefix(op, ip, ip.attrs.netmask);
    } else prefix = int(op, ip, 'prefix', 0, fam === 'ipv6' ? 128 : 32) ?? (fam === 'ipv6' ? 64 : 24);
    const key = fam === 'ipv6' ? 'address6' : 'address';
    if (spec[key] !== undefined) throw v.rangeError(op, ip.path, `a second ${fam} <ip> is not supported by vnetlink (one per family)`);
    spec[key] = `${address}/${prefix}`;
    const dh = one(op, ip, 'dhcp');
    if (!dh) continue;
    if (fam === 'ipv6') throw unsupported(op, dh, 'DHCPv6 is not supported by vnetlink');
    only(op, dh, [], ['range', 'host']);
    const ranges = dh.children.filter((c) => c.name === 'range');
    if (ranges.length !== 1) throw v.rangeError(op, ranges[1]?.path ?? `${dh.path}<range>`, ranges.length ? 'vnetlink serves one DHCP range' : 'is required');
    const r = ranges[0];
    only(op, r, ['start', 'end'], ['lease']);
    const dhcp: Record<string, any> = { start: attr(op, r, 'start', true), end: attr(op, r, 'end', true) };
    const lease = one(op, r, 'lease');
    if (lease) {
      only(op, lease, ['expiry', 'unit']);
      const unit = lease.attrs.unit ?? 'minutes';
      if (!Object.hasOwn(UNITS, unit)) throw v.rangeError(op, `${lease.path} unit=`, `must be seconds, minutes or hours (got ${JSON.stringify(unit)})`);
      const exp = int(op, lease, 'expiry', 0, 0x7fffffff, true)!;
      dhcp.leaseTime = exp === 0 ? 'infinite' : exp * UNITS[unit];
    }
    const hosts = dh.children.filter((c) => c.name === 'host');
    if (hosts.length) {
      dhcp.hosts = hosts.map((h) => {
        only(op, h, ['mac', 'name', 'ip']);
        const host: Record<string, string> = { mac: attr(op, h, 'mac', true)!, ip: attr(op, h, 'ip', true)! };
        if (h.attrs.name !== undefined) host.name = h.attrs.name;
        return host;
      });
    }
    spec.dhcp = dhcp;
  }
  if (spec.address === undefined) throw v.rangeError(op, '<network><ip>', 'an IPv4 <ip address=...> is required (vnetlink networks have an IPv4 gateway)');

  const dns = one(op, n, 'dns');
  const domain = one(op, n, 'domain');
  const d: Record<string, any> = {};
  if (dns) {
    only(op, dns, ['enable'], ['forwarder', 'host']);
    if (yesNo(op, dns, 'enable') === false) {
      if (dns.children.length) throw v.rangeError(op, dns.path, "enable='no' with records inside");
      spec.dns = false;
    }
    const fws = dns.children.filter((c) => c.name === 'forwarder').map((f) => {
      only(op, f, ['addr', 'domain']);
      const o: Record<string, string> = { addr: attr(op, f, 'addr', true)! };
      if (f.attrs.domain !== undefined) o.domain = f.attrs.domain;
      return o;
    });
    if (fws.length) d.forwarders = fws;
    const hs = dns.children.filter((c) => c.name === 'host').map((h) => {
      only(op, h, ['ip'], ['hostname']);
      const names = h.children.map((c) => { only(op, c, [], [], true); return c.text.trim(); });
      if (!names.length) throw v.rangeError(op, `${h.path}<hostname>`, 'is required');
      return { ip: attr(op, h, 'ip', true)!, names };
    });
    if (hs.length) d.hosts = hs;
  }
  if (domain) {
    only(op, domain, ['name']);
    d.domain = attr(op, domain, 'name', true);
  }
  if (Object.keys(d).length) {
    if (spec.dns === false) throw v.rangeError(op, dns!.path, "enable='no' with a <domain> or records");
    spec.dns = d;
  }
  return spec as NetworkSpec;
}

/** What a libvirt `<interface>` asks for, as vnetlink would build it (see `interfaceFromLibvirtXml`). */
export interface InterfacePlan {
  type: 'network' | 'bridge' | 'direct';
  /** type='network': the vnetlink network whose bridge the tap joins. */
  network?: string;
  /** type='bridge': the bridge (a Linux bridge, or an OVS bridge with `ovs`). */
  bridge?: string;
  /** network and bridge: the tap to create (name: <target dev>, default 'vnet%d'). */
  tap?: { name: string; queues: number; vnetHdr: boolean; mac?: string; mtu?: number };
  /** `<virtualport type='openvswitch'>`: the port goes on an OVS bridge, with these ids. */
  ovs?: { interfaceId?: string; profileId?: string };
  /** type='direct': a macvtap on `link` in `mode` (default 'vepa', as libvirt's). */
  macvtap?: { name: string; link: string; mode: 'vepa' | 'bridge' | 'private' | 'passthru'; mac?: string; queues: number; vnetHdr: boolean };
  /**
   * `<bandwidth>`: for a tap, `network.attach(tap, { bandwidth })` (or `nl.tc.shape` with
   * its mapping); for an OVS port, `ovs.addPort(..., { bandwidth })`.
   */
  bandwidth?: Bandwidth;
  /** What only the VMM uses: the guest's MAC, NIC model, PCI address. */
  guest: { mac?: string; model?: string; address?: Record<string, string> };
}

/**
 * A libvirt `<interface type='network'|'bridge'|'direct'>` as a plan of what to create.
 * The tap's own MAC is the guest's with the first byte fe (so it never becomes the bridge's
 * address), as libvirt does; a macvtap takes the guest's MAC itself.
 *
 * @example
 * const plan = interfaceFromLibvirtXml("<interface type='direct'><source dev='eth0' mode='vepa'/></interface>");
 * // { type: 'direct', macvtap: { name: 'macvtap%d', link: 'eth0', mode: 'vepa', ... }, guest: {} }
 */
export function interfaceFromLibvirtXml(xml: string | Buffer): InterfacePlan {
  const op = 'interfaceFromLibvirtXml';
  const el = parseXml(op, xml);
  if (el.name !== 'interface') throw v.rangeError(op, 'xml', `the root element must be <interface> (got <${el.name}>)`);
  only(op, el, ['type'], ['source', 'mac', 'target', 'model', 'virtualport', 'driver', 'mtu', 'address', 'alias', 'bandwidth']);
  const type = attr(op, el, 'type', true)!;
  if (type !== 'network' && type !== 'bridge' && type !== 'direct')
    throw v.rangeError(op, '<interface> type=', `'${type}' is not supported by vnetlink (network, bridge or direct)`);
  const plan: InterfacePlan = { type, guest: {} };
  const src = one(op, el, 'source');
  if (!src) throw v.rangeError(op, '<interface><source>', 'is required');
  const macEl = one(op, el, 'mac');
  let mac: string | undefined;
  if (macEl) { only(op, macEl, ['address']); mac = v.mac(op, `${macEl.path} address=`, attr(op, macEl, 'address', true)); plan.guest.mac = mac; }
  const target = one(op, el, 'target');
  let name: string | undefined;
  if (target) { only(op, target, ['dev']); name = v.ifname(op, `${target.path} dev=`, attr(op, target, 'dev', true), true); }
  const model = one(op, el, 'model');
  // QEMU's -device driver: libvirt's 'virtio' stands for virtio-net-pci, the rest are QEMU's own names.
  if (model) { only(op, model, ['type']); plan.guest.model = qemuModel(op, `${model.path} type=`, attr(op, model, 'type', true)); }
  const address = one(op, el, 'address');
  if (address) { only(op, address, ['type', 'domain', 'bus', 'slot', 'function', 'multifunction']); plan.guest.address = { ...address.attrs }; }
  const alias = one(op, el, 'alias');
  if (alias) only(op, alias, ['name']);
  const driver = one(op, el, 'driver');
  let queues = 1;
  if (driver) {
    only(op, driver, ['name', 'queues']);
    if (driver.attrs.name !== undefined && driver.attrs.name !== 'qemu') throw v.rangeError(op, `${driver.path} name=`, `'${driver.attrs.name}' is not supported by vnetlink (vhost-net is not available here; use 'qemu')`);
    queues = int(op, driver, 'queues', 1, 256) ?? 1;
  }
  const mtuEl = one(op, el, 'mtu');
  const mtu = mtuEl ? (only(op, mtuEl, ['size']), int(op, mtuEl, 'size', 68, 65535, true)) : undefined;
  const vnetHdr = plan.guest.model === 'virtio';
  const vp = one(op, el, 'virtualport');
  if (vp) {
    only(op, vp, ['type'], ['parameters']);
    if (vp.attrs.type !== 'openvswitch') throw v.rangeError(op, `${vp.path} type=`, `'${vp.attrs.type ?? ''}' is not supported by vnetlink (only 'openvswitch')`);
    if (type !== 'bridge') throw v.rangeError(op, vp.path, "openvswitch needs <interface type='bridge'>");
    plan.ovs = {};
    const prm = one(op, vp, 'parameters');
    if (prm) {
      only(op, prm, ['interfaceid', 'profileid']);
      if (prm.attrs.interfaceid !== undefined) plan.ovs.interfaceId = prm.attrs.interfaceid;
      if (prm.attrs.profileid !== undefined) plan.ovs.profileId = prm.attrs.profileid;
    }
  }
  const bw = bandwidthOf(op, el);
  if (bw) {
    if (type === 'direct') throw unsupported(op, one(op, el, 'bandwidth')!, "is not supported by vnetlink on a macvtap (type='direct'); it shapes taps and OVS ports");
    plan.bandwidth = bw;
  }
  const tapMac = mac ? `fe${mac.slice(2)}` : undefined;
  if (type === 'network' || type === 'bridge') {
    only(op, src, [type]);
    const where = attr(op, src, type, true)!;
    if (type === 'network') plan.network = where;
    else plan.bridge = v.ifname(op, `${src.path} bridge=`, where);
    // QEMU opens the tap by this name (ifname=).
    if (name !== undefined) qemuOptValue(op, `${target!.path} dev=`, name);
    plan.tap = { name: name ?? 'vnet%d', queues, vnetHdr };
    if (tapMac) plan.tap.mac = tapMac;
    if (mtu !== undefined) plan.tap.mtu = mtu;
  } else {
    only(op, src, ['dev', 'mode']);
    const mode = src.attrs.mode ?? 'vepa';
    const modes = { vepa: 'vepa', bridge: 'bridge', private: 'private', passthrough: 'passthru' } as const;
    if (!Object.hasOwn(modes, mode)) throw v.rangeError(op, `${src.path} mode=`, `'${mode}' is not supported by vnetlink (vepa, bridge, private, passthrough)`);
    if (mtu !== undefined) throw unsupported(op, mtuEl!, 'a macvtap takes its lower device\'s MTU');
    plan.macvtap = { name: name ?? 'macvtap%d', link: v.ifname(op, `${src.path} dev=`, attr(op, src, 'dev', true)), mode: modes[mode as keyof typeof modes], queues, vnetHdr };
    if (mac) plan.macvtap.mac = mac;
  }
  return plan;
}
