// tun/tap devices with their queue fds (/dev/net/tun ioctls on the handle's namespace thread).
import fs from 'node:fs';
import { rootHandle } from './core.js';
import type { Handle } from './handle.js';
import { native } from './native.js';
import * as v from './validate.js';

/**
 * @internal An fd this library opened, with what the number referred to then: an fd number is
 * reused as soon as it is closed, so only a number that still names the same open file (and,
 * for a tun/macvtap fd, the same device) is ours to close. `id` names the addon's record of it,
 * which keeps a private dup so kcmp(2) can tell the very open file (see native/napi/addon.cc).
 */
export interface OwnedFd { fd: number; id: number; dev: bigint; ino: bigint; rdev: bigint }

/**
 * @internal Records the identity of fds just opened for us. The addon records them too, for
 * this thread's environment: if it ends (a worker terminated, or exiting without close())
 * with them still open, it closes them, as the process's end would have. Every owned fd is
 * handed back with `disownFds` once its object closes it.
 */
export function ownFds(fds: readonly number[]): OwnedFd[] {
  // The addon's own fstat gives the identity (id 0, all zeros: the fd was not open, which no
  // later check then matches).
  const recs: Array<{ id: number; dev: bigint; ino: bigint; rdev: bigint }> = native.fdOwner.own([...fds]);
  return fds.map((fd, i) => {
    const r = recs[i] ?? { id: 0, dev: 0n, ino: 0n, rdev: 0n };
    return { fd, id: r.id, dev: r.dev, ino: r.ino, rdev: r.rdev };
  });
}

/**
 * @internal The owner is closing these (or they were closed elsewhere): the environment's
 * teardown leaves them alone. Returns the addon's private dups of them, which the caller
 * closes together with the fds, off the event loop (a dup may be a tap's last reference).
 */
export function disownFds(owned: readonly OwnedFd[]): number[] {
  return native.fdOwner.disown(owned.map((o) => o.id));
}

/**
 * @internal The fds of `owned` that are still ours: the very open file we got (kcmp against
 * the addon's dup), or, where kcmp cannot say, open, the same inode as when we got them, and
 * attached to device `name`. A number closed behind our back and reused by another file is
 * left alone; so is one reused by another queue of the same tap (every /dev/net/tun fd shares
 * one inode), which only kcmp can tell. A queue detached with TUNSETQUEUE answers no name; its
 * inode is all the fallback has to check.
 */
export function stillOwned(owned: readonly OwnedFd[], name: string): number[] {
  const same: Array<boolean | null> = native.fdOwner.same(owned.map((o) => o.id));
  const out: number[] = [];
  owned.forEach((o, i) => {
    if (same[i] === false) return;
    if (same[i] === true) { out.push(o.fd); return; }
    let st: fs.BigIntStats;
    try { st = fs.fstatSync(o.fd, { bigint: true }); } catch { return; }
    if (st.dev !== o.dev || st.ino !== o.ino || st.rdev !== o.rdev) return;
    let probe: { tun: boolean; name?: string } | undefined;
    try { probe = native.Forwarder.probe(o.fd); } catch { probe = undefined; }
    if (probe?.tun && probe.name !== name) return;
    out.push(o.fd);
  });
  return out;
}

/** Offloads the fd reader promises to handle (TUNSETOFFLOAD), in the kernel's words. Needs `vnetHdr`. */
export interface TapOffloads {
  csum?: boolean;
  tso4?: boolean;
  tso6?: boolean;
  tsoEcn?: boolean;
  /** UDP segmentation offload; dropped silently where the kernel does not accept it. */
  uso4?: boolean;
  uso6?: boolean;
}

