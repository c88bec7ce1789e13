// nftables over nfnetlink: typed expressions, atomic transactions, listing, and libvirt's
// masquerade rules. Words follow nft (`ip saddr`, `masquerade to :1024-65535`); the native
// side gets kernel numbers and bytes.
import net from 'node:net';
import type { Handle } from './handle.js';
import * as v from './validate.js';

/** nftables address families, as `nft` names them. */
export type NftFamily = 'ip' | 'ip6' | 'inet' | 'arp' | 'bridge' | 'netdev';
const FAMILY: Record<NftFamily, number> = { ip: 2, ip6: 10, inet: 1, arp: 3, bridge: 7, netdev: 5 };
const FAMILY_NAME = new Map(Object.entries(FAMILY).map(([k, n]) => [n, k as NftFamily]));

export type NftHook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';
const HOOK: Record<NftHook, number> = { prerouting: 0, input: 1, forward: 2, output: 3, postrouting: 4 };
const HOOK_NAME = new Map(Object.entries(HOOK).map(([k, n]) => [n, k as NftHook]));

/** Named priorities of `nft` (for ip/ip6/inet). */
const PRIORITY: Record<string, number> = { raw: -300, mangle: -150, dstnat: -100, filter: 0, security: 50, srcnat: 100 };

export type NftPayloadBase = 'll' | 'network' | 'transport' | 'inner';
const BASE: NftPayloadBase[] = ['ll', 'network', 'transport', 'inner'];
export type NftCmpOp = 'eq' | 'neq' | 'lt' | 'lte' | 'gt' | 'gte';
const CMP: NftCmpOp[] = ['eq', 'neq', 'lt', 'lte', 'gt', 'gte'];
/** meta keys (enum nft_meta_keys order). */
const META = ['len', 'protocol', 'priority', 'mark', 'iif', 'oif', 'iifname', 'oifname', 'iiftype', 'oiftype', 'skuid', 'skgid',
  'nftrace', 'rtclassid', 'secmark', 'nfproto', 'l4proto', 'ibrname', 'obrname', 'pkttype', 'cpu', 'iifgroup', 'oifgroup',
  'cgroup', 'random', 'secpath', 'iifkind', 'oifkind', 'ibrpvid', 'ibrvproto', 'time', 'day', 'hour', 'sdif', 'sdifname'] as const;
export type NftMetaKey = (typeof META)[number];
/** ct keys (enum nft_ct_keys order). */
const CT = ['state', 'direction', 'status', 'mark', 'secmark', 'expiration', 'helper', 'l3protocol', 'saddr', 'daddr',
  'protocol', 'proto-src', 'proto-dst', 'label', 'pkts', 'bytes', 'avgpkt', 'zone', 'event', 'ip saddr', 'ip daddr',
  'ip6 saddr', 'ip6 daddr', 'id'] as const;
export type NftCtKey = (typeof CT)[number];
export type NftVerdict = 'accept' | 'drop' | 'continue' | 'break' | 'jump' | 'goto' | 'return';
const VERDICT: Record<NftVerdict, number> = { drop: 0, accept: 1, continue: -1, break: -2, jump: -3, goto: -4, return: -5 };
const VERDICT_NAME = new Map(Object.entries(VERDICT).map(([k, n]) => [n, k as NftVerdict]));
export type NftNatFlag = 'map-ips' | 'proto-specified' | 'random' | 'persistent' | 'fully-random';
const NAT_FLAG: Record<NftNatFlag, number> = { 'map-ips': 1, 'proto-specified': 2, random: 4, persistent: 8, 'fully-random': 16 };
export type NftFibResult = 'oif' | 'oifname' | 'type';
const FIB_RESULT: Record<NftFibResult, number> = { oif: 1, oifname: 2, type: 3 };
export type NftFibFlag = 'saddr' | 'daddr' | 'mark' | 'iif' | 'oif';
const FIB_FLAG: Record<NftFibFlag, number> = { saddr: 1, daddr: 2, mark: 4, iif: 8, oif: 16 };
export type NftRejectType = 'icmp' | 'tcp reset' | 'icmpx';
const REJECT: NftRejectType[] = ['icmp', 'tcp reset', 'icmpx'];
/** ct state bits (`ct state established,related`). */
const CT_STATE = { invalid: 1, established: 2, related: 4, new: 8, untracked: 64 } as const;
export type NftCtState = keyof typeof CT_STATE;

/** Bytes given as a Buffer/Uint8Array or a hex string ('c0a87a'); listed back as hex. */
export type NftData = string | Uint8Array;

/**
 * One nftables expression, the unit a rule is made of (what `nft --debug=netlink` prints
 * per line). Registers: 0 is the verdict register, 1–4 the 16-byte data registers.
 */
export type NftExpr =
  | { type: 'payload'; base: NftPayloadBase; offset: number; len: number; dreg?: number }
  | { type: 'cmp'; op: NftCmpOp; data: NftData; sreg?: number }
  | { type: 'bitwise'; len: number; mask: NftData; xor: NftData; sreg?: number; dreg?: number }
  | { type: 'meta'; key: NftMetaKey; dreg?: number }
  | { type: 'ct'; key: NftCtKey; dreg?: number; direction?: 'original' | 'reply' }
  | { type: 'immediate'; data: NftData; dreg: number }
  | { type: 'immediate'; verdict: NftVerdict; chain?: string }
  | { type: 'masq'; flags?: NftNatFlag[]; protoMin?: number; protoMax?: number }
  | { type: 'nat'; nat: 'snat' | 'dnat'; family: 'ip' | 'ip6'; addrMin?: number; addrMax?: number; protoMin?: number; protoMax?: number; flags?: NftNatFlag[] }
  | { type: 'counter'; packets?: number; bytes?: number }
  | { type: 'reject'; with: NftRejectType; code?: number }
  /** A route lookup (`fib daddr type`: the address type, e.g. local, loaded into `dreg`). */
  | { type: 'fib'; result: NftFibResult; flags: NftFibFlag[]; dreg?: number };

/** An expression as listed: data as hex, and unknown expressions with their raw attributes. */
export type NftListedExpr = NftExpr | { type: string; raw: string };

