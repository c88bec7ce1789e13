// The userspace forwarding engine over tap/macvtap fds. Frames move on native worker threads
// (epoll, preallocated buffers, per-thread counters); this module only validates, controls,
// and serves copies of frames to people (frames(), capture()).
import fs from 'node:fs';
import { fromNative, errnoCode, NetlinkError, stateError } from './errors.js';
import { native } from './native.js';
import * as v from './validate.js';

import type { TapOffloads } from './tap.js';

/** Offloads a tap queue promises to accept (TUNSETOFFLOAD): the same words as tap.create. */
export type ForwarderOffloads = TapOffloads;

export interface ForwarderOptions {
  /** 'wire': two ports, everything from one goes to the other. 'switch': MAC learning. Default 'switch'. */
  mode?: 'wire' | 'switch';
  /** Worker threads; queues of multi-queue ports are spread over them. Default 1. */
  threads?: number;
  /**
   * Busy polling: the most a worker spins on epoll after a frame before it sleeps (lower latency,
   * more CPU). Adaptive: it spins only while frames keep arriving within about twice the recent
   * gap between them, and halves its spin after one that caught nothing, so an idle or slow port
   * goes back to blocking within tens of microseconds. Default 0 (never spin).
   */
  busyPollUs?: number;
  /**
   * Work done for one queue before the next queue gets its turn, counted in writes: a frame
   * read costs one, and a frame segmented or flooded costs every write it caused. Default 64.
   */
  batch?: number;
  /** MAC table entries (switch mode; rounded up to a power of two). Default 4096. */
  fdbSize?: number;
  /** Seconds a learned MAC stays valid without traffic from it. Default 300. */
  ageingSec?: number;
  /**
   * A GSO frame (from a vnet-header port) towards a port without vnet header: 'segment' (TCP and
   * UDP-L4 over IPv4/IPv6 are cut into wire-sized frames in software) or 'drop' (counted as
   * drops.gso). Default 'segment'; frames that cannot be segmented are dropped and counted.
   */
  gsoToPlain?: 'segment' | 'drop';
  /** Bytes of the per-thread ring holding copies for frames()/capture(). Default 4 MiB. */
  copyRingBytes?: number;
}

export interface ForwarderPortOptions {
  /**
   * Whether frames on this fd carry a virtio-net header. For tap/macvtap fds it is read from
   * the fd (TUNGETIFF) and a contradicting value is a RangeError; for other fds default false.
   */
  vnetHdr?: boolean;
  /** Header size (10, 12 or 20). Taps: read from the fd (TUNGETVNETHDRSZ). Default 10. */
  vnetHdrSize?: number;
  /** Sets TUNSETOFFLOAD on the port's queues (taps with vnet header only). Unset: left as is. */
  offloads?: ForwarderOffloads;
  /**
   * Switch mode: the most source MACs the MAC table learns from this port at once (1 to 4096,
   * default 64), so that one guest cannot fill the table and evict every other station.
   * A frame from a further new MAC is dropped (`drops.macLimit`) until one of the port's
   * stations ages out, moves or is evicted.
   */
  maxMacs?: number;
  /**
   * Locks the port to these source MACs (up to 64; both modes): any other source is dropped
   * (`drops.srcMac`). Give the guest's own MAC to stop it from spoofing other stations.
   */
  allowedMacs?: string[];
}

/** Options of `Forwarder.socketpair()`. */
export interface ForwarderSocketpairOptions {
  /**
   * 'seqpacket' (default; QEMU: `-netdev dgram,id=n0,local.type=fd,local.str=FD`, QEMU 7.2 and
   * later) or 'dgram' (also QEMU's older `-netdev socket,id=n0,fd=FD`, which refuses seqpacket).
   */
  type?: 'seqpacket' | 'dgram';
  /**
   * Send (and receive) buffer of each end in bytes, set with SO_SNDBUFFORCE when the process
   * has CAP_NET_ADMIN (else SO_SNDBUF, capped by net.core.wmem_max). Default 4 MiB: with the
   * kernel's ~208 KB default QEMU's send path can stall for good.
   */
  sndbuf?: number;
}

