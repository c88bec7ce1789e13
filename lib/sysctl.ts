import type { Handle } from './handle.js';
import * as v from './validate.js';

function key(op: string, k: unknown): string {
  const s = v.str(op, 'key', k, 512);
  // Only net.* sysctls belong to a network namespace; anything else would change the host.
  // Checked component by component, as the native side will read it: in the dotted form a "/"
  // stands for a "." inside a component (interface "vs.." is "net.ipv6.conf.vs//.accept_ra").
  const slashes = s.indexOf('/') !== -1 && s.indexOf('/') < (s.indexOf('.') === -1 ? Infinity : s.indexOf('.'));
  const parts = slashes ? s.split('/') : s.split('.').map((c) => c.replace(/\//g, '.'));
  if (!/^[A-Za-z0-9_.\-/@]+$/.test(s) || parts[0] !== 'net' || parts.length < 2 || parts.some((c) => c === '' || c === '.' || c === '..'))
    throw v.rangeError(op, 'key', `must be a net.* sysctl such as "net.ipv4.ip_forward" (got ${JSON.stringify(s)})`);
  return s;
}

/** Namespace-local sysctls (`sysctl -w net.ipv4.ip_forward=1` run inside the namespace). */
export class SysctlOps {
  constructor(private readonly h: Handle) {}

  /** Reads a net.* sysctl. Equivalent to: `sysctl -n net.ipv4.ip_forward`. */
  async get(k: string): Promise<string> {
    return this.h._call('sysctl.get', { key: key('sysctl.get', k) });
  }

  /** Writes a net.* sysctl. Equivalent to: `sysctl -w net.ipv4.ip_forward=1`. */
  async set(k: string, value: string | number | boolean): Promise<void> {
    const op = 'sysctl.set';
    const kk = key(op, k);
    let val: string;
    if (typeof value === 'boolean') val = value ? '1' : '0';
    else if (typeof value === 'number') val = String(v.num(op, 'value', value, -Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER));
    else val = v.str(op, 'value', value, 4096);
    await this.h._call(op, { key: kk, value: val });
  }
}
