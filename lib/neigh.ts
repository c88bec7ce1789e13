// Neighbours (`ip neigh`) and the bridge forwarding database (`bridge fdb`): both are
// RTM_NEWNEIGH messages, an FDB entry being a neighbour of family AF_BRIDGE keyed by MAC.
import type { Handle } from './handle.js';
import type { Neighbour } from './monitor.js';
import * as v from './validate.js';

const AF = { inet: 2, inet6: 10, bridge: 7 } as const;

// NUD_* as `ip neigh` names them.
const nud = { none: 0x00, incomplete: 0x01, reachable: 0x02, stale: 0x04, delay: 0x08, probe: 0x10, failed: 0x20, noarp: 0x40, permanent: 0x80 } as const;
export type NeighState = keyof typeof nud;
const NTF = { self: 0x02, master: 0x04, proxy: 0x08, externLearn: 0x10, sticky: 0x40, router: 0x80 } as const;

/** An ARP/NDP entry. Equivalent to: `ip neigh add 192.0.2.7 lladdr 52:54:00:00:00:07 dev br0 nud permanent`. */
export interface NeighSpec {
  dev: string;
  /** The IPv4 or IPv6 address. */
  dst: string;
  /** The link-layer address it resolves to (not for proxy entries). */
  lladdr?: string;
  /** NUD state (default `'permanent'`, as ip). */
  state?: NeighState;
  /** A proxy ARP/NDP entry (`ip neigh add proxy ...`). */
  proxy?: boolean;
  /** The neighbour is a router (IPv6). */
  router?: boolean;
  /** Learned by something outside the kernel (`extern_learn`). */
  externLearn?: boolean;
}

/** A forwarding-database entry. Equivalent to: `bridge fdb append 00:00:00:00:00:00 dev vx0 dst 198.51.100.2`. */
export interface FdbSpec {
  /** The bridge port, or the VXLAN device itself. */
  dev: string;
  mac: string;
  /** The VXLAN remote that frames for `mac` are sent to (all-zero MAC: head-end replication). */
  dst?: string;
  vlan?: number;
  /** The remote's UDP port (VXLAN). */
  port?: number;
  /** The remote's VNI (VXLAN). */
  vni?: number;
  /** The device to reach `dst` through (`via`). */
  via?: string;
  /** On the device's own table (`self`, the default unless `master` is given). */
  self?: boolean;
  /** On the master bridge's table (`master`). */
  master?: boolean;
  /** `'permanent'` (default; also 'local' in bridge's words), `'static'` or `'dynamic'`. */
  state?: 'permanent' | 'static' | 'dynamic';
  externLearn?: boolean;
  sticky?: boolean;
}

/** An FDB entry as `bridge -j fdb show` describes it. */
export interface FdbEntry {
  family: 'bridge';
  index: number;
  dev?: string;
  mac: string;
  dst?: string;
  vlan?: number;
  port?: number;
  vni?: number;
  /** The bridge whose table holds the entry. */
  master?: string;
  state: 'permanent' | 'static' | 'stale' | 'dynamic';
  /** As `bridge -j fdb show`: 'self', 'master', 'extern_learn', 'offload', 'sticky', 'router'. */
  flags: string[];
}

function neighArgs(op: string, cmd: string, s: NeighSpec): Record<string, unknown> {
  v.object(op, 'neigh', s);
  v.knownKeys(op, 'neigh', s as unknown as Record<string, unknown>, ['dev', 'dst', 'lladdr', 'state', 'proxy', 'router', 'externLearn']);
  const dst = v.ip(op, 'dst', s.dst);
  const a: Record<string, unknown> = { cmd, family: AF[dst.family], dev: v.ifname(op, 'dev', s.dev), dst: dst.address };
  if (s.proxy !== undefined && v.bool(op, 'proxy', s.proxy) && s.lladdr !== undefined) throw v.rangeError(op, 'lladdr', 'a proxy entry has no lladdr');
  // Any well-formed MAC: a neighbour may resolve to a multicast one (ip neigh takes it).
  if (s.lladdr !== undefined) a.lladdr = v.macAddress(op, 'lladdr', s.lladdr);
  a.state = nud[s.state === undefined ? 'permanent' : v.oneOf(op, 'state', s.state, Object.keys(nud) as NeighState[])];
  let flags = 0;
  for (const k of ['proxy', 'router', 'externLearn'] as const) if (s[k] !== undefined && v.bool(op, k, s[k])) flags |= NTF[k];
  a.flags = flags;
  return a;
}

