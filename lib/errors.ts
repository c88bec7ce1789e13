import os from 'node:os';
import util from 'node:util';

// Linux's errno names (asm-generic/errno-base.h, errno.h, and the kernel-internal ones netlink
// can still return): Node's os.constants.errno lacks the Linux-only ones (EBADFD is 77).
const linuxErrno: readonly string[] = [
  '', 'EPERM', 'ENOENT', 'ESRCH', 'EINTR', 'EIO', 'ENXIO', 'E2BIG', 'ENOEXEC', 'EBADF', 'ECHILD',
  'EAGAIN', 'ENOMEM', 'EACCES', 'EFAULT', 'ENOTBLK', 'EBUSY', 'EEXIST', 'EXDEV', 'ENODEV', 'ENOTDIR',
  'EISDIR', 'EINVAL', 'ENFILE', 'EMFILE', 'ENOTTY', 'ETXTBSY', 'EFBIG', 'ENOSPC', 'ESPIPE', 'EROFS',
  'EMLINK', 'EPIPE', 'EDOM', 'ERANGE', 'EDEADLK', 'ENAMETOOLONG', 'ENOLCK', 'ENOSYS', 'ENOTEMPTY', 'ELOOP',
  '', 'ENOMSG', 'EIDRM', 'ECHRNG', 'EL2NSYNC', 'EL3HLT', 'EL3RST', 'ELNRNG', 'EUNATCH', 'ENOCSI',
  'EL2HLT', 'EBADE', 'EBADR', 'EXFULL', 'ENOANO', 'EBADRQC', 'EBADSLT', '', 'EBFONT', 'ENOSTR',
  'ENODATA', 'ETIME', 'ENOSR', 'ENONET', 'ENOPKG', 'EREMOTE', 'ENOLINK', 'EADV', 'ESRMNT', 'ECOMM',
  'EPROTO', 'EMULTIHOP', 'EDOTDOT', 'EBADMSG', 'EOVERFLOW', 'ENOTUNIQ', 'EBADFD', 'EREMCHG', 'ELIBACC', 'ELIBBAD',
  'ELIBSCN', 'ELIBMAX', 'ELIBEXEC', 'EILSEQ', 'ERESTART', 'ESTRPIPE', 'EUSERS', 'ENOTSOCK', 'EDESTADDRREQ', 'EMSGSIZE',
  'EPROTOTYPE', 'ENOPROTOOPT', 'EPROTONOSUPPORT', 'ESOCKTNOSUPPORT', 'EOPNOTSUPP', 'EPFNOSUPPORT', 'EAFNOSUPPORT', 'EADDRINUSE', 'EADDRNOTAVAIL', 'ENETDOWN',
  'ENETUNREACH', 'ENETRESET', 'ECONNABORTED', 'ECONNRESET', 'ENOBUFS', 'EISCONN', 'ENOTCONN', 'ESHUTDOWN', 'ETOOMANYREFS', 'ETIMEDOUT',
  'ECONNREFUSED', 'EHOSTDOWN', 'EHOSTUNREACH', 'EALREADY', 'EINPROGRESS', 'ESTALE', 'EUCLEAN', 'ENOTNAM', 'ENAVAIL', 'EISNAM',
  'EREMOTEIO', 'EDQUOT', 'ENOMEDIUM', 'EMEDIUMTYPE', 'ECANCELED', 'ENOKEY', 'EKEYEXPIRED', 'EKEYREVOKED', 'EKEYREJECTED', 'EOWNERDEAD',
  'ENOTRECOVERABLE', 'ERFKILL', 'EHWPOISON',
];
const kernelInternal = new Map<number, [string, string]>([
  [512, ['ERESTARTSYS', 'interrupted system call (restart)']],
  [524, ['ENOTSUPP', 'operation not supported (the kernel-internal ENOTSUPP)']],
  [525, ['ETOOSMALL', 'buffer or request is too small']],
  [527, ['EBADTYPE', 'type not supported by the server']],
]);

const codeByErrno = new Map<number, string>();
for (const [name, num] of Object.entries(os.constants.errno)) {
  if (!codeByErrno.has(num)) codeByErrno.set(num, name);
}
linuxErrno.forEach((name, num) => { if (name && !codeByErrno.has(num)) codeByErrno.set(num, name); });
for (const [num, [name]] of kernelInternal) codeByErrno.set(num, name);
// 95 has two names on Linux; netlink and the kernel's sources say EOPNOTSUPP (Node lists ENOTSUP first).
codeByErrno.set(95, 'EOPNOTSUPP');

/** The code Node uses for an errno ('ENODEV' for 19), or Linux's name for Linux-only ones ('EBADFD' for 77). @internal */
export function errnoCode(errno: number): string {
  return codeByErrno.get(errno) ?? `E${errno}`;
}

