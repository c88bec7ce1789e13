import { rootHandle } from './core.js';
import type { Handle } from './handle.js';
import * as v from './validate.js';

/**
 * The identity of the handle's namespace: its nsfs device and inode (which name the default
 * state directory) and its cookie. An inode is reused once a namespace is freed; the cookie
 * (SO_NETNS_COOKIE) never is while the machine runs. @internal
 */
const nsIds = new WeakMap<Handle, Promise<{ dev: number; ino: number; cookie?: string }>>();
export function netnsId(h: Handle): Promise<{ dev: number; ino: number; cookie?: string }> {
  let p = nsIds.get(h);
  if (!p) {
    p = h._call<{ dev: number; ino: number; cookie?: string }>('network', {}, 'proc.netnsId');
    nsIds.set(h, p);
    p.catch(() => nsIds.delete(h));
  }
  return p;
}

let counter = 0;

/**
 * A named network namespace, as `ip netns add` makes them: a file under /run/netns that
 * keeps the namespace alive until `delete()`.
 *
 * @example
 * const ns = await Netns.create('demo');
 * const nl = await open({ netns: ns });
 * ...
 * await nl.close(); await ns.delete();
 */
export class Netns {
  readonly name: string;
  readonly path: string;

  private constructor(name: string) {
    this.name = name;
    this.path = `/run/netns/${name}`;
  }

  /**
   * Creates a namespace. Without a name, a unique one (`vnl-PID-N`) is chosen.
   * Equivalent to: `ip netns add NAME`.
   */
  static async create(name?: string): Promise<Netns> {
    const n = name === undefined ? `vnl-${process.pid}-${++counter}` : v.netnsName('netns.create', 'name', name);
    await rootHandle()._call('netns.create', { name: n }, 'netns.add');
    return new Netns(n);
  }

  /** A handle-free reference to an existing named namespace. */
  static from(name: string): Netns {
    return new Netns(v.netnsName('netns.from', 'name', name));
  }

  /** Names under /run/netns. Equivalent to: `ip netns list`. */
  static async list(): Promise<string[]> {
    return rootHandle()._call('netns.list', {});
  }

  /** Deletes a namespace by name. Equivalent to: `ip netns del NAME`. */
  static async delete(name: string): Promise<void> {
    await rootHandle()._call('netns.delete', { name: v.netnsName('netns.delete', 'name', name) });
  }

  /** Removes this namespace's name; the namespace dies with its last user. */
  async delete(): Promise<void> {
    await Netns.delete(this.name);
  }

  toString(): string {
    return this.name;
  }
}
