// The guest side of a macvtap: its character device, one fd per queue, opened inside the
// handle's namespace. The macvlan/macvtap link kinds are their table in kinds/macvlan.ts.
import { rootHandle } from './core.js';
import type { Handle } from './handle.js';
import { disownFds, ownFds, stillOwned, vnetOptions, type TapOffloads } from './tap.js';
import * as v from './validate.js';

export { macvlanModes, macvlanFlags, type MacvlanMode, type MacvlanFlag, type MacvlanSpec, type MacvtapSpec, type MacvlanInfo } from './kinds/macvlan.js';

/** Tun offloads the reader of a vnet-header fd promises to handle (TUNSETOFFLOAD); the same as a tap's. */
export type MacvtapOffloads = TapOffloads;

export interface MacvtapOpenOptions {
  /** How many fds (queues) to open, 1–256. Default 1. More than one sets IFF_MULTI_QUEUE. */
  queues?: number;
  /**
   * Frames carry a `virtio_net_hdr` (IFF_VNET_HDR). Default true, as a fresh macvtap fd has
   * it; `false` really clears it, so raw Ethernet frames can be written.
   */
  vnetHdr?: boolean;
  /** The vnet header size (TUNSETVNETHDRSZ): 10, 12 (with num_buffers) or 20 (with hash report). Needs vnetHdr. */
  vnetHdrSize?: 10 | 12 | 20;
  /** Offloads to enable (TUNSETOFFLOAD); needs vnetHdr, and tso/uso need csum. */
  offloads?: MacvtapOffloads;
}

/**
 * The guest side of a macvtap: one fd per queue, non-blocking and close-on-exec.
 * `close()` is required: dropping the object does not close the fds, since the numbers may
 * still be in use elsewhere (a stream wrapping one) and closing them then could hit a reused fd.
 */
export interface MacvtapQueues {
  name: string;
  index: number;
  /**
   * The macvtap's MAC when it was opened. The guest's NIC must use it (QEMU's `mac=`):
   * the macvtap only passes the guest's frames up, and frames down to it, for this address.
   */
  mac: string;
  /** One fd per queue (a read-only array), owned by this object until `close()`. */
  readonly fds: readonly number[];
  /** The character device's major:minor, as the link's own namespace reports it. */
  device: string;
  vnetHdr: boolean;
  vnetHdrSize?: number;
  multiQueue: boolean;
  /** The offloads that took effect (USO is dropped on kernels that refuse it). */
  offloads: Required<MacvtapOffloads>;
  /**
   * Closes every fd this object still owns (on the handle's thread, or the process's own once
   * that is closed): one closed elsewhere whose number now names another file is left alone.
   * Safe to call twice.
   */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The guest side of macvtap links: `nl.macvtap`. */
export class MacvtapOps {
  constructor(private readonly h: Handle) {}

  /**
   * Opens a macvtap's character device once per queue, inside this handle's namespace. The
   * device number comes from the link's own sysfs entry and is opened through a private node
   * (never a possibly stale or foreign `/dev/tapN`), then each fd gets IFF_VNET_HDR /
   * IFF_MULTI_QUEUE set or cleared with TUNSETIFF, as libvirt does.
   * Equivalent to: `exec 3<>/dev/tap$(cat /sys/class/net/macvtap0/ifindex)` (done right).
   *
   * @example
   * await nl.link.add({ kind: 'macvtap', name: 'macvtap0', link: 'eth0', mode: 'bridge', up: true });
   * await using q = await nl.macvtap.open('macvtap0', { queues: 2, vnetHdr: true });
   * // hand q.fds to the VM
   */
  async open(name: string, opts: MacvtapOpenOptions = {}): Promise<MacvtapQueues> {
    const op = 'macvtap.open';
    const args: Record<string, unknown> = { name: v.ifname(op, 'name', name) };
    const o = v.object(op, 'options', opts);
    v.knownKeys(op, 'options', o, ['queues', 'vnetHdr', 'vnetHdrSize', 'offloads']);
    args.queues = o.queues === undefined ? 1 : v.uint(op, 'queues', o.queues, 1, 256);
    Object.assign(args, vnetOptions(op, o, true));
    const r = await this.h._call<Omit<MacvtapQueues, 'close' | typeof Symbol.asyncDispose> & { fds: number[] }>(op, args);
    const h = this.h;
    const owned = ownFds(r.fds);
    let closing: Promise<void> | undefined;
    const close = (): Promise<void> => {
      closing ??= (async () => {
        const fds = stillOwned(owned, r.name);
        const dups = disownFds(owned);
        owned.length = 0;
        // Closing an fd needs no namespace: once our handle is closed, the process's own
        // handle's thread does it, so the event loop never waits on the kernel.
        await (h.closed ? rootHandle() : h)._call('macvtap.close', { fds: [...fds, ...dups] }, 'fd.close');
      })();
      return closing;
    };
    Object.defineProperty(r, 'fds', { value: Object.freeze([...r.fds]), writable: false, enumerable: true });
    return Object.assign(r, { close, [Symbol.asyncDispose]: close });
  }
}
