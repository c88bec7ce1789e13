import os from 'node:os';
import util from 'node:util';

const codeByErrno = new Map<number, string>();
for (const [name, num] of Object.entries(os.constants.errno)) {
  if (!codeByErrno.has(num)) codeByErrno.set(num, name);
}

/** The code Node uses for an errno ('ENODEV' for 19). */
export function errnoCode(errno: number): string {
  return codeByErrno.get(errno) ?? `E${errno}`;
}

/**
 * A refusal from the kernel (or a system call on the way to it).
 *
 * @example
 * try { await nl.link.get('nope'); } catch (e) {
 *   if (e instanceof NetlinkError && e.code === 'ENODEV') { ... }
 * }
 */
export class NetlinkError extends Error {
  /** Node's system-error code, e.g. 'ENODEV', 'EEXIST'. */
  readonly code: string;
  /** The positive errno number. */
  readonly errno: number;
  /** The vnetlink operation that failed, e.g. 'link.get'. */
  readonly op: string;
  /** The kernel's extended-ack message, when it sent one. */
  readonly extack?: string;
  /** Where inside the operation it failed (a syscall or message), for people. */
  readonly detail?: string;

  constructor(op: string, errno: number, detail?: string, extack?: string) {
    const code = errnoCode(errno);
    const text = describe(errno);
    let msg = `${op}: ${text} (${code})`;
    if (detail && detail !== op) msg += ` [${detail}]`;
    if (extack) msg += `: ${extack}`;
    super(msg);
    this.name = 'NetlinkError';
    this.code = code;
    this.errno = errno;
    this.op = op;
    if (extack) this.extack = extack;
    if (detail) this.detail = detail;
  }
}

// errno -> "No such device", from libuv's table (util.getSystemErrorMap keys are negative).
const systemMessages = new Map<number, string>();
for (const [k, v] of (util as any).getSystemErrorMap() as Map<number, [string, string]>) systemMessages.set(-k, v[1]);

function describe(errno: number): string {
  return systemMessages.get(errno) ?? errnoCode(errno);
}

/** Turns a rejection from the native layer into a NetlinkError for `op`. @internal */
export function fromNative(op: string, e: unknown): Error {
  if (e && typeof e === 'object' && typeof (e as { errno?: unknown }).errno === 'number') {
    const n = e as { errno: number; where?: string; extack?: string };
    return new NetlinkError(op, n.errno, n.where, n.extack);
  }
  return e instanceof Error ? e : new Error(String(e));
}
