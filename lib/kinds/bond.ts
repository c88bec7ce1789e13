// The bond link kind (IFLA_BOND_*): several ports as one link. Ports join with
// `link.set(port, { master: 'bond0' })` and report their state as the port's
// IFLA_INFO_SLAVE_DATA (IFLA_BOND_SLAVE_*). iproute2 sends options in argument order; so does
// this table's order (the golden bytes).
import { defineKind, type ChangeFields, type InfoFields, type SpecFields } from './schema.js';
import type { LinkBaseSpec } from '../link.js';

const u32 = { type: 'u32', settable: true } as const;

export const bond = defineKind('bond', {
  /** How traffic is spread over the ports (`mode`); change it only on a bond that is down and has no ports. */
  mode: { attr: 1, type: 'u8', settable: true,
    enum: { 'balance-rr': 0, 'active-backup': 1, 'balance-xor': 2, broadcast: 3, '802.3ad': 4, 'balance-tlb': 5, 'balance-alb': 6 } },
  /** The port that carries traffic in active-backup mode (`active_slave`); reported as `activePortIndex`. */
  activePort: { attr: 2, type: 'ifindex', infoKey: 'activePortIndex', settable: true },
  /** MII link monitoring interval in ms (`miimon`); 0 turns it off. */
  miimon: { attr: 3, ...u32 },
  /** Ms to wait before using a port whose link came up (`updelay`). */
  updelay: { attr: 4, ...u32 },
  /** Ms to wait before dropping a port whose link went down (`downdelay`). */
  downdelay: { attr: 5, ...u32 },
  /** Tell link state from the carrier (`use_carrier`, default on). */
  useCarrier: { attr: 6, type: 'bool8', settable: true },
  /** ARP monitoring interval in ms (`arp_interval`). */
  arpInterval: { attr: 7, ...u32 },
  /** Which ARP replies count (`arp_validate`). */
  arpValidate: { attr: 9, type: 'u32', settable: true,
    enum: { none: 0, active: 1, backup: 2, all: 3, filter: 4, filter_active: 5, filter_backup: 6 } },
  /** With several ARP targets: any or all must answer (`arp_all_targets`). */
  arpAllTargets: { attr: 10, type: 'u32', enum: { any: 0, all: 1 }, settable: true },
  /** The preferred port in active-backup mode (`primary`); reported as `primaryIndex`. */
  primary: { attr: 11, type: 'ifindex', infoKey: 'primaryIndex', settable: true },
  /** When the primary takes over again (`primary_reselect`). */
  primaryReselect: { attr: 12, type: 'u8', enum: { always: 0, better: 1, failure: 2 }, settable: true },
  /** Whose MAC the bond uses in active-backup mode (`fail_over_mac`). */
  failOverMac: { attr: 13, type: 'u8', enum: { none: 0, active: 1, follow: 2 }, settable: true },
  /** The header fields that pick a port (`xmit_hash_policy`). */
  xmitHashPolicy: { attr: 14, type: 'u8', settable: true,
    enum: { layer2: 0, 'layer3+4': 1, 'layer2+3': 2, 'encap2+3': 3, 'encap3+4': 4, 'vlan+srcmac': 5 } },
  /** IGMP reports sent after a failover (`resend_igmp`). */
  resendIgmp: { attr: 15, ...u32 },
  /** Gratuitous ARP/NA sent after a failover (`num_grat_arp`/`num_unsol_na`). */
  numPeerNotif: { attr: 16, type: 'u8', settable: true },
  /** Deliver frames received on inactive ports too (`all_slaves_active`). */
  allPortsActive: { attr: 17, type: 'bool8', settable: true },
  /** Ports that must be up for the bond to have carrier (`min_links`). */
  minLinks: { attr: 18, ...u32 },
  /** Seconds between learning packets in balance-tlb/alb (`lp_interval`). */
  lpInterval: { attr: 19, ...u32 },
  /** Packets per port before the next in balance-rr (`packets_per_slave`). */
  packetsPerPort: { attr: 20, ...u32 },
  /** LACPDU rate asked of the partner in 802.3ad (`lacp_rate`). */
  lacpRate: { attr: 21, type: 'u8', enum: { slow: 0, fast: 1 }, settable: true },
  /** Which aggregator 802.3ad selects (`ad_select`). */
  adSelect: { attr: 22, type: 'u8', enum: { stable: 0, bandwidth: 1, count: 2 }, settable: true },
  /** 802.3ad system priority (`ad_actor_sys_prio`), 1–65535. */
  adActorSysPrio: { attr: 24, type: 'u16', min: 1, settable: true },
  /** 802.3ad user port key (`ad_user_port_key`), 0–1023. */
  adUserPortKey: { attr: 25, type: 'u16', max: 1023, settable: true },
  /** 802.3ad system MAC (`ad_actor_system`). */
  adActorSystem: { attr: 26, type: 'mac', settable: true },
  /** Balance-tlb: rebalance by load (`tlb_dynamic_lb`). */
  tlbDynamicLb: { attr: 27, type: 'bool8', settable: true },
  /** Ms between peer notifications (`peer_notif_delay`). */
  peerNotifDelay: { attr: 28, ...u32 },
  /** Send LACPDUs (`lacp_active`, default on). */
  lacpActive: { attr: 29, type: 'bool8', settable: true },
  /** ARP monitor misses before a port is down (`arp_missed_max`), 1–255. */
  missedMax: { attr: 30, type: 'u8', min: 1, settable: true },
}, {
  port: {
    /** The port's role: `active` carries traffic, `backup` waits. */
    state: { attr: 1, type: 'u8', enum: { active: 0, backup: 1 } },
    /** The port's link as the bond's monitor sees it. */
    miiStatus: { attr: 2, type: 'u8', enum: { up: 0, fail: 1, down: 2, back: 3 } },
    linkFailureCount: { attr: 3, type: 'u32' },
    /** The port's own MAC (the bond may have changed the one it uses). */
    permMac: { attr: 4, type: 'mac' },
    queueId: { attr: 5, type: 'u16' },
    /** 802.3ad: the aggregator the port is in. */
    adAggregatorId: { attr: 6, type: 'u16' },
    adActorOperPortState: { attr: 7, type: 'u8' },
    adPartnerOperPortState: { attr: 8, type: 'u16' },
    prio: { attr: 9, type: 's32' },
  },
});

/**
 * A bond. Equivalent to: `ip link add bond0 type bond mode active-backup miimon 100`.
 *
 * @example
 * await nl.link.add({ kind: 'bond', name: 'bond0', mode: '802.3ad', miimon: 100, lacpRate: 'fast', xmitHashPolicy: 'layer3+4' });
 * await nl.link.set('eth1', { master: 'bond0' });
 */
export interface BondSpec extends LinkBaseSpec, SpecFields<typeof bond.fields> {
  kind: 'bond';
}
/** What `link.set` changes on a bond (`ip link set bond0 type bond miimon 200`). */
export interface BondChanges extends ChangeFields<typeof bond.fields> {}
/** What `link.get` reports in `info` for a bond (IFLA_BOND_*). */
export interface BondInfo extends InfoFields<typeof bond.fields> {}
/** A bond port's state (IFLA_BOND_SLAVE_*), found on `link.port` of an enslaved link. */
export interface BondPort extends InfoFields<typeof bond.port> {
  kind: 'bond';
}
