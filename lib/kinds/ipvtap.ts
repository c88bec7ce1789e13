// The ipvtap link kind (IFLA_IPVLAN_*): an ipvlan (sharing its lower device's MAC, frames
// demultiplexed by IP address) with a /dev/tapN character device, opened as a macvtap's is:
// nl.macvtap.open(name). iproute2 6.1 always sends the flags (0 is `bridge`).
import { defineKind, type InfoFields, type SpecFields } from './schema.js';
import type { LinkBaseSpec } from '../link.js';

export const ipvtap = defineKind('ipvtap', {
  /** The lower device in this namespace. */
  link: { attr: 5, type: 'ifindex', top: true, required: true },
  /** `l2` (frames, ARP on the link), `l3` (the kernel's default: routed, no broadcast) or `l3s` (l3 through netfilter). */
  mode: { attr: 1, type: 'u16', enum: { l2: 0, l3: 1, l3s: 2 } },
  /** `private`: slaves never reach each other; `vepa`: via the external switch; none (`[]`): `bridge`. */
  flags: { attr: 2, type: 'u16', bits: { private: 1, vepa: 2 }, default: [] },
}, {
  normalize(_s, d, op) {
    if (typeof d.flags === 'number' && d.flags === 3) throw new RangeError(`${op}: flags: private and vepa exclude each other`);
  },
});

/**
 * An ipvtap on a lower device. Equivalent to: `ip link add link eth0 name ipvt0 type ipvtap mode l2 bridge`.
 *
 * @example
 * await nl.link.add({ kind: 'ipvtap', name: 'ipvt0', link: 'eth0', mode: 'l2', up: true });
 * await using q = await nl.macvtap.open('ipvt0', { vnetHdr: true });
 */
export interface IpvtapSpec extends LinkBaseSpec, SpecFields<typeof ipvtap.fields> {
  kind: 'ipvtap';
}

/** What `link.get` reports in `info` for an ipvtap (IFLA_IPVLAN_*). */
export interface IpvtapInfo extends InfoFields<typeof ipvtap.fields> {}
