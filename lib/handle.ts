import { setRootFactory } from './core.js';
import { fromNative } from './errors.js';
import { native, trace, type NativeHandle } from './native.js';
import * as v from './validate.js';
import { LinkOps } from './link.js';
import { AddrOps } from './addr.js';
import { RouteOps } from './route.js';
import { SysctlOps } from './sysctl.js';
import { NftOps } from './nft.js';
import { NetworkOps } from './network.js';
import { BridgeOps } from './bridge.js';
import { TapOps } from './tap.js';
import { MacvtapOps } from './macvtap.js';
import { Monitor, type MonitorOptions } from './monitor.js';
import { TcOps } from './tc.js';
import { NeighOps, FdbOps } from './neigh.js';
import { RuleOps } from './rule.js';
import { GenlOps, WireguardOps } from './wireguard.js';

export interface OpenOptions {
  /**
   * The network namespace this handle works in: a name (`/run/netns/NAME`), a path such as
   * `/proc/PID/ns/net`, an open fd, or a `Netns`. Default: the caller's namespace.
   */
  netns?: v.NetnsRef;
}

/**
 * A handle: all its work happens inside one network namespace, on one native thread that
 * entered that namespace once. Calls are queued to that thread in order and never block
 * the event loop. Close it with `close()` or `await using`.
 *
 * @example
 * await using nl = await open({ netns: 'demo' });
 * await nl.link.add({ kind: 'veth', name: 'v0', peer: { name: 'v1' } });
 */
export class Handle {
  /** Links: `ip link`. */
  readonly link: LinkOps;
  /** Addresses: `ip addr`. */
  readonly addr: AddrOps;
  /** Routes: `ip route`. */
  readonly route: RouteOps;
  /** Namespace-local sysctls under net.*. */
  readonly sysctl: SysctlOps;
  /** nftables: `nft`, over nfnetlink, one atomic batch per call. */
  readonly nft: NftOps;
  /** NAT networks the way libvirt builds its "default" network. */
  readonly network: NetworkOps;
  /** Bridges: `brctl show`, `bridge link set`. */
  readonly bridge: BridgeOps;
  /** tun/tap devices with their queue fds. */
  readonly tap: TapOps;
  /** The guest side of macvtap links (`/dev/tapN`, opened safely). */
  readonly macvtap: MacvtapOps;
  /** Traffic control: `tc qdisc|class|filter`, and per-device bandwidth (`shape`). */
  readonly tc: TcOps;
  /** Neighbours (ARP/NDP): `ip neigh`. */
  readonly neigh: NeighOps;
  /** The bridge and VXLAN forwarding database: `bridge fdb`. */
  readonly fdb: FdbOps;
  /** Policy routing rules: `ip rule`. */
  readonly rule: RuleOps;
  /** Generic netlink families, resolved by name. */
  readonly genl: GenlOps;
  /** WireGuard device configuration: `wg set`, `wg show`. */
  readonly wireguard: WireguardOps;
  /** The namespace this handle works in, as given to `open` (undefined: the caller's). */
  readonly netns: string | number | undefined;

  #native: NativeHandle;
  #monitors = new Set<Monitor>();
  #closed = false;
  #closing: Promise<void> | undefined;

  /** @internal use `open()` */
  constructor(nh: NativeHandle, netns: string | number | undefined) {
    this.#native = nh;
    this.netns = netns;
    this.link = new LinkOps(this);
    this.addr = new AddrOps(this);
    this.route = new RouteOps(this);
    this.sysctl = new SysctlOps(this);
    this.nft = new NftOps(this);
    this.network = new NetworkOps(this);
    this.bridge = new BridgeOps(this);
    this.tap = new TapOps(this);
    this.macvtap = new MacvtapOps(this);
    this.tc = new TcOps(this);
    this.neigh = new NeighOps(this);
    this.fdb = new FdbOps(this);
    this.rule = new RuleOps(this);
    this.genl = new GenlOps(this);
    this.wireguard = new WireguardOps(this);
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * @internal Runs a registered native operation on this handle's namespace thread.
   * Rejections become NetlinkError tagged with `op`.
   */
  async _call<T = any>(op: string, args: object = {}, nativeOp = op): Promise<T> {
    if (this.#closed) throw v.typeError(op, 'handle', 'is closed');
    if (trace.enabled) trace('call %s%s %s', op, nativeOp === op ? '' : ` (${nativeOp})`, traceArgs(args));
    try {
      const r = (await this.#native.call(nativeOp, args)) as T;
      if (trace.enabled) trace('done %s', op);
      return r;
    } catch (e) {
      const err = fromNative(op, e, args);
      if (trace.enabled) trace('failed %s: %s', op, err.message);
      throw err;
    }
  }

  /**
   * Watches this namespace's links, addresses, routes and neighbours (see `Monitor`).
   * Closing the handle closes its monitors. Equivalent to: `ip monitor link address route neigh`.
   *
   * @example
   * for await (const ev of nl.monitor({ groups: ['link', 'addr'] })) console.log(ev.type);
   */
  monitor(opts: MonitorOptions = {}): Monitor {
    if (this.#closed) throw v.typeError('monitor', 'handle', 'is closed');
    const m = new Monitor(this, opts);
    this.#monitors.add(m);
    m.once('close', () => this.#monitors.delete(m));
    return m;
  }

  /** Closes the handle's monitors, then its sockets, and joins its thread. Safe to call twice. */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closed = true;
      const mons = [...this.#monitors];
      this.#closing = mons.length
        ? Promise.all(mons.map((m) => m.close())).then(() => this.#native.close())
        : this.#native.close();
    }
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Opens a handle in the caller's namespace or in another one.
 *
 * @example
 * const nl = await open();                     // the caller's namespace
 * const nl2 = await open({ netns: 'demo' });   // by name, path or fd
 */
export async function open(opts: OpenOptions = {}): Promise<Handle> {
  v.object('open', 'options', opts);
  v.knownKeys('open', '', opts as Record<string, unknown>, ['netns']);
  const spec = opts.netns === undefined ? {} : v.netns('open', 'netns', opts.netns);
  const nh = new native.Handle(spec);
  const netnsDesc = opts.netns === undefined ? undefined : typeof opts.netns === 'object' ? opts.netns.path : opts.netns;
  const h = new Handle(nh, netnsDesc);
  try {
    await h._call('open', {}, 'handle.ready');
  } catch (e) {
    await h.close();
    throw e;
  }
  return h;
}

// Secrets (WireGuard private and preshared keys) never reach a trace line.
const SECRET_KEYS = new Set(['privateKey', 'presharedKey']);
function traceArgs(args: object): string {
  try {
    return JSON.stringify(args, (k, val) => (SECRET_KEYS.has(k) && val !== undefined ? '<secret>' : val));
  } catch {
    return '<unprintable>';
  }
}

let root: Handle | undefined;
/** @internal A handle in the process's own namespace for namespace bookkeeping. */
export function rootHandle(): Handle {
  if (!root || root.closed) root = new Handle(new native.Handle({}), undefined);
  return root;
}
setRootFactory(rootHandle);
