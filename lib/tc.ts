// Traffic control: what `tc qdisc|class|filter` does, over rtnetlink, plus `shape()`, the
// per-guest bandwidth recipe libvirt applies for <bandwidth>.
import type { Handle } from './handle.js';
import { NetlinkError, stateError } from './errors.js';
import * as v from './validate.js';
import { netnsId } from './netns.js';
import * as u from './tc-units.js';
import type { Rate, Size, Time, Protocol } from './tc-units.js';

export type { Rate, Size, Time, Protocol } from './tc-units.js';

/** Where a qdisc hangs: `'root'`, a class such as `'1:10'`, or a 32-bit handle. */
export type TcParent = 'root' | string | number;

interface QdiscBase {
  /** Default `'root'`. Ignored for `clsact` and `ingress`, which have their own hook. */
  parent?: TcParent;
  /** The qdisc's handle, e.g. `'1:'` (tc's `handle 1:`). */
  handle?: string | number;
}
/** Hierarchical token bucket (`tc qdisc add ... htb default 10`). */
export interface HtbQdiscSpec extends QdiscBase {
  kind: 'htb';
  /** The class unclassified traffic goes to: `'1:10'` or its minor as tc writes it (hex, `10` = 0x10). */
  defaultClass?: string | number;
  /** Rate-to-quantum divisor (tc's `r2q`, default 10). */
  r2q?: number;
  directQlen?: number;
}
/** Token bucket filter (`tbf rate 1mbit burst 32k latency 50ms`). Give `latency` or `limit`. */
export interface TbfQdiscSpec extends QdiscBase {
  kind: 'tbf';
  rate: Rate;
  burst: Size;
  latency?: Time;
  limit?: Size;
  peakrate?: Rate;
  /** The peak bucket's size (needed with `peakrate`). */
  mtu?: Size;
}
/** Network emulator (`netem delay 100ms 10ms loss 1%`). Probabilities are fractions or `'1%'`. */
export interface NetemQdiscSpec extends QdiscBase {
  kind: 'netem';
  delay?: Time;
  jitter?: Time;
  loss?: number | string;
  duplicate?: number | string;
  reorder?: number | string;
  corrupt?: number | string;
  gap?: number;
  rate?: Rate;
  /** Queue limit in packets (default 1000). */
  limit?: number;
}
/** Fair queueing with CoDel (`fq_codel limit 1000 target 5ms ...`). */
export interface FqCodelQdiscSpec extends QdiscBase {
  kind: 'fq_codel';
  limit?: number;
  flows?: number;
  target?: Time;
  interval?: Time;
  quantum?: Size;
  ecn?: boolean;
  ceThreshold?: Time;
  memoryLimit?: Size;
  dropBatch?: number;
}
/** The clsact hooks for `ingress`/`egress` filters (`tc qdisc add dev X clsact`). */
export interface ClsactQdiscSpec { kind: 'clsact'; parent?: 'clsact'; handle?: undefined }
/** The ingress hook (`tc qdisc add dev X ingress`, handle `ffff:`). */
export interface IngressQdiscSpec { kind: 'ingress'; parent?: 'ingress'; handle?: undefined }
export type QdiscSpec = HtbQdiscSpec | TbfQdiscSpec | NetemQdiscSpec | FqCodelQdiscSpec | ClsactQdiscSpec | IngressQdiscSpec;
export type QdiscKind = QdiscSpec['kind'];

/** An htb class (`tc class add dev X parent 1: classid 1:10 htb rate 100mbit`). */
export interface HtbClassSpec {
  kind: 'htb';
  parent: string | number;
  classid: string | number;
  rate: Rate;
  ceil?: Rate;
  burst?: Size;
  cburst?: Size;
  prio?: number;
  quantum?: Size;
  mtu?: Size;
}
export type ClassSpec = HtbClassSpec;

/** tc's action controls (what happens to the packet after the action). */
export type TcControl = 'pass' | 'ok' | 'drop' | 'shot' | 'reclassify' | 'pipe' | 'continue' | 'stolen';
const controls: Record<TcControl, number> = { continue: -1, pass: 0, ok: 0, reclassify: 1, drop: 2, shot: 2, pipe: 3, stolen: 4 };

/** Redirect or mirror the packet to another device (`action mirred egress redirect dev ifb0`). */
export interface MirredAction {
  kind: 'mirred';
  /** Send out of `dev` (default). */
  egress?: boolean;
  /** Receive on `dev` instead. */
  ingress?: boolean;
  /** Move the packet (default). */
  redirect?: boolean;
  /** Copy it and let the original go on. */
  mirror?: boolean;
  dev: string;
}
/** A token-bucket policer (`police rate 1mbit burst 100k drop`). */
export interface PoliceAction {
  kind: 'police';
  rate: Rate;
  burst: Size;
  mtu?: Size;
  peakrate?: Rate;
  /** What to do with packets over the rate (default `'reclassify'`, as tc). */
  exceed?: TcControl;
  conform?: TcControl;
}
/** Recompute checksums (`action csum ip tcp udp`). */
export interface CsumAction { kind: 'csum'; update: ('ip' | 'icmp' | 'igmp' | 'tcp' | 'udp' | 'udplite' | 'sctp')[] }
/** Pass or drop (`action drop`). */
export interface GactAction { kind: 'gact'; action: TcControl }
export type TcAction = MirredAction | PoliceAction | CsumAction | GactAction;

/**
 * One u32 match: an IPv4/IPv6 header field (tc's `match ip dst 192.168.122.0/24`,
 * `match ip dport 22 0xffff`) or a raw 32-bit word (`match u32 VALUE MASK at OFFSET`).
 */
export type U32Match =
  | { ip: { src?: string; dst?: string; protocol?: number | 'tcp' | 'udp' | 'icmp'; sport?: number; dport?: number; tos?: number } }
  | { ip6: { src?: string; dst?: string } }
  | { u32: { value: number; mask: number; at: number } };

