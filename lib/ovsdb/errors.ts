/**
 * Why an OVSDB call failed. `code` is one of:
 * - the RFC 7047 error of the database, with spaces as dashes: 'constraint-violation',
 *   'referential-integrity-violation', 'resources-exhausted', 'timed-out', 'not-supported',
 *   'aborted', 'not-owner', 'unknown-database', ... (the raw text is in `ovsdbError`);
 * - 'not-found' (a bridge or port named in the call does not exist), 'exists' (it already does);
 * - 'interface-error' (ovs-vswitchd could not open the interface; its text is in `details`);
 * - 'ETIMEDOUT' (ovs-vswitchd did not apply the change in time), 'closed' (the connection went away),
 *   'protocol' (the server sent something that is not OVSDB JSON-RPC);
 * - Node's socket codes on connect: 'ENOENT' (no socket there), 'ECONNREFUSED' (no server behind it),
 *   'EACCES'.
 *
 * @example
 * try { await ovs.addPort('nope', 'vnet0'); } catch (e) {
 *   if (e instanceof OvsdbError && e.code === 'not-found') { ... }
 * }
 */
export class OvsdbError extends Error {
  readonly code: string;
  /** The vnetlink operation, e.g. 'ovsdb.addPort'. */
  readonly op: string;
  /** The database's own error string ("constraint violation"), when it sent one. */
  readonly ovsdbError?: string;
  /** The database's or ovs-vswitchd's explanation, when there is one. */
  readonly details?: string;

  constructor(op: string, code: string, message: string, extra: { ovsdbError?: string; details?: string; cause?: unknown } = {}) {
    super(`${op}: ${message}`, extra.cause !== undefined ? { cause: extra.cause } : undefined);
    this.name = 'OvsdbError';
    this.code = code;
    this.op = op;
    if (extra.ovsdbError !== undefined) this.ovsdbError = extra.ovsdbError;
    if (extra.details !== undefined) this.details = extra.details;
  }
}

/** 'constraint violation' -> 'constraint-violation'. */
export function codeOf(ovsdbError: string): string {
  return ovsdbError.trim().toLowerCase().replace(/\s+/g, '-');
}