export interface NftTable { family: NftFamily; name: string; handle: number; flags: string[]; use?: number }
export interface NftChain {
  family: NftFamily; table: string; name: string; handle: number;
  type?: string; hook?: NftHook; priority?: number; policy?: 'accept' | 'drop'; use?: number;
}
export interface NftRule { family: NftFamily; table: string; chain: string; handle: number; exprs: NftListedExpr[]; comment?: string }

// ---- expression helpers ---------------------------------------------------------------

function ipBytes(address: string): Buffer {
  if (net.isIPv4(address)) return Buffer.from(address.split('.').map(Number));
  // IPv6: a dotted IPv4 tail becomes two groups; expand '::' then pack 8 groups.
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  if (dotted) {
    const q = dotted[2].split('.').map(Number);
    address = `${dotted[1]}${((q[0] << 8) | q[1]).toString(16)}:${((q[2] << 8) | q[3]).toString(16)}`;
  }
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16), i * 2));
  return b;
}

/** The 16-byte IFNAMSIZ buffer meta iifname/oifname compare with; the name is checked like any ifname. */
function ifnameBytes(op: string, name: unknown): Buffer {
  const b = Buffer.alloc(16);
  b.write(v.ifname(op, 'name', name), 'utf8');
  return b;
}

const be16 = (n: number) => { const b = Buffer.alloc(2); b.writeUInt16BE(n); return b; };
const cmpEqNeq = (op: string, x: unknown) => v.oneOf(op, 'op', x, ['eq', 'neq'] as const);
/** A port as nft takes it (1–65535 where 0 means nothing, as in a NAT target). */
const port = (op: string, field: string, x: unknown, min = 0) => v.uint(op, field, x, min, 65535);

/**
 * Builders for common matches and statements, producing the same expressions `nft` emits.
 *
 * @example
 * const { match, stmt } = nftExpr;
 * tx.addRule({ family: 'ip', table: 't', chain: 'c',
 *   exprs: [...match.addr('ip', 'saddr', '192.168.122.0/24'), ...match.l4proto('tcp'), stmt.counter(), ...stmt.masquerade({ ports: [1024, 65535] })] });
 */