interface FilterBase {
  /** The qdisc or class the filter hangs on: `'1:'`, `'ffff:'` (ingress qdisc), or clsact's `'ingress'`/`'egress'`. */
  parent: string | number;
  /** Default `'all'`. */
  protocol?: Protocol;
  /** Priority (tc's `prio`/`pref`), 1..65535; the kernel picks one when unset. */
  prio?: number;
  handle?: string | number;
  /** The class matching packets go to (tc's `flowid`/`classid`). */
  flowid?: string | number;
  actions?: TcAction[];
}
/** The u32 classifier. An empty `match` matches every packet (`match u32 0 0`). */
export interface U32FilterSpec extends FilterBase {
  kind: 'u32';
  match?: U32Match[];
  /** u32's own policer (tc's `u32 ... police ...`, which libvirt uses), older than the police action. */
  police?: Omit<PoliceAction, 'kind'>;
}
/** Matches every packet (kernel module `cls_matchall`). */
export interface MatchallFilterSpec extends FilterBase { kind: 'matchall' }
export type FilterSpec = U32FilterSpec | MatchallFilterSpec;

/** Statistics as `tc -s` prints them. */
export interface TcStats { bytes?: number; packets?: number; drops?: number; overlimits?: number; requeues?: number; qlen?: number; backlog?: number }
/** A qdisc as `tc -s -j qdisc show` describes it; kind-specific fields (rate, burst, r2q, ...) sit beside. */
export interface Qdisc {
  dev?: string;
  ifindex: number;
  kind: string;
  handle: string;
  parent: string;
  stats: TcStats;
  [option: string]: unknown;
}
export interface TcClass extends Qdisc { rate?: number; ceil?: number; burst?: number; cburst?: number; prio?: number; quantum?: number; level?: number }
export interface TcFilter extends Qdisc {
  prio: number;
  protocol: string;
  chain?: number;
  flowid?: string;
  match?: { val: number; mask: number; off: number; offmask: number }[];
  actions?: ({ kind: string; dev?: string; ifindex?: number; direction?: 'egress' | 'ingress'; op?: 'redirect' | 'mirror'; control?: string; stats?: { bytes: number; packets: number } } & Record<string, unknown>)[];
}

/** Options for `shape()`: libvirt's <bandwidth> <inbound>/<outbound> in tc's words. */
export interface ShapeOptions {
  /** Traffic the device sends (a tap's egress is what its guest receives: libvirt's `inbound`). */
  egress?: { rate: Rate; ceil?: Rate; burst?: Size };
  /** Traffic the device receives (what a guest sends: libvirt's `outbound`). */
  ingress?: { rate: Rate; burst?: Size };
}
export interface ShapeResult {
  /** How ingress was limited: the police action where the kernel has it, else an ifb device. */
  ingress?: 'police' | 'ifb';
  /** The ifb device shaping ingress, when that path was used. */
  ifb?: string;
}

type Cmd = 'add' | 'replace' | 'change' | 'del';

const qdiscKeys: Record<QdiscKind, readonly string[]> = {
  htb: ['defaultClass', 'r2q', 'directQlen'],
  tbf: ['rate', 'burst', 'latency', 'limit', 'peakrate', 'mtu'],
  netem: ['delay', 'jitter', 'loss', 'duplicate', 'reorder', 'corrupt', 'gap', 'rate', 'limit'],
  fq_codel: ['limit', 'flows', 'target', 'interval', 'quantum', 'ecn', 'ceThreshold', 'memoryLimit', 'dropBatch'],
  clsact: [],
  ingress: [],
};

function qdiscOptions(op: string, s: Record<string, any>): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  switch (s.kind as QdiscKind) {
    case 'htb':
      if (s.defaultClass !== undefined) {
        // tc's `default 10` is a hex minor; '1:10' names the class fully.
        o.defcls = typeof s.defaultClass === 'number' ? v.uint(op, 'defaultClass', s.defaultClass, 0, 0xffff)
          : /^[0-9a-fA-F]{1,4}$/.test(s.defaultClass) ? parseInt(s.defaultClass, 16)
          : u.handle(op, 'defaultClass', s.defaultClass) & 0xffff;
      }
      if (s.r2q !== undefined) o.r2q = v.uint(op, 'r2q', s.r2q, 1);
      if (s.directQlen !== undefined) o.directQlen = v.uint(op, 'directQlen', s.directQlen);
      break;
    case 'tbf':
      if (s.rate === undefined) throw v.typeError(op, 'rate', 'is required for tbf');
      if (s.burst === undefined) throw v.typeError(op, 'burst', 'is required for tbf');
      o.rate = u.rate(op, 'rate', s.rate);
      o.burst = u.size(op, 'burst', s.burst, 1);
      if ((s.latency === undefined) === (s.limit === undefined)) throw v.typeError(op, 'latency', 'give latency or limit (one of them) for tbf');
      if (s.latency !== undefined) o.latency = u.time(op, 'latency', s.latency);
      if (s.limit !== undefined) o.limit = u.size(op, 'limit', s.limit, 1);
      if (s.peakrate !== undefined) {
        o.peakrate = u.rate(op, 'peakrate', s.peakrate);
        if (s.mtu === undefined) throw v.typeError(op, 'mtu', 'is required with peakrate');
      }
      if (s.mtu !== undefined) o.mtu = u.size(op, 'mtu', s.mtu, 1);
      break;
    case 'netem':
      if (s.delay !== undefined) o.delay = u.time(op, 'delay', s.delay);
      if (s.jitter !== undefined) {
        if (s.delay === undefined) throw v.typeError(op, 'jitter', 'needs a delay');
        o.jitter = u.time(op, 'jitter', s.jitter);
      }
      for (const k of ['loss', 'duplicate', 'reorder', 'corrupt']) if (s[k] !== undefined) o[k] = u.fraction(op, k, s[k]);
      if (s.reorder !== undefined && s.delay === undefined) throw v.typeError(op, 'reorder', 'needs a delay (tc: reordering not possible without some delay)');
      if (s.gap !== undefined) o.gap = v.uint(op, 'gap', s.gap);
      if (s.rate !== undefined) o.rate = u.rate(op, 'rate', s.rate);
      if (s.limit !== undefined) o.limit = v.uint(op, 'limit', s.limit, 1);
      break;
    case 'fq_codel':
      for (const k of ['limit', 'flows', 'dropBatch']) if (s[k] !== undefined) o[k] = v.uint(op, k, s[k], 1);
      for (const k of ['target', 'interval', 'ceThreshold']) if (s[k] !== undefined) o[k] = u.time(op, k, s[k]);
      for (const k of ['quantum', 'memoryLimit']) if (s[k] !== undefined) o[k] = u.size(op, k, s[k], 1);
      if (s.ecn !== undefined) o.ecn = v.bool(op, 'ecn', s.ecn);
      break;
    case 'clsact':
    case 'ingress':
      break;
  }
  return o;
}

