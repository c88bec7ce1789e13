// The vlan link kind (8021q, IFLA_VLAN_*): an 802.1Q/802.1ad sub-interface of a lower device.
// The four flags share one `{ flags, mask }` attribute; only the ones given are in the mask,
// so the kernel keeps its defaults (reorder_hdr on) for the rest.
import { defineKind, type ChangeFields, type InfoFields, type SpecFields } from './schema.js';
import type { LinkBaseSpec } from '../link.js';

export const vlan = defineKind('vlan', {
  /** The lower device (`link`), in this namespace. */
  link: { attr: 5, type: 'ifindex', top: true, required: true },
  /** The tag protocol (`protocol`): 802.1Q (the default) or 802.1ad (QinQ outer tag). */
  protocol: { attr: 5, type: 'be16', enum: { '802.1Q': 0x8100, '802.1ad': 0x88a8 } },
  /** The VLAN id, 0–4094 (`id`). */
  id: { attr: 1, type: 'u16', max: 4094, required: true },
  /** Reorder the header so the vlan device looks like plain Ethernet (`reorder_hdr`, default on). */
  reorderHdr: { attr: 2, type: 'bit', bit: 0x1, settable: true },
  /** Register the VLAN with GVRP (`gvrp`). */
  gvrp: { attr: 2, type: 'bit', bit: 0x2, settable: true },
  /** Do not follow the lower device's operational state (`loose_binding`). */
  looseBinding: { attr: 2, type: 'bit', bit: 0x4, settable: true },
  /** Register the VLAN with MVRP (`mvrp`). */
  mvrp: { attr: 2, type: 'bit', bit: 0x8, settable: true },
  /** Follow the bridge's VLAN port state rather than the lower device's (`bridge_binding`). */
  bridgeBinding: { attr: 2, type: 'bit', bit: 0x10, settable: true },
});

/**
 * A VLAN sub-interface. Equivalent to: `ip link add link eth0 name eth0.10 type vlan id 10`.
 *
 * @example
 * await nl.link.add({ kind: 'vlan', name: 'eth0.10', link: 'eth0', id: 10, protocol: '802.1Q', up: true });
 */
export interface VlanSpec extends LinkBaseSpec, SpecFields<typeof vlan.fields> {
  kind: 'vlan';
}
/** What `link.set` changes on a vlan (`ip link set NAME type vlan gvrp on`). */
export interface VlanChanges extends ChangeFields<typeof vlan.fields> {}
/** What `link.get` reports in `info` for a vlan (IFLA_VLAN_*). */
export interface VlanInfo extends InfoFields<typeof vlan.fields> {}
