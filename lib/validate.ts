// Validation and normalization of user input, before any system call. Every error names
// the field (e.g. "link.add: mac: ...") and is a TypeError (wrong kind of value) or a
// RangeError (right kind, bad value).
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export function typeError(op: string, field: string, msg: string): TypeError {
  return new TypeError(`${op}: ${field}: ${msg}`);
}
export function rangeError(op: string, field: string, msg: string): RangeError {
  return new RangeError(`${op}: ${field}: ${msg}`);
}

const show = (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : typeof v === 'bigint' ? `${v}n` : String(v));

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function object(op: string, field: string, v: unknown): Record<string, unknown> {
  if (!isObject(v)) throw typeError(op, field, `must be an object (got ${show(v)})`);
  return v;
}

/** Rejects option keys we do not know, so a typo is never silently ignored. */
export function knownKeys(op: string, field: string, v: Record<string, unknown>, allowed: readonly string[]): void {
  for (const k of Object.keys(v)) {
    if (v[k] === undefined) continue;
    if (!allowed.includes(k)) throw typeError(op, field ? `${field}.${k}` : k, `unknown option (known: ${allowed.join(', ')})`);
  }
}

/**
 * An interface name as the kernel accepts it: 1–15 bytes, not "." or "..", no "/", ":" or
 * whitespace (and, stricter than the kernel, no control characters). With `pattern`, one "%d" is allowed and the result must still fit.
 */
export function ifname(op: string, field: string, v: unknown, pattern = false): string {
  if (typeof v !== 'string') throw typeError(op, field, `must be an interface name string (got ${show(v)})`);
  const bytes = Buffer.byteLength(v);
  if (bytes === 0) throw rangeError(op, field, 'must not be empty');
  if (bytes > 15) {
    if (pattern && v.includes('%d'))
      throw rangeError(op, field, `pattern ${show(v)} is ${bytes} bytes: it leaves no room for the number within 15 bytes`);
    throw rangeError(op, field, `must be at most 15 bytes (got ${bytes}: ${show(v)})`);
  }
  if (v === '.' || v === '..') throw rangeError(op, field, `${show(v)} is not a valid interface name`);
  if (/[\s/:]/.test(v)) throw rangeError(op, field, `must not contain "/", ":" or whitespace (got ${show(v)})`);
  // The kernel would take other control bytes, but a NUL cuts the name short in C and the rest
  // end up in sysctl paths, nft rules and daemon configs.
  if (/[\x00-\x1f\x7f]/.test(v)) throw rangeError(op, field, `must not contain control characters (got ${show(v)})`);
  const pct = v.split('%').length - 1;
  if (pct > 0) {
    if (!pattern) throw rangeError(op, field, `a name pattern (%d) is not accepted here (got ${show(v)})`);
    if (pct !== 1 || !v.includes('%d')) throw rangeError(op, field, `a name pattern must contain exactly one "%d" (got ${show(v)})`);
  }
  return v;
}

/** A link reference: a name (validated) or an ifindex. */
export function linkRef(op: string, field: string, v: unknown): { name?: string; index?: number } {
  if (typeof v === 'number') return { index: uint(op, field, v, 1, 0x7fffffff) };
  return { name: ifname(op, field, v) };
}

/** Any well-formed MAC (an FDB key may be multicast or all-zero: head-end replication). */
export function macAddress(op: string, field: string, v: unknown): string {
  if (typeof v !== 'string' || !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(v))
    throw typeError(op, field, `must be a MAC address like "52:54:00:82:32:7e" (got ${show(v)})`);
  return v.toLowerCase();
}

/** A MAC a link can have: unicast and not all-zero. */
export function mac(op: string, field: string, v: unknown): string {
  const m = macAddress(op, field, v);
  if (parseInt(m.slice(0, 2), 16) & 1) throw rangeError(op, field, `${m} is a multicast address; a link needs a unicast MAC`);
  if (m === '00:00:00:00:00:00') throw rangeError(op, field, 'the all-zero MAC is not a valid link address');
  return m;
}

export type Family = 'inet' | 'inet6';

export function ip(op: string, field: string, v: unknown): { address: string; family: Family } {
  if (typeof v === 'string') {
    if (net.isIPv4(v)) return { address: v, family: 'inet' };
    // A zone id ("fe80::1%lo") passes net.isIPv6 but no netlink address attribute can carry it.
    if (v.includes('%')) throw rangeError(op, field, `must be an address without a zone id (got ${show(v)}); give the device separately`);
    if (net.isIPv6(v)) return { address: v, family: 'inet6' };
  }
  throw typeError(op, field, `must be an IPv4 or IPv6 address (got ${show(v)})`);
}

