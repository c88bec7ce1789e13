// Bridges: `brctl show`, bridge port flags (`bridge link set`) and waiting for a port's STP
// state. The bridge link kind itself is its table in kinds/bridge.ts.
import type { Handle } from './handle.js';
import type { Link } from './link.js';
import type { PortState } from './kinds/bridge.js';
import * as v from './validate.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { NetlinkError, TimeoutError, abortError, waitOptions, type WaitOptions } from './errors.js';

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

/** A VLAN on a bridge port (or on the bridge itself), as `bridge vlan add` takes it. */
export interface BridgeVlanSpec {
  /** The VLAN id, 1–4094 (`vid 10`); with `vidEnd`, the first of a range (`vid 20-30`). */
  vid: number;
  /** The last VLAN id of a range, greater than `vid`. */
  vidEnd?: number;
  /** Untagged frames arriving on the port belong to this VLAN (`pvid`); one VLAN, not a range. */
  pvid?: boolean;
  /** Frames of this VLAN leave the port untagged (`untagged`). */
  untagged?: boolean;
  /** Program the device's own VLAN table (`self`: on the bridge, its port toward the host). */
  self?: boolean;
  /** Program the table of the bridge the port belongs to (`master`, what the kernel does when neither is given). */
  master?: boolean;
}

/** What `bridge.vlan.del` takes: the VLAN (or range) and where. */
export type BridgeVlanDelSpec = Pick<BridgeVlanSpec, 'vid' | 'vidEnd' | 'self' | 'master'>;

/** One VLAN of one port, as a line of `bridge -j vlan show` lists it (ranges come one id each). */
export interface BridgeVlan {
  /** The port (or bridge) name and index. */
  port: string;
  index: number;
  /** The bridge a port belongs to (absent on the bridge's own entries). */
  master?: string;
  vid: number;
  /** The port's PVID (`PVID`). */
  pvid: boolean;
  /** Leaves the port untagged (`Egress Untagged`). */
  untagged: boolean;
}

const vlanAddKeys = ['vid', 'vidEnd', 'pvid', 'untagged', 'self', 'master'] as const;
const vlanDelKeys = ['vid', 'vidEnd', 'self', 'master'] as const;

/** Checks a VLAN spec for `bridge.vlan.*` into what the native encoder reads. */
function vlanArgs(op: string, cmd: 'add' | 'del', port: unknown, spec: unknown): Record<string, unknown> {
  const a: Record<string, unknown> = { cmd, dev: v.ifname(op, 'port', port) };
  const s = v.object(op, 'spec', spec);
  v.knownKeys(op, '', s, cmd === 'add' ? vlanAddKeys : vlanDelKeys);
  if (s.vid === undefined) throw v.typeError(op, 'vid', 'is required (a VLAN id, 1-4094)');
  // 0 and 4095 are reserved by 802.1Q; the kernel refuses them with a bare EINVAL.
  a.vid = v.uint(op, 'vid', s.vid, 1, 4094);
  if (s.vidEnd !== undefined) a.vidEnd = v.uint(op, 'vidEnd', s.vidEnd, (a.vid as number) + 1, 4094);
  for (const k of ['pvid', 'untagged', 'self', 'master'] as const) if (s[k] !== undefined) a[k] = v.bool(op, k, s[k]);
  if (a.pvid === true && a.vidEnd !== undefined)
    throw v.rangeError(op, 'pvid', `a range (vid ${a.vid}-${a.vidEnd}) cannot be the PVID: a port has one; give a single vid`);
  return a;
}

/**
 * Bridge per-port VLANs: what `bridge vlan` does. They take effect when the bridge has
 * `vlanFiltering: true` (`ip link set dev br0 type bridge vlan_filtering 1`).
 */
export class BridgeVlanOps {
  constructor(private readonly h: Handle) {}