function controlOf(op: string, field: string, c: unknown): number {
  return controls[v.oneOf(op, field, c, Object.keys(controls) as TcControl[])];
}

function policeArgs(op: string, field: string, p: Record<string, any>): Record<string, unknown> {
  v.knownKeys(op, field, p, ['kind', 'rate', 'burst', 'mtu', 'peakrate', 'exceed', 'conform']);
  if (p.rate === undefined) throw v.typeError(op, `${field}.rate`, 'is required');
  if (p.burst === undefined) throw v.typeError(op, `${field}.burst`, 'is required');
  const o: Record<string, unknown> = { rate: u.rate(op, `${field}.rate`, p.rate), burst: u.size(op, `${field}.burst`, p.burst, 1) };
  if (p.mtu !== undefined) o.mtu = u.size(op, `${field}.mtu`, p.mtu, 1);
  if (p.peakrate !== undefined) {
    if (p.mtu === undefined) throw v.typeError(op, `${field}.mtu`, 'is required with peakrate');
    o.peakrate = u.rate(op, `${field}.peakrate`, p.peakrate);
  }
  if (p.exceed !== undefined) o.exceed = controlOf(op, `${field}.exceed`, p.exceed);
  if (p.conform !== undefined) o.conform = controlOf(op, `${field}.conform`, p.conform);
  return o;
}

const csumBits = { ip: 1, icmp: 2, igmp: 4, tcp: 8, udp: 16, udplite: 32, sctp: 64 } as const;

function actionArgs(op: string, list: unknown): Record<string, unknown>[] {
  if (!Array.isArray(list)) throw v.typeError(op, 'actions', 'must be an array');
  if (list.length > 32) throw v.rangeError(op, 'actions', 'at most 32 actions (TCA_ACT_MAX_PRIO)');
  return list.map((a, i) => {
    const f = `actions[${i}]`;
    v.object(op, f, a);
    const kind = v.oneOf(op, `${f}.kind`, a.kind, ['mirred', 'police', 'csum', 'gact'] as const);
    switch (kind) {
      case 'mirred': {
        v.knownKeys(op, f, a, ['kind', 'egress', 'ingress', 'redirect', 'mirror', 'dev']);
        for (const k of ['egress', 'ingress', 'redirect', 'mirror']) if (a[k] !== undefined) v.bool(op, `${f}.${k}`, a[k]);
        if (a.egress && a.ingress) throw v.rangeError(op, `${f}.ingress`, 'give egress or ingress, not both');
        if (a.redirect && a.mirror) throw v.rangeError(op, `${f}.mirror`, 'give redirect or mirror, not both');
        const ingress = !!a.ingress, mirror = !!a.mirror;
        // TCA_EGRESS_REDIR 1, TCA_EGRESS_MIRROR 2, TCA_INGRESS_REDIR 3, TCA_INGRESS_MIRROR 4
        const eaction = (ingress ? 3 : 1) + (mirror ? 1 : 0);
        return { kind, eaction, dev: v.ifname(op, `${f}.dev`, a.dev) };
      }
      case 'police':
        return { kind, ...policeArgs(op, f, a) };
      case 'csum': {
        v.knownKeys(op, f, a, ['kind', 'update']);
        if (!Array.isArray(a.update) || a.update.length === 0) throw v.typeError(op, `${f}.update`, `must list what to update (${Object.keys(csumBits).join(', ')})`);
        let flags = 0;
        a.update.forEach((x: unknown, j: number) => { flags |= csumBits[v.oneOf(op, `${f}.update[${j}]`, x, Object.keys(csumBits) as (keyof typeof csumBits)[])]; });
        return { kind, flags };
      }
      case 'gact':
        v.knownKeys(op, f, a, ['kind', 'action']);
        return { kind, action: controlOf(op, `${f}.action`, a.action) };
    }
  });
}

interface U32Key { val: number; mask: number; off: number; offmask: number }

// Adds a key the way tc's pack_key does: keys at the same offset merge; a contradiction is an error.
function packKey(op: string, field: string, keys: U32Key[], val: number, mask: number, off: number): void {
  val = (val & mask) >>> 0;
  for (const k of keys) {
    if (k.off === off && k.offmask === 0) {
      if (((k.val ^ val) & k.mask & mask) !== 0) throw v.rangeError(op, field, 'contradicts an earlier match on the same bits');
      k.val = (k.val | val) >>> 0;
      k.mask = (k.mask | mask) >>> 0;
      return;
    }
  }
  if (keys.length >= 128) throw v.rangeError(op, field, 'more than 128 match keys');
  keys.push({ val, mask, off, offmask: 0 });
}
// A 1- or 2-byte field at byte offset `off`, placed in its 32-bit word as tc's pack_key8/16 do.
function packField(op: string, field: string, keys: U32Key[], value: number, bytes: 1 | 2, off: number): void {
  const bits = bytes * 8;
  const shift = 32 - bits - (off & 3) * 8;
  const max = bytes === 1 ? 0xff : 0xffff;
  v.uint(op, field, value, 0, max);
  packKey(op, field, keys, (value << shift) >>> 0, (max << shift) >>> 0, off & ~3);
}
function packPrefix(op: string, field: string, keys: U32Key[], cidr: string, family: 'inet' | 'inet6', off: number): void {
  const c = v.cidr(op, field, cidr, false);
  if (c.family !== family) throw v.rangeError(op, field, `${cidr} is not an ${family === 'inet' ? 'IPv4' : 'IPv6'} prefix`);
  const words = addrWords(c.address, family);
  for (let i = 0; i < words.length; i++) {
    const left = c.prefixLen - i * 32;
    if (left <= 0 && i > 0) break;
    const mask = left >= 32 ? 0xffffffff : left <= 0 ? 0 : (0xffffffff << (32 - left)) >>> 0;
    packKey(op, field, keys, words[i], mask, off + i * 4);
  }
}
function addrWords(a: string, family: 'inet' | 'inet6'): number[] {
  if (family === 'inet') return [a.split('.').reduce((n, x) => n * 256 + Number(x), 0)];
  let parts = a.split('::');
  const head = parts[0] ? parts[0].split(':') : [];
  const tail = parts.length > 1 && parts[1] ? parts[1].split(':') : [];
  if (tail.length && tail[tail.length - 1].includes('.')) {
    const [p, q, r, s] = tail.pop()!.split('.').map(Number);
    tail.push(((p << 8) | q).toString(16), ((r << 8) | s).toString(16));
  }
  const groups = [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail].map((g) => parseInt(g, 16));
  parts = [];
  const out: number[] = [];
  for (let i = 0; i < 8; i += 2) out.push(((groups[i] << 16) >>> 0) + groups[i + 1]);
  return out;
}

