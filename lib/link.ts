import type { Handle } from './handle.js';
import type { BridgeChanges, BridgeInfo, BridgePort, BridgeSpec } from './kinds/bridge.js';
import type { MacvlanInfo, MacvlanSpec, MacvtapSpec } from './kinds/macvlan.js';
import type { VxlanInfo, VxlanSpec } from './kinds/vxlan.js';
import type { TunInfo } from './kinds/tun.js';
import type { IfbSpec } from './kinds/ifb.js';
import type { DummySpec } from './kinds/dummy.js';
import type { VethSpec } from './kinds/veth.js';
import type { VlanChanges, VlanInfo, VlanSpec } from './kinds/vlan.js';
import type { VrfInfo, VrfPort, VrfSpec } from './kinds/vrf.js';
import type { IpvlanChanges, IpvlanInfo, IpvlanSpec } from './kinds/ipvlan.js';
import type { BondChanges, BondInfo, BondPort, BondSpec } from './kinds/bond.js';
import type { WireguardSpec } from './kinds/wireguard.js';
import type { GeneveInfo, GeneveSpec } from './kinds/geneve.js';
import type { GreInfo, GreSpec, GretapSpec, Ip6gretapInfo, Ip6gretapSpec } from './kinds/gre.js';
import type { IpvtapInfo, IpvtapSpec } from './kinds/ipvtap.js';
import type { NetkitInfo, NetkitSpec } from './kinds/netkit.js';
import type { macvlan } from './kinds/macvlan.js';
import { kindDef, kindDefs } from './kinds/index.js';
import { checkChanges, checkSpec, settableKeys, specKeys, type ChangeFields, type KindDef } from './kinds/schema.js';
import * as v from './validate.js';
import { NetlinkError, badBytes } from './errors.js';

export type { BridgeInfo, VxlanInfo, TunInfo };
export type { VlanInfo, VlanChanges, VrfInfo, VrfPort, IpvlanInfo, IpvlanChanges, BondInfo, BondChanges, BondPort };
export type { VethSpec, VethPeerSpec } from './kinds/veth.js';

/** Counters from IFLA_STATS64. */
export interface LinkStats {
  rxPackets: number; txPackets: number; rxBytes: number; txBytes: number;
  rxErrors: number; txErrors: number; rxDropped: number; txDropped: number;
  multicast: number; collisions: number;
}

/**
 * Link kinds (`IFLA_INFO_KIND`, as `ip -d link` prints them after the flags), plus `ether`,
 * `loopback` and `none` for devices without a kind (by their hardware type).
 */
export type LinkKind = keyof LinkInfoByKind;

/** RFC 2863 operational state, lowercase as `ip link` prints it. */
export type OperState = 'unknown' | 'notpresent' | 'down' | 'lowerlayerdown' | 'testing' | 'dormant' | 'up';

/** No kind-specific settings are decoded for this kind: `info` is `{}`. */
export type NoInfo = Record<never, never>;

/** The `info` of each link kind. */
export interface LinkInfoByKind {
  bridge: BridgeInfo;
  veth: NoInfo;
  macvlan: MacvlanInfo;
  macvtap: MacvlanInfo;
  vxlan: VxlanInfo;
  tun: TunInfo;
  bond: BondInfo;
  vlan: VlanInfo;
  vrf: VrfInfo;
  ipvlan: IpvlanInfo;
  geneve: GeneveInfo; gre: GreInfo; gretap: GreInfo; ip6gretap: Ip6gretapInfo; ipvtap: IpvtapInfo; netkit: NetkitInfo;
  ether: NoInfo; loopback: NoInfo; none: NoInfo;
  bareudp: NoInfo; can: NoInfo; dsa: NoInfo; dummy: NoInfo; erspan: NoInfo; 
  gtp: NoInfo; hsr: NoInfo; ifb: NoInfo; ip6erspan: NoInfo; ip6gre: NoInfo;
  ip6tnl: NoInfo; ipip: NoInfo; ipoib: NoInfo; 
  lowpan: NoInfo; macsec: NoInfo; netdevsim: NoInfo; nlmon: NoInfo; openvswitch: NoInfo;
  rmnet: NoInfo; sit: NoInfo; team: NoInfo; vcan: NoInfo; virt_wifi: NoInfo;
  vti: NoInfo; vti6: NoInfo; vxcan: NoInfo; wireguard: NoInfo; wwan: NoInfo; xfrm: NoInfo;
}

