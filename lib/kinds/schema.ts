// One declarative table per link kind. From the table come: the checks `link.add` and
// `link.set` make (before any syscall), the TypeScript spec/changes/info types (mapped types
// below), and — sent once to the addon at load — the native encoder and decoder of the kind's
// IFLA_INFO_DATA (native/codec/kind_schema.cc), which serve add, set, addMany, encode, get,
// list and the monitor alike. A kind therefore writes each attribute exactly once.
import type { Handle } from '../handle.js';
import type { Link } from '../link.js';
import * as v from '../validate.js';

/** Fixed-size integers as the kernel reads them (host order unless `be`). */
export type IntType = 'u8' | 'u16' | 'u32' | 'u64' | 's32' | 'be16' | 'be32';

interface FieldCommon {
  /** The attribute type inside IFLA_INFO_DATA (or at the top level of the message with `top`). */
  readonly attr: number;
  /** `link.set` may change it on a live link. */
  readonly settable?: boolean;
  /** `link.add` refuses a spec without it. */
  readonly required?: boolean;
  /** Reported by the kernel only: decoded, never accepted in a spec. */
  readonly readOnly?: boolean;
  /** Accepted in a spec, never decoded (the kernel does not report it, or another decoder does). */
  readonly writeOnly?: boolean;
  /** A top-level IFLA_* attribute (e.g. IFLA_LINK, the lower device), not inside IFLA_INFO_DATA. */
  readonly top?: boolean;
  /** The key in the decoded `info` when it differs from the spec key. */
  readonly infoKey?: string;
  /** Sent even when the spec leaves it out (a default that differs from the kernel's). */
  readonly default?: unknown;
}

/** An integer; `scale` is wire units per user unit (bridge timers: 100 centiseconds per second). */
export interface IntField extends FieldCommon {
  readonly type: IntType;
  readonly min?: number;
  readonly max?: number;
  readonly scale?: number;
}
/** One of named values, sent as an integer. Values the table does not name decode as numbers. */
export interface EnumField extends FieldCommon {
  readonly type: 'u8' | 'u16' | 'u32';
  readonly enum: Readonly<Record<string, number>>;
}
/** A set of named bits in one integer, given as a list of names. */
export interface BitsField extends FieldCommon {
  readonly type: 'u16' | 'u32';
  readonly bits: Readonly<Record<string, number>>;
}
/** A boolean: `bool8`/`bool32` is a u8/u32 0 or 1; `flag` is an empty attribute present when true. */
export interface BoolField extends FieldCommon {
  readonly type: 'bool8' | 'bool32' | 'flag';
}
/**
 * One bit of a `{ u32 flags; u32 mask }` struct (ifla_vlan_flags): every `bit` field with the
 * same `attr` shares one attribute, with the bits given set in the mask.
 */
export interface MaskBitField extends FieldCommon {
  readonly type: 'bit';
  readonly bit: number;
}
/**
 * An address: `ip4`/`ip6` one family; `ip` either, in `attr` (IPv4) or `attr6` (IPv6). Fields
 * that share an attribute are told apart on decode by `multicast`. Unspecified (all-zero)
 * addresses are not decoded.
 */
export interface AddrField extends FieldCommon {
  readonly type: 'ip' | 'ip4' | 'ip6' | 'mac';
  readonly attr6?: number;
  readonly multicast?: boolean;
  /** The sibling field to suggest when `multicast` refuses an address. */
  readonly otherwise?: string;
}
/** A NUL-terminated string. */
export interface StringField extends FieldCommon {
  readonly type: 'string';
  readonly maxBytes?: number;
}
/** An interface name in the spec, its u32 index on the wire; decoded as the index (0 is not decoded). */
export interface IfindexField extends FieldCommon {
  readonly type: 'ifindex';
}
/** A packed struct of integers given as a tuple; `infoKeys` spreads it over several decoded keys. */
export interface StructField extends FieldCommon {
  readonly type: 'struct';
  readonly members: readonly IntType[];
  readonly min?: number;
  readonly max?: number;
  readonly infoKeys?: readonly string[];
}
/**
 * A list of MACs in a nest of `itemAttr` attributes; `lead` is an [attr, u32 value] pair sent
 * just before the nest (macvlan's MACADDR_MODE = SET).
 */
