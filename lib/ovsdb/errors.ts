import { VnetlinkError } from '../errors.js';

/**
 * Why an OVSDB call failed (an aborted call rejects with Node's AbortError instead). `code` is one of:
 * - the RFC 7047 error of the database, with spaces as dashes: 'constraint-violation',
 *   'referential-integrity-violation', 'resources-exhausted', 'timed-out', 'not-supported',
 *   'aborted', 'not-owner', 'unknown-database', ... (the raw text is in `ovsdbError`);
 * - 'not-found' (a bridge or port named in the call does not exist), 'exists' (it already does);
 * - 'busy' (a setting vnetlink did not make holds what the call would change: a QoS on the
 *   port, ingress policing on its interface);
 * - 'interface-error' (ovs-vswitchd could not open the interface; its text is in `details`);
 * - 'ETIMEDOUT' (the call's deadline passed: the server did not answer, or ovs-vswitchd did not
 *   apply the change in time), 'closed' (the connection went away), 'protocol' (the server sent
 *   something that is not OVSDB JSON-RPC, a reply of the wrong shape, or flooded us without
 *   reading; the connection is closed then), 'overflow' (a monitor's consumer fell more than
 *   65,536 events behind; the monitor stopped);
 * - Node's socket codes on connect: 'ENOENT' (no socket there), 'ECONNREFUSED' (no server behind it),
 *   'EACCES'.
 *
 * @example
 * try { await ovs.addPort('nope', 'vnet0'); } catch (e) {
 *   if (e instanceof OvsdbError && e.code === 'not-found') { ... }
 * }
 */
export class OvsdbError extends VnetlinkError {
  /** The database's own error string ("constraint violation"), when it sent one. */
  readonly ovsdbError?: string;
  /** The database's or ovs-vswitchd's explanation, when there is one. */
  readonly details?: string;

  constructor(op: string, code: string, message: string, extra: { ovsdbError?: string; details?: string; cause?: unknown } = {}) {
    super(op, code, `${op}: ${message}`, { cause: extra.cause });
    this.name = 'OvsdbError';
    if (extra.ovsdbError !== undefined) this.ovsdbError = extra.ovsdbError;
    if (extra.details !== undefined) this.details = extra.details;
  }
}

/** 'constraint violation' -> 'constraint-violation'. */
export function codeOf(ovsdbError: string): string {
  return ovsdbError.trim().toLowerCase().replace(/\s+/g, '-');
}

/**
 * The error an aborted call rejects with, shaped like Node's own (`name` 'AbortError', `code`
 * 'ABORT_ERR', the signal's reason as `cause`), as `fs`, `timers/promises` and `events.once` do.
 */
export function abortError(signal: AbortSignal): Error {
  const e = new Error('The operation was aborted', { cause: signal.reason }) as Error & { code: string };
  e.name = 'AbortError';
  e.code = 'ABORT_ERR';
  return e;
}

/**
 * A short, bounded rendering of a value a server sent, for error messages: never recursion
 * deeper than a few levels and never more than `max` characters, whatever the server sent
 * (JSON.stringify of a 200,000-deep array overflows the stack).
 */
export function preview(v: unknown, max = 200): string {
  let out = '';
  const walk = (x: unknown, depth: number): void => {
    if (out.length > max) return;
    if (Array.isArray(x)) {
      if (depth > 4) { out += '[…]'; return; }
      out += '[';
      for (let i = 0; i < x.length && out.length <= max; i++) { if (i) out += ','; walk(x[i], depth + 1); }
      out += ']';
    } else if (x !== null && typeof x === 'object') {
      if (depth > 4) { out += '{…}'; return; }
      out += '{';
      let first = true;
      for (const k of Object.keys(x)) {
        if (out.length > max) break;
        if (!first) out += ',';
        first = false;
        out += `${JSON.stringify(k.length > max ? k.slice(0, max) : k)}:`;
        walk((x as Record<string, unknown>)[k], depth + 1);
      }
      out += '}';
    } else if (typeof x === 'string') {
      out += JSON.stringify(x.length > max ? x.slice(0, max) : x);
    } else {
      out += String(x);
    }
  };
  walk(v, 0);
  return out.length > max ? `${out.slice(0, max)}…` : out;
}
