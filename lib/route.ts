import type { Handle } from './handle.js';
import * as v from './validate.js';

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
  protocol: string;
  scope: string;
  type: string;
}

export interface RouteSpec {
  /** 'default' (IPv4 unless `via` is IPv6 or family says so) or a prefix. */
  dst: string;
  via?: string;
  dev?: string;
  metric?: number;
  /** Table number (254 = main). */
  table?: number;
  /** Preferred source address. */
  src?: string;
  family?: 'inet' | 'inet6';
  /** Replace an existing route instead of failing with EEXIST. */
  replace?: boolean;
}

const AF = { inet: 2, inet6: 10 } as const;

/** Routes: what `ip route` does. */
export class RouteOps {
  constructor(private readonly h: Handle) {}

  #args(op: string, r: RouteSpec, del: boolean): Record<string, unknown> {
    v.object(op, 'route', r);
    v.knownKeys(op, 'route', r as unknown as Record<string, unknown>, ['dst', 'via', 'dev', 'metric', 'table', 'src', 'family', 'replace']);
    const args: Record<string, unknown> = {};
    let family: v.Family | undefined = r.family === undefined ? undefined : v.oneOf<v.Family>(op, 'family', r.family, ['inet', 'inet6'] as const);
    if (r.dst === 'default') {
      args.dst = 'default';
    } else {
      const c = v.cidr(op, 'dst', r.dst, false);
      args.dst = `${c.address}/${c.prefixLen}`;
      args.dstAddress = c.address;
      args.dstLen = c.prefixLen;
      if (family && family !== c.family) throw v.rangeError(op, 'family', 'does not match dst');
      family = c.family;
    }
    if (r.via !== undefined) {
      const g = v.ip(op, 'via', r.via);
      if (family && family !== g.family) throw v.rangeError(op, 'via', `is ${g.family} but dst is ${family}`);
      family = g.family;
      args.via = g.address;
    }
    if (family) args.family = AF[family];
    if (r.dev !== undefined) args.dev = v.ifname(op, 'dev', r.dev);
    if (!del && r.via === undefined && r.dev === undefined) throw v.typeError(op, 'via', 'a route needs a gateway (via) or a device (dev)');
    if (r.metric !== undefined) args.metric = v.uint(op, 'metric', r.metric);
    if (r.table !== undefined) args.table = v.uint(op, 'table', r.table, 1);
    if (r.src !== undefined) args.src = v.ip(op, 'src', r.src).address;
    if (r.replace !== undefined) args.replace = v.bool(op, 'replace', r.replace);
    return args;
  }

  /** Adds a route. Equivalent to: `ip route add default via 192.168.122.1`. */
  async add(r: RouteSpec): Promise<void> {
    await this.h._call('route.add', this.#args('route.add', r, false));
  }

  /** Removes a route. Equivalent to: `ip route del default`. */
  async del(r: RouteSpec): Promise<void> {
    await this.h._call('route.del', this.#args('route.del', r, true));
  }

  /** Routes of the main table (or `table`, or 'all'). Equivalent to: `ip route show [table N]`. */
  async list(filter: { family?: 'inet' | 'inet6'; table?: number | 'all' } = {}): Promise<Route[]> {
    const op = 'route.list';
    v.knownKeys(op, 'filter', v.object(op, 'filter', filter), ['family', 'table']);
    const args: Record<string, unknown> = {};
    if (filter.family !== undefined) args.family = v.oneOf(op, 'filter.family', filter.family, ['inet', 'inet6']);
    if (filter.table !== undefined) args.table = filter.table === 'all' ? -1 : v.uint(op, 'filter.table', filter.table, 1);
    return this.h._call(op, args);
  }
}
