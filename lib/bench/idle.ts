// Waiting for the kernel to be idle between benchmark reps. Deleting a namespace returns at
// once, but the kernel tears it down later on a workqueue (cleanup_net), holding the RTNL lock
// while it unregisters the namespace's devices: a rep that starts during that measures the
// teardown of the previous one (the "stall tail"), not the tool. Before each rep the bench
// therefore waits until (1) a canary veth end that lived in every namespace the bench deleted
// is gone, which happens when the kernel destroyed that namespace's devices, and (2) a cheap
// request that takes the RTNL lock answers quickly several times in a row.
import { open, type Handle } from '../handle.js';
import { Netns } from '../netns.js';

let seq = 0;

export class KernelIdle {
  #ns: Netns;
  #h: Handle;
  #canaries = new Set<string>();
  #baseline = Infinity;

  private constructor(ns: Netns, h: Handle) { this.#ns = ns; this.#h = h; }

  /** A probe namespace of its own (its `lo` is the lock probe). */
  static async create(): Promise<KernelIdle> {
    const ns = await Netns.create(`vnl-idle-${process.pid}-${++seq}`);
    const h = await open({ netns: ns.name });
    const k = new KernelIdle(ns, h);
    await h.link.set('lo', { up: true });
    const t: number[] = [];
    for (let i = 0; i < 20; i++) t.push(await k.#probe());
    t.sort((a, b) => a - b);
    k.#baseline = t[Math.floor(t.length / 2)];
    return k;
  }

  get probeNs(): string { return this.#ns.name; }

  /** One RTNL-locked no-op (lo is already up), in ms. */
  async #probe(): Promise<number> {
    const t = performance.now();
    await this.#h.link.set('lo', { up: true });
    return performance.now() - t;
  }

  /**
   * Deletes `name` (a namespace the bench made), leaving a canary behind: a veth pair with one
   * end inside it and one in the probe namespace; the kernel removes the probe-side end only
   * when it destroys the deleted namespace's devices.
   */
  async deleteNs(name: string): Promise<void> {
    const canary = `cy${process.pid % 10000}x${++seq}`;
    await this.#h.link.add({ kind: 'veth', name: canary, peer: { name: 'canary0', netns: name } }, { echo: false });
    this.#canaries.add(canary);
    await Netns.delete(name);
  }

  /**
   * Resolves once every canary is gone and `quiet` probes in a row took at most 4x the
   * baseline (+0.5 ms); gives up after `timeoutMs` (a loaded machine never gets quiet) and
   * reports how long it waited.
   */
  async wait(timeoutMs = 60000, quiet = 5): Promise<{ waitedMs: number; settled: boolean }> {
    const t0 = performance.now();
    const end = t0 + timeoutMs;
    while (this.#canaries.size && performance.now() < end) {
      const names = new Set((await this.#h.link.list()).map((l) => l.name));
      for (const c of [...this.#canaries]) if (!names.has(c)) this.#canaries.delete(c);
      if (this.#canaries.size) await new Promise((r) => setTimeout(r, 10));
    }
    const limit = 4 * this.#baseline + 0.5;
    let run = 0;
    while (run < quiet && performance.now() < end) {
      run = (await this.#probe()) <= limit ? run + 1 : 0;
      await new Promise((r) => setTimeout(r, 5));
    }
    return { waitedMs: performance.now() - t0, settled: run >= quiet && this.#canaries.size === 0 };
  }

  async close(): Promise<void> {
    await this.#h.close();
    await this.#ns.delete();
  }
}