export interface MacListField extends FieldCommon {
  readonly type: 'maclist';
  readonly itemAttr: number;
  readonly lead?: readonly [number, number];
  readonly maxItems?: number;
}
/** Decode only: an 8-byte bridge id printed as brctl does ('8000.52540082327e'). */
export interface BridgeIdField extends FieldCommon {
  readonly type: 'bridgeId';
  readonly readOnly: true;
}

export type Field = IntField | EnumField | BitsField | BoolField | MaskBitField | AddrField | StringField |
  IfindexField | StructField | MacListField | BridgeIdField;
export type Fields = Readonly<Record<string, Field>>;

// ---- types derived from a table ------------------------------------------------------------

/** The JavaScript value of a field in a spec. */
export type ValueOf<F> =
  F extends { enum: infer E } ? Extract<keyof E, string> :
  F extends { bits: infer B } ? Array<Extract<keyof B, string>> :
  F extends { type: 'bool8' | 'bool32' | 'flag' | 'bit' } ? boolean :
  F extends { type: 'ip' | 'ip4' | 'ip6' | 'mac' | 'string' | 'ifindex' | 'bridgeId' } ? string :
  F extends { type: 'struct'; members: infer M extends readonly unknown[] } ? { -readonly [I in keyof M]: number } :
  F extends { type: 'maclist' } ? string[] :
  number;
/** The value of a field as decoded (an ifindex field decodes as the index). */
export type InfoValueOf<F> = F extends { type: 'ifindex' } ? number : ValueOf<F>;

type RequiredKeys<Fs> = { [K in keyof Fs]: Fs[K] extends { required: true } ? K : never }[keyof Fs];
type OptionalKeys<Fs> = { [K in keyof Fs]: Fs[K] extends { readOnly: true } | { required: true } ? never : K }[keyof Fs];
type SettableKeys<Fs> = { [K in keyof Fs]: Fs[K] extends { settable: true } ? K : never }[keyof Fs];
type InfoKeyOf<K, F> = F extends { writeOnly: true } | { top: true } ? never :
  F extends { infoKeys: readonly (infer N extends string)[] } ? N :
  F extends { infoKey: infer N extends string } ? N : K;
type InfoFieldValue<F> = F extends { infoKeys: readonly string[] } ? number : InfoValueOf<F>;

/** What `link.add` takes for a kind's own settings. */
export type SpecFields<Fs> = { -readonly [K in keyof Fs as K extends RequiredKeys<Fs> ? K : never]: ValueOf<Fs[K]> } &
  { -readonly [K in keyof Fs as K extends OptionalKeys<Fs> ? K : never]?: ValueOf<Fs[K]> };
/** What `link.set` takes for a kind's own settings. */
export type ChangeFields<Fs> = { -readonly [K in keyof Fs as K extends SettableKeys<Fs> ? K : never]?: ValueOf<Fs[K]> };
/** What `link.get` reports in `info` for the kind. */
export type InfoFields<Fs> = { -readonly [K in keyof Fs as InfoKeyOf<K, Fs[K]>]?: InfoFieldValue<Fs[K]> };

// ---- a kind -----------------------------------------------------------------------------------

/** A kind's extra behaviour the table cannot say. */
export interface KindHooks {
  /** The link name may be a pattern such as 'macvtap%d'. */
  patterns?: boolean;
  /** False for kinds made another way (tun/tap through /dev/net/tun): decode only. */
  create?: boolean;
  /** Spec keys outside the table, checked by `normalize` (veth's `peer`). */
  extraKeys?: readonly string[];
  /** Checks across fields, or extra keys; gets the spec and the table-checked data, may add to it. */
  normalize?: (spec: Record<string, unknown>, data: Record<string, unknown>, op: string) => void;
  /**
   * `normalize` for `link.set`: checks the changes against each other and the live link they
   * apply to (a field that depends on a setting the change leaves as it is).
   */
  normalizeChanges?: (changes: Record<string, unknown>, data: Record<string, unknown>, link: Link, op: string) => void;
  /** A native fill hook by name (native/ops/kind_*.cc) for data the table cannot describe. */
  nativeHook?: string;
  /** Turns a kernel refusal of `link.add` into a clearer error, or undefined to keep it. */
  explainAddError?: (h: Handle, spec: Record<string, unknown>, err: unknown) => Promise<Error | undefined>;
  /** A step after the kernel created the link (the create message cannot carry it). */
  afterAdd?: (h: Handle, data: Record<string, unknown>, link: Link) => Promise<void>;
  /** True when `afterAdd` has work for this spec (its echo is then needed). */
  needsAfterAdd?: (data: Record<string, unknown>) => boolean;
}

