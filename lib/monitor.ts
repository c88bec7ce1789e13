import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import type { Handle } from './handle.js';
import type { Link } from './link.js';
import type { Address } from './addr.js';
import type { Route } from './route.js';
import { NetlinkError, abortError } from './errors.js';
import { native } from './native.js';
import * as v from './validate.js';

/** What a monitor can subscribe to (the words of `ip monitor`). */
export type MonitorGroup = 'link' | 'addr' | 'route' | 'neigh';
export const monitorGroups: readonly MonitorGroup[] = ['link', 'addr', 'route', 'neigh'];

export interface MonitorOptions {
  /** Default: all of link, addr, route, neigh. */
  groups?: MonitorGroup[];
  /** Only IPv4 ('inet') or IPv6 ('inet6') addresses, routes and neighbours. Default: both. */
  family?: 'inet' | 'inet6';
  /**
   * Start with the current state: one `new*` event per existing object, marked
   * `existing: true`, then a `synced` event.
   */
  listExisting?: boolean;
  /**
   * Receive buffer of the subscribed socket in bytes (default 4 MiB). When it fills, the
   * kernel drops events and the monitor emits `resync` with a fresh dump.
   */
  rcvbuf?: number;
  /**
   * Closes the monitor when it aborts: running and later iterations reject with an
   * `AbortError` (`code: 'ABORT_ERR'`, `cause`: the signal's reason), as `events.on` does.
   */
  signal?: AbortSignal;
}

/** A neighbour entry as `ip neigh` shows it. */
export interface Neighbour {
  family: 'inet' | 'inet6';
  index: number;
  dev?: string;
  dst?: string;
  lladdr?: string;
  /** NUD states, as `ip neigh` prints them: 'REACHABLE', 'STALE', 'PERMANENT', ... */
  state: string[];
  router?: true;
  proxy?: true;
  probes?: number;
}

/** A link appeared, changed or went away. */
export interface LinkEvent { type: 'newlink' | 'dellink'; link: Link; existing?: true }
/** An address was added or removed. */
export interface AddrEvent { type: 'newaddr' | 'deladdr'; addr: Address; existing?: true }
/** A route was added or removed. */
export interface RouteEvent { type: 'newroute' | 'delroute'; route: Route; existing?: true }
/** A neighbour entry was added, changed or removed. */
export interface NeighEvent { type: 'newneigh' | 'delneigh'; neigh: Neighbour; existing?: true }
/** After the `existing` events of `listExisting`. */
export interface SyncedEvent { type: 'synced' }
/**
 * The kernel dropped events (receive buffer full, ENOBUFS). What follows is the complete
 * current state of every subscribed table; apply events after it as usual.
 */
export interface ResyncEvent { type: 'resync'; reason: 'ENOBUFS'; message: string; links?: Link[]; addrs?: Address[]; routes?: Route[]; neighs?: Neighbour[] }

export type MonitorEvent = LinkEvent | AddrEvent | RouteEvent | NeighEvent | SyncedEvent | ResyncEvent;

/** The monitor's events as an EventEmitter: one per event type, plus `event`, `error` and `close`. */
export interface MonitorEventMap {
  event: [MonitorEvent];
  newlink: [LinkEvent & { type: 'newlink' }];
  dellink: [LinkEvent & { type: 'dellink' }];
  newaddr: [AddrEvent & { type: 'newaddr' }];
  deladdr: [AddrEvent & { type: 'deladdr' }];
  newroute: [RouteEvent & { type: 'newroute' }];
  delroute: [RouteEvent & { type: 'delroute' }];
  newneigh: [NeighEvent & { type: 'newneigh' }];
  delneigh: [NeighEvent & { type: 'delneigh' }];
  synced: [SyncedEvent];
  resync: [ResyncEvent];
  error: [Error];
  close: [];
}

interface NativeMonitor { close(): any[]; ref(on: boolean): void }
type Waiter = { resolve: (r: IteratorResult<MonitorEvent>) => void; reject: (e: unknown) => void };
interface IterState { queue: MonitorEvent[]; waiter?: Waiter; done: boolean; error?: unknown }