/** Counters of one port, readable while the forwarder runs. */
export interface ForwarderPortStats {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Frames not delivered, by reason. */
  drops: {
    /** The egress queue was full (EAGAIN/ENOBUFS). */
    txFull: number;
    /** Writing to the port failed otherwise (e.g. its device is gone). */
    txError: number;
    /** Reading failed or hit end of file; the queue is then taken out of service. */
    rxError: number;
    /** A GSO frame that could not go to this port (no vnet header and not segmentable, or gsoToPlain 'drop'). */
    gso: number;
    /**
     * Too short (an empty frame included), or a vnet header that contradicts the frame:
     * checksum offsets outside it, an unknown GSO type, IP lengths that disagree with it.
     */
    malformed: number;
    /** Larger than the forwarder's 69,632-byte read buffer (it would have been cut short). */
    oversize: number;
    /**
     * A GSO frame outside the forwarder's limits: gso_size below 88, more than 128 segments,
     * or a segment whose IP length would not fit 16 bits.
     */
    gsoLimit: number;
    /** Source MAC not a station address (switch mode: multicast or zero) or not in `allowedMacs`. */
    srcMac: number;
    /** A new source MAC on a port that already holds `maxMacs` learned stations (switch mode). */
    macLimit: number;
    /** Nowhere to send it (wire mode with one port; a switch with one port). */
    noRoute: number;
    /** Copies for frames()/capture() that were dropped (the data path never waits for them). */
    copies: number;
  };
  /** Queues taken out of service after a read error or end of file. */
  downQueues: number;
  /** The last error seen on this port ('EBADFD', ...), if any. */
  lastError?: string;
  /** Header size in use (0: none). */
  vnetHdrSize: number;
  queues: number;
}

/** A copy of a frame seen at a port. */
export interface ForwardedFrame {
  port: string;
  /** 'rx': the forwarder read it from this port; 'tx': it wrote it to this port. */
  direction: 'rx' | 'tx';
  /** Microseconds since the epoch. */
  timestampUs: number;
  /** Length on the wire (data may be shorter when it exceeded the snap length). */
  length: number;
  /** The Ethernet frame (no vnet header). */
  data: Buffer;
}

/** A running pcap capture; `close()` flushes and closes the file. */
export interface ForwarderCapture {
  readonly file: string;
  /** Frames written so far. */
  readonly written: number;
  /** Copies dropped because the file could not keep up. */
  readonly dropped: number;
  close(): Promise<void>;
}

const OFFLOAD_BITS: Record<keyof ForwarderOffloads, number> = {
  csum: 0x01, tso4: 0x02, tso6: 0x04, tsoEcn: 0x08, uso4: 0x20, uso6: 0x40,
};
const MAX_PORTS = 64;
const MAX_QUEUES = 16;
const MAX_HDR = 32;  // kMaxHdrLen in native/fwd/engine.h
const MAX_PORT_MACS = 4096;    // kMaxPortMacs
const MAX_ALLOWED_MACS = 64;   // kMaxAllowedMacs

interface Sink {
  push(f: ForwardedFrame): void;
  end(): void;
}

interface PortEntry {
  name: string;
  slot: number;
  gen: number;  // tells this port's copies from those of an earlier port in the same slot
  hdrLen: number;
  queues: number;
  sinks: Set<Sink>;
  copyDrops: number;
}

function macString(n: number): string {
  return n.toString(16).padStart(12, '0').replace(/(..)(?!$)/g, '$1:');
}

/**
 * A userspace forwarding engine: wires tap/macvtap queue fds (or any fds carrying Ethernet
 * frames, such as a socketpair) together on native threads, with no JavaScript per packet.
 * The forwarder keeps its own duplicate of every fd it is given, so the caller may close its
 * copy; a tap disappears once both are closed.
 *
 * Equivalent to: a userspace switch such as `vde_switch` or an OVS netdev bridge with tap ports.
 *
 * Like an unref'd timer, a forwarder never keeps the process alive by itself, and neither do
 * `frames()` iterations or captures: keep the process running for as long as it should forward.
 *
 * @example
 * const fw = new Forwarder({ mode: 'switch' });
 * fw.add('a', tapA.fds[0]); fw.add('b', tapB.fds[0]);
 * fw.start();
 * console.log(fw.stats().a.rxPackets);
 * await fw.close();
 */
