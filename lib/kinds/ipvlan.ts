// The ipvlan link kind (IFLA_IPVLAN_*): siblings on a lower device that share its MAC and are
// told apart by IP address. iproute2 always sends both attributes; so does this table's default.
import { defineKind, type ChangeFields, type InfoFields, type SpecFields } from './schema.js';
import type { LinkBaseSpec } from '../link.js';

export const ipvlan = defineKind('ipvlan', {
  /** The lower device (`link`), in this namespace. */
  link: { attr: 5, type: 'ifindex', top: true, required: true },
  /**
   * `l2` (the default): frames are switched by the lower device's MAC, ARP works; `l3`: the
   * lower device routes, no broadcast or multicast; `l3s`: l3 with netfilter on the way.
   */
  mode: { attr: 1, type: 'u16', enum: { l2: 0, l3: 1, l3s: 2 }, settable: true },
  /**
   * How siblings reach each other (iproute2's mode flags, one of them): `bridge` (the
   * default) directly, `private` never, `vepa` only through the external switch.
   */
  flags: { attr: 2, type: 'u16', enum: { bridge: 0, private: 1, vepa: 2 }, settable: true },
}, { patterns: true });

/**
 * An ipvlan on a lower device. Equivalent to: `ip link add link eth0 name ipv0 type ipvlan mode l3 private`.
 *
 * @example
 * await nl.link.add({ kind: 'ipvlan', name: 'ipv0', link: 'eth0', mode: 'l2', flags: 'bridge' });
 */
export interface IpvlanSpec extends LinkBaseSpec, SpecFields<typeof ipvlan.fields> {
  kind: 'ipvlan';
}
/** What `link.set` changes on an ipvlan. */
export interface IpvlanChanges extends ChangeFields<typeof ipvlan.fields> {}
/** What `link.get` reports in `info` for an ipvlan. */
export interface IpvlanInfo extends InfoFields<typeof ipvlan.fields> {}