/**
 * Rtnetlink events of one namespace, decoded into the objects `link.list`, `addr.list` and
 * `route.list` return. Use it as an async iterator or as an EventEmitter (`'event'` for
 * everything, and one event per type: `'newlink'`, `'dellink'`, `'resync'`, ...). The socket
 * is made in the handle's namespace; a thread of its own reads it, so the handle stays free.
 * Equivalent to: `ip monitor link address route neigh`.
 *
 * A monitor lives until `close()`, the end of a `for await` loop over it, or the `close()` of
 * its handle (which closes it, ending every iteration). While open it keeps the process alive,
 * unless `unref()` was called.
 *
 * A failure (e.g. the socket breaks) closes the monitor; it is emitted as `'error'` if there is
 * a listener, rejects running iterations, and otherwise rejects the next iteration started.
 *
 * @example
 * const mon = nl.monitor({ groups: ['link'] });
 * for await (const ev of mon) {
 *   if (ev.type === 'newlink') console.log('new link', ev.link.name);
 *   if (ev.type === 'resync') rebuild(ev.links);
 * }
 */
export class Monitor extends EventEmitter<MonitorEventMap> implements AsyncIterable<MonitorEvent> {
  /** Resolves once the subscription is live: changes made after this are seen. */
  readonly ready: Promise<void>;
  /** The receive buffer the kernel granted (bytes), once ready. */
  rcvbuf = 0;
  #native: NativeMonitor | undefined;
  #refed = true;
  #closed = false;
  #iters = new Set<IterState>();
  // A failure nobody was listening for: later iterations start by rejecting with it.
  #error: unknown;

  /** @internal use `nl.monitor()` */
  constructor(h: Handle, opts: MonitorOptions = {}) {
    super();
    const op = 'monitor';
    v.object(op, 'options', opts);
    v.knownKeys(op, '', opts as Record<string, unknown>, ['groups', 'family', 'listExisting', 'rcvbuf', 'signal']);
    if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw v.typeError(op, 'signal', 'must be an AbortSignal');
    let groups: MonitorGroup[] = [...monitorGroups];
    if (opts.groups !== undefined) {
      if (!Array.isArray(opts.groups) || opts.groups.length === 0) throw v.typeError(op, 'groups', 'must be a non-empty array of ' + monitorGroups.join(', '));
      groups = opts.groups.map((g, i) => v.oneOf(op, `groups[${i}]`, g, monitorGroups));
      groups = [...new Set(groups)];
    }
    const args: Record<string, unknown> = { groups };
    if (opts.family !== undefined) args.family = v.oneOf(op, 'family', opts.family, ['inet', 'inet6'] as const);
    const listExisting = opts.listExisting === undefined ? false : v.bool(op, 'listExisting', opts.listExisting);
    if (opts.rcvbuf !== undefined) args.rcvbuf = v.uint(op, 'rcvbuf', opts.rcvbuf, 256, 1 << 30);
    this.ready = this.#start(h, args, groups, listExisting);
    const signal = opts.signal;
    if (signal) {
      const onAbort = () => this.#abort(signal);
      if (signal.aborted) queueMicrotask(onAbort);
      else {
        signal.addEventListener('abort', onAbort, { once: true });
        this.once('close', () => signal.removeEventListener('abort', onAbort));
      }
    }
    // Failures reach listeners/iterators through #fail; `ready` is for whoever awaits it.
    this.ready.catch(() => {});
  }