// errno -> "no such device", from libuv's table (util.getSystemErrorMap keys are negative).
const systemMessages = new Map<number, string>();
for (const [k, v] of util.getSystemErrorMap()) systemMessages.set(-k, v[1]);
const ownMessages: Record<string, string> = {
  EEXIST: 'already exists',
  EBADFD: 'file descriptor in bad state',
  ENOTUNIQ: 'name not unique on network',
  EREMCHG: 'remote address changed',
};

function describe(errno: number): string {
  const code = errnoCode(errno);
  const text = ownMessages[code] ?? kernelInternal.get(errno)?.[1] ?? systemMessages.get(errno);
  if (!text) return code;
  // libuv capitalises the first word ("No such device"); keep acronyms ("I/O error").
  return /^[A-Z][a-z]/.test(text) ? text[0].toLowerCase() + text.slice(1) : text;
}

/**
 * The base of every error vnetlink makes itself (not for bad input, which is a TypeError or
 * RangeError naming the field). `code` is Node's style ('ENODEV', 'ETIMEDOUT', ...) or the
 * subsystem's own word (OvsdbError's 'not-found'); `op` the public operation ('link.get').
 *
 * @example
 * try { await nl.link.get('nope'); } catch (e) {
 *   if (e instanceof VnetlinkError) console.error(e.op, e.code);
 * }
 */
export class VnetlinkError extends Error {
  /** 'ENODEV', 'EEXIST', 'ETIMEDOUT', ... (or a subsystem's own code, see OvsdbError). */
  readonly code: string;
  /** The vnetlink operation that failed, e.g. 'link.get'. */
  readonly op: string;

  constructor(op: string, code: string, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'VnetlinkError';
    this.code = code;
    this.op = op;
  }
}

/**
 * A failure that is not the kernel's (a closed forwarder, a network that already runs, a daemon
 * that would not start): a VnetlinkError with a Node-style code, worded like a NetlinkError.
 * @internal
 */
export function stateError(op: string, code: string, text: string): VnetlinkError {
  return new VnetlinkError(op, code, `${op}: ${text} (${code})`);
}

/** The capability an EPERM/EACCES from this operation most likely lacks. */
function capabilityFor(op: string, detail: string | undefined): string {
  return /^netns\./.test(op) || /setns|mount|unshare|\/run\/netns/.test(detail ?? '') ? 'CAP_SYS_ADMIN' : 'CAP_NET_ADMIN';
}

/** What `detail` adds to the message: nothing when it is only an operation's own name. */
function cleanDetail(op: string, detail: string | undefined): string | undefined {
  if (!detail) return undefined;
  let d = detail.trim();
  // The native layer prefixes its own op name ("link.set: ..."): the message starts with ours.
  const m = /^[a-z][a-zA-Z]*(\.[a-zA-Z]+)+(: |$)/.exec(d);
  if (m) d = d.slice(m[0].length);
  if (d.startsWith(`${op}: `)) d = d.slice(op.length + 2);
  return d || undefined;
}

/**
 * A refusal from the kernel (or a system call on the way to it). The message names the
 * operation, the object and the errno: `link.get: no such device "v9" (ENODEV)`, then where
 * inside the operation it failed and the kernel's extended-ack text, when there are any.
 *
 * @example
 * try { await nl.link.get('nope'); } catch (e) {
 *   if (e instanceof NetlinkError && e.code === 'ENODEV') { ... }
 * }
 */
export class NetlinkError extends VnetlinkError {
  /** The positive errno number. */
  readonly errno: number;
  /** The kernel's extended-ack message, when it sent one. */
  readonly extack?: string;
  /** Where inside the operation it failed (a step or message), for people. */
  readonly detail?: string;
  /** The object the operation was about (a link name, a sysctl key, ...), when known. */
  readonly subject?: string | number;
  /** For EPERM/EACCES: the capability the caller most likely lacks. */
  readonly capability?: 'CAP_NET_ADMIN' | 'CAP_SYS_ADMIN';

  constructor(op: string, errno: number, detail?: string, extack?: string, subject?: string | number) {
    const code = errnoCode(errno);
    const d = cleanDetail(op, detail);
    let msg = `${op}: ${describe(errno)}`;
    if (subject !== undefined && subject !== '') msg += typeof subject === 'number' ? ` (index ${subject})` : ` ${JSON.stringify(subject)}`;
    msg += ` (${code})`;
    if (d) msg += ` [${d}]`;
    if (extack) msg += `: ${extack}`;
    const cap = code === 'EPERM' || code === 'EACCES' ? capabilityFor(op, detail) : undefined;
    if (cap) msg += ` (needs ${cap}: run as root or grant the capability)`;
    super(op, code, msg);
    this.name = 'NetlinkError';
    this.errno = errno;
    if (extack) this.extack = extack;
    if (d) this.detail = d;
    if (subject !== undefined && subject !== '') this.subject = subject;
    if (cap) this.capability = cap as 'CAP_NET_ADMIN' | 'CAP_SYS_ADMIN';
  }
}