export const nftExpr = {
  match: {
    /** `ip saddr 192.168.122.0/24` (or daddr, ip6, `!=` with op 'neq'). */
    addr(family: 'ip' | 'ip6', field: 'saddr' | 'daddr', cidr: string, op: 'eq' | 'neq' = 'eq'): NftExpr[] {
      const o = 'nftExpr.match.addr';
      v.oneOf(o, 'family', family, ['ip', 'ip6'] as const);
      v.oneOf(o, 'field', field, ['saddr', 'daddr'] as const);
      cmpEqNeq(o, op);
      const c = v.cidr(o, 'cidr', cidr, false);
      const v6 = c.family === 'inet6';
      if (v6 !== (family === 'ip6')) throw v.rangeError('nftExpr.match.addr', 'cidr', `is not an ${family} address`);
      const offset = v6 ? (field === 'saddr' ? 8 : 24) : (field === 'saddr' ? 12 : 16);
      const full = ipBytes(c.address);
      const bytes = Math.ceil(c.prefixLen / 8);
      // /0 matches every address: `eq` needs no expression, but `!= x/0` could never match and
      // an empty list would silently match everything, so refuse it.
      if (c.prefixLen === 0 && op === 'neq') throw v.rangeError('nftExpr.match.addr', 'cidr', 'a /0 prefix with op \'neq\' can never match');
      if (c.prefixLen === 0) return [];
      if (c.prefixLen % 8 === 0) {
        return [{ type: 'payload', base: 'network', offset, len: bytes, dreg: 1 }, { type: 'cmp', op, data: full.subarray(0, bytes), sreg: 1 }];
      }
      // Not byte aligned: like nft, load the whole address, mask it, compare the network.
      const mask = Buffer.alloc(full.length);
      for (let i = 0; i < c.prefixLen; i++) mask[i >> 3] |= 0x80 >> (i & 7);
      const netb = Buffer.from(full.map((x, i) => x & mask[i]));
      return [
        { type: 'payload', base: 'network', offset, len: full.length, dreg: 1 },
        { type: 'bitwise', len: full.length, mask, xor: Buffer.alloc(full.length), sreg: 1, dreg: 1 },
        { type: 'cmp', op, data: netb, sreg: 1 },
      ];
    },
    /** `meta l4proto tcp`. */
    l4proto(proto: 'tcp' | 'udp' | 'icmp' | 'icmpv6' | number): NftExpr[] {
      const names = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58 } as const;
      const n = typeof proto === 'number'
        ? v.uint('nftExpr.match.l4proto', 'proto', proto, 0, 255)
        : names[v.oneOf('nftExpr.match.l4proto', 'proto', proto, Object.keys(names) as (keyof typeof names)[])];
      return [{ type: 'meta', key: 'l4proto', dreg: 1 }, { type: 'cmp', op: 'eq', data: Buffer.from([n]), sreg: 1 }];
    },
    /** `meta nfproto ipv4` (needed before address matches in an inet table). */
    nfproto(p: 'ipv4' | 'ipv6'): NftExpr[] {
      v.oneOf('nftExpr.match.nfproto', 'proto', p, ['ipv4', 'ipv6'] as const);
      return [{ type: 'meta', key: 'nfproto', dreg: 1 }, { type: 'cmp', op: 'eq', data: Buffer.from([p === 'ipv4' ? 2 : 10]), sreg: 1 }];
    },
    /** `th dport 8080` (after an l4proto match): the transport header's destination port. */
    dport(p: number): NftExpr[] {
      port('nftExpr.match.dport', 'port', p);
      return [{ type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 1 }, { type: 'cmp', op: 'eq', data: be16(p), sreg: 1 }];
    },
    /** `th sport 53` (after an l4proto match): the transport header's source port. */
    sport(p: number): NftExpr[] {
      port('nftExpr.match.sport', 'port', p);
      return [{ type: 'payload', base: 'transport', offset: 0, len: 2, dreg: 1 }, { type: 'cmp', op: 'eq', data: be16(p), sreg: 1 }];
    },
    /** `iifname "virbr0"`. */
    iifname(name: string, op: 'eq' | 'neq' = 'eq'): NftExpr[] {
      const data = ifnameBytes('nftExpr.match.iifname', name);
      return [{ type: 'meta', key: 'iifname', dreg: 1 }, { type: 'cmp', op: cmpEqNeq('nftExpr.match.iifname', op), data, sreg: 1 }];
    },
    /** `oifname "virbr0"`. */
    oifname(name: string, op: 'eq' | 'neq' = 'eq'): NftExpr[] {
      const data = ifnameBytes('nftExpr.match.oifname', name);
      return [{ type: 'meta', key: 'oifname', dreg: 1 }, { type: 'cmp', op: cmpEqNeq('nftExpr.match.oifname', op), data, sreg: 1 }];
    },
    /** `ct state established,related`. */
    ctState(states: NftCtState[]): NftExpr[] {
      const o = 'nftExpr.match.ctState';
      if (!Array.isArray(states) || states.length === 0) throw v.typeError(o, 'states', `must be a non-empty array of ${Object.keys(CT_STATE).join(', ')}`);
      // An unknown word would add no bit: a mask of 0 never matches.
      const bits = states.reduce((a: number, s, i) => a | CT_STATE[v.oneOf(o, `states[${i}]`, s, Object.keys(CT_STATE) as NftCtState[])], 0);
      const le = Buffer.alloc(4); le.writeUInt32LE(bits);  // ct state is host-endian
      return [
        { type: 'ct', key: 'state', dreg: 1 },
        { type: 'bitwise', len: 4, mask: le, xor: Buffer.alloc(4), sreg: 1, dreg: 1 },
        { type: 'cmp', op: 'neq', data: Buffer.alloc(4), sreg: 1 },
      ];
    },
  },
  stmt: {
    counter(): NftExpr { return { type: 'counter' }; },
    accept(): NftExpr { return { type: 'immediate', verdict: 'accept' }; },
    drop(): NftExpr { return { type: 'immediate', verdict: 'drop' }; },
    return(): NftExpr { return { type: 'immediate', verdict: 'return' }; },
    jump(chain: string): NftExpr { return { type: 'immediate', verdict: 'jump', chain: objName('nftExpr.stmt.jump', 'chain', chain) }; },
    /** `reject` (ICMP port unreachable for ip, icmpx for inet, like nft's default). */
    reject(family: 'ip' | 'ip6' | 'inet' = 'ip'): NftExpr {
      v.oneOf('nftExpr.stmt.reject', 'family', family, ['ip', 'ip6', 'inet'] as const);
      return family === 'inet' ? { type: 'reject', with: 'icmpx', code: 1 } : { type: 'reject', with: 'icmp', code: family === 'ip6' ? 4 : 3 };
    },
    /** `masquerade [to :MIN-MAX] [random|fully-random|persistent]`. */
    masquerade(o: { ports?: [number, number]; random?: boolean; fullyRandom?: boolean; persistent?: boolean } = {}): NftExpr[] {
      const op = 'nftExpr.stmt.masquerade';
      v.knownKeys(op, 'options', v.object(op, 'options', o), ['ports', 'random', 'fullyRandom', 'persistent']);
      if (o.ports !== undefined) {
        if (!Array.isArray(o.ports) || o.ports.length !== 2) throw v.typeError(op, 'ports', 'must be [min, max]');
        const lo = port(op, 'ports[0]', o.ports[0], 1), hi = port(op, 'ports[1]', o.ports[1], 1);
        if (lo > hi) throw v.rangeError(op, 'ports', `min ${lo} is above max ${hi}`);
      }
      for (const k of ['random', 'fullyRandom', 'persistent'] as const) if (o[k] !== undefined) v.bool(op, k, o[k]);
      const flags: NftNatFlag[] = [];
      const out: NftExpr[] = [];
      if (o.ports) {
        out.push({ type: 'immediate', data: be16(o.ports[0]), dreg: 1 }, { type: 'immediate', data: be16(o.ports[1]), dreg: 2 });
        flags.push('proto-specified');  // without it the kernel ignores the port range
      }
      if (o.random) flags.push('random');
      if (o.fullyRandom) flags.push('fully-random');
      if (o.persistent) flags.push('persistent');
      const m: NftExpr = { type: 'masq' };
      if (flags.length) m.flags = flags;
      if (o.ports) { m.protoMin = 1; m.protoMax = 2; }
      out.push(m);
      return out;
    },
    /** `dnat to ADDR[:PORT]` (family 'ip' or 'ip6'). */
    dnat(family: 'ip' | 'ip6', address: string, toPort?: number): NftExpr[] {
      const op = 'nftExpr.stmt.dnat';
      v.oneOf(op, 'family', family, ['ip', 'ip6'] as const);
      const a = v.ip(op, 'address', address);
      // An IPv6 address in an ip rule would load 16 bytes where the kernel reads 4.
      if ((a.family === 'inet6') !== (family === 'ip6')) throw v.rangeError(op, 'address', `${address} is not an ${family === 'ip' ? 'IPv4' : 'IPv6'} address (family ${family})`);
      if (toPort !== undefined) port(op, 'port', toPort, 1);
      // The registers and flags nft sends for `dnat to ADDR:PORT` (the kernel fills in the
      // max registers and map-ips itself, which is what a listing shows).
      const out: NftExpr[] = [{ type: 'immediate', data: ipBytes(a.address), dreg: 1 }];
      const n: NftExpr = { type: 'nat', nat: 'dnat', family, addrMin: 1 };
      if (toPort !== undefined) {
        out.push({ type: 'immediate', data: be16(toPort), dreg: 2 });
        n.protoMin = 2;
        n.flags = ['proto-specified'];
      }
      out.push(n);
      return out;
    },
  },
};

// ---- normalization to the native shapes ------------------------------------------------

function dataBytes(op: string, field: string, d: unknown): Buffer {
  let b: Buffer;
  if (typeof d === 'string') {
    const s = d.startsWith('0x') ? d.slice(2) : d;
    if (!/^([0-9a-fA-F]{2})+$/.test(s)) throw v.typeError(op, field, `must be bytes or a hex string (got ${JSON.stringify(d)})`);
    b = Buffer.from(s, 'hex');
  } else if (d instanceof Uint8Array) {
    b = Buffer.from(d);
  } else {
    throw v.typeError(op, field, 'must be a Buffer, a Uint8Array or a hex string');
  }
  if (b.length < 1 || b.length > 64) throw v.rangeError(op, field, `must be 1-64 bytes (got ${b.length})`);
  return b;
}

