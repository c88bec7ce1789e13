// The vxlan link kind (IFLA_VXLAN_*): an L2 overlay over UDP, usually a bridge port.
import { registerKind, type LinkBaseSpec } from '../link.js';
import * as v from '../validate.js';

/**
 * A VXLAN tunnel endpoint. Give `remote` (unicast peer) or `mcastGroup` (iproute2's `group`;
 * `group` is the link group here as on every link), not both.
 *
 * @example
 * await nl.link.add({ kind: 'vxlan', name: 'vx0', vni: 42, remote: '198.51.100.2', local: '198.51.100.1', dstPort: 4789, link: 'eth0' });
 */
export interface VxlanSpec extends LinkBaseSpec {
  kind: 'vxlan';
  /** The VXLAN network identifier, 0–16777215. */
  vni: number;
  /** The unicast peer (`remote`). */
  remote?: string;
  /** A multicast group (iproute2's `group`); needs `link`. */
  mcastGroup?: string;
  /** The source address of the underlay packets (`local`). */
  local?: string;
  /** The underlay device (`dev`). */
  link?: string;
  /**
   * UDP destination port. Default 4789 (IANA), and always sent even when unset: the one
   * exception to "unset options are never emitted", because the kernel alone would use the
   * legacy 8472, which no other VXLAN endpoint expects (iproute2 warns when it is left out).
   */
  dstPort?: number;
  /** UDP source port range [min, max]. */
  srcPorts?: [number, number];
  ttl?: number;
  tos?: number;
  /** Learn remote MACs from incoming packets (default on). */
  learning?: boolean;
  /** FDB entry lifetime in seconds. */
  ageing?: number;
  /** Max FDB entries (0: no limit). */
  maxAddresses?: number;
  proxy?: boolean;
  l2miss?: boolean;
  l3miss?: boolean;
  udpCsum?: boolean;
}

declare module '../link.js' {
  interface LinkKindSpecs {
    vxlan: VxlanSpec;
  }
}

const keys = ['vni', 'remote', 'mcastGroup', 'local', 'link', 'dstPort', 'srcPorts', 'ttl', 'tos', 'learning', 'ageing', 'maxAddresses', 'proxy', 'l2miss', 'l3miss', 'udpCsum'];

registerKind('vxlan', keys, (s, op) => {
  const out: Record<string, unknown> = {};
  if (s.vni === undefined) throw v.typeError(op, 'vni', 'is required for a vxlan link');
  out.vni = v.uint(op, 'vni', s.vni, 0, 0xffffff);
  if (s.remote !== undefined && s.mcastGroup !== undefined) throw v.rangeError(op, 'remote', 'give remote or mcastGroup, not both');
  let fam: string | undefined;
  if (s.remote !== undefined) {
    const a = v.ip(op, 'remote', s.remote);
    if (a.family === 'inet' ? /^(22[4-9]|23\d)\./.test(a.address) : /^ff/i.test(a.address))
      throw v.rangeError(op, 'remote', `${a.address} is multicast: use mcastGroup`);
    out.remote = a.address; fam = a.family;
  }
  if (s.mcastGroup !== undefined) {
    const a = v.ip(op, 'mcastGroup', s.mcastGroup);
    if (!(a.family === 'inet' ? /^(22[4-9]|23\d)\./.test(a.address) : /^ff/i.test(a.address)))
      throw v.rangeError(op, 'mcastGroup', `${a.address} is not a multicast address: use remote`);
    if (s.link === undefined) throw v.rangeError(op, 'link', 'a multicast group needs the underlay device (link)');
    out.mcastGroup = a.address; fam = a.family;
  }
  if (s.local !== undefined) {
    const a = v.ip(op, 'local', s.local);
    if (fam && a.family !== fam) throw v.rangeError(op, 'local', `${a.address} is not the same family as the remote/group`);
    out.local = a.address;
  }
  if (s.link !== undefined) out.vxlanLink = v.ifname(op, 'link', s.link);
  // Always emitted (see dstPort's TSDoc): the kernel's own default, 8472, predates the IANA port.
  out.dstPort = s.dstPort === undefined ? 4789 : v.uint(op, 'dstPort', s.dstPort, 1, 65535);
  if (s.srcPorts !== undefined) {
    if (!Array.isArray(s.srcPorts) || s.srcPorts.length !== 2) throw v.typeError(op, 'srcPorts', 'must be [min, max]');
    const lo = v.uint(op, 'srcPorts[0]', s.srcPorts[0], 1, 65535);
    const hi = v.uint(op, 'srcPorts[1]', s.srcPorts[1], 1, 65535);
    if (lo > hi) throw v.rangeError(op, 'srcPorts', `min ${lo} is above max ${hi}`);
    out.srcPortMin = lo; out.srcPortMax = hi;
  }
  if (s.ttl !== undefined) out.ttl = v.uint(op, 'ttl', s.ttl, 0, 255);
  if (s.tos !== undefined) out.tos = v.uint(op, 'tos', s.tos, 0, 255);
  if (s.ageing !== undefined) out.ageing = v.uint(op, 'ageing', s.ageing);
  if (s.maxAddresses !== undefined) out.maxAddresses = v.uint(op, 'maxAddresses', s.maxAddresses);
  for (const k of ['learning', 'proxy', 'l2miss', 'l3miss', 'udpCsum']) if (s[k] !== undefined) out[k] = v.bool(op, k, s[k]);
  return out;
});