export interface TapSpec {
  /** The name, or a pattern such as 'vnet%d' that the kernel fills in (see `Tap.name`). */
  name: string;
  /** 'tap' (Ethernet frames, default) or 'tun' (IP packets). */
  mode?: 'tap' | 'tun';
  /** Queues, 1–256; more than one makes a multi-queue device with one fd per queue. */
  queues?: number;
  /** Multi-queue even with one queue (so queues can be added later). Implied by queues > 1. */
  multiQueue?: boolean;
  /** Prefix each frame with a virtio-net header (IFF_VNET_HDR). */
  vnetHdr?: boolean;
  /** The header size: 10 (virtio-net legacy), 12 (mergeable rx buffers) or 20 (with hash). */
  vnetHdrSize?: 10 | 12 | 20;
  offloads?: TapOffloads;
  /**
   * Keep the device after its fds close (TUNSETPERSIST); remove it with `link.del`. When the
   * name already belongs to a persistent tap, create attaches to it (flags must match);
   * `persist: false` then clears persistence.
   */
  persist?: boolean;
  /** The user and group allowed to attach to the device (TUNSETOWNER / TUNSETGROUP). */
  uid?: number;
  gid?: number;
  /** Default for a new tap: random, starting with fe: so it never becomes a bridge's address. */
  mac?: string;
  mtu?: number;
  txqueuelen?: number;
  /** The link group (IFLA_GROUP), as for any link. */
  group?: number;
  /** A bridge (or bond) to enslave the tap to. */
  master?: string;
  up?: boolean;
}

const offloadKeys = ['csum', 'tso4', 'tso6', 'tsoEcn', 'uso4', 'uso6'] as const;
const specKeys = ['name', 'mode', 'queues', 'multiQueue', 'vnetHdr', 'vnetHdrSize', 'offloads', 'persist', 'uid', 'gid', 'mac', 'mtu', 'txqueuelen', 'group', 'master', 'up'];
export const MAX_TAP_QUEUES = 256;

/**
 * @internal The vnet-header options every guest fd takes (tap.create, macvtap.open): vnetHdr,
 * vnetHdrSize and offloads, with the kernel's rules checked before any syscall.
 */
export function vnetOptions(op: string, s: Record<string, unknown>, vnetHdrDefault: boolean):
  { vnetHdr: boolean; vnetHdrSize?: number; offloads?: Record<string, boolean> } {
  const out: { vnetHdr: boolean; vnetHdrSize?: number; offloads?: Record<string, boolean> } = {
    vnetHdr: s.vnetHdr === undefined ? vnetHdrDefault : v.bool(op, 'vnetHdr', s.vnetHdr),
  };
  if (s.vnetHdrSize !== undefined) {
    if (!out.vnetHdr) throw v.rangeError(op, 'vnetHdrSize', 'needs vnetHdr: true');
    const n = v.uint(op, 'vnetHdrSize', s.vnetHdrSize);
    if (![10, 12, 20].includes(n)) throw v.rangeError(op, 'vnetHdrSize', `must be 10, 12 or 20 (got ${n})`);
    out.vnetHdrSize = n;
  }
  if (s.offloads !== undefined) {
    const o = v.object(op, 'offloads', s.offloads);
    v.knownKeys(op, 'offloads', o, offloadKeys);
    const off: Record<string, boolean> = {};
    for (const k of offloadKeys) if (o[k] !== undefined) off[k] = v.bool(op, `offloads.${k}`, o[k]);
    if (Object.values(off).some(Boolean) && !out.vnetHdr)
      throw v.rangeError(op, 'offloads', 'need vnetHdr: true (the header is how the kernel describes offloaded frames)');
    if ((off.tso4 || off.tso6 || off.tsoEcn || off.uso4 || off.uso6) && !off.csum)
      throw v.rangeError(op, 'offloads', 'segmentation offloads (tso*, uso*) need csum: true');
    if (off.tsoEcn && !off.tso4 && !off.tso6) throw v.rangeError(op, 'offloads.tsoEcn', 'needs tso4 or tso6 (the kernel refuses it alone)');
    out.offloads = off;
  }
  return out;
}