export interface KindDef<K extends string = string, Fs extends Fields = Fields, Ps extends Fields = Fields> {
  readonly kind: K;
  readonly fields: Fs;
  /** The port side (IFLA_INFO_SLAVE_DATA) of links enslaved to a link of this kind ({} when none is decoded). */
  readonly port: Ps;
  readonly hooks: KindHooks;
}

/**
 * Declares a link kind from its table. Put TSDoc on each field: the derived spec, changes and
 * info types carry it to the user.
 */
export function defineKind<const K extends string, const Fs extends Fields, const Ps extends Fields = {}>(
  kind: K, fields: Fs, hooks: KindHooks & { port?: Ps } = {}): KindDef<K, Fs, Ps> {
  const { port, ...rest } = hooks;
  return { kind, fields, port: port ?? ({} as Ps), hooks: rest };
}

// ---- checks from the table ------------------------------------------------------------------

const intMax: Record<IntType, number> = {
  u8: 0xff, u16: 0xffff, u32: 0xffffffff, u64: Number.MAX_SAFE_INTEGER, s32: 0x7fffffff, be16: 0xffff, be32: 0xffffffff,
};
const intMin = (t: IntType): number => (t === 's32' ? -0x80000000 : 0);

function isMulticast(a: { address: string; family: string }): boolean {
  return a.family === 'inet' ? /^(22[4-9]|23\d)\./.test(a.address) : /^ff/i.test(a.address);
}

/** Checks one field's value and returns it in the form the native encoder reads. */
export function checkField(op: string, key: string, f: Field, x: unknown): unknown {
  if ('enum' in f) return f.enum[v.oneOf(op, key, x, Object.keys(f.enum))];
  if ('bits' in f) {
    const names = Object.keys(f.bits);
    if (!Array.isArray(x)) throw v.typeError(op, key, `must be an array of ${names.join(', ')} (got ${JSON.stringify(x)})`);
    return x.map((b, i) => f.bits[v.oneOf(op, `${key}[${i}]`, b, names)]).reduce((a, b) => a | b, 0);
  }
  switch (f.type) {
    case 'u8': case 'u16': case 'u32': case 'u64': case 's32': case 'be16': case 'be32': {
      const lo = f.min ?? intMin(f.type);
      if (f.scale) {
        const hi = f.max ?? intMax[f.type] / f.scale;
        return Math.round(v.num(op, key, x, lo, hi) * f.scale);
      }
      const hi = f.max ?? intMax[f.type];
      if (lo < 0) {
        const n = v.num(op, key, x, lo, hi);
        if (!Number.isInteger(n)) throw v.rangeError(op, key, `must be an integer (got ${n})`);
        return n;
      }
      return v.uint(op, key, x, lo, hi);
    }
    case 'bool8': case 'bool32': case 'flag': case 'bit':
      return v.bool(op, key, x);
    case 'ip': case 'ip4': case 'ip6': {
      const a = v.ip(op, key, x);
      if (f.type === 'ip4' && a.family !== 'inet') throw v.rangeError(op, key, `must be an IPv4 address (got ${a.address})`);
      if (f.type === 'ip6' && a.family !== 'inet6') throw v.rangeError(op, key, `must be an IPv6 address (got ${a.address})`);
      const alt = f.otherwise ? `: use ${f.otherwise}` : "";
      if (f.multicast === true && !isMulticast(a)) throw v.rangeError(op, key, `${a.address} is not a multicast address${alt}`);
      if (f.multicast === false && isMulticast(a)) throw v.rangeError(op, key, `${a.address} is multicast${alt}`);
      return a.address;
    }
    case 'mac': return v.mac(op, key, x);
    case 'string': return v.str(op, key, x, f.maxBytes ?? 255);
    case 'ifindex': return v.ifname(op, key, x);
    case 'struct': {
      const n = f.members.length;
      if (!Array.isArray(x) || x.length !== n) throw v.typeError(op, key, `must be an array of ${n} numbers (got ${JSON.stringify(x)})`);
      return x.map((m, i) => v.uint(op, `${key}[${i}]`, m, f.min ?? 0, f.max ?? intMax[f.members[i]]));
    }
    case 'maclist': {
      const max = f.maxItems ?? 1000;
      if (!Array.isArray(x)) throw v.typeError(op, key, `must be an array of MAC addresses (got ${JSON.stringify(x)})`);
      if (x.length > max) throw v.rangeError(op, key, `at most ${max} MACs fit in one request (got ${x.length})`);
      return x.map((m, i) => v.mac(op, `${key}[${i}]`, m));
    }
    case 'bridgeId':
      throw v.rangeError(op, key, 'is reported by the kernel, not set');
  }
}

