// tc's words for rates, sizes, times and handles, parsed strictly: a value that tc would read
// differently from what a person means is refused with the reason, never guessed.
import * as v from './validate.js';

/** A rate: a number of bytes per second, or a string in tc's units (`'100mbit'`, `'1gbit'`, `'10MBps'`). */
export type Rate = number | string;
/** A size: a number of bytes, or a string in tc's units (`'32k'`, `'1mb'`, `'1514b'`). */
export type Size = number | string;
/** A time: a number of microseconds, or a string (`'50ms'`, `'1s'`, `'200us'`). */
export type Time = number | string;

// tc's rate suffixes (bits, and bytes written with a capital B), in bits per second.
const bitRates: Record<string, number> = {
  bit: 1, kbit: 1e3, mbit: 1e6, gbit: 1e9, tbit: 1e12,
  kibit: 1024, mibit: 1024 ** 2, gibit: 1024 ** 3, tibit: 1024 ** 4,
};
const byteRates: Record<string, number> = {
  Bps: 8, KBps: 8e3, MBps: 8e6, GBps: 8e9, TBps: 8e12,
  KiBps: 8 * 1024, MiBps: 8 * 1024 ** 2, GiBps: 8 * 1024 ** 3, TiBps: 8 * 1024 ** 4,
};
const sizeUnits: Record<string, number> = {
  b: 1, k: 1024, kb: 1024, m: 1024 ** 2, mb: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3,
  kib: 1024, mib: 1024 ** 2, gib: 1024 ** 3, kbit: 128, mbit: 131072, gbit: 134217728,
};
const timeUnits: Record<string, number> = {
  s: 1e6, sec: 1e6, secs: 1e6, ms: 1e3, msec: 1e3, msecs: 1e3, us: 1, usec: 1, usecs: 1,
};

const MAX_RATE = 2 ** 53; // bytes/s; the wire holds 64 bits, JavaScript numbers hold this exactly

function split(op: string, field: string, s: string): [number, string] {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([A-Za-z/]*)\s*$/.exec(s);
  if (!m) throw v.rangeError(op, field, `${JSON.stringify(s)} is not a number with a unit`);
  return [Number(m[1]), m[2]];
}

/** Bytes per second. */
export function rate(op: string, field: string, r: unknown): number {
  let bps: number;
  if (typeof r === 'number') {
    bps = r;
  } else if (typeof r === 'string') {
    const [n, unit] = split(op, field, r);
    const lower = unit.toLowerCase();
    if (Object.hasOwn(byteRates, unit)) bps = (n * byteRates[unit]) / 8;
    else if (Object.hasOwn(bitRates, lower)) bps = (n * bitRates[lower]) / 8;
    else if (/^[kmgt]?i?bps$/.test(lower))
      // tc reads 'mbps' as megaBYTES per second; almost everyone who writes it means megabits.
      throw v.rangeError(op, field, `${JSON.stringify(r)} is ambiguous (tc reads it as bytes per second): write '${n}${lower.replace('bps', 'bit')}' for bits or '${n}${unit[0].toUpperCase()}${lower.slice(1, -3)}Bps' for bytes`);
    else throw v.rangeError(op, field, `${JSON.stringify(r)} has an unknown unit (use bit, kbit, mbit, gbit, tbit, or Bps, KBps, MBps, GBps; a number is bytes per second)`);
  } else {
    throw v.typeError(op, field, 'must be a number of bytes per second or a string like "100mbit"');
  }
  if (!Number.isFinite(bps) || bps < 1 || bps > MAX_RATE) throw v.rangeError(op, field, `must be at least 1 byte/s and at most 2^53 (got ${String(r)})`);
  return Math.floor(bps);
}

/** Bytes, up to 2^32-1 (the wire's size). */
export function size(op: string, field: string, s: unknown, min = 0): number {
  let n: number;
  if (typeof s === 'number') n = s;
  else if (typeof s === 'string') {
    const [x, unit] = split(op, field, s);
    const u = unit.toLowerCase();
    if (u === '') n = x;
    else if (Object.hasOwn(sizeUnits, u)) n = x * sizeUnits[u];
    else throw v.rangeError(op, field, `${JSON.stringify(s)} has an unknown unit (use b, k, kb, m, mb, g, gb)`);
  } else throw v.typeError(op, field, 'must be a number of bytes or a string like "32k"');
  if (!Number.isFinite(n) || n < min || n > 0xffffffff || !Number.isInteger(Math.floor(n))) throw v.rangeError(op, field, `must be ${min}..4294967295 bytes (got ${String(s)})`);
  return Math.floor(n);
}