  async #start(h: Handle, args: Record<string, unknown>, groups: MonitorGroup[], listExisting: boolean): Promise<void> {
    let r: { fd: number; portId: number; rcvbuf: number };
    try {
      r = await h._call('monitor', args, 'monitor.open');
    } catch (e) {
      this.#fail(e);
      throw e;
    }
    if (this.#closed) { fs.closeSync(r.fd); return; }
    this.rcvbuf = r.rcvbuf;
    const flags: Record<string, unknown> = { portId: r.portId, listExisting, family: args.family };
    for (const g of groups) flags[g] = true;
    try {
      // The addon owns the fd from here, and closes it when its constructor fails.
      this.#native = new native.Monitor(r.fd, flags, (evs: any[]) => this.#dispatch(evs)) as NativeMonitor;
    } catch (e) {
      // Its reader thread could not start (a pids limit): iterators and listeners learn it.
      this.#fail(e);
      throw e;
    }
    if (!this.#refed) this.#native.ref(false);
  }

  /**
   * Lets the process exit while this monitor is open (as `timer.unref()` does); events still
   * arrive while something else keeps the process running. Returns the monitor.
   *
   * @example
   * const mon = nl.monitor({ groups: ['link'] }).unref();
   * mon.on('newlink', (ev) => console.log(ev.link.name));
   */
  unref(): this {
    this.#refed = false;
    this.#native?.ref(false);
    return this;
  }

  /** Undoes `unref()`: an open monitor keeps the process alive again. Returns the monitor. */
  ref(): this {
    this.#refed = true;
    this.#native?.ref(true);
    return this;
  }

  #dispatch(evs: any[]): void {
    for (const ev of evs) {
      if (ev.type === 'error') {
        this.#fail(new NetlinkError('monitor', ev.errno, ev.where));
        void this.close();
        return;
      }
      for (const it of this.#iters) {
        if (it.waiter) { const w = it.waiter; it.waiter = undefined; w.resolve({ value: ev, done: false }); }
        else it.queue.push(ev);
      }
      try {
        this.emit('event', ev);
        this.emit(ev.type, ev);
      } catch (e) {
        // A listener's throw inside the native callback would be swallowed with a warning (or,
        // in a worker being stopped, lost): rethrow it where it is an ordinary uncaught exception.
        process.nextTick(() => { throw e; });
      }
    }
  }

  // The caller's signal aborted: iterations reject with an AbortError, the monitor closes.
  #abort(signal: AbortSignal): void {
    const e = abortError(signal);
    for (const it of this.#iters) {
      it.error = e;
      if (it.waiter) { const w = it.waiter; it.waiter = undefined; w.reject(e); }
    }
    if (this.#error === undefined) this.#error = e;
    void this.close();
  }

  #fail(e: unknown): void {
    for (const it of this.#iters) {
      it.error = e;
      if (it.waiter) { const w = it.waiter; it.waiter = undefined; w.reject(e); }
    }
    // emit('error') without a listener throws, and here that would be inside the native
    // callback, crashing the process: keep the failure for the next iteration instead.
    if (this.listenerCount('error') > 0) this.emit('error', e as Error);
    else if (this.#iters.size === 0 && this.#error === undefined) this.#error = e;
  }

  /** True once `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Stops the monitor: joins its thread, delivers the events it had already read, then ends
   * every iteration and emits `'close'`. Safe to call twice.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.ready.catch(() => {});
    if (this.#native) {
      const rest = this.#native.close();
      this.#native = undefined;
      if (rest.length) this.#dispatch(rest);
    }
    for (const it of this.#iters) {
      it.done = true;
      if (it.waiter && it.queue.length === 0) { const w = it.waiter; it.waiter = undefined; w.resolve({ value: undefined, done: true }); }
    }
    this.emit('close');
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Events from the moment the iteration starts; leaving the loop closes the monitor. */
  [Symbol.asyncIterator](): AsyncIterator<MonitorEvent> {
    const st: IterState = { queue: [], done: this.#closed, error: this.#error };
    this.#iters.add(st);
    return {
      next: () => {
        if (st.queue.length) return Promise.resolve({ value: st.queue.shift()!, done: false });
        if (st.error !== undefined) { const e = st.error; st.error = undefined; st.done = true; return Promise.reject(e); }
        if (st.done) { this.#iters.delete(st); return Promise.resolve({ value: undefined, done: true }); }
        return new Promise((resolve, reject) => { st.waiter = { resolve, reject }; });
      },
      return: async () => {
        this.#iters.delete(st);
        await this.close();
        return { value: undefined, done: true };
      },
    };
  }
}