/** Every kind `LinkKind` names, for checks at run time. @internal */
export const linkKinds: readonly LinkKind[] = Object.keys({
  bridge: 0, veth: 0, macvlan: 0, macvtap: 0, vxlan: 0, tun: 0, ether: 0, loopback: 0, none: 0,
  bareudp: 0, bond: 0, can: 0, dsa: 0, dummy: 0, erspan: 0, geneve: 0, gre: 0, gretap: 0, gtp: 0, hsr: 0,
  ifb: 0, ip6erspan: 0, ip6gre: 0, ip6gretap: 0, ip6tnl: 0, ipip: 0, ipoib: 0, ipvlan: 0, ipvtap: 0,
  lowpan: 0, macsec: 0, netdevsim: 0, netkit: 0, nlmon: 0, openvswitch: 0, rmnet: 0, sit: 0, team: 0,
  vcan: 0, virt_wifi: 0, vlan: 0, vrf: 0, vti: 0, vti6: 0, vxcan: 0, wireguard: 0, wwan: 0, xfrm: 0,
} satisfies Record<LinkKind, 0>) as LinkKind[];

/** Port settings of an enslaved link (IFLA_INFO_SLAVE_*): decoded for bridge, bond and vrf ports. */
export type LinkPort = BridgePort | BondPort | VrfPort | { kind: 'team' | 'openvswitch' | 'hsr' };

/** What every link has, whatever its kind. */
export interface LinkCommon {
  index: number;
  name: string;
  mac?: string;
  broadcast?: string;
  permMac?: string;
  mtu: number;
  minMtu?: number;
  maxMtu?: number;
  /** Administratively up (IFF_UP). */
  up: boolean;
  /** Promiscuous mode as set by `promisc on` (IFF_PROMISC); `promiscuity` counts every user (a bridge port has one). */
  promisc: boolean;
  /** All-multicast as set by `allmulticast on` (IFF_ALLMULTI); `allmultiCount` counts every user. */
  allmulti: boolean;
  /** IFF_MULTICAST. */
  multicast: boolean;
  /** ARP on (IFF_NOARP clear). */
  arp: boolean;
  /** Carrier present (IFF_LOWER_UP). */
  lowerUp: boolean;
  /** The flags `ip link` prints between <>, e.g. ['BROADCAST', 'MULTICAST', 'UP', 'LOWER_UP']. */
  flags: string[];
  operState: OperState;
  carrier?: boolean;
  /** The master's name (bridge, ...) and index. */
  master?: string;
  masterIndex?: number;
  /** The parent link (`macvtap0@eth0`), by name when it is in this namespace. */
  link?: string;
  linkIndex?: number;
  /** Set when the parent or peer is in another namespace (`link-netnsid`). */
  linkNetnsId?: number;
  group: number;
  alias?: string;
  txqueuelen?: number;
  numTxQueues?: number;
  numRxQueues?: number;
  promiscuity?: number;
  /** How many users want all-multicast (IFLA_ALLMULTI, Linux 6.5+). */
  allmultiCount?: number;
  /** Largest GSO packet the stack builds for this device (IFLA_GSO_MAX_SIZE), bytes. */
  gsoMaxSize?: number;
  /** Most segments in one GSO packet (IFLA_GSO_MAX_SEGS). */
  gsoMaxSegs?: number;
  /** Largest packet GRO builds on receive (IFLA_GRO_MAX_SIZE), bytes. */
  groMaxSize?: number;
  /** The device's own ceiling for `gsoMaxSize` (IFLA_TSO_MAX_SIZE). */
  tsoMaxSize?: number;
  /** The device's own ceiling for `gsoMaxSegs` (IFLA_TSO_MAX_SEGS). */
  tsoMaxSegs?: number;
  stats?: LinkStats;
  /** Port settings when the link is enslaved, e.g. a bridge port's STP state. */
  port?: LinkPort;
}

/** A link of one kind, with that kind's `info`. */
export type LinkOf<K extends LinkKind> = K extends LinkKind ? LinkCommon & {
  /** The rtnetlink kind; narrow on it to reach the kind's `info`. */
  kind: K;
  /** Kind-specific settings decoded from IFLA_INFO_DATA. */
  info: LinkInfoByKind[K];
} : never;

/**
 * A link as `ip -d -s link show` describes it: a union on `kind`, so `info` is typed once the
 * kind is known.
 *
 * @example
 * const l = await nl.link.get('virbr0');
 * if (l.kind === 'bridge') console.log(l.info.stp, l.info.bridgeId);
 */
export type Link = LinkOf<LinkKind>;

/** A namespace given as a name, path, fd or Netns. */
export type NetnsRef = v.NetnsRef;