/**
 * A wait that ran out of time (`code: 'ETIMEDOUT'`), e.g. `bridge.waitPort` or a daemon that did
 * not start. Aborting through an AbortSignal rejects with Node's `AbortError` instead.
 */
export class TimeoutError extends VnetlinkError {
  /** How long the operation waited, in milliseconds. */
  readonly timeout: number;

  constructor(op: string, what: string, timeoutMs: number) {
    super(op, 'ETIMEDOUT', `${op}: ${what} within ${timeoutMs} ms (ETIMEDOUT)`);
    this.name = 'TimeoutError';
    this.timeout = timeoutMs;
  }
}

/** `{ timeout, signal }` of a call that waits. */
export interface WaitOptions {
  /** Milliseconds before the wait rejects with a `TimeoutError` (`code: 'ETIMEDOUT'`). */
  timeout?: number;
  /** Aborts the wait: it rejects with an `AbortError` (`code: 'ABORT_ERR'`, `cause`: the signal's reason). */
  signal?: AbortSignal;
}

/** Checks `{ timeout, signal }` (naming the field) and fills the default timeout. @internal */
export function waitOptions(op: string, opts: unknown, defaultTimeout: number): { timeout: number; signal?: AbortSignal } {
  if (opts === null || typeof opts !== 'object') throw new TypeError(`${op}: options: must be an object like { timeout, signal } (got ${JSON.stringify(opts)})`);
  const o = opts as { timeout?: unknown; signal?: unknown };
  for (const k of Object.keys(o)) if (k !== 'timeout' && k !== 'signal') throw new TypeError(`${op}: ${k}: is not an option here (known: timeout, signal)`);
  let timeout = defaultTimeout;
  if (o.timeout !== undefined) {
    if (typeof o.timeout !== 'number' || !Number.isInteger(o.timeout) || o.timeout < 0 || o.timeout > 0x7fffffff)
      throw new RangeError(`${op}: timeout: must be a whole number of milliseconds from 0 to 2147483647 (got ${JSON.stringify(o.timeout)})`);
    timeout = o.timeout;
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) throw new TypeError(`${op}: signal: must be an AbortSignal`);
  return { timeout, signal: o.signal as AbortSignal | undefined };
}

/** The error Node's own APIs reject with when their AbortSignal aborts. @internal */
export function abortError(signal: AbortSignal): Error {
  return Object.assign(new Error('The operation was aborted', { cause: signal.reason }), { name: 'AbortError', code: 'ABORT_ERR' });
}

// The object an operation's arguments are about, for the message.
function subjectOf(args: unknown): string | number | undefined {
  if (!args || typeof args !== 'object') return undefined;
  const a = args as Record<string, unknown>;
  for (const k of ['name', 'dev', 'key', 'index']) {
    const x = a[k];
    if (typeof x === 'string' || typeof x === 'number') return x;
  }
  return undefined;
}

/**
 * Turns a rejection from the native layer into a NetlinkError for `op` about `args`' object;
 * a message that came in and could not be read (the addon marks it `malformed`) is no kernel
 * refusal: a VnetlinkError with code 'EPROTO' saying what was wrong. @internal
 */
export function fromNative(op: string, e: unknown, args?: unknown): Error {
  if (e && typeof e === 'object' && typeof (e as { errno?: unknown }).errno === 'number') {
    const n = e as { errno: number; where?: string; extack?: string; malformed?: boolean };
    if (n.malformed) return malformedReply(op, cleanDetail(op, n.where) ?? 'unreadable');
    return new NetlinkError(op, n.errno, n.where, n.extack, subjectOf(args));
  }
  return e instanceof Error ? e : new Error(String(e));
}

// What was wrong with each malformed-message error, for badBytes (never read back from the text).
const malformedWhat = new WeakMap<VnetlinkError, string>();

/** A message that came in could not be read (code 'EPROTO'): `what` says what was wrong. @internal */
export function malformedReply(op: string, what: string): VnetlinkError {
  const e = stateError(op, 'EPROTO', `a message from the kernel is malformed: ${what}`);
  malformedWhat.set(e, what);
  return e;
}

/**
 * For decode functions fed the caller's bytes: a malformed message is bad input (a RangeError
 * naming `field`), not a reply gone wrong. Other errors pass through. @internal
 */
export function badBytes(op: string, field: string, e: unknown): unknown {
  const what = e instanceof VnetlinkError ? malformedWhat.get(e) : undefined;
  return what === undefined ? e : new RangeError(`${op}: ${field}: is not a well-formed message (${what})`);
}
