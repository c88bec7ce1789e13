// GRE tunnels (IFLA_GRE_*): `gre` (IPv4 packets over IPv4), `gretap` (Ethernet over IPv4) and
// `ip6gretap` (Ethernet over IPv6). iproute2 6.1 sends every setting, defaults included, so the
// tables carry its defaults; order is its order (the golden bytes). A key sets the GRE_KEY
// bit of the header flags, as `ikey`/`okey`/`key` do in iproute2.
import { defineKind, type InfoFields, type KindHooks, type SpecFields } from './schema.js';
import type { LinkBaseSpec } from '../link.js';
import * as v from '../validate.js';

const GRE_KEY = 0x2000;  // in the big-endian GRE header flags

const keyFields = {
  /** Key expected on received packets (`ikey`); sets GRE_KEY in `iflags`. */
  ikey: { attr: 4, type: 'be32', default: 0 },
  /** Key put on sent packets (`okey`); sets GRE_KEY in `oflags`. */
  okey: { attr: 5, type: 'be32', default: 0 },
  /** Receive header flags (GRE_KEY 0x2000, GRE_CSUM 0x8000, GRE_SEQ 0x1000); set from ikey unless given. */
  iflags: { attr: 2, type: 'be16', default: 0 },
  /** Send header flags; set from okey unless given. */
  oflags: { attr: 3, type: 'be16', default: 0 },
} as const;

const encapFields = {
  /** UDP encapsulation (FOU/GUE) of the GRE packets: `none` unless given. */
  encapType: { attr: 14, type: 'u16', enum: { none: 0, fou: 1, gue: 2 }, default: 'none' },
  encapFlags: { attr: 15, type: 'u16', default: 0 },
  encapSport: { attr: 16, type: 'be16', default: 0 },
  encapDport: { attr: 17, type: 'be16', default: 0 },
} as const;

const hooks: KindHooks = {
  extraKeys: ['key'],
  normalize(s, d, op) {
    // `key` is iproute2's shorthand for the same ikey and okey.
    if (s.key !== undefined) {
      if (s.ikey !== undefined || s.okey !== undefined) throw v.rangeError(op, 'key', 'give key, or ikey/okey, not both');
      d.ikey = d.okey = v.uint(op, 'key', s.key);
    }
    if ((s.ikey !== undefined || s.key !== undefined) && s.iflags === undefined) d.iflags = GRE_KEY;
    if ((s.okey !== undefined || s.key !== undefined) && s.oflags === undefined) d.oflags = GRE_KEY;
  },
};

const v4 = {
  ...keyFields,
  /** Outer source address (`local`). */
  local: { attr: 6, type: 'ip4', default: '0.0.0.0' },
  /** Outer destination address (`remote`). */
  remote: { attr: 7, type: 'ip4', default: '0.0.0.0' },
  /** Path MTU discovery on the outer packets (default on; `nopmtudisc` is false). */
  pmtudisc: { attr: 10, type: 'bool8', default: true },
  tos: { attr: 9, type: 'u8', default: 0 },
  /** The underlay device (`dev`). Reported as `linkIndex`. */
  link: { attr: 1, type: 'ifindex', infoKey: 'linkIndex' },
  /** Outer TTL (0: inherit). */
  ttl: { attr: 8, type: 'u8', default: 0 },
  fwmark: { attr: 20, type: 'u32', default: 0 },
  ...encapFields,
} as const;

export const gre = defineKind('gre', v4, hooks);
export const gretap = defineKind('gretap', v4, hooks);

export const ip6gretap = defineKind('ip6gretap', {
  ...keyFields,
  local: { attr: 6, type: 'ip6', default: '::' },
  remote: { attr: 7, type: 'ip6', default: '::' },
  /** The underlay device (`dev`). Reported as `linkIndex`. */
  link: { attr: 1, type: 'ifindex', infoKey: 'linkIndex' },
  /** Outer hop limit (`hoplimit`, default 64). */
  ttl: { attr: 8, type: 'u8', default: 64 },
  /** Tunnel encapsulation limit option (`encaplimit`, default 4). */
  encapLimit: { attr: 11, type: 'u8', default: 4 },
  /** Outer flow label and traffic class (`flowlabel`/`tclass`), as the be32 of the IPv6 header. */
  flowinfo: { attr: 12, type: 'be32', default: 0 },
  /** ip6_tnl flags (IP6_TNL_F_*). */
  flags: { attr: 13, type: 'u32', default: 0 },
  fwmark: { attr: 20, type: 'u32', default: 0 },
  /** ERSPAN version, which iproute2 sends for every ip6gre tunnel (1). */
  erspanVersion: { attr: 22, type: 'u8', default: 1 },
  ...encapFields,
  /** TUNNEL_ENCAP_FLAG_CSUM6 by default, as iproute2 sends. */
  encapFlags: { attr: 15, type: 'u16', default: 2 },
}, hooks);

interface KeySpec {
  /** The same key in both directions (`key`): ikey and okey. */
  key?: number;
}
/** `ip link add gre1 type gre remote 198.51.100.2 local 198.51.100.1 ttl 64`: IPv4 in GRE over IPv4. */
export interface GreSpec extends LinkBaseSpec, SpecFields<typeof gre.fields>, KeySpec { kind: 'gre' }
/**
 * `ip link add gt0 type gretap remote 198.51.100.2 local 198.51.100.1`: Ethernet over GRE over IPv4.
 *
 * @example
 * await nl.link.add({ kind: 'gretap', name: 'gt0', local: '198.51.100.1', remote: '198.51.100.2', up: true });
 */
export interface GretapSpec extends LinkBaseSpec, SpecFields<typeof gretap.fields>, KeySpec { kind: 'gretap' }
/** `ip link add g6 type ip6gretap remote 2001:db8::2 local 2001:db8::1`: Ethernet over GRE over IPv6. */
export interface Ip6gretapSpec extends LinkBaseSpec, SpecFields<typeof ip6gretap.fields>, KeySpec { kind: 'ip6gretap' }

/** What `link.get` reports in `info` for gre and gretap (IFLA_GRE_*). */
export interface GreInfo extends InfoFields<typeof gre.fields> {}
/** What `link.get` reports in `info` for ip6gretap (IFLA_GRE_*). */
export interface Ip6gretapInfo extends InfoFields<typeof ip6gretap.fields> {}