const reg = (op: string, f: string, x: unknown, dflt: number) => (x === undefined ? dflt : v.uint(op, f, x, 0, 31));
const natFlags = (op: string, f: string, x: unknown) => {
  if (!Array.isArray(x)) throw v.typeError(op, f, 'must be an array of NAT flags');
  return x.reduce((a: number, w, i) => a | NAT_FLAG[v.oneOf(op, `${f}[${i}]`, w, Object.keys(NAT_FLAG) as NftNatFlag[])], 0);
};

function normExpr(op: string, f: string, e: unknown): Record<string, unknown> {
  const x = v.object(op, f, e);
  const type = v.str(op, `${f}.type`, x.type, 32);
  const keys = (k: string[]) => v.knownKeys(op, f, x, ['type', ...k]);
  switch (type) {
    case 'payload':
      keys(['base', 'offset', 'len', 'dreg']);
      return { name: 'payload', dreg: reg(op, `${f}.dreg`, x.dreg, 1), base: BASE.indexOf(v.oneOf(op, `${f}.base`, x.base, BASE)),
        offset: v.uint(op, `${f}.offset`, x.offset, 0, 0xffff), len: v.uint(op, `${f}.len`, x.len, 1, 64) };
    case 'cmp':
      keys(['op', 'data', 'sreg']);
      return { name: 'cmp', sreg: reg(op, `${f}.sreg`, x.sreg, 1), op: CMP.indexOf(v.oneOf(op, `${f}.op`, x.op, CMP)), data: dataBytes(op, `${f}.data`, x.data) };
    case 'bitwise': {
      keys(['len', 'mask', 'xor', 'sreg', 'dreg']);
      const len = v.uint(op, `${f}.len`, x.len, 1, 64);
      const mask = dataBytes(op, `${f}.mask`, x.mask), xor = dataBytes(op, `${f}.xor`, x.xor);
      if (mask.length !== len || xor.length !== len) throw v.rangeError(op, f, `mask and xor must be ${len} bytes long`);
      return { name: 'bitwise', sreg: reg(op, `${f}.sreg`, x.sreg, 1), dreg: reg(op, `${f}.dreg`, x.dreg, 1), len, mask, xor };
    }
    case 'meta':
      keys(['key', 'dreg']);
      return { name: 'meta', key: META.indexOf(v.oneOf(op, `${f}.key`, x.key, META)), dreg: reg(op, `${f}.dreg`, x.dreg, 1) };
    case 'ct': {
      keys(['key', 'dreg', 'direction']);
      const o: Record<string, unknown> = { name: 'ct', key: CT.indexOf(v.oneOf(op, `${f}.key`, x.key, CT)), dreg: reg(op, `${f}.dreg`, x.dreg, 1) };
      if (x.direction !== undefined) o.direction = v.oneOf(op, `${f}.direction`, x.direction, ['original', 'reply']) === 'original' ? 0 : 1;
      return o;
    }
    case 'immediate':
      if (x.verdict !== undefined) {
        keys(['verdict', 'chain']);
        const verdict = v.oneOf(op, `${f}.verdict`, x.verdict, Object.keys(VERDICT) as NftVerdict[]);
        const o: Record<string, unknown> = { name: 'immediate', dreg: 0, verdict: VERDICT[verdict] };
        if (verdict === 'jump' || verdict === 'goto') o.chain = objName(op, `${f}.chain`, x.chain);
        else if (x.chain !== undefined) throw v.rangeError(op, `${f}.chain`, 'only jump and goto take a chain');
        return o;
      }
      keys(['data', 'dreg']);
      return { name: 'immediate', dreg: v.uint(op, `${f}.dreg`, x.dreg, 1, 31), data: dataBytes(op, `${f}.data`, x.data) };
    case 'masq': {
      keys(['flags', 'protoMin', 'protoMax']);
      const o: Record<string, unknown> = { name: 'masq' };
      if (x.flags !== undefined) o.flags = natFlags(op, `${f}.flags`, x.flags);
      if (x.protoMin !== undefined) o.protoMin = v.uint(op, `${f}.protoMin`, x.protoMin, 1, 31);
      if (x.protoMax !== undefined) o.protoMax = v.uint(op, `${f}.protoMax`, x.protoMax, 1, 31);
      return o;
    }
    case 'nat': {
      keys(['nat', 'family', 'addrMin', 'addrMax', 'protoMin', 'protoMax', 'flags']);
      const o: Record<string, unknown> = { name: 'nat', type: v.oneOf(op, `${f}.nat`, x.nat, ['snat', 'dnat']) === 'snat' ? 0 : 1,
        family: FAMILY[v.oneOf(op, `${f}.family`, x.family, ['ip', 'ip6'] as const)] };
      for (const k of ['addrMin', 'addrMax', 'protoMin', 'protoMax'] as const)
        if (x[k] !== undefined) o[k] = v.uint(op, `${f}.${k}`, x[k], 1, 31);
      if (x.flags !== undefined) o.flags = natFlags(op, `${f}.flags`, x.flags);
      return o;
    }
    case 'counter': {
      keys(['packets', 'bytes']);
      const o: Record<string, unknown> = { name: 'counter' };
      if (x.packets !== undefined) o.packets = v.uint(op, `${f}.packets`, x.packets, 0, Number.MAX_SAFE_INTEGER);
      if (x.bytes !== undefined) o.bytes = v.uint(op, `${f}.bytes`, x.bytes, 0, Number.MAX_SAFE_INTEGER);
      return o;
    }
    case 'fib': {
      keys(['result', 'flags', 'dreg']);
      if (!Array.isArray(x.flags) || !x.flags.length) throw v.typeError(op, `${f}.flags`, 'must be a non-empty array of fib flags');
      const flags = x.flags.reduce((a: number, w, i) => a | FIB_FLAG[v.oneOf(op, `${f}.flags[${i}]`, w, Object.keys(FIB_FLAG) as NftFibFlag[])], 0);
      return { name: 'fib', result: FIB_RESULT[v.oneOf(op, `${f}.result`, x.result, Object.keys(FIB_RESULT) as NftFibResult[])], flags, dreg: reg(op, `${f}.dreg`, x.dreg, 1) };
    }
    case 'reject': {
      keys(['with', 'code']);
      const o: Record<string, unknown> = { name: 'reject', type: REJECT.indexOf(v.oneOf(op, `${f}.with`, x.with, REJECT)) };
      if (x.code !== undefined) o.code = v.uint(op, `${f}.code`, x.code, 0, 255);
      return o;
    }
    default:
      throw v.rangeError(op, `${f}.type`, `unknown expression ${JSON.stringify(type)} (known: payload, cmp, bitwise, meta, ct, immediate, masq, nat, counter, reject)`);
  }
}