export class Forwarder {
  readonly mode: 'wire' | 'switch';
  #n: any;
  #ports = new Map<string, PortEntry>();
  #bySlot = new Map<number, PortEntry>();
  #closed = false;
  #running = false;
  #pump: NodeJS.Timeout | undefined;
  #copyQueue: number;
  #ageingSec: number;

  constructor(options: ForwarderOptions = {}) {
    const op = 'forwarder';
    v.object(op, 'options', options);
    v.knownKeys(op, 'options', options as Record<string, unknown>,
      ['mode', 'threads', 'busyPollUs', 'batch', 'fdbSize', 'ageingSec', 'gsoToPlain', 'copyRingBytes']);
    this.mode = options.mode === undefined ? 'switch' : v.oneOf(op, 'mode', options.mode, ['wire', 'switch'] as const);
    const spec = {
      mode: this.mode,
      threads: options.threads === undefined ? 1 : v.uint(op, 'threads', options.threads, 1, 16),
      busyPollUs: options.busyPollUs === undefined ? 0 : v.uint(op, 'busyPollUs', options.busyPollUs, 0, 1_000_000),
      batch: options.batch === undefined ? 64 : v.uint(op, 'batch', options.batch, 1, 4096),
      fdbSize: options.fdbSize === undefined ? 4096 : v.uint(op, 'fdbSize', options.fdbSize, 16, 1 << 20),
      ageingSec: options.ageingSec === undefined ? 300 : v.uint(op, 'ageingSec', options.ageingSec, 1, 1_000_000),
      gsoToPlain: options.gsoToPlain === undefined ? 'segment' : v.oneOf(op, 'gsoToPlain', options.gsoToPlain, ['segment', 'drop'] as const),
      copyRingBytes: options.copyRingBytes === undefined ? 4 << 20 : v.uint(op, 'copyRingBytes', options.copyRingBytes, 1 << 18, 1 << 30),
    };
    this.#copyQueue = 256;
    this.#ageingSec = spec.ageingSec;
    try {
      this.#n = new native.Forwarder(spec);
    } catch (e) {
      throw fromNative(op, e);
    }
  }

  /**
   * A connected pair of non-blocking, close-on-exec AF_UNIX fds carrying one frame per message:
   * give one end to `add()` and the other to a VM (or read and write frames on it). The caller
   * owns both. SOCK_SEQPACKET by default; `type: 'dgram'` for QEMU's `-netdev socket,fd=`.
   *
   * @example
   * const [vm, port] = Forwarder.socketpair({ type: 'dgram' });
   * fw.add('vm1', port);
   * spawn('qemu-system-x86_64', [..., '-netdev', 'socket,id=n0,fd=3', '-device', 'virtio-net-pci,netdev=n0'],
   *   { stdio: ['inherit', 'inherit', 'inherit', vm] });
   */
  static socketpair(options: ForwarderSocketpairOptions = {}): [number, number] {
    const op = 'forwarder.socketpair';
    v.object(op, 'options', options);
    v.knownKeys(op, 'options', options as Record<string, unknown>, ['type', 'sndbuf']);
    const type = options.type === undefined ? 'seqpacket' : v.oneOf(op, 'type', options.type, ['seqpacket', 'dgram'] as const);
    const sndbuf = options.sndbuf === undefined ? 4 << 20 : v.uint(op, 'sndbuf', options.sndbuf, 4096, 1 << 30);
    try {
      return native.Forwarder.socketpair(type, sndbuf);
    } catch (e) {
      throw fromNative(op, e);
    }
  }

  /** True between start() and stop()/close(). */
  get running(): boolean {
    return this.#running;
  }

