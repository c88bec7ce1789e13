import type { Handle } from './handle.js';
import * as v from './validate.js';

/** An address as `ip addr show` describes it. */
export interface Address {
  family: 'inet' | 'inet6';
  index: number;
  link?: string;
  address: string;
  prefixLen: number;
  /** address/prefixLen, e.g. '192.168.122.1/24'. */
  cidr: string;
  peer?: string;
  broadcast?: string;
  label?: string;
  scope: string;
  flags: string[];
  /** Seconds left before the address is removed (IFA_CACHEINFO), or 'forever'. */
  validLft?: number | 'forever';
  /** Seconds left before it is deprecated (no new connections from it), or 'forever'. */
  preferredLft?: number | 'forever';
}

/** A lifetime in seconds (below 2^32 - 1) or 'forever'. */
export type Lifetime = number | 'forever';

export interface AddrOptions {
  /** IPv4 broadcast; `true` computes it from the prefix (`brd +`). */
  broadcast?: string | true;
  /** IPv4 label (`label virbr0:1`). */
  label?: string;
  /** Point-to-point peer address. */
  peer?: string;
  /** IPv6: skip duplicate address detection, so the address is usable at once. */
  nodad?: boolean;
  noprefixroute?: boolean;
  /** Replace an existing address instead of failing with EEXIST. */
  replace?: boolean;
  /** Seconds until the kernel removes the address (`valid_lft`; default 'forever'). */
  validLft?: Lifetime;
  /** Seconds until it is deprecated (`preferred_lft`; default 'forever', at most validLft). */
  preferredLft?: Lifetime;
}

const FOREVER = 0xffffffff;
function lifetime(op: string, field: string, x: unknown): number {
  return x === 'forever' ? FOREVER : v.uint(op, field, x, 0, FOREVER - 1);
}

function v4broadcast(address: string, prefixLen: number): string {
  const n = address.split('.').reduce((a, o) => (a << 8) | Number(o), 0) >>> 0;
  const mask = prefixLen === 0 ? 0 : (0xffffffff << (32 - prefixLen)) >>> 0;
  const b = (n | (~mask >>> 0)) >>> 0;
  return [24, 16, 8, 0].map((s) => (b >>> s) & 255).join('.');
}

/** Addresses: what `ip addr` does. */
export class AddrOps {
  constructor(private readonly h: Handle) {}

  #args(op: string, link: string, cidr: string, o: AddrOptions = {}): Record<string, unknown> {
    const c = v.cidr(op, 'address', cidr);
    const args: Record<string, unknown> = { link: v.ifname(op, 'link', link), address: c.address, prefixLen: c.prefixLen };
    v.object(op, 'options', o);
    v.knownKeys(op, 'options', o as Record<string, unknown>, ['broadcast', 'label', 'peer', 'nodad', 'noprefixroute', 'replace', 'validLft', 'preferredLft']);
    if (o.broadcast !== undefined) {
      if (c.family !== 'inet') throw v.rangeError(op, 'broadcast', 'only IPv4 addresses have a broadcast address');
      if (o.broadcast === true) {
        if (c.prefixLen < 31) args.broadcast = v4broadcast(c.address, c.prefixLen);
      } else {
        const b = v.ip(op, 'broadcast', o.broadcast);
        if (b.family !== 'inet') throw v.rangeError(op, 'broadcast', 'must be an IPv4 address');
        args.broadcast = b.address;
      }
    }
    if (o.label !== undefined) {
      if (c.family !== 'inet') throw v.rangeError(op, 'label', 'only IPv4 addresses have labels');
      const l = v.str(op, 'label', o.label, 15);
      // The kernel stores any bytes; `ip addr` prints them and scripts parse that output.
      if (/[\s\x00-\x1f\x7f]/.test(l)) throw v.rangeError(op, 'label', `must not contain whitespace or control characters (got ${JSON.stringify(l)})`);
      if (!l.startsWith(link)) throw v.rangeError(op, 'label', `must start with the link name ${JSON.stringify(link)} (got ${JSON.stringify(l)})`);
      args.label = l;
    }
    if (o.peer !== undefined) {
      const p = v.ip(op, 'peer', o.peer);
      if (p.family !== c.family) throw v.rangeError(op, 'peer', 'must be of the same family as the address');
      args.peer = p.address;
    }
    if (o.nodad !== undefined) args.nodad = v.bool(op, 'nodad', o.nodad);
    if (o.noprefixroute !== undefined) args.noprefixroute = v.bool(op, 'noprefixroute', o.noprefixroute);
    if (o.replace !== undefined) args.replace = v.bool(op, 'replace', o.replace);
    if (o.validLft !== undefined || o.preferredLft !== undefined) {
      // As ip: an unset one is forever; a valid lifetime of 0 and preferred > valid are refused.
      const valid = o.validLft === undefined ? FOREVER : lifetime(op, 'validLft', o.validLft);
      const preferred = o.preferredLft === undefined ? FOREVER : lifetime(op, 'preferredLft', o.preferredLft);
      if (valid === 0) throw v.rangeError(op, 'validLft', 'must be at least 1 second (0 would remove the address at once)');
      if (preferred > valid) throw v.rangeError(op, 'preferredLft', `must not exceed validLft (${preferred} > ${valid})`);
      args.validLft = valid;
      args.preferredLft = preferred;
    }
    return args;
  }

  /** Adds an address. Equivalent to: `ip addr add 192.168.122.1/24 dev virbr0`. */
  async add(link: string, cidr: string, opts: AddrOptions = {}): Promise<void> {
    await this.h._call('addr.add', this.#args('addr.add', link, cidr, opts));
  }

  /**
   * The RTM_NEWADDR/RTM_DELADDR request `add`/`del` would send (seq and port id 0), without
   * sending it. The link is looked up in the handle's namespace.
   */
  async encode(cmd: 'add' | 'replace' | 'del', link: string, cidr: string, opts: AddrOptions = {}): Promise<Buffer> {
    const op = 'addr.encode';
    const c = v.oneOf(op, 'cmd', cmd, ['add', 'replace', 'del'] as const);
    const args = this.#args(op, link, cidr, c === 'replace' ? { ...opts, replace: true } : opts);
    args.cmd = c;
    return Buffer.from(await this.h._call<Uint8Array>(op, args));
  }

  /** Removes an address. Equivalent to: `ip addr del 192.168.122.1/24 dev virbr0`. */
  async del(link: string, cidr: string): Promise<void> {
    await this.h._call('addr.del', this.#args('addr.del', link, cidr));
  }

  /** Addresses of one link or of all. Equivalent to: `ip addr show [dev LINK]`. */
  async list(link?: string, filter: { family?: 'inet' | 'inet6' } = {}): Promise<Address[]> {
    const op = 'addr.list';
    const args: Record<string, unknown> = {};
    if (link !== undefined) args.link = v.ifname(op, 'link', link);
    v.knownKeys(op, 'filter', v.object(op, 'filter', filter), ['family']);
    if (filter.family !== undefined) args.family = v.oneOf(op, 'filter.family', filter.family, ['inet', 'inet6']);
    return this.h._call(op, args);
  }
}
