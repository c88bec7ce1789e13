import { rootHandle } from './core.js';
import * as v from './validate.js';

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