function u32Keys(op: string, match: unknown): U32Key[] {
  if (match === undefined) match = [];
  if (!Array.isArray(match)) throw v.typeError(op, 'match', 'must be an array');
  const keys: U32Key[] = [];
  match.forEach((m, i) => {
    const f = `match[${i}]`;
    v.object(op, f, m);
    v.knownKeys(op, f, m, ['ip', 'ip6', 'u32']);
    if (Object.keys(m).filter((k) => m[k] !== undefined).length !== 1) throw v.typeError(op, f, 'give exactly one of ip, ip6, u32');
    if (m.ip !== undefined) {
      const ip = v.object(op, `${f}.ip`, m.ip);
      v.knownKeys(op, `${f}.ip`, ip, ['src', 'dst', 'protocol', 'sport', 'dport', 'tos']);
      if (ip.src !== undefined) packPrefix(op, `${f}.ip.src`, keys, ip.src as string, 'inet', 12);
      if (ip.dst !== undefined) packPrefix(op, `${f}.ip.dst`, keys, ip.dst as string, 'inet', 16);
      if (ip.protocol !== undefined) {
        const p = typeof ip.protocol === 'string' ? ({ icmp: 1, tcp: 6, udp: 17 } as Record<string, number>)[ip.protocol] : ip.protocol;
        if (p === undefined) throw v.rangeError(op, `${f}.ip.protocol`, 'must be tcp, udp, icmp or a number');
        packField(op, `${f}.ip.protocol`, keys, p as number, 1, 9);
      }
      if (ip.tos !== undefined) packField(op, `${f}.ip.tos`, keys, ip.tos as number, 1, 1);
      // As tc: ports sit right after a 20-byte IPv4 header (no options).
      if (ip.sport !== undefined) packField(op, `${f}.ip.sport`, keys, ip.sport as number, 2, 20);
      if (ip.dport !== undefined) packField(op, `${f}.ip.dport`, keys, ip.dport as number, 2, 22);
    } else if (m.ip6 !== undefined) {
      const ip6 = v.object(op, `${f}.ip6`, m.ip6);
      v.knownKeys(op, `${f}.ip6`, ip6, ['src', 'dst']);
      if (ip6.src !== undefined) packPrefix(op, `${f}.ip6.src`, keys, ip6.src as string, 'inet6', 8);
      if (ip6.dst !== undefined) packPrefix(op, `${f}.ip6.dst`, keys, ip6.dst as string, 'inet6', 24);
    } else {
      const r = v.object(op, `${f}.u32`, m.u32);
      v.knownKeys(op, `${f}.u32`, r, ['value', 'mask', 'at']);
      const at = v.uint(op, `${f}.u32.at`, r.at ?? 0, 0, 0x7fffffff);
      if (at % 4) throw v.rangeError(op, `${f}.u32.at`, 'must be a multiple of 4');
      packKey(op, f, keys, v.uint(op, `${f}.u32.value`, r.value), v.uint(op, `${f}.u32.mask`, r.mask), at);
    }
  });
  // No match at all is tc's `match u32 0 0`: one key that every packet satisfies.
  if (keys.length === 0) keys.push({ val: 0, mask: 0, off: 0, offmask: 0 });
  return keys;
}

/** Qdiscs: `tc qdisc`. */
export class TcQdiscOps {
  constructor(private readonly tc: TcOps) {}
  /** Adds a qdisc. Equivalent to: `tc qdisc add dev vnet0 root handle 1: htb default 10`. */
  add(dev: string, spec: QdiscSpec): Promise<void> { return this.tc._modify('qdisc', 'add', dev, spec); }
  /** Adds or replaces the qdisc at `parent`. Equivalent to: `tc qdisc replace dev vnet0 root ...`. */
  replace(dev: string, spec: QdiscSpec): Promise<void> { return this.tc._modify('qdisc', 'replace', dev, spec); }
  /** Changes an existing qdisc's options. Equivalent to: `tc qdisc change dev vnet0 ...`. */
  change(dev: string, spec: QdiscSpec): Promise<void> { return this.tc._modify('qdisc', 'change', dev, spec); }
  /** Deletes the qdisc at `parent` (or with `handle`). Equivalent to: `tc qdisc del dev vnet0 root`. */
  del(dev: string, spec: { parent?: TcParent | 'ingress' | 'clsact'; handle?: string | number; kind?: QdiscKind } = {}): Promise<void> {
    return this.tc._modify('qdisc', 'del', dev, spec);
  }
  /** Qdiscs of one device (or every device). Equivalent to: `tc -s -j qdisc show [dev vnet0]`. */
  list(dev?: string): Promise<Qdisc[]> { return this.tc._list('qdisc', dev); }
  /** The request `add`/`replace`/... would send, as bytes (golden tests, debugging). */
  encode(cmd: Cmd, dev: string | number, spec: QdiscSpec | { parent?: TcParent; handle?: string | number }): Promise<Buffer> {
    return this.tc._encode('qdisc', cmd, dev, spec);
  }
}