/** The on/off flags and GSO/GRO sizes a link takes at creation (`link.add`) and later (`link.set`). */
export interface LinkFlagSettings {
  /** Promiscuous mode (`promisc on`). */
  promisc?: boolean;
  /** Receive all multicast (`allmulticast on`). */
  allmulti?: boolean;
  /** IFF_MULTICAST (`multicast off` clears it). */
  multicast?: boolean;
  /** ARP (`arp off` sets IFF_NOARP). */
  arp?: boolean;
  /** Largest GSO packet to build for the device, bytes (`gso_max_size`; the kernel refuses one above the device's `tsoMaxSize` or below its TCP header room, ~200). */
  gsoMaxSize?: number;
  /** Most segments per GSO packet (`gso_max_segs`, at most the device's `tsoMaxSegs`). */
  gsoMaxSegs?: number;
  /** Largest packet GRO builds, bytes (`gro_max_size`). */
  groMaxSize?: number;
}

/** Settings every kind takes at creation. */
export interface LinkBaseSpec extends LinkFlagSettings {
  /** The name; some kinds accept a pattern such as 'vnet%d'. */
  name: string;
  mtu?: number;
  mac?: string;
  txqueuelen?: number;
  /** The link group (IFLA_GROUP); tag links to delete them together with `delGroup`. */
  group?: number;
  master?: string;
  up?: boolean;
  alias?: string;
  /** Create the link directly in another namespace. */
  netns?: NetnsRef;
}

/** Link kinds known to `link.add`, each from its table in lib/kinds/. */
export interface LinkKindSpecs {
  bond: BondSpec;
  bridge: BridgeSpec;
  dummy: DummySpec;
  ifb: IfbSpec;
  ipvlan: IpvlanSpec;
  macvlan: MacvlanSpec;
  macvtap: MacvtapSpec;
  veth: VethSpec;
  vlan: VlanSpec;
  vrf: VrfSpec;
  vxlan: VxlanSpec;
  wireguard: WireguardSpec;
  geneve: GeneveSpec;
  gre: GreSpec;
  gretap: GretapSpec;
  ip6gretap: Ip6gretapSpec;
  netkit: NetkitSpec;
  ipvtap: IpvtapSpec;
}
export type LinkSpec = LinkKindSpecs[keyof LinkKindSpecs];

/** What `link.set` changes on any link. Unset fields are not sent. */
export interface LinkBaseChanges extends LinkFlagSettings {
  up?: boolean;
  mtu?: number;
  mac?: string;
  /** Rename (the link must be down). */
  name?: string;
  /** A bridge (or other master) to enslave to; null removes the master (`nomaster`). */
  master?: string | null;
  group?: number;
  alias?: string;
  txqueuelen?: number;
  /** Carrier on or off (`carrier off`): taps and dummies take it; the kernel refuses it (EOPNOTSUPP) on kinds without a carrier switch, such as veth and bridge. */
  carrier?: boolean;
  /** Move the link to another namespace. */
  netns?: NetnsRef;
}

/** What `link.set` changes on a macvlan or macvtap (`ip link set NAME type macvtap mode ...`). */
export interface MacvlanChanges extends ChangeFields<typeof macvlan.fields> {}

/** The kind-specific settings `link.set` can change, per kind. */
export interface LinkKindChanges {
  bond: BondChanges;
  bridge: BridgeChanges;
  ipvlan: IpvlanChanges;
  macvlan: MacvlanChanges;
  macvtap: MacvlanChanges;
  vlan: VlanChanges;
}

/**
 * What `link.set` changes: the settings of every link, plus those of one kind. A kind's
 * setting given for a link of another kind is refused (naming the setting), not ignored.
 */
export type LinkChanges = LinkBaseChanges | { [K in keyof LinkKindChanges]: LinkBaseChanges & LinkKindChanges[K] }[keyof LinkKindChanges];

/** The on/off link flags (ifi_flags; the bits are in native/codec/rtnl_link.cc). */
const flagKeys = ['promisc', 'allmulti', 'multicast', 'arp'] as const;
/**
 * The u32 link attributes beyond mtu/txqueuelen/group, with the kernel's compile-time bounds
 * (GSO_MAX_SEGS; GRO_MAX_SIZE and the largest tso_max_size a device reports, 8 x 65535). A
 * device's own ceilings (`tsoMaxSize`, `tsoMaxSegs`) are the kernel's to check.
 */
const sizeLimits = { gsoMaxSize: [1, 524280], gsoMaxSegs: [0, 65535], groMaxSize: [0, 524280] } as const;
const sizeKeys = Object.keys(sizeLimits) as (keyof typeof sizeLimits)[];

