import type { Handle } from './handle.js';
import * as v from './validate.js';

function key(op: string, k: unknown): string {
  const s = v.str(op, 'key', k, 512);
  // Only net.* sysctls belong to a network namespace; anything else would change the host.
  if (!/^net[./][A-Za-z0-9_.\-/@]+$/.test(s) || s.includes('..') || s.includes('//'))
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