/** Classes: `tc class`. */
export class TcClassOps {
  constructor(private readonly tc: TcOps) {}
  /** Equivalent to: `tc class add dev vnet0 parent 1: classid 1:10 htb rate 100mbit`. */
  add(dev: string, spec: ClassSpec): Promise<void> { return this.tc._modify('class', 'add', dev, spec); }
  /** Equivalent to: `tc class change dev vnet0 parent 1: classid 1:10 htb rate 50mbit`. */
  change(dev: string, spec: ClassSpec): Promise<void> { return this.tc._modify('class', 'change', dev, spec); }
  /** Equivalent to: `tc class replace dev vnet0 ...`. */
  replace(dev: string, spec: ClassSpec): Promise<void> { return this.tc._modify('class', 'replace', dev, spec); }
  /** Equivalent to: `tc class del dev vnet0 classid 1:10`. */
  del(dev: string, spec: { classid: string | number; parent?: string | number }): Promise<void> { return this.tc._modify('class', 'del', dev, spec); }
  /** Equivalent to: `tc -s -j class show dev vnet0`. */
  list(dev: string): Promise<TcClass[]> { return this.tc._list('class', dev); }
  encode(cmd: Cmd, dev: string | number, spec: ClassSpec | { classid: string | number; parent?: string | number }): Promise<Buffer> {
    return this.tc._encode('class', cmd, dev, spec);
  }
}

/** Filters: `tc filter`. */
export class TcFilterOps {
  constructor(private readonly tc: TcOps) {}
  /** Equivalent to: `tc filter add dev vnet0 parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev ifb0`. */
  add(dev: string, spec: FilterSpec): Promise<void> { return this.tc._modify('filter', 'add', dev, spec); }
  /** Equivalent to: `tc filter replace dev vnet0 ...`. */
  replace(dev: string, spec: FilterSpec): Promise<void> { return this.tc._modify('filter', 'replace', dev, spec); }
  /** Deletes the filters at `parent` (of one `prio`/`protocol` when given). Equivalent to: `tc filter del dev vnet0 parent ffff: prio 1`. */
  del(dev: string, spec: { parent: string | number; prio?: number; protocol?: Protocol; handle?: string | number; kind?: FilterSpec['kind'] }): Promise<void> {
    return this.tc._modify('filter', 'del', dev, spec);
  }
  /** Filters of `dev`: under `parent`, or under every qdisc of the device. Equivalent to: `tc -s -j filter show dev vnet0 [parent 1:]`. */
  async list(dev: string, opts: { parent?: string | number } = {}): Promise<TcFilter[]> {
    const op = 'tc.filter.list';
    v.knownKeys(op, 'options', v.object(op, 'options', opts), ['parent']);
    if (opts.parent !== undefined) return this.tc._list('filter', dev, filterParent(op, opts.parent));
    const out: TcFilter[] = [];
    for (const q of await this.tc._list('qdisc', dev)) {
      // Default qdiscs (handle 0:) are classless and hold no filters.
      if (q.handle === '0:') continue;
      const parents = q.kind === 'clsact' ? [u.CLSACT_INGRESS, u.CLSACT_EGRESS] : [u.handle(op, 'handle', q.handle)];
      for (const p of parents) {
        try {
          out.push(...(await this.tc._list('filter', dev, p)) as TcFilter[]);
        } catch (e) {
          // A classless qdisc with a handle (tbf, netem) refuses a filter dump: it has none.
          if (!(e instanceof NetlinkError) || !['EOPNOTSUPP', 'EINVAL'].includes(e.code)) throw e;
        }
      }
    }
    return out;
  }
  encode(cmd: Cmd, dev: string | number, spec: FilterSpec | { parent: string | number; prio?: number; protocol?: Protocol }): Promise<Buffer> {
    return this.tc._encode('filter', cmd, dev, spec);
  }
}

function filterParent(op: string, p: unknown): number {
  return u.handle(op, 'parent', p, { root: u.TC_H_ROOT, ingress: u.CLSACT_INGRESS, egress: u.CLSACT_EGRESS });
}

/**
 * Traffic control: qdiscs, classes and filters over rtnetlink (no `tc` process), and
 * `shape()`, libvirt's per-guest bandwidth recipe.
 *
 * @example
 * await nl.tc.qdisc.add('vnet0', { parent: 'root', handle: '1:', kind: 'htb', defaultClass: '1:10' });
 * await nl.tc.class.add('vnet0', { parent: '1:', classid: '1:10', kind: 'htb', rate: '100mbit' });
 * await nl.tc.shape('vnet0', { egress: { rate: '50mbit' }, ingress: { rate: '30mbit' } });
 */
export class TcOps {
  readonly qdisc: TcQdiscOps;
  readonly class: TcClassOps;
  readonly filter: TcFilterOps;

  constructor(private readonly h: Handle) {
    this.qdisc = new TcQdiscOps(this);
    this.class = new TcClassOps(this);
    this.filter = new TcFilterOps(this);
  }

