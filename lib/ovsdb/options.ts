// Interface `options` as ovs-vswitchd reads them. Most keys are passed through, but the tunnel
// keys are checked here: ovs-vswitchd parses some with atoi/strtol and silently turns garbage into
// 0 (dst_port=abc is port 0, a bad tos is only a log warning), so a typo would make a tunnel that
// never carries a packet. Keys and values must also be printable: they end up in OVS's logs and in
// the files of helpers that read the database (ovs-monitor-ipsec reads paths from these options).
import * as v from '../validate.js';

/** The Interface types that are tunnels (netdev-vport's classes with a remote_ip). */
export const TUNNEL_TYPES: readonly string[] = ['vxlan', 'geneve', 'gre', 'ip6gre', 'erspan', 'ip6erspan', 'stt', 'lisp', 'gtpu', 'bareudp'];

/**
 * Bits of the tunnel key each type puts on the wire (VNI, instance id, GRE key, TEID, STT context;
 * ERSPAN's is its 10-bit session id, and ovs-vswitchd drops every packet of a port whose key is wider).
 */
const KEY_BITS: Record<string, number> = { vxlan: 24, geneve: 24, lisp: 24, stt: 64, erspan: 10, ip6erspan: 10 };

// Printable ASCII and anything above it except DEL and the C1 controls: no newline, NUL, escape.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Checks an Interface's options for its type and returns them unchanged (a null-prototype map).
 * `field` is the caller's name for the map ("options").
 */
export function interfaceOptions(op: string, field: string, type: string | undefined, opts: Record<string, string>): Record<string, string> {
  for (const [k, val] of Object.entries(opts)) {
    if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(k)) throw v.rangeError(op, `${field}.${k}`, 'keys are words of letters, digits, "_", ".", ":" or "-" (at most 64)');
    if (UNPRINTABLE.test(val)) throw v.rangeError(op, `${field}.${k}`, 'must not contain control characters');
  }
  if (type === undefined || !TUNNEL_TYPES.includes(type)) return opts;

  const f = (k: string) => `${field}.${k}`;
  const remote = opts.remote_ip;
  if (remote === undefined) throw v.typeError(op, f('remote_ip'), `a ${type} port needs the remote tunnel endpoint (an address, or "flow")`);
  const remoteFamily = remote === 'flow' ? undefined : tunnelAddress(op, f('remote_ip'), remote);
  const local = opts.local_ip;
  if (local !== undefined) {
    if (local === 'flow') {
      if (remote !== 'flow') throw v.rangeError(op, f('local_ip'), '"flow" needs remote_ip "flow" too');
    } else {
      const fam = tunnelAddress(op, f('local_ip'), local);
      if (remoteFamily && fam !== remoteFamily) throw v.rangeError(op, f('local_ip'), `is ${fam} but remote_ip is ${remoteFamily}`);
    }
  }
  const bits = KEY_BITS[type] ?? 32;
  for (const k of ['key', 'in_key', 'out_key']) if (opts[k] !== undefined) tunnelKey(op, f(k), opts[k], bits);
  if (opts.dst_port !== undefined) decimal(op, f('dst_port'), opts.dst_port, 1n, 65535n);
  if (opts.ttl !== undefined && opts.ttl !== 'inherit') decimal(op, f('ttl'), opts.ttl, 1n, 255n);
  if (opts.tos !== undefined && opts.tos !== 'inherit') {
    // ovs-vswitchd takes only the DSCP bits (a TOS with ECN bits set is logged and dropped, and the
    // tunnel sends with TOS 0): a multiple of 4.
    decimal(op, f('tos'), opts.tos, 0n, 252n);
    if (BigInt(opts.tos) % 4n !== 0n) throw v.rangeError(op, f('tos'), `must be a DSCP value shifted into the TOS byte, a multiple of 4 (got ${JSON.stringify(opts.tos)})`);
  }
  for (const k of ['csum', 'df_default', 'seq']) {
    if (opts[k] !== undefined && opts[k] !== 'true' && opts[k] !== 'false') throw v.rangeError(op, f(k), `must be "true" or "false" (got ${JSON.stringify(opts[k])})`);
  }
  return opts;
}

function tunnelAddress(op: string, field: string, s: string): v.Family {
  const { family } = v.ip(op, field, s);
  // ovs-vswitchd refuses a multicast remote (and a multicast local makes no sense either).
  const multicast = family === 'inet' ? Number(s.split('.')[0]) >= 224 && Number(s.split('.')[0]) <= 239 : /^ff/i.test(s);
  if (multicast) throw v.rangeError(op, field, `must be a unicast address (got ${JSON.stringify(s)})`);
  return family;
}

/**
 * A tunnel key as ovs-vswitchd reads it, with strtoull(s, NULL, 0): "0x2a" is hex, and a leading
 * 0 makes the rest octal ("010" is 8). A decimal with a leading zero is refused rather than let
 * through to mean another key; garbage, which strtoull would read as 0, is refused too.
 */
function tunnelKey(op: string, field: string, s: string, bits: number): void {
  if (s === 'flow') return;
  const max = (1n << BigInt(bits)) - 1n;
  const ok = /^0[xX][0-9a-fA-F]{1,16}$/.test(s) || /^(0|[1-9]\d{0,19})$/.test(s);
  if (!ok || BigInt(s) > max) {
    throw v.rangeError(op, field, `must be "flow", a decimal integer (no leading zero: ovs-vswitchd would read it as octal) or a 0x hex integer, between 0 and ${max} (got ${JSON.stringify(s)})`);
  }
}

/** A decimal integer string within [min, max]; the strings ovs-vswitchd's atoi reads without surprise. */
function decimal(op: string, field: string, s: string, min: bigint, max: bigint): void {
  if (!/^\d{1,20}$/.test(s) || BigInt(s) < min || BigInt(s) > max) {
    throw v.rangeError(op, field, `must be a decimal integer between ${min} and ${max} (got ${JSON.stringify(s)})`);
  }
}
