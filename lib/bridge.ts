// Bridges: `brctl show`, bridge port flags (`bridge link set`) and waiting for a port's STP
// state. The bridge link kind itself is its table in kinds/bridge.ts.
import type { Handle } from './handle.js';
import type { Link } from './link.js';
import type { PortState } from './kinds/bridge.js';
import * as v from './validate.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { TimeoutError, abortError, waitOptions, type WaitOptions } from './errors.js';

export type { BridgeSpec, BridgeChanges, BridgeInfo, BridgePort, PortState } from './kinds/bridge.js';

/** One line of `brctl show`, plus each port's STP state. */
export interface BridgeSummary {
  name: string;
  /** The bridge id as brctl prints it: priority and MAC in hex, e.g. '8000.52540082327e'. */
  id: string;
  stp: boolean;
  /** Port names, sorted as brctl lists them. */
  interfaces: string[];
  ports: Array<{ name: string; state?: PortState; index: number }>;
}

/** What `bridge.setPort` changes (`bridge link set dev PORT ...`). Unset fields are not sent. */
export interface BridgePortChanges {
  /** Send frames back out of the port they came in on (reflective relay, for VEPA). */
  hairpin?: boolean;
  /** Learn source MACs on this port. */
  learning?: boolean;
  /** Flood unknown unicast to this port. */
  flood?: boolean;
  mcastFlood?: boolean;
  bcastFlood?: boolean;
  /** An isolated port talks only to non-isolated ports. */
  isolated?: boolean;
  /** STP path cost, 1–65535. */
  cost?: number;
  /** STP port priority, 0–63. */
  priority?: number;
  /** BPDU guard: a BPDU arriving here disables the port. */
  guard?: boolean;
  /** Root block: the port may never become a root port. */
  rootBlock?: boolean;
  fastLeave?: boolean;
  proxyArp?: boolean;
  neighSuppress?: boolean;
}

const portFlags = ['hairpin', 'learning', 'flood', 'mcastFlood', 'bcastFlood', 'isolated', 'guard', 'rootBlock', 'fastLeave', 'proxyArp', 'neighSuppress'] as const;

/** Bridges: what `brctl show` and `bridge link` do. */
export class BridgeOps {
  constructor(private readonly h: Handle) {}

  /**
   * Every bridge with its id, STP state and ports (one link dump).
   * Equivalent to: `brctl show` (and `bridge link` for the port states).
   *
   * @example
   * await nl.bridge.show(); // [{ name: 'virbr0', id: '8000.52540082327e', stp: true, interfaces: ['vnet0'], ports: [...] }]
   */
  async show(name?: string): Promise<BridgeSummary[]> {
    const op = 'bridge.show';
    if (name !== undefined) v.ifname(op, 'name', name);
    const links: Link[] = await this.h._call('bridge.show', {}, 'link.list');
    const out: BridgeSummary[] = [];
    for (const l of links) {
      if (l.kind !== 'bridge' || (name !== undefined && l.name !== name)) continue;
      const ports = links
        .filter((p) => p.masterIndex === l.index && p.port?.kind === 'bridge')
        .map((p) => ({ name: p.name, index: p.index, state: p.port?.kind === 'bridge' ? p.port.state : undefined }))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      out.push({ name: l.name, id: l.info.bridgeId ?? '', stp: Boolean(l.info.stp), interfaces: ports.map((p) => p.name), ports });
    }
    if (name !== undefined && out.length === 0) {
      const exists = links.some((l) => l.name === name);
      throw v.rangeError(op, 'name', exists ? `${JSON.stringify(name)} is not a bridge` : `no link named ${JSON.stringify(name)}`);
    }
    return out;
  }

  /**
   * Changes a bridge port's flags. Equivalent to: `bridge link set dev vnet0 hairpin on learning on cost 10`.
   *
   * @example
   * await nl.bridge.setPort('vnet0', { hairpin: true, learning: true, flood: true, isolated: false });
   */
  async setPort(port: string, changes: BridgePortChanges): Promise<void> {
    const op = 'bridge.setPort';
    const args: Record<string, unknown> = { name: v.ifname(op, 'port', port) };
    const c = v.object(op, 'changes', changes);
    v.knownKeys(op, 'changes', c, [...portFlags, 'cost', 'priority']);
    for (const k of portFlags) if (c[k] !== undefined) args[k] = v.bool(op, k, c[k]);
    if (c.cost !== undefined) args.cost = v.uint(op, 'cost', c.cost, 1, 65535);
    if (c.priority !== undefined) args.priority = v.uint(op, 'priority', c.priority, 0, 63);
    if (Object.keys(args).length === 1) throw v.typeError(op, 'changes', 'names nothing to change');
    await this.h._call(op, args);
  }

  /**
   * Resolves when a bridge port reaches an STP state (default 'forwarding'), polling
   * IFLA_BRPORT_STATE; with STP on that takes about twice the forward delay. Rejects with a
   * `TimeoutError` (`code: 'ETIMEDOUT'`) after `timeout` ms (default 30 s; a number is taken as
   * the timeout), or with an `AbortError` when `signal` aborts.
   *
   * @example
   * await nl.bridge.waitPort('vnet0', 'forwarding', { timeout: 10_000, signal: AbortSignal.timeout(5_000) });
   */
  async waitPort(port: string, state: PortState = 'forwarding', opts: number | WaitOptions = {}): Promise<void> {
    const op = 'bridge.waitPort';
    v.ifname(op, 'port', port);
    v.oneOf(op, 'state', state, ['disabled', 'listening', 'learning', 'forwarding', 'blocking']);
    const { timeout, signal } = waitOptions(op, typeof opts === 'number' ? { timeout: opts } : opts, 30_000);
    const end = Date.now() + timeout;
    let last: string | undefined;
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      const l: Link = await this.h._call(op, { name: port }, 'link.get');
      last = l.port?.kind === 'bridge' ? l.port.state : undefined;
      if (last === state) return;
      if (Date.now() > end) throw new TimeoutError(op, `${port} is ${last ?? 'not a bridge port'}, not ${state},`, timeout);
      await sleep(100, undefined, { signal }).catch(() => { throw abortError(signal!); });
    }
  }
}