  /** @internal */
  _args(object: 'qdisc' | 'class' | 'filter', cmd: Cmd, op: string, spec: Record<string, any>): Record<string, unknown> {
    v.object(op, 'spec', spec);
    const a: Record<string, unknown> = { object, cmd };
    if (object === 'qdisc') {
      const kinds = Object.keys(qdiscKeys) as QdiscKind[];
      const kind = spec.kind === undefined && cmd === 'del' ? undefined : v.oneOf(op, 'kind', spec.kind, kinds);
      v.knownKeys(op, 'spec', spec, ['kind', 'parent', 'handle', ...(kind && cmd !== 'del' ? qdiscKeys[kind] : [])]);
      if (kind === 'clsact' || kind === 'ingress' || spec.parent === 'ingress' || spec.parent === 'clsact') {
        // Both hang on the ingress hook with handle ffff: (tc qdisc add dev X ingress|clsact).
        a.parent = u.TC_H_INGRESS;
        a.handle = 0xffff0000;
        if (kind && spec.parent !== undefined && spec.parent !== kind) throw v.rangeError(op, 'parent', `a ${kind} qdisc has its own hook; leave parent out`);
      } else {
        a.parent = u.handle(op, 'parent', spec.parent ?? 'root', { root: u.TC_H_ROOT });
        if (spec.handle !== undefined) {
          a.handle = u.handle(op, 'handle', spec.handle);
          if ((a.handle as number) & 0xffff) throw v.rangeError(op, 'handle', `a qdisc handle has no minor (write "${(((a.handle as number) >>> 16)).toString(16)}:")`);
        }
      }
      if (kind) a.kind = kind;
      if (kind && cmd !== 'del') a.options = qdiscOptions(op, spec);
    } else if (object === 'class') {
      const kind = spec.kind === undefined && cmd === 'del' ? undefined : v.oneOf(op, 'kind', spec.kind, ['htb'] as const);
      v.knownKeys(op, 'spec', spec, ['kind', 'parent', 'classid', ...(kind && cmd !== 'del' ? ['rate', 'ceil', 'burst', 'cburst', 'prio', 'quantum', 'mtu'] : [])]);
      if (spec.classid === undefined) throw v.typeError(op, 'classid', 'is required');
      a.classid = u.handle(op, 'classid', spec.classid);
      if (!((a.classid as number) & 0xffff)) throw v.rangeError(op, 'classid', `needs a minor number (e.g. "${((a.classid as number) >>> 16).toString(16)}:10")`);
      if (spec.parent !== undefined) a.parent = u.handle(op, 'parent', spec.parent, { root: u.TC_H_ROOT });
      else if (cmd !== 'del') throw v.typeError(op, 'parent', 'is required');
      if (kind) a.kind = kind;
      if (kind && cmd !== 'del') {
        if (spec.rate === undefined) throw v.typeError(op, 'rate', 'is required for an htb class');
        const o: Record<string, unknown> = { rate: u.rate(op, 'rate', spec.rate) };
        if (spec.ceil !== undefined) o.ceil = u.rate(op, 'ceil', spec.ceil);
        if (o.ceil !== undefined && (o.ceil as number) < (o.rate as number)) throw v.rangeError(op, 'ceil', 'is below rate');
        if (spec.burst !== undefined) o.burst = u.size(op, 'burst', spec.burst, 1);
        if (spec.cburst !== undefined) o.cburst = u.size(op, 'cburst', spec.cburst, 1);
        if (spec.prio !== undefined) o.prio = v.uint(op, 'prio', spec.prio, 0, 7);
        if (spec.quantum !== undefined) o.quantum = u.size(op, 'quantum', spec.quantum, 1);
        if (spec.mtu !== undefined) o.mtu = u.size(op, 'mtu', spec.mtu, 64);
        a.options = o;
      }
    } else {
      const kind = spec.kind === undefined && cmd === 'del' ? undefined : v.oneOf(op, 'kind', spec.kind, ['u32', 'matchall'] as const);
      const common = ['kind', 'parent', 'protocol', 'prio', 'handle'];
      v.knownKeys(op, 'spec', spec, kind && cmd !== 'del' ? [...common, 'flowid', 'actions', ...(kind === 'u32' ? ['match', 'police'] : [])] : common);
      if (spec.parent === undefined) throw v.typeError(op, 'parent', 'is required (e.g. "1:", "ffff:", "ingress")');
      a.parent = filterParent(op, spec.parent);
      if (spec.protocol !== undefined || cmd !== 'del') a.protocol = u.protocol(op, 'protocol', spec.protocol ?? 'all');
      if (spec.prio !== undefined) a.prio = v.uint(op, 'prio', spec.prio, 1, 0xffff);
      if (spec.handle !== undefined) a.handle = typeof spec.handle === 'number' ? v.uint(op, 'handle', spec.handle) : u.handle(op, 'handle', spec.handle);
      if (kind) a.kind = kind;
      if (kind && cmd !== 'del') {
        const o: Record<string, unknown> = {};
        if (spec.flowid !== undefined) o.classid = u.handle(op, 'flowid', spec.flowid);
        if (spec.actions !== undefined) o.actions = actionArgs(op, spec.actions);
        if (kind === 'u32') {
          o.keys = u32Keys(op, spec.match);
          if (spec.police !== undefined) o.police = policeArgs(op, 'police', v.object(op, 'police', spec.police));
        }
        a.options = o;
      }
    }
    return a;
  }

  /** @internal */
  async _modify(object: 'qdisc' | 'class' | 'filter', cmd: Cmd, dev: string, spec: Record<string, any>): Promise<void> {
    const op = `tc.${object}.${cmd}`;
    const a = this._args(object, cmd, op, spec);
    a.dev = v.ifname(op, 'dev', dev);
    a.op = op;
    try {
      await this.h._call(op, a, 'tc.modify');
    } catch (e) {
      throw explainMissingKind(e, object, a.kind as string | undefined, cmd, a.options as Record<string, unknown> | undefined);
    }
  }

  /** @internal */
  async _encode(object: 'qdisc' | 'class' | 'filter', cmd: Cmd, dev: string | number, spec: Record<string, any>): Promise<Buffer> {
    const op = `tc.${object}.encode`;
    v.oneOf(op, 'cmd', cmd, ['add', 'replace', 'change', 'del'] as const);
    const a = this._args(object, cmd, op, spec);
    if (typeof dev === 'number') a.ifindex = v.uint(op, 'dev', dev, 1);
    else a.dev = v.ifname(op, 'dev', dev);
    return Buffer.from(await this.h._call<Uint8Array>(op, a, 'tc.encode'));
  }

  /** @internal */
  async _list(object: 'qdisc' | 'class' | 'filter', dev?: string, parent?: number): Promise<any[]> {
    const op = `tc.${object}.list`;
    const a: Record<string, unknown> = { object, op };
    if (dev !== undefined) a.dev = v.ifname(op, 'dev', dev);
    if (parent !== undefined) a.parent = parent;
    const rows: any[] = await this.h._call(op, a, 'tc.list');
    for (const r of rows) if (typeof r.protocol === 'number') r.protocol = u.protocolName(r.protocol);
    return rows;
  }