function fdbArgs(op: string, cmd: string, s: FdbSpec): Record<string, unknown> {
  v.object(op, 'fdb', s);
  v.knownKeys(op, 'fdb', s as unknown as Record<string, unknown>, ['dev', 'mac', 'dst', 'vlan', 'port', 'vni', 'via', 'self', 'master', 'state', 'externLearn', 'sticky']);
  const a: Record<string, unknown> = { cmd, family: AF.bridge, dev: v.ifname(op, 'dev', s.dev), lladdr: v.macAddress(op, 'mac', s.mac) };
  if (s.dst !== undefined) a.dst = v.ip(op, 'dst', s.dst).address;
  if (s.vlan !== undefined) a.vlan = v.uint(op, 'vlan', s.vlan, 1, 4094);
  if (s.port !== undefined) a.port = v.uint(op, 'port', s.port, 1, 65535);
  if (s.vni !== undefined) a.vni = v.uint(op, 'vni', s.vni, 0, 0xffffff);
  if (s.via !== undefined) a.via = v.ifname(op, 'via', s.via);
  // bridge's rules: NOARP unless dynamic; PERMANENT unless static or dynamic.
  const st = s.state === undefined ? 'permanent' : v.oneOf(op, 'state', s.state, ['permanent', 'static', 'dynamic'] as const);
  a.state = st === 'permanent' ? nud.noarp | nud.permanent : st === 'static' ? nud.noarp | nud.reachable : nud.reachable;
  let flags = 0;
  for (const k of ['self', 'master', 'externLearn', 'sticky'] as const) if (s[k] !== undefined && v.bool(op, k, s[k])) flags |= NTF[k];
  if (!(flags & (NTF.self | NTF.master))) flags |= NTF.self;
  a.flags = flags;
  return a;
}

/** Neighbours: what `ip neigh` does. */
export class NeighOps {
  constructor(private readonly h: Handle) {}