export const baseKeys = ['kind', 'name', 'mtu', 'mac', 'txqueuelen', 'group', 'master', 'up', 'alias', 'netns', ...flagKeys, ...sizeKeys] as const;
const baseChangeKeys: readonly string[] = ['up', 'mtu', 'mac', 'name', 'master', 'group', 'alias', 'txqueuelen', 'netns', 'carrier', ...flagKeys, ...sizeKeys];

/** Checks the flags and sizes every link takes, into `out`. */
function checkFlagsAndSizes(op: string, s: Record<string, unknown>, out: Record<string, unknown>): void {
  for (const k of flagKeys) if (s[k] !== undefined) out[k] = v.bool(op, k, s[k]);
  for (const k of sizeKeys) if (s[k] !== undefined) out[k] = v.uint(op, k, s[k], sizeLimits[k][0], sizeLimits[k][1]);
}
const creatable = () => Object.values(kindDefs as Record<string, KindDef>).filter((k) => k.hooks.create !== false);
/** Every key some kind lets `link.set` change, and the kinds that have it. */
const kindChangeKeys = (): Map<string, string[]> => {
  const m = new Map<string, string[]>();
  for (const k of Object.values(kindDefs as Record<string, KindDef>))
    for (const key of settableKeys(k)) m.set(key, [...(m.get(key) ?? []), k.kind]);
  return m;
};

/**
 * The kernel's answer to a kind it has no driver for (not built, module not loadable) is a
 * bare EOPNOTSUPP "Unknown device type": say which kind, so the caller knows what is missing.
 */
function kindMissing(op: string, kind: string, name: string, e: unknown): unknown {
  if (!(e instanceof NetlinkError) || e.code !== 'EOPNOTSUPP' || (e.extack !== undefined && !/unknown device type/i.test(e.extack))) return e;
  return new NetlinkError(op, e.errno, `link kind ${kind} is not available in this kernel (no ${kind} driver is built in or loadable)`, e.extack, name);
}

/** True when a created link needs steps after the create message (so its echo is needed). */
function needsFollowUp(n: Record<string, unknown>, alias: unknown): boolean {
  if (alias !== undefined) return true;
  const k = kindDef(n.kind as string);
  return Boolean(k?.hooks.needsAfterAdd?.(n.data as Record<string, unknown>));
}

/**
 * Validates a link spec against its kind's table, before any syscall, and returns what the
 * native encoder reads: base fields, `top` (top-level kind attributes) and `data`
 * (IFLA_INFO_DATA). Exported for addMany.
 */
export function normalizeSpec(op: string, spec: unknown): Record<string, unknown> {
  const s = v.object(op, 'spec', spec);
  if (typeof s.kind !== 'string') throw v.typeError(op, 'kind', `must be a link kind string (got ${JSON.stringify(s.kind)})`);
  const k = kindDef(s.kind);
  if (!k || k.hooks.create === false)
    throw v.rangeError(op, 'kind', `unknown link kind ${JSON.stringify(s.kind)} (known: ${creatable().map((c) => c.kind).join(', ')})`);
  if (s.carrier !== undefined && !specKeys(k).includes('carrier'))
    throw v.rangeError(op, 'carrier', 'is changed on an existing link only: link.set(name, { carrier })');
  v.knownKeys(op, '', s, [...baseKeys, ...specKeys(k)]);
  const out: Record<string, unknown> = { kind: s.kind };
  out.name = v.ifname(op, 'name', s.name, k.hooks.patterns ?? false);
  if (s.mtu !== undefined) out.mtu = v.uint(op, 'mtu', s.mtu, 1, 0x7fffffff);
  if (s.mac !== undefined) out.mac = v.mac(op, 'mac', s.mac);
  if (s.txqueuelen !== undefined) out.txqueuelen = v.uint(op, 'txqueuelen', s.txqueuelen);
  if (s.group !== undefined) out.group = v.uint(op, 'group', s.group);
  if (s.master !== undefined) out.master = v.ifname(op, 'master', s.master);
  if (s.up !== undefined) out.up = v.bool(op, 'up', s.up);
  if (s.alias !== undefined) out.alias = v.str(op, 'alias', s.alias, 255);
  checkFlagsAndSizes(op, s, out);
  if (s.netns !== undefined) {
    out.netns = v.netns(op, 'netns', s.netns);
    if ((out.name as string).includes('%'))
      throw v.rangeError(op, 'name', `a name pattern cannot be resolved in another namespace; give a full name with netns (got ${JSON.stringify(out.name)})`);
  }
  const { data, top } = checkSpec(k, s, op);
  out.top = top;
  out.data = data;
  return out;
}