function normalize(op: string, spec: unknown): Record<string, unknown> {
  const s = v.object(op, 'spec', spec);
  v.knownKeys(op, '', s, specKeys);
  const out: Record<string, unknown> = { name: v.ifname(op, 'name', s.name, true) };
  const mode = s.mode === undefined ? 'tap' : v.oneOf(op, 'mode', s.mode, ['tap', 'tun'] as const);
  out.mode = mode;
  out.queues = s.queues === undefined ? 1 : v.uint(op, 'queues', s.queues, 1, MAX_TAP_QUEUES);
  if (s.multiQueue !== undefined) out.multiQueue = v.bool(op, 'multiQueue', s.multiQueue);
  if (s.multiQueue === false && (out.queues as number) > 1) throw v.rangeError(op, 'multiQueue', `cannot be false with queues: ${out.queues}`);
  Object.assign(out, vnetOptions(op, s, false));
  if (s.persist !== undefined) out.persist = v.bool(op, 'persist', s.persist);
  if (s.uid !== undefined) out.uid = v.uint(op, 'uid', s.uid, 0, 0xfffffffe);
  if (s.gid !== undefined) out.gid = v.uint(op, 'gid', s.gid, 0, 0xfffffffe);
  if (s.mac !== undefined) {
    if (mode === 'tun') throw v.rangeError(op, 'mac', 'a tun device (IP packets) has no MAC address');
    out.mac = v.mac(op, 'mac', s.mac);
  }
  if (s.mtu !== undefined) out.mtu = v.uint(op, 'mtu', s.mtu, 68, 65535);
  if (s.txqueuelen !== undefined) out.txqueuelen = v.uint(op, 'txqueuelen', s.txqueuelen);
  if (s.group !== undefined) out.group = v.uint(op, 'group', s.group);
  if (s.master !== undefined) out.master = v.ifname(op, 'master', s.master);
  if (s.up !== undefined) out.up = v.bool(op, 'up', s.up);
  return out;
}

interface NativeTap {
  name: string; index: number; mode: 'tap' | 'tun'; flags: number; vnetHdr: boolean; vnetHdrSize: number;
  offloads: Required<TapOffloads>; created: boolean; fds: number[];
}

/**
 * A tun/tap device and the fds of its queues. The fds belong to this object: `close()` closes
 * them (a non-persistent tap then disappears). Hand `fds` to QEMU, a Forwarder, or read and
 * write frames on them directly (they are non-blocking and close-on-exec).
 *
 * `close()` is required: dropping the object does not close the fds, because `fds` are plain
 * numbers that may still be in use elsewhere (a stream or socket wrapping one) after this
 * object is unreachable, and closing them behind such a user could close a reused fd number.
 * The thread that created the tap owns its fds: when a worker thread ends with taps still
 * open, they are closed then (as the process's end closes them), not leaked for the process's life.
 *
 * `fds` is read-only, and `close()` closes only the fds this object still owns: one that was
 * closed elsewhere and whose number now names another file is left alone. (A tap renamed
 * while open is not recognised as ours any more, and keeps its fds.)
 */
export class Tap {
  /** The device name (a 'vnet%d' pattern resolved). */
  readonly name: string;
  readonly index: number;
  readonly mode: 'tap' | 'tun';
  #fds: readonly number[];
  #owned: OwnedFd[];
  /** Frames carry a virtio-net header of `vnetHdrSize` bytes. */
  readonly vnetHdr: boolean;
  /**
   * The header size set at creation. It describes the device as created, not later: whoever
   * holds an fd can change it (QEMU sets 12 when the guest negotiates mergeable rx buffers).
   */
  readonly vnetHdrSize: number;
  /**
   * The offloads that took effect at creation (USO is dropped where the kernel refuses it).
   * Like `vnetHdrSize`, a snapshot: QEMU renegotiates them (TUNSETOFFLOAD) from what the guest's
   * driver accepts, and `ip -d link`/ethtool on the tap show the current state.
   */
  readonly offloads: Required<TapOffloads>;
  /** False when create attached to an existing (persistent) tap. */
  readonly created: boolean;
  #h: Handle;
  #flags: number;
  #closing: Promise<void> | undefined;
  #adding: Promise<void> | undefined;

  /** @internal use `nl.tap.create()` */
  constructor(h: Handle, n: NativeTap) {
    this.#h = h;
    this.#flags = n.flags;
    this.name = n.name;
    this.index = n.index;
    this.mode = n.mode;
    this.#fds = Object.freeze([...n.fds]);
    this.#owned = ownFds(n.fds);
    this.vnetHdr = n.vnetHdr;
    this.vnetHdrSize = n.vnetHdrSize;
    this.offloads = n.offloads;
    this.created = n.created;
  }

