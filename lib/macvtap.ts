// macvlan and macvtap links (`ip link add ... type macvtap mode vepa`) and the guest side of a
// macvtap: its character device, one fd per queue, opened inside the handle's namespace.
import { rootHandle, type Handle } from './handle.js';
import { NetlinkError } from './errors.js';
import { registerKind, registerSetField, type Link, type LinkBaseSpec, type LinkOf } from './link.js';
import { ownFds, stillOwned, vnetOptions, type TapOffloads } from './tap.js';
import * as v from './validate.js';

/**
 * How a macvlan/macvtap treats traffic between siblings on the same lower link:
 * - `vepa` (the default): everything goes out to the external switch; siblings meet only if
 *   that switch reflects frames back (hairpin / reflective relay).
 * - `bridge`: siblings reach each other directly inside the host.
 * - `private`: siblings never reach each other. The kernel drops a sibling's copy of a
 *   reflected broadcast (so ARP, and so IP, fail even with hairpin on), but a hairpinned
 *   *unicast* frame to a sibling's MAC is still delivered.
 * - `passthru`: one link owns the lower device (its MAC follows the guest's).
 * - `source`: only frames from the listed source MACs (`macs`) are received.
 */
export type MacvlanMode = 'vepa' | 'bridge' | 'private' | 'passthru' | 'source';
export const macvlanModes: readonly MacvlanMode[] = ['vepa', 'bridge', 'private', 'passthru', 'source'];

/**
 * `noPromisc`: in passthru mode, do not put the lower device in promiscuous mode
 * (MACVLAN_FLAG_NOPROMISC). `nodst`: in source mode, skip the destination-MAC match for
 * frames that a source entry already claimed (MACVLAN_FLAG_NODST).
 */
export type MacvlanFlag = 'noPromisc' | 'nodst';
export const macvlanFlags: readonly MacvlanFlag[] = ['noPromisc', 'nodst'];

interface MacvlanCommonSpec extends LinkBaseSpec {
  /** The lower device (uplink) in this namespace. */
  link: string;
  /** Default: `vepa` (the kernel's default too). */
  mode?: MacvlanMode;
  flags?: MacvlanFlag[];
  /** Source mode only: the source MACs whose frames this link receives. */
  macs?: string[];
}
/** `ip link add NAME link LOWER type macvlan mode MODE`. */
export interface MacvlanSpec extends MacvlanCommonSpec { kind: 'macvlan' }
/** `ip link add NAME link LOWER type macvtap mode MODE`; the name may be a pattern (`macvtap%d`). */
export interface MacvtapSpec extends MacvlanCommonSpec { kind: 'macvtap' }

declare module './link.js' {
  interface LinkKindSpecs {
    macvlan: MacvlanSpec;
    macvtap: MacvtapSpec;
  }
}

/** What `link.get` reports in `info` for a macvlan or macvtap. */
export interface MacvlanInfo {
  mode: MacvlanMode;
  flags: MacvlanFlag[];
  /** Source mode: the MAC list and its length. */
  macs?: string[];
  macCount?: number;
  bcQueueLen?: number;
  bcQueueLenUsed?: number;
}

const MAX_SOURCE_MACS = 5000;

function normMacs(op: string, field: string, value: unknown): string[] {
  if (!Array.isArray(value)) throw v.typeError(op, field, `must be an array of MAC addresses (got ${JSON.stringify(value)})`);
  // The list travels in one netlink nest, whose length is 16 bits (12 bytes a MAC).
  if (value.length > MAX_SOURCE_MACS) throw v.rangeError(op, field, `at most ${MAX_SOURCE_MACS} MACs fit in one request (got ${value.length})`);
  return value.map((m, i) => v.mac(op, `${field}[${i}]`, m));
}

function normalize(spec: Record<string, unknown>, op: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (spec.link === undefined) throw v.typeError(op, 'link', 'is required: the lower device (uplink) in this namespace');
  out.link = v.ifname(op, 'link', spec.link);
  if (spec.mode !== undefined) out.mode = v.oneOf(op, 'mode', spec.mode, macvlanModes);
  if (spec.flags !== undefined) {
    if (!Array.isArray(spec.flags)) throw v.typeError(op, 'flags', `must be an array of ${macvlanFlags.join(', ')} (got ${JSON.stringify(spec.flags)})`);
    out.flags = [...new Set(spec.flags.map((f, i) => v.oneOf(op, `flags[${i}]`, f, macvlanFlags)))];
  }
  if (spec.macs !== undefined) {
    if (spec.mode !== 'source') throw v.rangeError(op, 'macs', "is only meaningful with mode: 'source'");
    out.macs = normMacs(op, 'macs', spec.macs);
  }
  return out;
}

// The kernel refuses passthru conflicts with a bare EINVAL; say which link is in the way.
async function explainAddError(h: Handle, spec: Record<string, unknown>, err: unknown): Promise<Error | undefined> {
  if (!(err instanceof NetlinkError) || err.code !== 'EINVAL' || err.extack) return undefined;
  const links = await h.link.list();
  const isMv = (l: Link): l is LinkOf<'macvlan' | 'macvtap'> => l.kind === 'macvlan' || l.kind === 'macvtap';
  const lower = links.find((l) => l.name === spec.link);
  if (!lower) return undefined;
  let why: string | undefined;
  if (isMv(lower) && lower.info.mode === 'passthru') {
    why = `lower link ${lower.name} is itself a passthru ${lower.kind}, which owns its uplink alone; nothing can be stacked on it`;
  } else {
    const realIdx = isMv(lower) && lower.linkIndex ? lower.linkIndex : lower.index;
    const siblings = links.filter(isMv).filter((l) => l.linkIndex === realIdx);
    const owner = siblings.find((l) => l.info.mode === 'passthru');
    if (owner) why = `${lower.name} is owned by passthru ${owner.kind} ${owner.name}; a passthru link allows no other macvlan/macvtap on its uplink`;
    else if (spec.mode === 'passthru' && siblings.length)
      why = `passthru needs ${lower.name} to itself, but it already carries ${siblings.map((l) => l.name).join(', ')}`;
  }
  return why ? new NetlinkError('link.add', err.errno, why) : undefined;
}

for (const kind of ['macvlan', 'macvtap']) registerKind(kind, ['link', 'mode', 'flags', 'macs'], normalize, { patterns: true, explainAddError });

/** `link.set(name, { mode })`: `ip link set NAME type macvtap mode bridge` (not to or from passthru). */
registerSetField(['macvlan', 'macvtap'], 'mode', (value, op) => ({ mode: v.oneOf(op, 'mode', value, macvlanModes) }));
/** `link.set(name, { macs })`: replaces a source-mode link's MAC list (`macaddr set ...`). */
registerSetField(['macvlan', 'macvtap'], 'macs', (value, op) => ({ macs: normMacs(op, 'macs', value) }));

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
        owned.length = 0;
        // Closing an fd needs no namespace: once our handle is closed, the process's own
        // handle's thread does it, so the event loop never waits on the kernel.
        await (h.closed ? rootHandle() : h)._call('macvtap.close', { fds }, 'fd.close');
      })();
      return closing;
    };
    Object.defineProperty(r, 'fds', { value: Object.freeze([...r.fds]), writable: false, enumerable: true });
    return Object.assign(r, { close, [Symbol.asyncDispose]: close });
  }
}