/** Options of `link.addMany`. */
export interface AddManyOptions {
  /** Requests in flight at once on the handle's socket (default 64, at most 4096). */
  concurrency?: number;
  /**
   * Ask the kernel to echo each created link back (NLM_F_ECHO) so results are full Link
   * objects (default true). With false, results carry only `name` and `kind`: less to read.
   */
  echo?: boolean;
}

/** One result of `link.addMany`, shaped like `Promise.allSettled`'s. */
export type AddManyResult = PromiseSettledResult<Link>;

/** Links: what `ip link` does. */
export class LinkOps {
  constructor(private readonly h: Handle) {}

  /**
   * Creates a link and returns it as `get` would.
   * Equivalent to: `ip link add v0 type veth peer name v1 netns other`.
   *
   * With `{ echo: false }` the kernel does not echo the new link back and only `name` and
   * `kind` are returned: a little faster when creating many devices one by one.
   */
  add(spec: LinkSpec): Promise<Link>;
  add(spec: LinkSpec, opts: { echo: false }): Promise<Pick<Link, 'name' | 'kind'>>;
  add(spec: LinkSpec, opts?: { echo?: boolean }): Promise<Link | Pick<Link, 'name' | 'kind'>>;
  async add(spec: LinkSpec, opts: { echo?: boolean } = {}): Promise<Link | Pick<Link, 'name' | 'kind'>> {
    const op = 'link.add';
    const n = normalizeSpec(op, spec);
    v.object(op, 'options', opts);
    v.knownKeys(op, '', opts as Record<string, unknown>, ['echo']);
    const echo = opts.echo === undefined ? true : v.bool(op, 'echo', opts.echo);
    const alias = n.alias;
    delete n.alias;  // the kernel takes IFLA_IFALIAS only on an existing link
    const hooks = kindDef(n.kind as string)!.hooks;
    const after = hooks.afterAdd;
    // Follow-up steps need the created link (its index): they keep the echo on.
    const wantEcho = echo || needsFollowUp(n, alias);
    if (!wantEcho) n.echo = false;
    let link: Link;
    try {
      const got = await this.h._call<Link>(op, n);
      link = wantEcho ? got : ({ name: n.name, kind: n.kind } as Link);
    } catch (e) {
      const explain = hooks.explainAddError;
      throw (explain && (await explain(this.h, spec as unknown as Record<string, unknown>, e).catch(() => undefined))) ||
        kindMissing(op, n.kind as string, n.name as string, e);
    }
    // Created straight into another namespace: the kernel echoes nothing here, so the link is
    // read, finished (alias) and, on failure, removed from a handle in that namespace.
    let there: Handle | undefined;
    try {
      if (n.netns !== undefined && wantEcho) {
        const { open } = await import('./handle.js');
        const ns = n.netns as { netnsPath?: string; netnsFd?: number };
        there = await open({ netns: ns.netnsPath ?? ns.netnsFd! });
        link = await there._call<Link>(op, { name: n.name }, 'link.get');
      }
      const home = there ?? this.h;
      if ((alias !== undefined || after) && link.index) {
        try {
          if (alias !== undefined) {
            await home._call(op, { index: link.index, alias }, 'link.set');
            link.alias = alias as string;
          }
          if (after) await after(this.h, n.data as Record<string, unknown>, link);
        } catch (e) {
          // All or nothing: a link whose follow-up step failed is removed again.
          await home._call(op, { index: link.index }, 'link.del').catch(() => {});
          throw e;
        }
      }
      // The kernel echoes the new link before it enslaves it: read it back so the result
      // carries its master, as `get` would.
      if (n.master !== undefined && wantEcho && link.master === undefined && link.index)
        link = await home._call<Link>(op, { index: link.index }, 'link.get');
    } finally {
      await there?.close();
    }
    return link;
  }

