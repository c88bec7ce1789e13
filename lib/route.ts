import type { Handle } from './handle.js';
import * as v from './validate.js';

/** Route types `ip route` takes before the prefix (RTN_*). */
export type RouteType = 'unicast' | 'local' | 'blackhole' | 'unreachable' | 'prohibit';
/** Route scopes as `ip route` names them (RT_SCOPE_*). */
export type RouteScope = 'global' | 'site' | 'link' | 'host';
/** Route protocols as `ip route` names them (RTPROT_*), or a number 0-255. */
export type RouteProtocol = 'kernel' | 'boot' | 'static' | 'dhcp' | 'ra' | number;

/** One path of a multipath route, as `ip route` prints it after `nexthop`. */
export interface Nexthop {
  via?: string;
  dev?: string;
  devIndex?: number;
  /** 1-256; the share of flows this path gets. */
  weight: number;
  /** RTNH_F_* flags as ip prints them, e.g. ['onlink'], ['linkdown']. */
  flags: string[];
}

/** A route as `ip route show` describes it. */
export interface Route {
  family: 'inet' | 'inet6';
  /** 'default' or a prefix like '198.51.100.0/24'. */
  dst: string;
  via?: string;
  dev?: string;
  devIndex?: number;
  src?: string;
  metric?: number;
  table: number;
  /** A name ip knows ('kernel', 'boot', 'static', 'dhcp', 'ra') or the number as a string. */
  protocol: string;
  scope: string;
  type: string;
  /** RTNH_F_* flags, e.g. ['onlink']. */
  flags: string[];
  /** The paths of a multipath route (RTA_MULTIPATH). */
  nexthops?: Nexthop[];
  /** RTA_METRICS: path MTU, advertised MSS and hop limit when set. */
  mtu?: number;
  advmss?: number;
  hoplimit?: number;
}

/** One path of a multipath route to add. Equivalent to: `nexthop via 198.51.100.2 dev vp0 weight 2`. */
export interface NexthopSpec {
  via?: string;
  dev?: string;
  /** 1-256 (default 1). */
  weight?: number;
  /** The gateway is on the link even if no prefix says so. */
  onlink?: boolean;
}

export interface RouteSpec {
  /** 'default' (IPv4 unless `via` is IPv6 or family says so) or a prefix. */
  dst: string;
  via?: string;
  dev?: string;
  /** Paths of a multipath route (RTA_MULTIPATH), instead of `via`/`dev`. */
  nexthops?: NexthopSpec[];
  /** Default 'unicast'; 'local' routes go to the local table unless `table` says otherwise. */
  type?: RouteType;
  metric?: number;
  /** Table number (254 = main, 255 = local). */
  table?: number | 'main' | 'local';
  /** Preferred source address (`src`, RTA_PREFSRC). */
  src?: string;
  /** Default as ip: host for local routes, link for a unicast route without a gateway, else global. */
  scope?: RouteScope;
  /** Default 'boot', as ip. */
  protocol?: RouteProtocol;
  /** The gateway is on the link even if no prefix says so (`onlink`). */
  onlink?: boolean;
  /** Path MTU (RTAX_MTU). */
  mtu?: number;
  /** Advertised TCP MSS (RTAX_ADVMSS). */
  advmss?: number;
  /** Hop limit / TTL of packets on this route (RTAX_HOPLIMIT), 1-255. */
  hoplimit?: number;
  family?: 'inet' | 'inet6';
  /** Replace an existing route instead of failing with EEXIST. */
  replace?: boolean;
}

const AF = { inet: 2, inet6: 10 } as const;
const TYPES: Record<RouteType, number> = { unicast: 1, local: 2, blackhole: 6, unreachable: 7, prohibit: 8 };
const SCOPES: Record<RouteScope, number> = { global: 0, site: 200, link: 253, host: 254 };
const PROTOS: Record<string, number> = { kernel: 2, boot: 3, static: 4, ra: 9, dhcp: 16 };
const TABLES = { main: 254, local: 255 } as const;
const keys = ['dst', 'via', 'dev', 'nexthops', 'type', 'metric', 'table', 'src', 'scope', 'protocol', 'onlink', 'mtu', 'advmss', 'hoplimit', 'family', 'replace'];

/** Routes: what `ip route` does. */
export class RouteOps {
  constructor(private readonly h: Handle) {}