  async #modify(cmd: string, s: NeighSpec): Promise<void> {
    const op = `neigh.${cmd}`;
    await this.h._call(op, { ...neighArgs(op, cmd, s), op }, 'neigh.modify');
  }
  /** Equivalent to: `ip neigh add 192.0.2.7 lladdr 52:54:00:00:00:07 dev br0 nud permanent`. */
  add(s: NeighSpec): Promise<void> { return this.#modify('add', s); }
  /** Adds or updates. Equivalent to: `ip neigh replace ...`. */
  replace(s: NeighSpec): Promise<void> { return this.#modify('replace', s); }
  /** Equivalent to: `ip neigh change ...`. */
  change(s: NeighSpec): Promise<void> { return this.#modify('change', s); }
  /** Equivalent to: `ip neigh del 192.0.2.7 dev br0` (`proxy: true` for a proxy entry). */
  del(s: { dev: string; dst: string; proxy?: boolean }): Promise<void> {
    return this.#modify('del', s as NeighSpec);
  }
  /** Entries of the namespace (or one device); `proxy: true` lists proxy entries. Equivalent to: `ip -j neigh show [dev br0] [proxy]`. */
  async list(filter: { dev?: string; family?: 'inet' | 'inet6'; proxy?: boolean } = {}): Promise<Neighbour[]> {
    const op = 'neigh.list';
    v.knownKeys(op, 'filter', v.object(op, 'filter', filter), ['dev', 'family', 'proxy']);
    const a: Record<string, unknown> = { op };
    if (filter.family !== undefined) a.family = AF[v.oneOf(op, 'filter.family', filter.family, ['inet', 'inet6'] as const)];
    if (filter.dev !== undefined) a.dev = v.ifname(op, 'filter.dev', filter.dev);
    const proxy = filter.proxy !== undefined && v.bool(op, 'filter.proxy', filter.proxy);
    const rows: Neighbour[] = await this.h._call(op, a, proxy ? 'neigh.listProxy' : 'neigh.list');
    // A neighbour dump of AF_UNSPEC also returns the bridges' FDB: those are fdb.list's.
    return rows.filter((n) => (n.family === 'inet' || n.family === 'inet6') && (!filter.dev || n.dev === filter.dev));
  }
  /** The request `add`/`replace`/`del` would send, as bytes (golden tests, debugging). */
  async encode(cmd: 'add' | 'replace' | 'change' | 'del', s: NeighSpec): Promise<Buffer> {
    return Buffer.from(await this.h._call<Uint8Array>('neigh.encode', neighArgs('neigh.encode', v.oneOf('neigh.encode', 'cmd', cmd, ['add', 'replace', 'change', 'del'] as const), s)));
  }
}

/** The bridge forwarding database: what `bridge fdb` does (bridge ports and VXLAN devices). */
export class FdbOps {
  constructor(private readonly h: Handle) {}

  async #modify(cmd: string, s: FdbSpec): Promise<void> {
    const op = `fdb.${cmd}`;
    await this.h._call(op, { ...fdbArgs(op, cmd, s), op }, 'neigh.modify');
  }
  /** Equivalent to: `bridge fdb add 52:54:00:00:00:08 dev vx0 dst 198.51.100.3 self permanent`. */
  add(s: FdbSpec): Promise<void> { return this.#modify('add', s); }
  /**
   * Adds one more remote for a MAC (VXLAN head-end replication with the all-zero MAC).
   * Equivalent to: `bridge fdb append 00:00:00:00:00:00 dev vx0 dst 198.51.100.2`.
   */
  append(s: FdbSpec): Promise<void> { return this.#modify('append', s); }
  /** Equivalent to: `bridge fdb replace ...`. */
  replace(s: FdbSpec): Promise<void> { return this.#modify('replace', s); }
  /** Equivalent to: `bridge fdb del 00:00:00:00:00:00 dev vx0 dst 198.51.100.2`. */
  del(s: FdbSpec): Promise<void> { return this.#modify('del', s); }
  /** Entries of one device, of one bridge's ports (`master`), or all. Equivalent to: `bridge -j fdb show [dev vx0] [br br0]`. */
  async list(filter: { dev?: string; master?: string } = {}): Promise<FdbEntry[]> {
    const op = 'fdb.list';
    v.knownKeys(op, 'filter', v.object(op, 'filter', filter), ['dev', 'master']);
    const a: Record<string, unknown> = { op, family: AF.bridge };
    if (filter.dev !== undefined) a.dev = v.ifname(op, 'filter.dev', filter.dev);
    const br = filter.master === undefined ? undefined : v.ifname(op, 'filter.master', filter.master);
    const rows: FdbEntry[] = await this.h._call(op, a, 'neigh.list');
    // As `bridge fdb show br br0`: the bridge's own entries and its ports'.
    return br === undefined ? rows : rows.filter((e) => e.master === br || e.dev === br);
  }
  async encode(cmd: 'add' | 'append' | 'replace' | 'del', s: FdbSpec): Promise<Buffer> {
    return Buffer.from(await this.h._call<Uint8Array>('neigh.encode', fdbArgs('fdb.encode', v.oneOf('fdb.encode', 'cmd', cmd, ['add', 'append', 'replace', 'del'] as const), s)));
  }
}