  /**
   * Creates many links with several requests in flight at once on the handle's socket, many
   * messages per sendmsg. Each spec gets its own result, by index: a bad spec (TypeError/
   * RangeError) or a kernel refusal (NetlinkError) rejects only that one.
   * Equivalent to: `ip -batch` with one `link add` line per spec.
   *
   * @example
   * const rs = await nl.link.addMany([{ kind: 'veth', name: 'a0', peer: { name: 'a1' } }, ...]);
   * rs.forEach((r, i) => { if (r.status === 'rejected') console.error(i, r.reason.message); });
   */
  async addMany(specs: LinkSpec[], opts: AddManyOptions = {}): Promise<AddManyResult[]> {
    const op = 'link.addMany';
    if (!Array.isArray(specs)) throw v.typeError(op, 'specs', 'must be an array of link specs');
    v.object(op, 'options', opts);
    v.knownKeys(op, '', opts as Record<string, unknown>, ['concurrency', 'echo']);
    const concurrency = opts.concurrency === undefined ? 64 : v.uint(op, 'concurrency', opts.concurrency, 1, 4096);
    const echo = opts.echo === undefined ? true : v.bool(op, 'echo', opts.echo);
    const results: AddManyResult[] = new Array(specs.length);
    const good: Record<string, unknown>[] = [];
    const where: number[] = [];
    const aliases = new Map<number, unknown>();
    const normalized = new Map<number, Record<string, unknown>>();
    specs.forEach((spec, i) => {
      try {
        const n = normalizeSpec(op, spec);
        aliases.set(i, n.alias);
        delete n.alias;  // set after creation, as in add
        // Follow-up steps need the created link: its echo stays on.
        if (!echo && needsFollowUp(n, aliases.get(i))) n.echo = true;
        normalized.set(i, n);
        good.push(n);
        where.push(i);
      } catch (e) {
        results[i] = { status: 'rejected', reason: e };
      }
    });
    if (good.length) {
      const out = await this.h._call<any[]>(op, { specs: good, concurrency, echo });
      out.forEach((r, k) => {
        const i = where[k];
        results[i] = r.link
          ? { status: 'fulfilled', value: r.link as Link }
          : { status: 'rejected', reason: kindMissing(op, good[k].kind as string, good[k].name as string, new NetlinkError(op, r.errno, r.where, r.extack, good[k].name as string)) };
      });
    }
    // The steps link.add takes after the create message (alias, kind hooks), all or nothing per spec.
    for (const [i, n] of normalized) {
      const r = results[i];
      const alias = aliases.get(i);
      const after = kindDef(n.kind as string)!.hooks.afterAdd;
      if (r.status !== 'fulfilled' || (alias === undefined && !after) || !r.value.index) continue;
      try {
        if (alias !== undefined) {
          await this.h._call(op, { index: r.value.index, alias }, 'link.set');
          r.value.alias = alias as string;
        }
        if (after) await after(this.h, n.data as Record<string, unknown>, r.value);
      } catch (e) {
        await this.h._call(op, { index: r.value.index }, 'link.del').catch(() => {});
        results[i] = { status: 'rejected', reason: e };
      }
    }
    return results;
  }

  /**
   * The RTM_NEWLINK request `add` would send for `spec`, without sending it (seq and port id
   * 0; flags REQUEST|ACK|CREATE|EXCL as iproute2 sends them). Names the spec refers to
   * (`master`, `link`) are resolved in the handle's namespace; no privilege is needed.
   *
   * @example
   * const bytes = await nl.link.encode({ kind: 'vxlan', name: 'vx0', vni: 42, remote: '198.51.100.2' });
   */
  async encode(spec: LinkSpec): Promise<Buffer> {
    const n = normalizeSpec('link.encode', spec);
    delete n.alias;  // link.add sets it after creation, in a second request
    return Buffer.from(await this.h._call<Uint8Array>('link.encode', n));
  }

