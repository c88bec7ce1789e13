// The vrf link kind (IFLA_VRF_*): an L3 master device bound to a routing table; links
// enslaved to it (`master`) route through that table. Ports report their table too.
import { defineKind, type InfoFields, type SpecFields } from './schema.js';
import type { LinkBaseSpec } from '../link.js';

export const vrf = defineKind('vrf', {
  /** The routing table the VRF's ports use (`table`), 1–4294967295 (not 0). */
  table: { attr: 1, type: 'u32', min: 1, required: true },
}, {
  port: {
    /** The table of the VRF this link is enslaved to. */
    table: { attr: 1, type: 'u32', readOnly: true },
  },
});

/**
 * A VRF. Equivalent to: `ip link add vrf-blue type vrf table 10`.
 *
 * @example
 * await nl.link.add({ kind: 'vrf', name: 'vrf-blue', table: 10, up: true });
 * await nl.link.set('eth1', { master: 'vrf-blue' });
 */
export interface VrfSpec extends LinkBaseSpec, SpecFields<typeof vrf.fields> {
  kind: 'vrf';
}
/** What `link.get` reports in `info` for a vrf. */
export interface VrfInfo extends InfoFields<typeof vrf.fields> {}
/** The port side of a link enslaved to a vrf. */
export interface VrfPort extends InfoFields<typeof vrf.port> {
  kind: 'vrf';
}