  /** Names of the ports, in the order they were added. */
  get ports(): string[] {
    return [...this.#ports.keys()];
  }

  #live(op: string): void {
    if (this.#closed) throw stateError(op, 'EBADF', 'the forwarder is closed');
  }

  #port(op: string, name: unknown): PortEntry {
    const n = v.str(op, 'port', name, 64);
    const p = this.#ports.get(n);
    if (!p) throw v.rangeError(op, 'port', `no port named ${JSON.stringify(n)}`);
    return p;
  }

  /**
   * Adds a port: one fd, or several queue fds of a multi-queue tap. Works while running; the
   * workers pick it up between batches. The forwarder duplicates each fd (you may close yours)
   * and makes the open file non-blocking (tap fds from `tap.create` already are).
   *
   * Equivalent to: `ovs-vsctl add-port br0 PORT` (a userspace switch port over an fd).
   *
   * @example
   * fw.add('vm1', tap.fds, { offloads: { csum: true, tso4: true, tso6: true } });
   */
  add(name: string, fds: number | readonly number[], options: ForwarderPortOptions = {}): void {
    const op = 'forwarder.add';
    this.#live(op);
    const pname = v.str(op, 'name', name, 64);
    if (pname.length === 0) throw v.typeError(op, 'name', 'must be a non-empty string');
    if (this.#ports.has(pname)) throw v.rangeError(op, 'name', `a port named ${JSON.stringify(pname)} exists`);
    v.object(op, 'options', options);
    v.knownKeys(op, 'options', options as Record<string, unknown>, ['vnetHdr', 'vnetHdrSize', 'offloads', 'maxMacs', 'allowedMacs']);
    const list = Array.isArray(fds) ? fds : [fds];
    if (list.length === 0 || list.length > MAX_QUEUES) throw v.rangeError(op, 'fds', `must hold 1 to ${MAX_QUEUES} fds`);
    list.forEach((fd, i) => {
      v.uint(op, Array.isArray(fds) ? `fds[${i}]` : 'fd', fd, 0, 0x7fffffff);
      try { fs.fstatSync(fd); } catch { throw v.typeError(op, Array.isArray(fds) ? `fds[${i}]` : 'fd', `${fd} is not an open file descriptor`); }
    });
    if (this.mode === 'wire' && this.#ports.size >= 2) throw v.rangeError(op, 'name', "a 'wire' forwarder has exactly two ports");
    if (this.#ports.size >= MAX_PORTS) throw v.rangeError(op, 'name', `at most ${MAX_PORTS} ports`);

    const probe = native.Forwarder.probe(list[0]) as { tun: boolean; vnetHdr: boolean; hdrLen: number; name?: string };
    let hdrLen: number;
    if (probe.tun) {
      if (options.vnetHdr !== undefined && v.bool(op, 'vnetHdr', options.vnetHdr) !== probe.vnetHdr)
        throw v.rangeError(op, 'vnetHdr', `the fd ${probe.vnetHdr ? 'has' : 'has no'} IFF_VNET_HDR (tap ${probe.name})`);
      hdrLen = probe.hdrLen;
      // The kernel takes any TUNSETVNETHDRSZ >= 10; the engine builds headers of at most 32 bytes.
      if (hdrLen > MAX_HDR)
        throw v.rangeError(op, Array.isArray(fds) ? 'fds[0]' : 'fd', `the tap's vnet header is ${hdrLen} bytes (TUNSETVNETHDRSZ); the forwarder takes 10 to ${MAX_HDR}`);
      if (options.vnetHdrSize !== undefined && probe.vnetHdr && options.vnetHdrSize !== hdrLen)
        throw v.rangeError(op, 'vnetHdrSize', `the tap's header is ${hdrLen} bytes (TUNSETVNETHDRSZ), not ${options.vnetHdrSize}`);
    } else {
      const on = options.vnetHdr === undefined ? false : v.bool(op, 'vnetHdr', options.vnetHdr);
      hdrLen = on ? (options.vnetHdrSize === undefined ? 10 : v.uint(op, 'vnetHdrSize', options.vnetHdrSize, 10, 32)) : 0;
      if (on && ![10, 12, 20].includes(hdrLen)) throw v.rangeError(op, 'vnetHdrSize', 'must be 10, 12 or 20');
    }
    let bits = -1;
    if (options.offloads !== undefined) {
      const o = v.object(op, 'offloads', options.offloads);
      v.knownKeys(op, 'offloads', o, Object.keys(OFFLOAD_BITS));
      if (!probe.tun || hdrLen === 0) throw v.rangeError(op, 'offloads', 'only for tap/macvtap fds with a vnet header');
      bits = 0;
      for (const [k, b] of Object.entries(OFFLOAD_BITS)) if (o[k] !== undefined && v.bool(op, `offloads.${k}`, o[k])) bits |= b;
    }
    const maxMacs = options.maxMacs === undefined ? 64 : v.uint(op, 'maxMacs', options.maxMacs, 1, MAX_PORT_MACS);
    let allowed: number[] = [];
    if (options.allowedMacs !== undefined) {
      if (!Array.isArray(options.allowedMacs)) throw v.typeError(op, 'allowedMacs', 'must be an array of MAC addresses');
      if (options.allowedMacs.length === 0 || options.allowedMacs.length > MAX_ALLOWED_MACS)
        throw v.rangeError(op, 'allowedMacs', `must hold 1 to ${MAX_ALLOWED_MACS} MACs`);
      allowed = options.allowedMacs.map((m, i) => parseInt(v.mac(op, `allowedMacs[${i}]`, m).replace(/:/g, ''), 16));
    }
    let slot: number, gen: number;
    try {
      ({ slot, gen } = this.#n.addPort(list, hdrLen, bits, maxMacs, allowed));
    } catch (e) {
      throw fromNative(op, e);
    }
    const entry: PortEntry = { name: pname, slot, gen, hdrLen, queues: list.length, sinks: new Set(), copyDrops: 0 };
    this.#ports.set(pname, entry);
    this.#bySlot.set(slot, entry);
  }

  /** Removes a port (also mid-flow) and closes the forwarder's copy of its fds. */
  remove(name: string): void {
    const op = 'forwarder.remove';
    this.#live(op);
    const p = this.#port(op, name);
    this.#n.monitor(p.slot, false);
    this.#n.removePort(p.slot);
    this.#ports.delete(p.name);
    this.#bySlot.delete(p.slot);
    for (const s of p.sinks) s.end();
    p.sinks.clear();
  }

  /** Starts the worker threads. */
  start(): void {
    this.#live('forwarder.start');
    this.#n.start();
    this.#running = true;
  }

  /** Stops and joins the worker threads; ports stay, start() resumes. */
  stop(): void {
    this.#live('forwarder.stop');
    this.#n.stop();
    this.#running = false;
  }

  /** Per-port counters, keyed by port name; cheap enough to poll while traffic flows. */
  stats(): Record<string, ForwarderPortStats> {
    this.#live('forwarder.stats');
    const out: Record<string, ForwarderPortStats> = {};
    for (const p of this.#ports.values()) {
      const s = this.#n.stats(p.slot);
      s.drops.copies += p.copyDrops;
      out[p.name] = {
        rxPackets: s.rxPackets, rxBytes: s.rxBytes, txPackets: s.txPackets, txBytes: s.txBytes,
        drops: s.drops, downQueues: s.downQueues,
        ...(s.lastErrno ? { lastError: errnoCode(s.lastErrno) } : {}),
        vnetHdrSize: p.hdrLen, queues: p.queues,
      };
    }
    return out;
  }

  /** CPU seconds used by each worker thread since the forwarder was created. */
  cpu(): number[] {
    return this.#n.cpu();
  }

  /**
   * The learned MAC table (switch mode), like `bridge fdb show`.
   * `ageSec` counts from the last frame the station sent.
   */
  fdb(): { mac: string; port: string; ageSec: number }[] {
    const mono = Math.floor(Number(process.hrtime.bigint() / 1_000_000_000n));
    const out: { mac: string; port: string; ageSec: number }[] = [];
    for (const e of this.#n.fdb() as { mac: number; port: number; gen: number; seen: number }[]) {
      const p = this.#bySlot.get(e.port);
      const age = Math.max(0, mono - e.seen);
      // Entries of a removed port, or aged out, are dead even if the slot still holds them.
      // The table keeps the low 8 bits of the generation (a removed port's entries are purged).
      if (!p || (p.gen & 0xff) !== e.gen || age > this.#ageingSec) continue;
      out.push({ mac: macString(e.mac), port: p.name, ageSec: age });
    }
    return out;
  }

  /**
   * Writes one Ethernet frame to a port (a zero vnet header is added when the port has one).
   * Returns false when the port's queue is full.
   */
  send(port: string, frame: Uint8Array): boolean {
    const op = 'forwarder.send';
    this.#live(op);
    const p = this.#port(op, port);
    if (!(frame instanceof Uint8Array)) throw v.typeError(op, 'frame', 'must be a Buffer or Uint8Array');
    if (frame.length < 14 || frame.length > 65535 + 14) throw v.rangeError(op, 'frame', `must be 14 to 65549 bytes (got ${frame.length})`);
    const err = this.#n.send(p.slot, Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.length));
    if (err === 0) return true;
    if (err === 11 || err === 105) return false;
    throw fromNative(op, { errno: err, where: `write to port ${p.name}` });
  }

  #subscribe(p: PortEntry, s: Sink): () => void {
    if (p.sinks.size === 0) this.#n.monitor(p.slot, true);
    p.sinks.add(s);
    this.#startPump();
    return () => {
      if (!p.sinks.delete(s)) return;
      if (p.sinks.size === 0 && this.#bySlot.get(p.slot) === p) this.#n.monitor(p.slot, false);
      this.#maybeStopPump();
    };
  }

  #startPump(): void {
    if (this.#pump) return;
    // Copies are drained on the JS thread at a gentle pace; the workers never wait for us.
    // Unref'd: a copy consumer alone does not keep the process alive (nor does the forwarder).
    this.#pump = setInterval(() => this.#drain(), 5);
    this.#pump.unref();
  }

  #maybeStopPump(): void {
    for (const p of this.#ports.values()) if (p.sinks.size) return;
    if (this.#pump) clearInterval(this.#pump);
    this.#pump = undefined;
  }

  #drain(): void {
    if (this.#closed) return;
    for (let round = 0; round < 16; round++) {
      const recs = this.#n.drain(512) as { port: number; gen: number; dir: 'rx' | 'tx'; tsUs: number; origLen: number; data: Buffer }[];
      // One ring per worker thread: put the batch back in time order.
      recs.sort((x, y) => x.tsUs - y.tsUs);
      for (const r of recs) {
        const p = this.#bySlot.get(r.port);
        if (!p || p.gen !== r.gen || p.sinks.size === 0) continue;
        const f: ForwardedFrame = { port: p.name, direction: r.dir, timestampUs: r.tsUs, length: r.origLen, data: r.data };
        for (const s of p.sinks) s.push(f);
      }
      if (recs.length < 512) break;
    }
  }

  /**
   * Copies of the frames seen at a port (both directions), through a bounded queue: when the
   * consumer is slow, copies are dropped (counted in stats().drops.copies), never frames.
   * Ends when the port is removed or the forwarder closes; breaking out of the loop stops it.
   *
   * Equivalent to: `tcpdump -i PORT` for a port that is only an fd.
   *
   * @example
   * for await (const f of fw.frames('a')) { console.log(f.direction, f.data.length); break; }
   */
  frames(port: string, options: { queue?: number } = {}): AsyncIterableIterator<ForwardedFrame> {
    const op = 'forwarder.frames';
    this.#live(op);
    const p = this.#port(op, port);
    const limit = options.queue === undefined ? this.#copyQueue : v.uint(op, 'queue', options.queue, 1, 1 << 20);
    const buf: ForwardedFrame[] = [];
    // Overlapping next() calls each wait for their own frame, in call order.
    const waiters: ((r: IteratorResult<ForwardedFrame>) => void)[] = [];
    let done = false;
    const sink: Sink = {
      push(f) {
        if (waiters.length) { waiters.shift()!({ value: f, done: false }); return; }
        if (buf.length >= limit) { p.copyDrops++; return; }
        buf.push(f);
      },
      end() {
        done = true;
        for (const w of waiters.splice(0)) w({ value: undefined, done: true });
      },
    };
    const unsubscribe = this.#subscribe(p, sink);
    const it: AsyncIterableIterator<ForwardedFrame> = {
      next: () => {
        if (buf.length) return Promise.resolve({ value: buf.shift()!, done: false });
        if (done) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => { waiters.push(resolve); });
      },
      return: () => {
        unsubscribe();
        sink.end();
        buf.length = 0;
        return Promise.resolve({ value: undefined, done: true });
      },
      [Symbol.asyncIterator]() { return it; },
    };
    return it;
  }

  /**
   * Writes the frames seen at a port (both directions) to a pcap file that tcpdump and
   * Wireshark read, until `close()` on the returned capture (or on the forwarder).
   *
   * Equivalent to: `tcpdump -i PORT -w FILE`.
   *
   * @example
   * const cap = await fw.capture('a', '/tmp/a.pcap'); ...; await cap.close();
   */
  async capture(port: string, file: string, options: { snaplen?: number } = {}): Promise<ForwarderCapture> {
    const op = 'forwarder.capture';
    this.#live(op);
    const p = this.#port(op, port);
    const path = v.str(op, 'file', file);
    const snaplen = options.snaplen === undefined ? 262144 : v.uint(op, 'snaplen', options.snaplen, 64, 262144);
    const stream = fs.createWriteStream(path);
    await new Promise<void>((resolve, reject) => { stream.once('open', () => resolve()); stream.once('error', reject); });
    const hdr = Buffer.alloc(24);
    hdr.writeUInt32LE(0xa1b2c3d4, 0);   // microsecond timestamps
    hdr.writeUInt16LE(2, 4);
    hdr.writeUInt16LE(4, 6);
    hdr.writeUInt32LE(snaplen, 16);
    hdr.writeUInt32LE(1, 20);           // LINKTYPE_ETHERNET
    stream.write(hdr);
    const state = { written: 0, dropped: 0 };
    let ended = false;
    const sink: Sink = {
      push(f) {
        if (ended) return;
        // The file may fall behind: drop copies rather than buffer without bound.
        if (stream.writableLength > 16 << 20) { state.dropped++; p.copyDrops++; return; }
        const len = Math.min(f.data.length, snaplen);
        const rec = Buffer.allocUnsafe(16 + len);
        rec.writeUInt32LE(Math.floor(f.timestampUs / 1e6), 0);
        rec.writeUInt32LE(f.timestampUs % 1e6, 4);
        rec.writeUInt32LE(len, 8);
        rec.writeUInt32LE(f.length, 12);
        f.data.copy(rec, 16, 0, len);
        stream.write(rec);
        state.written++;
      },
      end() { ended = true; },
    };
    const unsubscribe = this.#subscribe(p, sink);
    let closing: Promise<void> | undefined;
    const close = () => {
      closing ??= (async () => {
        this.#drain();
        unsubscribe();
        ended = true;
        await new Promise<void>((resolve) => stream.end(() => resolve()));
      })();
      return closing;
    };
    this.#captures.add(close);
    return {
      file: path,
      get written() { return state.written; },
      get dropped() { return state.dropped; },
      close: async () => { this.#captures.delete(close); await close(); },
    };
  }

  #captures = new Set<() => Promise<void>>();

  /**
   * Stops and joins the worker threads, closes the forwarder's fds, finishes captures and ends
   * frames() iterators. Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    if (this.#pump) this.#drain();
    for (const c of [...this.#captures]) await c();
    this.#captures.clear();
    this.#closed = true;
    this.#running = false;
    if (this.#pump) clearInterval(this.#pump);
    this.#pump = undefined;
    this.#n.close();
    for (const p of this.#ports.values()) {
      for (const s of p.sinks) s.end();
      p.sinks.clear();
    }
    this.#ports.clear();
    this.#bySlot.clear();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