  /**
   * Decodes one RTM_NEWLINK/RTM_DELLINK message (as the kernel sends it, or as `encode`
   * built it) into a Link, as `get` would return it. Master and parent names are looked up in
   * the handle's namespace. Rejects a malformed message with a RangeError.
   */
  async decode(bytes: Uint8Array): Promise<Link> {
    const op = 'link.decode';
    if (!(bytes instanceof Uint8Array)) throw v.typeError(op, 'bytes', 'must be a Buffer or Uint8Array');
    return this.h._call<Link>(op, { bytes: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) }).catch((e) => { throw badBytes(op, 'bytes', e); });
  }

  /** One link by name or index. Equivalent to: `ip -d -s link show NAME`. Rejects with ENODEV. */
  async get(name: string | number): Promise<Link> {
    return this.h._call('link.get', v.linkRef('link.get', 'name', name));
  }

  /** Every link, optionally only one kind, master or group. Equivalent to: `ip -d link show [type KIND] [master M]`. */
  async list(filter: { kind?: LinkKind; master?: string; group?: number } = {}): Promise<Link[]> {
    const op = 'link.list';
    v.object(op, 'filter', filter);
    v.knownKeys(op, 'filter', filter as Record<string, unknown>, ['kind', 'master', 'group']);
    const f: Record<string, unknown> = {};
    if (filter.kind !== undefined) f.kind = v.oneOf(op, 'filter.kind', filter.kind, linkKinds);
    if (filter.master !== undefined) f.master = v.ifname(op, 'filter.master', filter.master);
    if (filter.group !== undefined) f.group = v.uint(op, 'filter.group', filter.group);
    return this.h._call(op, f);
  }

  /**
   * Changes a link. Equivalent to: `ip link set vnet0 up master virbr0 mtu 1500`.
   * `master: null` is `nomaster`.
   *
   * @example
   * await nl.link.set('vnet0', { promisc: true, arp: false, gsoMaxSize: 32768 }); // ip link set dev vnet0 promisc on arp off gso_max_size 32768
   * await nl.link.set('vnet0', { carrier: false });                               // ip link set dev vnet0 carrier off (a tap: NO-CARRIER)
   */
  async set(name: string, changes: LinkChanges): Promise<void> {
    const op = 'link.set';
    const reqs = await this.setRequests(op, name, changes);
    if (reqs.length === 1) {
      await this.h._call(op, reqs[0]);
      return;
    }
    // A master with `up: true` takes two requests (see setRequests). If coming up then fails,
    // the first is undone (the old master back, and the name, MTU, MAC, group, alias, queue
    // length, flags, GSO/GRO sizes, carrier or kind settings it changed), so the call changes
    // all or nothing.
    // Both go by index, to the link that was read.
    const [first, second] = reqs;
    const was = await this.h._call<Link>(op, first.index !== undefined ? { index: first.index } : { name: first.name }, 'link.get');
    await this.h._call(op, { ...first, index: was.index });
    try {
      await this.h._call(op, { index: was.index, up: second.up });
    } catch (e) {
      const back: Record<string, unknown> = { index: was.index, master: was.master ?? '' };
      if (first.newName !== undefined) back.newName = was.name;
      if (first.mtu !== undefined) back.mtu = was.mtu;
      if (first.mac !== undefined && was.mac) back.mac = was.mac;
      if (first.group !== undefined) back.group = was.group;
      if (first.alias !== undefined) back.alias = was.alias ?? '';
      if (first.txqueuelen !== undefined && was.txqueuelen !== undefined) back.txqueuelen = was.txqueuelen;
      for (const k of flagKeys) if (first[k] !== undefined) back[k] = was[k];
      for (const k of sizeKeys) if (first[k] !== undefined && was[k] !== undefined) back[k] = was[k];
      if (first.carrier !== undefined && was.carrier !== undefined) back.carrier = was.carrier;
      // Kind settings go back to what the link reported (its `info`, in the shape `set` takes);
      // one the kernel does not report (a macvlan's source MAC list) cannot be restored.
      const kd = kindDef(was.kind);
      if (first.kindData !== undefined && kd) {
        const info = (was.info ?? {}) as Record<string, unknown>;
        const keys = Object.keys(first.kindData as Record<string, unknown>).filter((key) => info[key] !== undefined && settableKeys(kd).includes(key));
        if (keys.length) {
          try {
            back.kind = was.kind;
            back.kindData = checkChanges(kd, keys, info, op, was.name);
          } catch {
            delete back.kind;  // a reported value `set` would not take: leave the setting
          }
        }
      }
      await this.h._call(op, back).catch(() => { /* the first error is the one to report */ });
      throw e;
    }
  }

  /**
   * The RTM_NEWLINK request(s) `set` would send for `changes`, without sending them (seq and
   * port id 0, flags REQUEST|ACK as iproute2 sends them). The link is resolved in the handle's
   * namespace (kind settings read its kind first). When `set` needs two requests (a master and
   * `up: true`: the port joins, then comes up) both are returned, one after the other.
   *
   * @example
   * const bytes = await nl.link.encodeSet('vp0', { promisc: true }); // ip link set dev vp0 promisc on
   */
  async encodeSet(name: string, changes: LinkChanges): Promise<Buffer> {
    const op = 'link.encodeSet';
    const out: Buffer[] = [];
    for (const args of await this.setRequests(op, name, changes)) out.push(Buffer.from(await this.h._call<Uint8Array>(op, args)));
    return Buffer.concat(out);
  }

  /** Checks `changes` and returns the one or two requests `set` sends, in order. */
  private async setRequests(op: string, name: string, changes: LinkChanges): Promise<Record<string, unknown>[]> {
    const args: Record<string, unknown> = { name: v.ifname(op, 'name', name) };
    const c = v.object(op, 'changes', changes);
    const byKey = kindChangeKeys();
    const kindKeysAll = new Set(Object.values(kindDefs as Record<string, KindDef>).flatMap((k) => specKeys(k)));
    v.knownKeys(op, 'changes', c, [...baseChangeKeys, ...kindKeysAll]);
    if (c.up !== undefined) args.up = v.bool(op, 'up', c.up);
    if (c.mtu !== undefined) args.mtu = v.uint(op, 'mtu', c.mtu, 1, 0x7fffffff);
    if (c.mac !== undefined) args.mac = v.mac(op, 'mac', c.mac);
    if (c.name !== undefined) args.newName = v.ifname(op, 'name', c.name);
    if (c.master !== undefined) args.master = c.master === null ? '' : v.ifname(op, 'master', c.master);
    if (c.group !== undefined) args.group = v.uint(op, 'group', c.group);
    if (c.alias !== undefined) args.alias = v.str(op, 'alias', c.alias, 255);
    if (c.txqueuelen !== undefined) args.txqueuelen = v.uint(op, 'txqueuelen', c.txqueuelen);
    if (c.carrier !== undefined) args.carrier = v.bool(op, 'carrier', c.carrier);
    checkFlagsAndSizes(op, c, args);
    if (c.netns !== undefined) args.netns = v.netns(op, 'netns', c.netns);
    const kindKeys = Object.keys(c).filter((key) => !baseChangeKeys.includes(key) && c[key] !== undefined);
    if (kindKeys.length) {
      // Every value is checked against every table that has the key before anything is read
      // from the kernel; then the link's real kind decides (a kind's setting on a link of
      // another kind would be dropped by the kernel without a word).
      for (const key of kindKeys) {
        const kinds = byKey.get(key);
        if (!kinds) {
          const where = Object.values(kindDefs as Record<string, KindDef>).filter((k) => specKeys(k).includes(key)).map((k) => k.kind);
          throw v.rangeError(op, key, `cannot be changed on a live link (${where.join('/')} take it only at creation: delete and add the link again)`);
        }
        // Kinds share words (`mode` is a bond's, an ipvlan's and a macvlan's): a value no kind
        // with the key takes is refused now; the link's own kind decides below.
        const errs: unknown[] = [];
        for (const kind of kinds) {
          try { checkChanges(kindDef(kind)!, [key], c, op, ''); } catch (e) { errs.push(e); }
        }
        if (errs.length === kinds.length) throw errs[0];
      }
      const link = await this.h._call<Link>(op, { name: args.name }, 'link.get');
      const k = kindDef(link.kind);
      for (const key of kindKeys) {
        if (k && settableKeys(k).includes(key)) continue;
        const own = k ? settableKeys(k) : [];
        throw v.rangeError(op, key, `is not a setting of ${link.kind} links (${JSON.stringify(link.name)} is a ${link.kind}; ` +
          `${key} belongs to ${byKey.get(key)!.join('/')}${own.length ? `; a ${link.kind} takes ${own.join(', ')}` : ''})`);
      }
      // By index, so the change reaches the link that was checked.
      args.index = link.index;
      args.kind = link.kind;
      args.kindData = checkChanges(k!, kindKeys, c, op, link.name, link);
    }
    if (Object.keys(args).length === 1) throw v.typeError(op, 'changes', 'names nothing to change');
    // The kernel applies IFF_UP before IFLA_MASTER within one request, and a bond or team
    // refuses a port that is already up ("Device can not be enslaved while up"): join first,
    // then come up, as `ip link set X master bond0 && ip link set X up` does.
    if (args.up === true && args.master && args.netns === undefined) {
      const { up, ...first } = args;
      return [first, { ...(args.index !== undefined ? { index: args.index } : { name: args.newName ?? args.name }), up }];
    }
    return [args];
  }

  /** Deletes a link. Equivalent to: `ip link del NAME`. */
  async del(name: string | number): Promise<void> {
    await this.h._call('link.del', v.linkRef('link.del', 'name', name));
  }

  /**
   * Deletes every link in a group in one kernel call (one RCU wait for most kinds instead of
   * one per device). Equivalent to: `ip link del group 7`. Group 0 (every untagged link) is refused.
   */
  async delGroup(group: number): Promise<void> {
    const op = 'link.delGroup';
    const g = v.uint(op, 'group', group, 0);
    if (g === 0) throw v.rangeError(op, 'group', 'group 0 holds every untagged link (lo, uplinks); refusing to delete it');
    await this.h._call(op, { group: g });
  }
}