/** Microseconds, up to 2^32-1. */
export function time(op: string, field: string, t: unknown): number {
  let us: number;
  if (typeof t === 'number') us = t;
  else if (typeof t === 'string') {
    const [x, unit] = split(op, field, t);
    const u = unit.toLowerCase();
    if (!Object.hasOwn(timeUnits, u)) throw v.rangeError(op, field, `${JSON.stringify(t)} needs a unit: s, ms or us`);
    us = x * timeUnits[u];
  } else throw v.typeError(op, field, 'must be a number of microseconds or a string like "50ms"');
  if (!Number.isFinite(us) || us < 0 || us > 0xffffffff) throw v.rangeError(op, field, `must be 0..4294967295 microseconds (got ${String(t)})`);
  return Math.round(us);
}

/** A probability: a fraction 0..1, or a percentage string such as '1%'. */
export function fraction(op: string, field: string, p: unknown): number {
  let f: number;
  if (typeof p === 'number') f = p;
  else if (typeof p === 'string') {
    const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(p);
    if (!m) throw v.rangeError(op, field, `${JSON.stringify(p)} is not a percentage such as "1%"`);
    f = Number(m[1]) / 100;
  } else throw v.typeError(op, field, 'must be a fraction 0..1 or a string like "1%"');
  if (!(f >= 0 && f <= 1)) throw v.rangeError(op, field, `must be within 0..1 (0%..100%), got ${String(p)}`);
  return f;
}

export const TC_H_ROOT = 0xffffffff;
export const TC_H_INGRESS = 0xfffffff1;
/** clsact's two hooks, as tc's `ingress` / `egress` filter keywords. */
export const CLSACT_INGRESS = 0xfffffff2;
export const CLSACT_EGRESS = 0xfffffff3;

/**
 * A handle or class id in tc's hex words: `'1:'`, `'1:10'`, `':1'`, `'ffff:'`, or a 32-bit
 * number. `names` lists the keywords this field accepts.
 */
export function handle(op: string, field: string, h: unknown, names: Record<string, number> = {}): number {
  if (typeof h === 'number') return v.uint(op, field, h);
  if (typeof h !== 'string') throw v.typeError(op, field, `must be a string like "1:10" (got ${String(h)})`);
  if (Object.prototype.hasOwnProperty.call(names, h)) return names[h];
  const m = /^([0-9a-fA-F]{0,4}):([0-9a-fA-F]{0,4})$/.exec(h);
  if (!m || (m[1] === '' && m[2] === '')) {
    const kw = Object.keys(names);
    throw v.rangeError(op, field, `${JSON.stringify(h)} is not a handle like "1:" or "1:10" (hex major:minor, each 0..ffff${kw.length ? `; or ${kw.join(', ')}` : ''})`);
  }
  return ((parseInt(m[1] || '0', 16) << 16) >>> 0) + parseInt(m[2] || '0', 16);
}

/** tc's text for a 32-bit handle, the inverse of `handle`. */
export function handleText(h: number): string {
  if (h === TC_H_ROOT) return 'root';
  if (h === 0) return 'none';
  const maj = (h >>> 16).toString(16);
  const min = h & 0xffff;
  return min ? `${maj}:${min.toString(16)}` : `${maj}:`;
}

const protocols: Record<string, number> = {
  all: 0x0003, ip: 0x0800, ipv6: 0x86dd, arp: 0x0806, '802.1q': 0x8100, '802.1ad': 0x88a8, mpls_uc: 0x8847,
};
export type Protocol = 'all' | 'ip' | 'ipv6' | 'arp' | '802.1q' | '802.1ad' | 'mpls_uc' | number;

/** An Ethernet protocol as tc's `protocol` word, or its number. */
export function protocol(op: string, field: string, p: unknown): number {
  if (typeof p === 'number') return v.uint(op, field, p, 0, 0xffff);
  if (typeof p === 'string' && Object.prototype.hasOwnProperty.call(protocols, p)) return protocols[p];
  throw v.rangeError(op, field, `unknown protocol ${JSON.stringify(p)} (known: ${Object.keys(protocols).join(', ')}, or a number)`);
}

export function protocolName(n: number): string {
  for (const [k, x] of Object.entries(protocols)) if (x === n) return k;
  return `0x${n.toString(16).padStart(4, '0')}`;
}
