// Every link kind, in one place: a kind is its table file plus a line here. The tables are
// sent to the addon once, when this module loads, so the native encoder/decoder knows them
// before any handle can use them.
import { native } from '../native.js';
import { nativeTable, type KindDef, type SpecFields, type InfoFields } from './schema.js';
import { bond } from './bond.js';
import { bridge } from './bridge.js';
import { dummy } from './dummy.js';
import { geneve } from './geneve.js';
import { gre, gretap, ip6gretap } from './gre.js';
import { ifb } from './ifb.js';
import { ipvlan } from './ipvlan.js';
import { ipvtap } from './ipvtap.js';
import { macvlan, macvtap } from './macvlan.js';
import { netkit } from './netkit.js';
import { tun } from './tun.js';
import { veth } from './veth.js';
import { vlan } from './vlan.js';
import { vrf } from './vrf.js';
import { vxlan } from './vxlan.js';
import { wireguard } from './wireguard.js';

/** Every kind with a table, by name. */
export const kindDefs = { bond, bridge, dummy, ifb, ipvlan, macvlan, macvtap, tun, veth, vlan, vrf, vxlan, wireguard, geneve, gre, gretap, ip6gretap, netkit, ipvtap } as const;
export type KindName = keyof typeof kindDefs;

/** The table of a kind, or undefined for a kind vnetlink has no table for. */
export function kindDef(kind: string): KindDef | undefined {
  return Object.hasOwn(kindDefs, kind) ? (kindDefs as Record<string, KindDef>)[kind] : undefined;
}

native.setLinkKinds(Object.values(kindDefs).map((k) => nativeTable(k as KindDef)));

export type { SpecFields, InfoFields };
