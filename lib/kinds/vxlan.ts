// The vxlan link kind (IFLA_VXLAN_*): an L2 overlay over UDP, usually a bridge port. A unicast
// `remote` and a multicast group share IFLA_VXLAN_GROUP(6), as in iproute2; ports are big-endian.
// Table order is the order iproute2 6.1 sends the attributes in (for the golden bytes).
import { defineKind, type InfoFields, type SpecFields } from './schema.js';
import type { LinkBaseSpec } from '../link.js';
import * as v from '../validate.js';

export const vxlan = defineKind('vxlan', {
  /** The underlay device (`dev`). Reported as `linkIndex`. */
  link: { attr: 3, type: 'ifindex', infoKey: 'linkIndex' },
  ttl: { attr: 5, type: 'u8' },
  tos: { attr: 6, type: 'u8' },
  /** UDP source port range [min, max] (`srcport MIN MAX`). */
  srcPorts: { attr: 10, type: 'struct', members: ['be16', 'be16'], min: 1, max: 65535, infoKeys: ['srcPortMin', 'srcPortMax'] },
  proxy: { attr: 11, type: 'bool8' },
  l2miss: { attr: 13, type: 'bool8' },
  l3miss: { attr: 14, type: 'bool8' },
  /** FDB entry lifetime in seconds. */
  ageing: { attr: 8, type: 'u32' },
  /** Max FDB entries (0: no limit). */
  maxAddresses: { attr: 9, type: 'u32' },
  udpCsum: { attr: 18, type: 'bool8' },
  /** The VXLAN network identifier, 0–16777215. */
  vni: { attr: 1, type: 'u32', max: 0xffffff, required: true },
  /** The source address of the underlay packets (`local`). */
  local: { attr: 4, attr6: 17, type: 'ip' },
  /** The unicast peer (`remote`). */
  remote: { attr: 2, attr6: 16, type: 'ip', multicast: false, otherwise: 'mcastGroup' },
  /** A multicast group (iproute2's `group`); needs `link`. */
  mcastGroup: { attr: 2, attr6: 16, type: 'ip', multicast: true, otherwise: 'remote' },
  /** Learn remote MACs from incoming packets (default on). */
  learning: { attr: 7, type: 'bool8' },
  /**
   * UDP destination port. Default 4789 (IANA), and always sent even when unset: the one
   * exception to "unset options are never emitted", because the kernel alone would use the
   * legacy 8472, which no other VXLAN endpoint expects (iproute2 warns when it is left out).
   */
  dstPort: { attr: 15, type: 'be16', min: 1, default: 4789 },
}, {
  normalize(s, d, op) {
    if (s.remote !== undefined && s.mcastGroup !== undefined) throw v.rangeError(op, 'remote', 'give remote or mcastGroup, not both');
    if (d.mcastGroup !== undefined && d.link === undefined) throw v.rangeError(op, 'link', 'a multicast group needs the underlay device (link)');
    const peer = (d.remote ?? d.mcastGroup) as string | undefined;
    if (peer !== undefined && d.local !== undefined && peer.includes(':') !== (d.local as string).includes(':'))
      throw v.rangeError(op, 'local', `${d.local} is not the same family as the remote/group`);
    if (d.srcPorts) {
      const [lo, hi] = d.srcPorts as number[];
      if (lo > hi) throw v.rangeError(op, 'srcPorts', `min ${lo} is above max ${hi}`);
    }
  },
});

/**
 * A VXLAN tunnel endpoint. Give `remote` (unicast peer) or `mcastGroup` (iproute2's `group`;
 * `group` is the link group here as on every link), not both.
 *
 * @example
 * await nl.link.add({ kind: 'vxlan', name: 'vx0', vni: 42, remote: '198.51.100.2', local: '198.51.100.1', dstPort: 4789, link: 'eth0' });
 */
export interface VxlanSpec extends LinkBaseSpec, SpecFields<typeof vxlan.fields> {
  kind: 'vxlan';
}

/** What `link.get` reports in `info` for a vxlan (IFLA_VXLAN_*). */
export interface VxlanInfo extends InfoFields<typeof vxlan.fields> {}