const hex = (b: unknown) => (Buffer.isBuffer(b) ? b.toString('hex') : undefined);

function listedExpr(n: any): NftListedExpr {
  const name: string = n.name;
  const strip = (o: Record<string, unknown>) => { for (const k of Object.keys(o)) if (o[k] === undefined) delete o[k]; return o as any; };
  switch (name) {
    case 'payload': return strip({ type: 'payload', base: BASE[n.base] ?? n.base, offset: n.offset, len: n.len, dreg: n.dreg });
    case 'cmp': return strip({ type: 'cmp', op: CMP[n.op] ?? n.op, data: hex(n.data), sreg: n.sreg });
    case 'bitwise': return strip({ type: 'bitwise', len: n.len, mask: hex(n.mask), xor: hex(n.xor), sreg: n.sreg, dreg: n.dreg });
    case 'meta': return strip({ type: 'meta', key: META[n.key] ?? n.key, dreg: n.dreg });
    case 'ct': return strip({ type: 'ct', key: CT[n.key] ?? n.key, dreg: n.dreg, direction: n.direction === undefined ? undefined : n.direction ? 'reply' : 'original' });
    case 'immediate':
      if (n.verdict !== undefined) return strip({ type: 'immediate', verdict: VERDICT_NAME.get(n.verdict) ?? n.verdict, chain: n.chain });
      return strip({ type: 'immediate', data: hex(n.data), dreg: n.dreg });
    case 'masq': case 'nat': {
      const flags = n.flags === undefined ? undefined : (Object.keys(NAT_FLAG) as NftNatFlag[]).filter((k) => n.flags & NAT_FLAG[k]);
      if (name === 'masq') return strip({ type: 'masq', flags, protoMin: n.protoMin, protoMax: n.protoMax });
      return strip({ type: 'nat', nat: n.type === 0 ? 'snat' : 'dnat', family: FAMILY_NAME.get(n.family) ?? n.family,
        addrMin: n.addrMin, addrMax: n.addrMax, protoMin: n.protoMin, protoMax: n.protoMax, flags });
    }
    case 'counter': return strip({ type: 'counter', packets: n.packets, bytes: n.bytes });
    case 'reject': return strip({ type: 'reject', with: REJECT[n.type] ?? n.type, code: n.code });
    case 'fib': return strip({ type: 'fib', result: (Object.keys(FIB_RESULT) as NftFibResult[]).find((k) => FIB_RESULT[k] === n.result) ?? n.result,
      flags: (Object.keys(FIB_FLAG) as NftFibFlag[]).filter((k) => n.flags & FIB_FLAG[k]), dreg: n.dreg });
    default: return { type: name, raw: hex(n.raw) ?? '' };
  }
}

function listedRule(r: any): NftRule {
  const out: NftRule = { family: FAMILY_NAME.get(r.family) ?? (r.family as any), table: r.table, chain: r.chain, handle: r.handle, exprs: r.exprs.map(listedExpr) };
  if (r.comment !== undefined) out.comment = r.comment;
  return out;
}

function listedChain(c: any): NftChain {
  const out: NftChain = { family: FAMILY_NAME.get(c.family) ?? (c.family as any), table: c.table, name: c.name, handle: c.handle };
  if (c.type !== undefined) out.type = c.type;
  if (c.hook !== undefined) out.hook = HOOK_NAME.get(c.hook) ?? c.hook;
  if (c.priority !== undefined) out.priority = c.priority;
  if (c.policy !== undefined) out.policy = c.policy === 0 ? 'drop' : 'accept';
  if (c.use !== undefined) out.use = c.use;
  return out;
}

/**
 * A rule comment as nft's grammar takes it: one quoted string of at most 127 bytes (the kernel's
 * 128 with its NUL). A `"` would end the string in `nft list ruleset` output, so `nft -f` of
 * that listing would read the rest as more of the rule (`a"; drop; #`); a backslash and control
 * characters do not survive the round trip either.
 */