  /** One fd per queue (a read-only array); a queue added with `addQueues` is appended. After close() it lists the numbers the tap had. */
  get fds(): readonly number[] {
    return this.#fds;
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  /**
   * Enables or disables one queue (TUNSETQUEUE): a disabled queue gets no frames.
   * Equivalent to QEMU's queue attach/detach on a multi-queue tap. A queue whose fd was closed
   * elsewhere (its number may name another file now) is refused, like close() leaves it alone.
   */
  async setQueue(queue: number, enabled: boolean): Promise<void> {
    const op = 'tap.setQueue';
    if (this.closed) throw v.typeError(op, 'tap', 'is closed');
    v.uint(op, 'queue', queue, 0, this.fds.length - 1);
    v.bool(op, 'enabled', enabled);
    // As in close(): only a number that still names this tap's queue is ours. One closed
    // elsewhere may name another tap's queue now, which TUNSETQUEUE would detach instead.
    const fd = this.fds[queue];
    const owned = this.#owned.find((o) => o.fd === fd);
    if (!owned || !stillOwned([owned], this.name).length)
      throw v.typeError(op, 'queue', `${queue}: fd ${fd} was closed elsewhere (the number no longer names this tap's queue)`);
    await this.#h._call(op, { fd, enable: enabled });
  }

  /** Opens `count` more queues on a live multi-queue tap and returns their fds (also appended to `fds`). */
  async addQueues(count: number): Promise<number[]> {
    const op = 'tap.addQueues';
    if (this.closed) throw v.typeError(op, 'tap', 'is closed');
    if (!(this.#flags & 0x100)) throw v.rangeError(op, 'tap', `${this.name} is single-queue (create it with queues > 1 or multiQueue: true)`);
    v.uint(op, 'count', count, 1, MAX_TAP_QUEUES - this.fds.length);
    // The new fds join `fds` as soon as they exist, and close() waits for them, so a close
    // that overtakes this call still closes every queue.
    const p = this.#h._call<number[]>(op, { name: this.name, flags: this.#flags, count }).then((fds) => {
      this.#owned.push(...ownFds(fds));
      this.#fds = Object.freeze([...this.#fds, ...fds]);
      return fds;
    });
    this.#adding = Promise.all([this.#adding, p.catch(() => undefined)]).then(() => undefined);
    return p;
  }

  /**
   * Closes every queue fd. A non-persistent tap disappears (one RCU wait, done on a handle's
   * thread so the event loop never waits, even after the handle was closed). Safe to call twice.
   */
  close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = (this.#adding ?? Promise.resolve()).then(() => {
        const fds = stillOwned(this.#owned, this.name);
        const dups = disownFds(this.#owned);
        this.#owned = [];
        // Closing an fd needs no namespace: once our handle is closed, the process's own
        // handle's thread takes the RCU wait instead of the event loop.
        const via = this.#h.closed ? rootHandle() : this.#h;
        return via._call('tap.close', { fds: [...fds, ...dups] }, 'fd.close').then(() => undefined);
      });
    }
    return this.#closing;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** tun/tap devices (`ip tuntap`, and what QEMU/libvirt do with /dev/net/tun). */
export class TapOps {
  constructor(private readonly h: Handle) {}

  /**
   * Creates a tun/tap device (or attaches to an existing persistent one) and returns its queue fds.
   * Equivalent to: `ip tuntap add dev vnet0 mode tap multi_queue vnet_hdr` followed by
   * `ip link set vnet0 address fe:.. master virbr0 up`, but the fds stay open for you.
   *
   * @example
   * const tap = await nl.tap.create({ name: 'vnet%d', queues: 4, vnetHdr: true,
   *   offloads: { csum: true, tso4: true, tso6: true }, master: 'virbr0', up: true });
   * tap.name; tap.fds; await tap.close();
   */
  async create(spec: TapSpec): Promise<Tap> {
    const n = normalize('tap.create', spec);
    const r: NativeTap = await this.h._call('tap.create', n);
    return new Tap(this.h, r);
  }
}
