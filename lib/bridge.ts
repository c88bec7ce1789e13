// Bridges: the `bridge` link kind (IFLA_BR_*), bridge ports (IFLA_BRPORT_*) and a
// `brctl show`-like summary.
import type { Handle } from './handle.js';
import { registerKind, registerSetField, type Link, type LinkBaseSpec } from './link.js';
import * as v from './validate.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { TimeoutError, abortError, waitOptions, type WaitOptions } from './errors.js';

/** A Linux bridge. Times are in seconds (the kernel keeps centiseconds). */
export interface BridgeSpec extends LinkBaseSpec {
  kind: 'bridge';
  /** Spanning tree on/off (`stp_state`). With STP on the kernel needs forwardDelay 2–30 s. */
  stp?: boolean;
  /** Seconds a port spends listening and learning before it forwards (`forward_delay`). */
  forwardDelay?: number;
  /** STP hello interval in seconds (`hello_time`). */
  helloTime?: number;
  /** STP max message age in seconds (`max_age`). */
  maxAge?: number;
  /** Bridge priority, the first half of the bridge id (`priority`, default 32768 = 0x8000). */
  priority?: number;
  /** Seconds a learned MAC stays in the FDB (`ageing_time`). */
  ageingTime?: number;
  /** 802.1Q VLAN filtering (`vlan_filtering`). */
  vlanFiltering?: boolean;
  /** The PVID new ports get (`vlan_default_pvid`); 0 means none. */
  defaultPvid?: number;
  /** IGMP/MLD snooping (`mcast_snooping`). */
  mcastSnooping?: boolean;
}

declare module './link.js' {
  interface LinkKindSpecs {
    bridge: BridgeSpec;
  }
}

/** Bridge settings `link.set` can change on an existing bridge. */
export interface BridgeChanges {
  stp?: boolean;
  forwardDelay?: number;
  helloTime?: number;
  maxAge?: number;
  ageingTime?: number;
  vlanFiltering?: boolean;
  defaultPvid?: number;
  mcastSnooping?: boolean;
}

// clock_t in the kernel is a u32 of centiseconds.
const maxSeconds = 0xffffffff / 100;
const bridgeFields: Record<string, (op: string, field: string, x: unknown) => unknown> = {
  stp: v.bool,
  forwardDelay: (op, f, x) => v.num(op, f, x, 0, maxSeconds),
  helloTime: (op, f, x) => v.num(op, f, x, 0, maxSeconds),
  maxAge: (op, f, x) => v.num(op, f, x, 0, maxSeconds),
  ageingTime: (op, f, x) => v.num(op, f, x, 0, maxSeconds),
  vlanFiltering: v.bool,
  defaultPvid: (op, f, x) => v.uint(op, f, x, 0, 4094),
  mcastSnooping: v.bool,
};

registerKind('bridge', [...Object.keys(bridgeFields), 'priority'], (spec, op) => {
  const out: Record<string, unknown> = {};
  for (const [k, check] of Object.entries(bridgeFields)) if (spec[k] !== undefined) out[k] = check(op, k, spec[k]);
  if (spec.priority !== undefined) out.priority = v.uint(op, 'priority', spec.priority, 0, 65535);
  return out;
});
// `priority` is left out of link.set on purpose: the word is too generic to claim for every kind.
for (const [k, check] of Object.entries(bridgeFields)) registerSetField(['bridge'], k, (x, op) => ({ [k]: check(op, k, x) }));

/** STP state of a bridge port, as `bridge link` prints it. */
export type PortState = 'disabled' | 'listening' | 'learning' | 'forwarding' | 'blocking';

/** A bridge port's settings (decoded from IFLA_BRPORT_*), found on `link.port` of an enslaved link. */
export interface BridgePort {
  kind: 'bridge';
  state?: PortState;
  priority?: number;
  cost?: number;
  hairpin?: boolean;
  guard?: boolean;
  rootBlock?: boolean;
  fastLeave?: boolean;
  learning?: boolean;
  flood?: boolean;
  mcastFlood?: boolean;
  bcastFlood?: boolean;
  proxyArp?: boolean;
  neighSuppress?: boolean;
  isolated?: boolean;
  id?: number;
  no?: number;
  designatedRoot?: string;
  designatedBridge?: string;
}

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