  /**
   * Caps a device's bandwidth the way libvirt applies <bandwidth>: egress through an htb root
   * with one default class; ingress with a policer where the kernel has the police action,
   * else by redirecting ingress to an ifb device (`vnlifb<ifindex>`) shaped by its own htb.
   * What it adds carries its own marks (the root htb's handle `bd:`, the ingress filter's
   * prio 189, the ifb's alias naming the link by index and namespace), so `unshape` removes
   * exactly that and nothing another tool added, also after the link was renamed; a root
   * qdisc or ingress hook it did not add is refused (EBUSY), never replaced. An ingress hook
   * it adds is never without its filter, even if the process dies in between.
   * Idempotent: a second call replaces the first.
   *
   * @example
   * await nl.tc.shape('vnet0', { egress: { rate: '50mbit' }, ingress: { rate: '30mbit' } });
   */
  async shape(dev: string, opts: ShapeOptions): Promise<ShapeResult> {
    const op = 'tc.shape';
    v.ifname(op, 'dev', dev);
    v.knownKeys(op, 'options', v.object(op, 'options', opts), ['egress', 'ingress']);
    // Validate everything before the first change.
    const eg = opts.egress === undefined ? undefined : v.object(op, 'egress', opts.egress);
    const ing = opts.ingress === undefined ? undefined : v.object(op, 'ingress', opts.ingress);
    if (eg) {
      v.knownKeys(op, 'egress', eg, ['rate', 'ceil', 'burst']);
      this._args('class', 'add', op, { kind: 'htb', parent: SHAPE_ROOT, classid: SHAPE_CLASS, rate: eg.rate, ceil: eg.ceil, burst: eg.burst });
    }
    if (ing) {
      v.knownKeys(op, 'ingress', ing, ['rate', 'burst']);
      u.rate(op, 'ingress.rate', ing.rate);
      if (ing.burst !== undefined) u.size(op, 'ingress.burst', ing.burst, 1);
    }
    const link = await this.h.link.get(dev);
    const mark = await this.#ifbMark(link.index);
    // Someone else's tree where ours would go is refused before anything changes.
    const state = await this.#shapeState(dev, link.index, mark);
    if (eg && state.foreignRoot) {
      throw stateError(op, 'EBUSY', `${dev} has a root qdisc ${state.foreignRoot} that shape() did not add; remove it first (tc qdisc del dev ${dev} root)`);
    }
    if (ing && state.foreignIngress) {
      throw stateError(op, 'EBUSY', `${dev} has an ${state.foreignIngress} qdisc that shape() did not add; remove it first (tc qdisc del dev ${dev} ${state.foreignIngress})`);
    }
    await this.unshape(dev);
    const result: ShapeResult = {};
    try {
      if (eg) {
        await this.qdisc.replace(dev, { kind: 'htb', parent: 'root', handle: SHAPE_ROOT, defaultClass: 1 });
        await this.class.replace(dev, { kind: 'htb', parent: SHAPE_ROOT, classid: SHAPE_CLASS, rate: eg.rate as Rate, ceil: eg.ceil as Rate | undefined, burst: eg.burst as Size | undefined });
      }
      if (ing) {
        const rate = ing.rate as Rate;
        // libvirt's default: a burst of what the rate carries in 1/10 s, at least 10 MTU-sized frames.
        const burst = (ing.burst as Size | undefined) ?? Math.max(Math.ceil(u.rate(op, 'ingress.rate', rate) / 10), 15140);
        const police: FilterSpec = { kind: 'u32', parent: 'ffff:', protocol: 'all', prio: SHAPE_PRIO, match: [], flowid: ':1',
          police: { rate, burst, mtu: '64kb', exceed: 'drop' } };
        // unshape() above took our own hook away unless others' filters keep it. A hook this
        // call adds goes in one sendmsg with its marked filter (#batch), so no crash can leave
        // it bare; whether the kernel has the police action is asked first the same way, with
        // nothing left behind (hook, filter and, when we added it, the hook's removal again).
        const needHook = !(await this.#shapeState(dev, link.index, mark)).ingressHook;
        const hookAdd = { object: 'qdisc', cmd: 'add', spec: { kind: 'ingress' } } as const;
        const probe = await this.#batch(op, dev, [
          ...(needHook ? [hookAdd] : []),
          { object: 'filter', cmd: 'add', spec: police },
          needHook ? { object: 'qdisc', cmd: 'del', spec: { kind: 'ingress' } } as const : { object: 'filter', cmd: 'del', spec: { parent: 'ffff:', prio: SHAPE_PRIO } } as const,
        ]);
        if (needHook && probe[0]) throw probe[0];
        const policeErr = probe[needHook ? 1 : 0];
        if (!policeErr) {
          const r = await this.#batch(op, dev, [...(needHook ? [hookAdd] : []), { object: 'filter', cmd: 'add', spec: police }]);
          const e = r.find((x) => x);
          if (e) throw e;
          result.ingress = 'police';
        } else {
          if (!(policeErr instanceof NetlinkError) || !['ENOENT', 'EOPNOTSUPP', 'EINVAL'].includes(policeErr.code)) throw policeErr;
          // No police action here: shape what the device receives on an ifb instead. The ifb
          // (its alias is our mark) comes first, the hook and the redirect to it after.
          const ifb = `vnlifb${link.index}`;
          await this.h.link.add({ kind: 'ifb', name: ifb, alias: mark });
          result.ifb = ifb;
          await this.h.link.set(ifb, { up: true });
          await this.qdisc.add(ifb, { kind: 'htb', parent: 'root', handle: '1:', defaultClass: 1 });
          await this.class.add(ifb, { kind: 'htb', parent: '1:', classid: '1:1', rate, burst: ing.burst as Size | undefined });
          const r = await this.#batch(op, dev, [...(needHook ? [hookAdd] : []), { object: 'filter', cmd: 'add', spec: { kind: 'u32', parent: 'ffff:',
            protocol: 'all', prio: SHAPE_PRIO, match: [], actions: [{ kind: 'mirred', egress: true, redirect: true, dev: ifb }] } }]);
          const e = r.find((x) => x);
          if (e) throw e;
          result.ingress = 'ifb';
        }
      }
    } catch (e) {
      await this.unshape(dev).catch(() => {});
      throw e;
    }
    return result;
  }

  /**
   * Sends tc requests for `dev` in one sendmsg (see tc.modifyMany): the kernel runs them all
   * inside that call. Returns each one's error (a NetlinkError), or undefined where it worked.
   */
  async #batch(op: string, dev: string, reqs: readonly { object: 'qdisc' | 'filter'; cmd: Cmd; spec: Record<string, any> }[]): Promise<(NetlinkError | undefined)[]> {
    const requests: Record<string, unknown>[] = reqs.map((r) => ({ ...this._args(r.object, r.cmd, op, r.spec), dev: v.ifname(op, 'dev', dev) }));
    const acks = await this.h._call<{ err: number; extack?: string }[]>(op, { op, requests }, 'tc.modifyMany');
    return acks.map((a, i) => (a.err ? explainMissingKind(new NetlinkError(op, a.err, undefined, a.extack, dev), reqs[i].object,
      reqs[i].spec.kind, reqs[i].cmd, requests[i].options as Record<string, unknown> | undefined) as NetlinkError : undefined));
  }

  /**
   * The alias that marks the ifb shape() made for the link with index `ifindex`: it names the
   * link by its index and its namespace's cookie (or nsfs inode), which a rename does not
   * change and a link of the same name elsewhere does not have.
   */
  async #ifbMark(ifindex: number): Promise<string> {
    const id = await netnsId(this.h);
    return `vnetlink:shape:${id.cookie ?? `${id.dev}-${id.ino}`}:${ifindex}`;
  }

  /**
   * What of the device's tc tree is shape()'s (by its marks) and what is someone else's where
   * shape() would build. A default root qdisc (handle 0:) belongs to nobody. An ingress hook
   * with no filter at all is ours when our ifb for the device is there too: what a shape()
   * that stopped between the two (an older one crashed there) left behind.
   */
  async #shapeState(dev: string, ifindex: number, mark: string): Promise<{ ourRoot: boolean; foreignRoot?: string; ingressHook?: 'ingress' | 'clsact';
    ourFilter: boolean; otherFilters: boolean; ourBareHook: boolean; ourIfb?: string; foreignIngress?: string }> {
    let ourRoot = false;
    let foreignRoot: string | undefined;
    let ingressHook: 'ingress' | 'clsact' | undefined;
    for (const q of await this.qdisc.list(dev)) {
      if (q.parent === 'root' && q.handle !== '0:') {
        if (q.kind === 'htb' && q.handle === SHAPE_ROOT) ourRoot = true;
        else foreignRoot = `${q.kind} ${q.handle}`;
      }
      if (q.kind === 'ingress' || q.kind === 'clsact') ingressHook = q.kind;
    }
    let ourFilter = false;
    let otherFilters = false;
    if (ingressHook) {
      for (const f of await this.filter.list(dev, { parent: 'ffff:' })) {
        if (f.prio === SHAPE_PRIO && f.kind === 'u32') ourFilter = true;
        else otherFilters = true;
      }
    }
    const ifb = `vnlifb${ifindex}`;
    const l = await this.h.link.get(ifb).catch(() => undefined);
    // Only an ifb that shape() made for this link (its alias says so) is ours.
    const ourIfb = l && l.kind === 'ifb' && l.alias === mark ? ifb : undefined;
    const ourBareHook = ingressHook === 'ingress' && !ourFilter && !otherFilters && ourIfb !== undefined;
    // shape() only ever adds an `ingress` hook, and only with its filter in it.
    const foreignIngress = ingressHook && (ingressHook !== 'ingress' || !(ourFilter || ourBareHook)) ? ingressHook : undefined;
    return { ourRoot, foreignRoot, ingressHook, ourFilter, otherFilters, ourBareHook, ourIfb, foreignIngress };
  }

  /**
   * Removes what `shape` added, found by its marks: its root htb, its ingress filter (and the
   * ingress hook, unless someone else's filters hang there too) and the ifb device it made.
   * A tree another tool built is left as it is. Returns whether anything was removed.
   * Equivalent to: `tc qdisc del dev vnet0 root; tc qdisc del dev vnet0 ingress`, for shape()'s own.
   */
  async unshape(dev: string): Promise<boolean> {
    const op = 'tc.unshape';
    v.ifname(op, 'dev', dev);
    const link = await this.h.link.get(dev);
    const st = await this.#shapeState(dev, link.index, await this.#ifbMark(link.index));
    let removed = false;
    if (st.ourRoot) { await this.qdisc.del(dev, { parent: 'root' }); removed = true; }
    if ((st.ourFilter || st.ourBareHook) && st.ingressHook === 'ingress') {
      if (st.otherFilters) await this.filter.del(dev, { parent: 'ffff:', prio: SHAPE_PRIO });
      else await this.qdisc.del(dev, { kind: 'ingress' });
      removed = true;
    }
    if (st.ourIfb) { await this.h.link.del(st.ourIfb); removed = true; }
    return removed;
  }
}