function comment(op: string, f: string, x: unknown): string {
  const s = v.str(op, f, x, 127);
  const bad = /["\\\x00-\x1f\x7f]/.exec(s);
  if (bad) throw v.rangeError(op, f, `must not contain quotes, backslashes or control characters (got ${JSON.stringify(bad[0])} in ${JSON.stringify(s)})`);
  return s;
}

const family = (op: string, f: string, x: unknown) => FAMILY[v.oneOf(op, f, x, Object.keys(FAMILY) as NftFamily[])];
/** Table and chain names: what nft accepts without quoting trouble (letters, digits, _ - .). */
function objName(op: string, f: string, x: unknown): string {
  const s = v.str(op, f, x, 255);
  if (!/^[A-Za-z_][A-Za-z0-9_.\-]*$/.test(s)) throw v.rangeError(op, f, `must be letters, digits, "_", "-" or "." starting with a letter or "_" (got ${JSON.stringify(s)})`);
  return s;
}

// ---- transactions ------------------------------------------------------------------

export interface NftChainSpec {
  family: NftFamily; table: string; name: string;
  /** Base chains: type, hook and priority (`type nat hook postrouting priority srcnat`). */
  type?: 'filter' | 'nat' | 'route';
  hook?: NftHook;
  priority?: number | 'raw' | 'mangle' | 'dstnat' | 'filter' | 'security' | 'srcnat';
  policy?: 'accept' | 'drop';
}

export interface NftRuleSpec {
  family: NftFamily; table: string; chain: string;
  exprs: NftExpr[];
  /** A comment stored in the rule's userdata, as `nft add rule ... comment "..."` does. */
  comment?: string;
  /** Insert at the top of the chain (`nft insert rule`) instead of appending. */
  insert?: boolean;
  /** Place after (or, with insert, before) the rule with this handle. */
  position?: number;
}

/** What an echoing commit returns for each object it created. */
export interface NftCreated { kind: 'table' | 'chain' | 'rule'; family: NftFamily; table?: string; chain?: string; name?: string; handle: number }

/**
 * A set of changes applied as one atomic nftables transaction (NFNL_MSG_BATCH_BEGIN … END):
 * either all of them take effect or none, and the first error is reported.
 *
 * @example
 * await nl.nft.transaction()
 *   .addTable({ family: 'ip', name: 'filter' })
 *   .addChain({ family: 'ip', table: 'filter', name: 'fwd', type: 'filter', hook: 'forward', priority: 0 })
 *   .addRule({ family: 'ip', table: 'filter', chain: 'fwd', exprs: [...nftExpr.match.iifname('virbr0'), nftExpr.stmt.counter(), nftExpr.stmt.accept()] })
 *   .commit();
 */
export class NftTransaction {
  readonly #h: Handle;
  readonly #op: string;
  readonly #cmds: Record<string, unknown>[] = [];

  /** @internal use `nl.nft.transaction()`; `op` names the public operation in errors. */
  constructor(h: Handle, op = 'nft.commit') { this.#h = h; this.#op = op; }

  get size(): number { return this.#cmds.length; }

  #f(i = this.#cmds.length): string { return `cmds[${i}]`; }

  /** `nft add table FAMILY NAME` (no error when it exists; `excl` makes it one). */
  addTable(t: { family: NftFamily; name: string; dormant?: boolean; excl?: boolean }): this {
    const op = this.#op, f = this.#f();
    v.knownKeys(op, f, v.object(op, f, t), ['family', 'name', 'dormant', 'excl']);
    const c: Record<string, unknown> = { cmd: 'addTable', family: family(op, `${f}.family`, t.family), name: objName(op, `${f}.name`, t.name) };
    if (t.dormant !== undefined) c.flags = v.bool(op, `${f}.dormant`, t.dormant) ? 1 : 0;
    if (t.excl !== undefined) c.excl = v.bool(op, `${f}.excl`, t.excl);
    this.#cmds.push(c);
    return this;
  }

  /** `nft delete table FAMILY NAME`. */
  delTable(t: { family: NftFamily; name: string }): this {
    const op = this.#op, f = this.#f();
    v.knownKeys(op, f, v.object(op, f, t), ['family', 'name']);
    this.#cmds.push({ cmd: 'delTable', family: family(op, `${f}.family`, t.family), name: objName(op, `${f}.name`, t.name) });
    return this;
  }

  /** `nft add chain FAMILY TABLE NAME { type T hook H priority P; policy X; }`. */
  addChain(c: NftChainSpec & { excl?: boolean }): this {
    const op = this.#op, f = this.#f();
    v.knownKeys(op, f, v.object(op, f, c), ['family', 'table', 'name', 'type', 'hook', 'priority', 'policy', 'excl']);
    const out: Record<string, unknown> = { cmd: 'addChain', family: family(op, `${f}.family`, c.family), table: objName(op, `${f}.table`, c.table), name: objName(op, `${f}.name`, c.name) };
    if (c.hook !== undefined) {
      out.hook = HOOK[v.oneOf(op, `${f}.hook`, c.hook, Object.keys(HOOK) as NftHook[])];
      out.type = v.oneOf(op, `${f}.type`, c.type ?? 'filter', ['filter', 'nat', 'route']);
      const p = c.priority ?? 0;
      out.priority = typeof p === 'string' ? PRIORITY[v.oneOf(op, `${f}.priority`, p, Object.keys(PRIORITY))] : v.num(op, `${f}.priority`, p, -0x80000000, 0x7fffffff);
      if (!Number.isInteger(out.priority)) throw v.typeError(op, `${f}.priority`, 'must be an integer');
      out.policy = v.oneOf(op, `${f}.policy`, c.policy ?? 'accept', ['accept', 'drop']) === 'accept' ? 1 : 0;
    } else if (c.type !== undefined || c.priority !== undefined || c.policy !== undefined) {
      throw v.typeError(op, `${f}.hook`, 'is required for a base chain (type, priority and policy need a hook)');
    }
    if (c.excl !== undefined) out.excl = v.bool(op, `${f}.excl`, c.excl);
    this.#cmds.push(out);
    return this;
  }

  /** `nft delete chain FAMILY TABLE NAME`. */
  delChain(c: { family: NftFamily; table: string; name: string }): this {
    const op = this.#op, f = this.#f();
    v.knownKeys(op, f, v.object(op, f, c), ['family', 'table', 'name']);
    this.#cmds.push({ cmd: 'delChain', family: family(op, `${f}.family`, c.family), table: objName(op, `${f}.table`, c.table), name: objName(op, `${f}.name`, c.name) });
    return this;
  }

  /** `nft flush chain FAMILY TABLE CHAIN`, or `nft flush table FAMILY TABLE` without a chain. */
  flush(c: { family: NftFamily; table: string; chain?: string }): this {
    const op = this.#op, f = this.#f();
    v.knownKeys(op, f, v.object(op, f, c), ['family', 'table', 'chain']);
    const out: Record<string, unknown> = { cmd: c.chain === undefined ? 'flushTable' : 'flushChain', family: family(op, `${f}.family`, c.family), table: objName(op, `${f}.table`, c.table) };
    if (c.chain !== undefined) out.chain = objName(op, `${f}.chain`, c.chain);
    this.#cmds.push(out);
    return this;
  }

  /** `nft add rule FAMILY TABLE CHAIN <exprs> [comment "..."]` (or `insert rule`). */
  addRule(r: NftRuleSpec): this {
    const op = this.#op, f = this.#f();
    v.knownKeys(op, f, v.object(op, f, r), ['family', 'table', 'chain', 'exprs', 'comment', 'insert', 'position']);
    if (!Array.isArray(r.exprs) || r.exprs.length === 0) throw v.typeError(op, `${f}.exprs`, 'must be a non-empty array of expressions');
    const out: Record<string, unknown> = { cmd: 'addRule', family: family(op, `${f}.family`, r.family), table: objName(op, `${f}.table`, r.table),
      chain: objName(op, `${f}.chain`, r.chain), exprs: r.exprs.map((e, i) => normExpr(op, `${f}.exprs[${i}]`, e)) };
    if (r.comment !== undefined) out.comment = comment(op, `${f}.comment`, r.comment);
    if (r.insert !== undefined) out.insert = v.bool(op, `${f}.insert`, r.insert);
    if (r.position !== undefined) out.position = v.uint(op, `${f}.position`, r.position, 1, Number.MAX_SAFE_INTEGER);
    this.#cmds.push(out);
    return this;
  }

  /** `nft delete rule FAMILY TABLE CHAIN handle N`. */
  delRule(r: { family: NftFamily; table: string; chain: string; handle: number }): this {
    const op = this.#op, f = this.#f();
    v.knownKeys(op, f, v.object(op, f, r), ['family', 'table', 'chain', 'handle']);
    this.#cmds.push({ cmd: 'delRule', family: family(op, `${f}.family`, r.family), table: objName(op, `${f}.table`, r.table),
      chain: objName(op, `${f}.chain`, r.chain), handle: v.uint(op, `${f}.handle`, r.handle, 1, Number.MAX_SAFE_INTEGER) });
    return this;
  }

  /**
   * Applies everything as one batch. With `echo`, returns what the kernel created (rules
   * with their handles), like `nft --echo --handle`.
   */
  async commit(opts: { echo?: boolean } = {}): Promise<NftCreated[]> {
    const op = this.#op;
    v.knownKeys(op, 'options', v.object(op, 'options', opts), ['echo']);
    if (this.#cmds.length === 0) return [];
    const echo = opts.echo === undefined ? false : v.bool(op, 'echo', opts.echo);
    const r = await this.#h._call<{ created: any[] }>(op, { cmds: this.#cmds, echo }, 'nft.commit');
    return r.created.map((c) => {
      const out: any = { kind: c.kind, family: FAMILY_NAME.get(c.family) ?? c.family, handle: c.handle };
      if (c.table !== undefined) out.table = c.table;
      if (c.chain !== undefined) out.chain = c.chain;
      if (c.name !== undefined) out.name = c.name;
      return out as NftCreated;
    });
  }

  /** @internal the batch bytes commit would send (seqs from 0), for golden-byte tests. */
  async _encode(): Promise<Buffer> {
    return this.#h._call('nft.encode', { cmds: this.#cmds });
  }
}

// ---- masquerade ---------------------------------------------------------------------

export interface MasqueradeOptions {
  /** Our own table (created, or replaced as a whole on re-apply). Default 'vnetlink_nat'. */
  table?: string;
  /** 'ip' (default for IPv4 subnets), 'ip6', or 'inet' for a table serving both. */
  family?: 'ip' | 'ip6' | 'inet';
  /** The guests' subnet, e.g. '192.168.122.0/24'. */
  subnet: string;
  /** Source ports TCP and UDP are mapped into; `false` keeps them. Default [1024, 65535]. */
  ports?: [number, number] | false;
  /** Only masquerade traffic leaving through this interface (`oifname`). */
  outInterface?: string;
  /** The chain's name (default 'nat') and priority (default 100, srcnat). */
  chain?: string;
  priority?: number;
}

interface NormMasq { table: string; family: 'ip' | 'ip6' | 'inet'; subnet: v.Cidr; ports: [number, number] | false; outInterface?: string; chain: string; priority: number }

/** @internal */
export function normMasquerade(op: string, o: unknown): NormMasq {
  const x = v.object(op, 'options', o);
  v.knownKeys(op, '', x, ['table', 'family', 'subnet', 'ports', 'outInterface', 'chain', 'priority']);
  const subnet = v.cidr(op, 'subnet', x.subnet);
  const base = subnetBase(subnet);
  if (!ipBytes(base).equals(ipBytes(subnet.address))) throw v.rangeError(op, 'subnet', `has host bits set (the network is ${base}/${subnet.prefixLen})`);
  const fam = x.family === undefined ? (subnet.family === 'inet' ? 'ip' : 'ip6') : v.oneOf(op, 'family', x.family, ['ip', 'ip6', 'inet'] as const);
  if ((fam === 'ip' && subnet.family !== 'inet') || (fam === 'ip6' && subnet.family !== 'inet6'))
    throw v.rangeError(op, 'subnet', `is ${subnet.family === 'inet' ? 'IPv4' : 'IPv6'} but family is ${fam}`);
  let ports: [number, number] | false = [1024, 65535];
  if (x.ports === false) ports = false;
  else if (x.ports !== undefined) {
    if (!Array.isArray(x.ports) || x.ports.length !== 2) throw v.typeError(op, 'ports', 'must be [min, max] or false');
    const lo = v.uint(op, 'ports[0]', x.ports[0], 1, 65535), hi = v.uint(op, 'ports[1]', x.ports[1], 1, 65535);
    if (lo > hi) throw v.rangeError(op, 'ports', `min ${lo} is above max ${hi}`);
    ports = [lo, hi];
  }
  const out: NormMasq = {
    table: x.table === undefined ? 'vnetlink_nat' : objName(op, 'table', x.table), family: fam, subnet, ports,
    chain: x.chain === undefined ? 'nat' : objName(op, 'chain', x.chain),
    priority: x.priority === undefined ? 100 : v.num(op, 'priority', x.priority, -0x80000000, 0x7fffffff),
  };
  if (x.outInterface !== undefined) out.outInterface = v.ifname(op, 'outInterface', x.outInterface);
  return out;
}

/** The network address of a CIDR (host bits cleared). */
export function subnetBase(c: v.Cidr): string {
  const b = ipBytes(c.address);
  for (let i = 0; i < b.length * 8; i++) if (i >= c.prefixLen) b[i >> 3] &= ~(0x80 >> (i & 7));
  if (c.family === 'inet') return [...b].join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // Compress the longest run of zero groups, as inet_ntop does.
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j === i ? i + 1 : j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** @internal The masquerade rules (libvirt's order) as rule specs for an existing chain. */
export function masqueradeRules(m: NormMasq): NftRuleSpec[] {
  const { match, stmt } = nftExpr;
  const ipf: 'ip' | 'ip6' = m.subnet.family === 'inet' ? 'ip' : 'ip6';
  const net = `${m.subnet.address}/${m.subnet.prefixLen}`;
  const pre = (): NftExpr[] => [
    ...(m.family === 'inet' ? match.nfproto(ipf === 'ip' ? 'ipv4' : 'ipv6') : []),
    ...match.addr(ipf, 'saddr', net),
  ];
  const out = (): NftExpr[] => [...match.addr(ipf, 'daddr', net, 'neq'), ...(m.outInterface ? match.oifname(m.outInterface) : [])];
  const rule = (exprs: NftExpr[]): NftRuleSpec => ({ family: m.family, table: m.table, chain: m.chain, exprs });
  const rules: NftRuleSpec[] = [];
  if (ipf === 'ip') {
    // Multicast and broadcast never get masqueraded (libvirt's first two rules).
    rules.push(rule([...pre(), ...match.addr('ip', 'daddr', '224.0.0.0/24'), stmt.counter(), stmt.return()]));
    rules.push(rule([...pre(), ...match.addr('ip', 'daddr', '255.255.255.255/32'), stmt.counter(), stmt.return()]));
  }
  const ports = m.ports || undefined;
  rules.push(rule([...pre(), ...out(), ...match.l4proto('tcp'), stmt.counter(), ...stmt.masquerade({ ports })]));
  rules.push(rule([...pre(), ...out(), ...match.l4proto('udp'), stmt.counter(), ...stmt.masquerade({ ports })]));
  rules.push(rule([...pre(), ...out(), stmt.counter(), ...stmt.masquerade()]));
  return rules;
}

/** @internal Adds "replace table T" to a transaction: create-if-missing, delete, create. */
export function replaceTable(tx: NftTransaction, family: NftFamily, name: string): NftTransaction {
  return tx.addTable({ family, name }).delTable({ family, name }).addTable({ family, name });
}

/** nftables: `nft` without the process, one atomic batch per call. */
export class NftOps {
  constructor(private readonly h: Handle) {}

  /** A new transaction; nothing is sent until `commit()`. */
  transaction(): NftTransaction {
    return new NftTransaction(this.h);
  }

  /**
   * Writes libvirt's NAT rules in a table of our own, with a `nat` chain on the postrouting
   * hook at priority 100 (srcnat): return for 224.0.0.0/24 and 255.255.255.255, TCP and UDP
   * masqueraded with source ports mapped into 1024–65535, then everything else; each for
   * `saddr` in the subnet and `daddr` outside it, with counters. Applying it again replaces
   * the table atomically, so it is idempotent.
   *
   * Equivalent to: `nft -f` of
   * `table ip vnetlink_nat { chain nat { type nat hook postrouting priority srcnat; ... masquerade to :1024-65535 ... } }`
   *
   * @example
   * await nl.nft.masquerade({ table: 'vnetlink_default', subnet: '192.168.122.0/24', ports: [1024, 65535] });
   */
  async masquerade(opts: MasqueradeOptions): Promise<void> {
    const op = 'nft.masquerade';
    const m = normMasquerade(op, opts);
    const tx = replaceTable(new NftTransaction(this.h, op), m.family, m.table)
      .addChain({ family: m.family, table: m.table, name: m.chain, type: 'nat', hook: 'postrouting', priority: m.priority, policy: 'accept' });
    for (const r of masqueradeRules(m)) tx.addRule(r);
    await tx.commit();
  }

  /** Tables, of one family or all. Equivalent to: `nft list tables [FAMILY]`. */
  async listTables(fam?: NftFamily): Promise<NftTable[]> {
    const op = 'nft.listTables';
    const args: Record<string, unknown> = {};
    if (fam !== undefined) args.family = family(op, 'family', fam);
    const r = await this.h._call<any[]>(op, args);
    return r.map((t) => {
      const out: NftTable = { family: FAMILY_NAME.get(t.family) ?? t.family, name: t.name, handle: t.handle, flags: [] };
      if (t.flags & 1) out.flags.push('dormant');
      if (t.flags & 2) out.flags.push('owner');
      if (t.use !== undefined) out.use = t.use;
      return out;
    });
  }

  /** Chains, of one table or all. Equivalent to: `nft list chains`. */
  async listChains(fam?: NftFamily, table?: string): Promise<NftChain[]> {
    const op = 'nft.listChains';
    const args: Record<string, unknown> = {};
    if (fam !== undefined) args.family = family(op, 'family', fam);
    if (table !== undefined) {
      if (fam === undefined) throw v.typeError(op, 'family', 'is required with a table');
      args.table = objName(op, 'table', table);
    }
    return (await this.h._call<any[]>(op, args)).map(listedChain);
  }

  /**
   * The rules of a table (or one chain), with handles, decoded expressions and counters.
   * Equivalent to: `nft --debug=netlink -a list table FAMILY TABLE`.
   */
  async listRules(fam: NftFamily, table: string, chain?: string): Promise<NftRule[]> {
    const op = 'nft.listRules';
    const args: Record<string, unknown> = { family: family(op, 'family', fam), table: objName(op, 'table', table) };
    if (chain !== undefined) args.chain = objName(op, 'chain', chain);
    return (await this.h._call<any[]>(op, args)).map(listedRule);
  }

  /**
   * Deletes a table with everything in it. With `ifExists`, a missing table is no error.
   * Equivalent to: `nft delete table FAMILY TABLE` (`nft destroy table` with ifExists).
   */
  async delTable(fam: NftFamily, table: string, opts: { ifExists?: boolean } = {}): Promise<void> {
    const op = 'nft.delTable';
    v.knownKeys(op, 'options', v.object(op, 'options', opts), ['ifExists']);
    family(op, 'family', fam);
    objName(op, 'table', table);
    const tx = new NftTransaction(this.h, op);
    // Creating it first in the same batch makes the delete succeed whether it existed or not.
    if (opts.ifExists !== undefined && v.bool(op, 'ifExists', opts.ifExists)) tx.addTable({ family: fam, name: table });
    tx.delTable({ family: fam, name: table });
    await tx.commit();
  }
}