  async #modify(cmd: 'add' | 'del', port: string, spec: BridgeVlanSpec | BridgeVlanDelSpec): Promise<void> {
    const op = `bridge.vlan.${cmd}`;
    const a = vlanArgs(op, cmd, port, spec);
    // A link that is neither a bridge nor a port of one has no VLAN table to change.
    const l: Link = await this.h._call(op, { name: a.dev }, 'link.get');
    if (l.kind !== 'bridge' && l.port?.kind !== 'bridge' && a.self !== true)
      throw v.rangeError(op, 'port', `${JSON.stringify(l.name)} is a ${l.kind} that is neither a bridge nor a bridge port`);
    try {
      await this.h._call(op, { ...a, op }, 'bridge.vlan.modify');
    } catch (e) {
      // The kernel's answer without CONFIG_BRIDGE_VLAN_FILTERING (and to `self` on a device
      // with no VLAN table of its own) is a bare EOPNOTSUPP: say which.
      if (!(e instanceof NetlinkError) || e.code !== 'EOPNOTSUPP') throw e;
      const why = a.self === true && l.kind !== 'bridge'
        ? `${l.name} (${l.kind}) has no VLAN table of its own (self); its bridge's is master`
        : 'bridge VLANs are not available in this kernel (it is built without CONFIG_BRIDGE_VLAN_FILTERING)';
      throw new NetlinkError(op, e.errno, why, e.extack, l.name);
    }
  }

  /**
   * Adds a VLAN (or a range) to a bridge port. Equivalent to: `bridge vlan add dev vnet0 vid 10 pvid untagged`.
   *
   * @example
   * await nl.bridge.vlan.add('vnet0', { vid: 10, pvid: true, untagged: true });  // an access port of VLAN 10
   * await nl.bridge.vlan.add('eth1', { vid: 20, vidEnd: 30 });                   // a trunk carrying 20-30 tagged
   */
  add(port: string, spec: BridgeVlanSpec): Promise<void> { return this.#modify('add', port, spec); }

  /** Removes a VLAN (or a range) from a port. Equivalent to: `bridge vlan del dev vnet0 vid 10`. */
  del(port: string, spec: BridgeVlanDelSpec): Promise<void> { return this.#modify('del', port, spec); }

  /**
   * The VLANs of every bridge port and bridge, or of one. Equivalent to: `bridge -j vlan show [dev vnet0]`.
   *
   * @example
   * await nl.bridge.vlan.list('vnet0'); // [{ port: 'vnet0', index: 7, master: 'br0', vid: 10, pvid: true, untagged: true }]
   */
  async list(port?: string): Promise<BridgeVlan[]> {
    const op = 'bridge.vlan.list';
    if (port !== undefined) {
      v.ifname(op, 'port', port);
      await this.h._call(op, { name: port }, 'link.get');  // ENODEV for a port that does not exist
    }
    const rows: BridgeVlan[] = await this.h._call(op, {});
    return port === undefined ? rows : rows.filter((r) => r.port === port);
  }

  /** The request `add`/`del` would send, as bytes (seq and port id 0); the port is resolved in the handle's namespace. */
  async encode(cmd: 'add' | 'del', port: string, spec: BridgeVlanSpec): Promise<Buffer> {
    const op = 'bridge.vlan.encode';
    const c = v.oneOf(op, 'cmd', cmd, ['add', 'del'] as const);
    return Buffer.from(await this.h._call<Uint8Array>(op, vlanArgs(op, c, port, spec)));
  }
}

const portFlags = ['hairpin', 'learning', 'flood', 'mcastFlood', 'bcastFlood', 'isolated', 'guard', 'rootBlock', 'fastLeave', 'proxyArp', 'neighSuppress'] as const;

/** Bridges: what `brctl show` and `bridge link` do. */
export class BridgeOps {
  /** Per-port VLANs: `bridge vlan add|del|show`. */
  readonly vlan: BridgeVlanOps;
  constructor(private readonly h: Handle) {
    this.vlan = new BridgeVlanOps(h);
  }

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