  #args(op: string, r: RouteSpec, del: boolean): Record<string, unknown> {
    v.object(op, 'route', r);
    v.knownKeys(op, 'route', r as unknown as Record<string, unknown>, keys);
    const args: Record<string, unknown> = { del };
    let family: v.Family | undefined = r.family === undefined ? undefined : v.oneOf<v.Family>(op, 'family', r.family, ['inet', 'inet6'] as const);
    let familyFrom = 'family';
    const sameFamily = (field: string, f: v.Family) => {
      if (family && family !== f) throw v.rangeError(op, field, `is ${f} but ${familyFrom} is ${family}`);
      if (!family) familyFrom = field;
      family = f;
    };
    if (r.dst === 'default') {
      args.dst = 'default';
    } else {
      const c = v.cidr(op, 'dst', r.dst, false);
      sameFamily('dst', c.family);
      args.dst = `${c.address}/${c.prefixLen}`;
      args.dstAddress = c.address;
      args.dstLen = c.prefixLen;
    }
    const type = r.type === undefined ? undefined : v.oneOf<RouteType>(op, 'type', r.type, Object.keys(TYPES) as RouteType[]);
    if (type !== undefined) args.type = TYPES[type];
    if (r.via !== undefined) {
      const g = v.ip(op, 'via', r.via);
      sameFamily('via', g.family);
      args.via = g.address;
    }
    if (r.dev !== undefined) args.dev = v.ifname(op, 'dev', r.dev);
    if (r.nexthops !== undefined) {
      if (!Array.isArray(r.nexthops) || r.nexthops.length === 0) throw v.typeError(op, 'nexthops', 'must be a non-empty array of { via, dev, weight }');
      if (r.nexthops.length > 256) throw v.rangeError(op, 'nexthops', `at most 256 paths (got ${r.nexthops.length})`);
      if (r.via !== undefined || r.dev !== undefined) throw v.rangeError(op, 'nexthops', 'goes instead of via/dev, not with them');
      args.nexthops = r.nexthops.map((n, i) => {
        const f = `nexthops[${i}]`;
        v.knownKeys(op, f, v.object(op, f, n), ['via', 'dev', 'weight', 'onlink']);
        const out: Record<string, unknown> = {};
        if (n.via !== undefined) {
          const g = v.ip(op, `${f}.via`, n.via);
          sameFamily(`${f}.via`, g.family);
          out.via = g.address;
        }
        if (n.dev !== undefined) out.dev = v.ifname(op, `${f}.dev`, n.dev);
        if (out.via === undefined && out.dev === undefined) throw v.typeError(op, `${f}.via`, 'a path needs a gateway (via) or a device (dev)');
        out.weight = n.weight === undefined ? 1 : v.uint(op, `${f}.weight`, n.weight, 1, 256);
        if (n.onlink !== undefined) out.onlink = v.bool(op, `${f}.onlink`, n.onlink);
        return out;
      });
    }
    const special = type !== undefined && type !== 'unicast' && type !== 'local';
    if (special && (r.via !== undefined || r.nexthops !== undefined))
      throw v.rangeError(op, r.via !== undefined ? 'via' : 'nexthops', `a ${type} route has no gateway`);
    if (!del && !special && r.via === undefined && r.dev === undefined && r.nexthops === undefined)
      throw v.typeError(op, 'via', 'a route needs a gateway (via), a device (dev) or nexthops');
    if (family) args.family = AF[family];
    if (r.metric !== undefined) args.metric = v.uint(op, 'metric', r.metric);
    if (r.table !== undefined)
      args.table = typeof r.table === 'string' ? TABLES[v.oneOf(op, 'table', r.table, ['main', 'local'] as const)] : v.uint(op, 'table', r.table, 1);
    else if (type === 'local') args.table = TABLES.local;
    if (r.src !== undefined) {
      const s = v.ip(op, 'src', r.src);
      sameFamily('src', s.family);
      args.src = s.address;
      if (family) args.family = AF[family];
    }
    if (r.scope !== undefined) args.scope = SCOPES[v.oneOf<RouteScope>(op, 'scope', r.scope, Object.keys(SCOPES) as RouteScope[])];
    if (r.protocol !== undefined)
      args.protocol = typeof r.protocol === 'number' ? v.uint(op, 'protocol', r.protocol, 0, 255) : PROTOS[v.oneOf(op, 'protocol', r.protocol, Object.keys(PROTOS))];
    if (r.onlink !== undefined) args.onlink = v.bool(op, 'onlink', r.onlink);
    if (r.mtu !== undefined) args.mtu = v.uint(op, 'mtu', r.mtu, 1);
    if (r.advmss !== undefined) args.advmss = v.uint(op, 'advmss', r.advmss, 1);
    if (r.hoplimit !== undefined) args.hoplimit = v.uint(op, 'hoplimit', r.hoplimit, 1, 255);
    if (r.replace !== undefined) args.replace = v.bool(op, 'replace', r.replace);
    return args;
  }

  /**
   * Adds a route. Equivalent to: `ip route add default via 192.168.122.1`, or with
   * `nexthops`, `ip route add 203.0.113.0/24 nexthop via 198.51.100.2 weight 1 nexthop via 198.51.100.3 weight 3`.
   *
   * @example
   * await nl.route.add({ dst: '203.0.113.0/24', type: 'blackhole' });
   */
  async add(r: RouteSpec): Promise<void> {
    await this.h._call('route.add', this.#args('route.add', r, false));
  }

  /** Removes a route. Equivalent to: `ip route del default`. */
  async del(r: RouteSpec): Promise<void> {
    await this.h._call('route.del', this.#args('route.del', r, true));
  }

  /**
   * The RTM_NEWROUTE/RTM_DELROUTE request `add`/`del` would send (seq and port id 0), without
   * sending it. Devices are looked up in the handle's namespace.
   */
  async encode(cmd: 'add' | 'replace' | 'del', r: RouteSpec): Promise<Buffer> {
    const op = 'route.encode';
    const c = v.oneOf(op, 'cmd', cmd, ['add', 'replace', 'del'] as const);
    const args = this.#args(op, c === 'replace' ? { ...r, replace: true } : r, c === 'del');
    return Buffer.from(await this.h._call<Uint8Array>(op, args));
  }

  /** Routes of the main table (or `table`, or 'all'). Equivalent to: `ip route show [table N]`. */
  async list(filter: { family?: 'inet' | 'inet6'; table?: number | 'main' | 'local' | 'all' } = {}): Promise<Route[]> {
    const op = 'route.list';
    v.knownKeys(op, 'filter', v.object(op, 'filter', filter), ['family', 'table']);
    const args: Record<string, unknown> = {};
    if (filter.family !== undefined) args.family = v.oneOf(op, 'filter.family', filter.family, ['inet', 'inet6']);
    if (filter.table !== undefined)
      args.table = filter.table === 'all' ? -1 : typeof filter.table === 'string' ? TABLES[v.oneOf(op, 'filter.table', filter.table, ['main', 'local'] as const)] : v.uint(op, 'filter.table', filter.table, 1);
    return this.h._call(op, args);
  }
}
