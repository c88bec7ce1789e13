/**
 * vnetlink: Linux virtual networks for VMs and sandboxes, from Node.js, by talking to the
 * kernel directly (rtnetlink, nfnetlink, tun/tap ioctls).
 */
export { open, Handle, type OpenOptions } from './handle.js';
export { Netns } from './netns.js';
export { VnetlinkError, NetlinkError, TimeoutError, type WaitOptions } from './errors.js';
export type { Link, LinkOf, LinkKind, LinkCommon, LinkInfoByKind, LinkPort, OperState, BridgeInfo, VxlanInfo, TunInfo, NoInfo,
  LinkSpec, LinkChanges, LinkBaseChanges, LinkKindChanges, MacvlanChanges, LinkStats, VethSpec, VethPeerSpec, LinkBaseSpec, LinkFlagSettings, LinkKindSpecs, NetnsRef } from './link.js';
export type { Address, AddrOptions } from './addr.js';
export type { Route, RouteSpec } from './route.js';
export { Monitor, type MonitorOptions, type MonitorEvent, type MonitorEventMap, type MonitorGroup, type Neighbour,
  type LinkEvent, type AddrEvent, type RouteEvent, type NeighEvent, type SyncedEvent, type ResyncEvent } from './monitor.js';
export type { AddManyOptions, AddManyResult } from './link.js';
export { NftOps, NftTransaction, nftExpr } from './nft.js';
export { NetworkOps, Network, NETWORK_STEPS } from './network.js';
export type { NetworkSpec, NetworkDhcp, NetworkDns, PortForwardSpec, PortForward, Lease, NetworkStep, FirewallConflict, PortProblem } from './network.js';
export type { NftFamily, NftHook, NftExpr, NftListedExpr, NftTable, NftChain, NftRule, NftChainSpec, NftRuleSpec, NftCreated, MasqueradeOptions, NftData } from './nft.js';
export { Ovsdb, OvsdbError } from './ovsdb.js';
export type { OvsdbConnectOptions, OvsdbCallOptions, DatapathType, AddBridgeOptions, AddPortOptions, OvsBridge, OvsPort, OvsInterface, OvsShow, InterfaceEvent } from './ovsdb.js';
export type { BridgeSpec, BridgeChanges, BridgePort, BridgePortChanges, BridgeSummary, PortState, BridgeVlan, BridgeVlanSpec, BridgeVlanDelSpec } from './bridge.js';
export { Tap, type TapSpec, type TapOffloads } from './tap.js';
export type { VxlanSpec } from './kinds/vxlan.js';
export { macvlanModes, macvlanFlags, type MacvlanMode, type MacvlanFlag, type MacvlanSpec, type MacvtapSpec, type MacvlanInfo, type MacvtapOpenOptions, type MacvtapQueues, type MacvtapOffloads } from './macvtap.js';
export { Forwarder, type ForwarderOptions, type ForwarderPortOptions, type ForwarderSocketpairOptions, type ForwarderPortStats, type ForwardedFrame, type ForwarderCapture, type ForwarderOffloads } from './forwarder.js';
export { TcOps, TcQdiscOps, TcClassOps, TcFilterOps } from './tc.js';
export type { QdiscSpec, QdiscKind, HtbQdiscSpec, TbfQdiscSpec, NetemQdiscSpec, FqCodelQdiscSpec, ClsactQdiscSpec, IngressQdiscSpec, ClassSpec, HtbClassSpec, FilterSpec, U32FilterSpec, MatchallFilterSpec, U32Match, TcAction, MirredAction, PoliceAction, CsumAction, GactAction, TcControl, TcParent, Qdisc, TcClass, TcFilter, TcStats, ShapeOptions, ShapeResult, Rate, Size, Time, Protocol } from './tc.js';
export type { Bandwidth, BandwidthRate } from './bandwidth.js';
export type { IfbSpec } from './kinds/ifb.js';
export type { DummySpec } from './kinds/dummy.js';
export type { VlanSpec, VlanChanges, VlanInfo } from './kinds/vlan.js';
export type { VrfSpec, VrfInfo, VrfPort } from './kinds/vrf.js';
export type { IpvlanSpec, IpvlanChanges, IpvlanInfo } from './kinds/ipvlan.js';
export type { BondSpec, BondChanges, BondInfo, BondPort } from './kinds/bond.js';
export { qemuNetdev, type QemuNetdev, type QemuNetdevOptions, type NetdevFds, type StdioEntry } from './qemu.js';
export { NeighOps, FdbOps, type NeighSpec, type NeighState, type FdbSpec, type FdbEntry } from './neigh.js';
export { RuleOps, type RuleSpec, type Rule, type RuleAction } from './rule.js';
export { GenlOps, WireguardOps, type GenlFamily, type WireguardConfig, type WireguardPeerConfig, type WireguardDevice, type WireguardPeer } from './wireguard.js';
export { fromLibvirtXml, interfaceFromLibvirtXml, type InterfacePlan } from './libvirt-xml.js';
import { fromLibvirtXml as networkFromLibvirtXml } from './libvirt-xml.js';
/** Network helpers that need no handle: `network.fromLibvirtXml(xml)` → a NetworkSpec. */
export const network = { fromLibvirtXml: networkFromLibvirtXml };