export interface Cidr { address: string; prefixLen: number; family: Family }

/** "192.168.122.1/24" or "fd00::1/64"; without a prefix length, a host address (/32, /128). */
export function cidr(op: string, field: string, v: unknown, requirePrefix = true): Cidr {
  if (typeof v !== 'string') throw typeError(op, field, `must be an address with prefix like "192.168.122.1/24" (got ${show(v)})`);
  const slash = v.indexOf('/');
  if (slash < 0 && requirePrefix) throw typeError(op, field, `must include a prefix length like "/24" (got ${show(v)})`);
  const addr = slash < 0 ? v : v.slice(0, slash);
  const { address, family } = (() => {
    try { return ip(op, field, addr); } catch { throw typeError(op, field, `must be an address with prefix like "192.168.122.1/24" (got ${show(v)})`); }
  })();
  const max = family === 'inet' ? 32 : 128;
  let prefixLen = max;
  if (slash >= 0) {
    const p = v.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p) || Number(p) > max) throw rangeError(op, field, `prefix length must be 0–${max} (got ${show(p)})`);
    prefixLen = Number(p);
  }
  return { address, prefixLen, family };
}

export function uint(op: string, field: string, v: unknown, min = 0, max = 0xffffffff): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw typeError(op, field, `must be an integer (got ${show(v)})`);
  if (v < min || v > max) throw rangeError(op, field, `must be between ${min} and ${max} (got ${v})`);
  return v;
}

export function num(op: string, field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw typeError(op, field, `must be a number (got ${show(v)})`);
  if (v < min || v > max) throw rangeError(op, field, `must be between ${min} and ${max} (got ${v})`);
  return v;
}

export function bool(op: string, field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw typeError(op, field, `must be true or false (got ${show(v)})`);
  return v;
}

export function str(op: string, field: string, v: unknown, maxBytes = 4096): string {
  if (typeof v !== 'string') throw typeError(op, field, `must be a string (got ${show(v)})`);
  if (Buffer.byteLength(v) > maxBytes) throw rangeError(op, field, `must be at most ${maxBytes} bytes`);
  if (v.includes('\0')) throw rangeError(op, field, 'must not contain NUL');
  return v;
}

export function oneOf<T extends string>(op: string, field: string, v: unknown, values: readonly T[]): T {
  if (typeof v !== 'string' || !values.includes(v as T))
    throw rangeError(op, field, `must be one of ${values.map((x) => JSON.stringify(x)).join(', ')} (got ${show(v)})`);
  return v as T;
}

/** A namespace name as `ip netns add` accepts it. */
export function netnsName(op: string, field: string, v: unknown): string {
  if (typeof v !== 'string' || v.length === 0) throw typeError(op, field, `must be a namespace name (got ${show(v)})`);
  if (v === '.' || v === '..' || v.includes('/') || /[\s\x00-\x1f\x7f]/.test(v) || Buffer.byteLength(v) > 255)
    throw rangeError(op, field, `${show(v)} is not a valid namespace name`);
  return v;
}

export type NetnsArg = { netnsPath: string } | { netnsFd: number };

/** Something that names a network namespace. */
export type NetnsRef = string | number | { path: string };

/**
 * A namespace given by name (/run/netns/NAME), by path (/proc/PID/ns/net) or by an open fd,
 * or a Netns object. Checks the fd is open and the path exists, before any netlink call.
 */
export function netns(op: string, field: string, v: unknown): NetnsArg {
  if (typeof v === 'number') {
    uint(op, field, v, 0, 0x7fffffff);
    try {
      fs.fstatSync(v);
    } catch {
      throw typeError(op, field, `fd ${v} is not an open file descriptor`);
    }
    return { netnsFd: v };
  }
  if (isObject(v) && typeof v.path === 'string') return netns(op, field, v.path);
  if (typeof v !== 'string') throw typeError(op, field, `must be a namespace name, a path or an fd (got ${show(v)})`);
  // A path is taken only in its plain form (no "..", ".", "//" or trailing "/", no control
  // characters), so what is opened is what a reader of the call sees.
  if (v.startsWith('/') && (path.posix.resolve(v) !== v || /[\x00-\x1f\x7f]/.test(v)))
    throw rangeError(op, field, `${show(v)} is not a plain absolute path (no "..", ".", "//", trailing "/" or control characters)`);
  const p = v.startsWith('/') ? v : `/run/netns/${netnsName(op, field, v)}`;
  if (!fs.existsSync(p)) throw rangeError(op, field, `no network namespace at ${p}`);
  return { netnsPath: p };
}