/** shape()'s marks: the root htb's handle and default class, and its ingress filter's prio. */
const SHAPE_ROOT = 'bd:';
const SHAPE_CLASS = 'bd:1';
const SHAPE_PRIO = 189;

// The kernel answers a kind it lacks with ENOENT or EOPNOTSUPP and a terse extack; say which kind.
function explainMissingKind(e: unknown, object: string, kind: string | undefined, cmd: Cmd, options?: Record<string, unknown>): unknown {
  if (!(e instanceof NetlinkError) || cmd === 'del' || !kind) return e;
  if (e.code !== 'ENOENT' && e.code !== 'EOPNOTSUPP') return e;
  const ext = e.extack ?? '';
  const acts = ((options?.actions as { kind: string }[] | undefined) ?? []).map((a) => a.kind);
  let what: string | undefined;
  if (/qdisc kind is unknown|Unknown qdisc/i.test(ext)) what = `qdisc kind ${kind}`;
  else if (/classifier|filter kind/i.test(ext) || /Unknown filter/i.test(ext)) what = `filter kind ${kind}`;
  else if (/action/i.test(ext)) what = `action kind ${acts.join('/') || 'police'}`;
  if (!what) return e;
  const err = new NetlinkError(e.op, e.errno, e.detail, `${what} is not available in this kernel (${ext})`);
  return err;
}