/** The spec keys a kind takes (its table's, without read-only ones, plus its extra keys). */
export function specKeys(k: KindDef): string[] {
  return [...Object.entries(k.fields).filter(([, f]) => !f.readOnly).map(([key]) => key), ...(k.hooks.extraKeys ?? [])];
}

/** The keys `link.set` accepts for a kind. */
export function settableKeys(k: KindDef): string[] {
  return Object.entries(k.fields).filter(([, f]) => f.settable).map(([key]) => key);
}

/** Checks a spec's kind fields: `data` (IFLA_INFO_DATA) and `top` (top-level attributes). */
export function checkSpec(k: KindDef, s: Record<string, unknown>, op: string): { data: Record<string, unknown>; top: Record<string, unknown> } {
  const data: Record<string, unknown> = {};
  const top: Record<string, unknown> = {};
  for (const [key, f] of Object.entries(k.fields)) {
    if (f.readOnly) continue;
    const x = s[key] ?? f.default;
    if (x === undefined) {
      if (f.required) throw v.typeError(op, key, `is required for ${/^[aeiou]/.test(k.kind) ? 'an' : 'a'} ${k.kind} link`);
      continue;
    }
    (f.top ? top : data)[key] = checkField(op, key, f, x);
  }
  k.hooks.normalize?.(s, data, op);
  return { data, top };
}

/**
 * Checks `link.set` changes for a link of kind `k`; refuses a key the kind does not let change.
 * With the live `link`, the kind's `normalizeChanges` checks them against it too.
 */
export function checkChanges(k: KindDef, keys: string[], c: Record<string, unknown>, op: string, linkName: string, link?: Link): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  const own = settableKeys(k);
  for (const key of keys) {
    const f = k.fields[key];
    if (!f || !f.settable) {
      const why = f ? `cannot be changed on a live ${k.kind} link` : `is not a setting of ${k.kind} links`;
      throw v.rangeError(op, key, `${why} (${JSON.stringify(linkName)} is a ${k.kind}; ` +
        (own.length ? `a ${k.kind} takes ${own.join(', ')})` : `a ${k.kind} has no settings link.set changes)`));
    }
    data[key] = checkField(op, key, f, c[key]);
  }
  if (link) k.hooks.normalizeChanges?.(c, data, link, op);
  return data;
}

/** The table as the native encoder/decoder reads it (plain data, sent once at load). */
export function nativeTable(k: KindDef): Record<string, unknown> {
  const conv = (fs: Fields) => Object.entries(fs).map(([key, f]) => {
    const o: Record<string, unknown> = { key, attr: f.attr, type: f.type };
    if ('attr6' in f && f.attr6 !== undefined) o.attr6 = f.attr6;
    if ('multicast' in f && f.multicast !== undefined) o.multicast = f.multicast;
    if ('scale' in f && f.scale) o.scale = f.scale;
    if ('enum' in f) o.enum = Object.entries(f.enum).map(([name, value]) => ({ name, value }));
    if ('bits' in f) o.bits = Object.entries(f.bits).map(([name, value]) => ({ name, value }));
    if ('bit' in f) o.bit = f.bit;
    if ('members' in f) o.members = f.members;
    if ('infoKeys' in f && f.infoKeys) o.infoKeys = f.infoKeys;
    if ('itemAttr' in f) o.itemAttr = f.itemAttr;
    if ('lead' in f && f.lead) o.lead = f.lead;
    if (f.infoKey) o.infoKey = f.infoKey;
    if (f.top) o.top = true;
    if (f.readOnly) o.readOnly = true;
    if (f.writeOnly) o.writeOnly = true;
    return o;
  });
  const out: Record<string, unknown> = { kind: k.kind, fields: conv(k.fields) };
  if (Object.keys(k.port).length) out.port = conv(k.port);
  if (k.hooks.nativeHook) out.hook = k.hooks.nativeHook;
  return out;
}
