// The bridge link kind (IFLA_BR_*) and its ports' settings (IFLA_BRPORT_*, reported as the
// port's IFLA_INFO_SLAVE_DATA). Timers are clock_t on the wire (USER_HZ = 100, centiseconds)
// and seconds here: `scale: 100` says so once.
import { defineKind, type ChangeFields, type InfoFields, type SpecFields } from './schema.js';
import type { LinkBaseSpec } from '../link.js';

// clock_t in the kernel is a u32 of centiseconds.
const seconds = { type: 'u32', scale: 100, settable: true } as const;

export const bridge = defineKind('bridge', {
  /** Spanning tree on/off (`stp_state`). With STP on the kernel needs forwardDelay 2–30 s. */
  stp: { attr: 5, type: 'bool32', settable: true },
  /** Seconds a port spends listening and learning before it forwards (`forward_delay`). */
  forwardDelay: { attr: 1, ...seconds },
  /** STP hello interval in seconds (`hello_time`). */
  helloTime: { attr: 2, ...seconds },
  /** STP max message age in seconds (`max_age`). */
  maxAge: { attr: 3, ...seconds },
  /** Seconds a learned MAC stays in the FDB (`ageing_time`). */
  ageingTime: { attr: 4, ...seconds },
  /** Bridge priority, the first half of the bridge id (`priority`, default 32768 = 0x8000). */
  priority: { attr: 6, type: 'u16', settable: true },
  /** 802.1Q VLAN filtering (`vlan_filtering`). */
  vlanFiltering: { attr: 7, type: 'bool8', settable: true },
  /** The VLAN protocol filtering uses (`vlan_protocol`). */
  vlanProtocol: { attr: 8, type: 'be16', enum: { '802.1Q': 0x8100, '802.1ad': 0x88a8 }, settable: true },
  /** Link-local groups (01:80:c2:00:00:0X bits) the bridge forwards (`group_fwd_mask`). */
  groupFwdMask: { attr: 9, type: 'u16', settable: true },
  /** The PVID new ports get (`vlan_default_pvid`); 0 means none. */
  defaultPvid: { attr: 39, type: 'u16', max: 4094, settable: true },
  /** IGMP/MLD snooping (`mcast_snooping`). */
  mcastSnooping: { attr: 23, type: 'bool8', settable: true },
  /** The bridge id as brctl prints it, e.g. '8000.52540082327e'. */
  bridgeId: { attr: 11, type: 'bridgeId', readOnly: true },
  rootId: { attr: 10, type: 'bridgeId', readOnly: true },
  rootPort: { attr: 12, type: 'u16', readOnly: true },
  rootPathCost: { attr: 13, type: 'u32', readOnly: true },
  topologyChange: { attr: 14, type: 'bool8', readOnly: true },
}, {
  port: {
    state: { attr: 1, type: 'u8', enum: { disabled: 0, listening: 1, learning: 2, forwarding: 3, blocking: 4 } },
    priority: { attr: 2, type: 'u16' },
    cost: { attr: 3, type: 'u32' },
    hairpin: { attr: 4, type: 'bool8' },
    guard: { attr: 5, type: 'bool8' },
    rootBlock: { attr: 6, type: 'bool8' },
    fastLeave: { attr: 7, type: 'bool8' },
    learning: { attr: 8, type: 'bool8' },
    flood: { attr: 9, type: 'bool8' },
    proxyArp: { attr: 10, type: 'bool8' },
    designatedRoot: { attr: 13, type: 'bridgeId', readOnly: true },
    designatedBridge: { attr: 14, type: 'bridgeId', readOnly: true },
    id: { attr: 17, type: 'u16' },
    no: { attr: 18, type: 'u16' },
    mcastFlood: { attr: 27, type: 'bool8' },
    bcastFlood: { attr: 30, type: 'bool8' },
    neighSuppress: { attr: 32, type: 'bool8' },
    isolated: { attr: 33, type: 'bool8' },
  },
});

/** A Linux bridge. Times are in seconds (the kernel keeps centiseconds). */
export interface BridgeSpec extends LinkBaseSpec, SpecFields<typeof bridge.fields> {
  kind: 'bridge';
}
/** Bridge settings `link.set` can change on an existing bridge. */
export interface BridgeChanges extends ChangeFields<typeof bridge.fields> {}
/** What `link.get` reports in `info` for a bridge (IFLA_BR_*; times in seconds). */
export interface BridgeInfo extends InfoFields<typeof bridge.fields> {}
/** STP state of a bridge port, as `bridge link` prints it. */
export type PortState = keyof typeof bridge.port.state.enum;
/** A bridge port's settings (decoded from IFLA_BRPORT_*), found on `link.port` of an enslaved link. */
export interface BridgePort extends InfoFields<typeof bridge.port> {
  kind: 'bridge';
}
