// Handle, monitor and transport hardening: native->JS callbacks that cannot abort the process,
// handles that settle every call they accepted, teardown that runs nothing more, requests that
// cannot wait forever, and a handle queue that one slow step does not hold up.
// Crashes and early exits are what these tests look for, so each scenario runs in a child process.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Netns } from '../lib/index.js';
import { Namespaces, privilegedSkipReason } from './helpers.js';

const skip = privilegedSkipReason();
const dist = new URL('../dist/', import.meta.url).href;

/** Runs an ES module script in a fresh node process; a crash or a hang is the test's failure. */
function child(script: string, opts: { args?: string[]; timeout?: number } = {}) {
  const r = spawnSync(process.execPath, [...(opts.args ?? []), '--input-type=module', '-e', script], { encoding: 'utf8', timeout: opts.timeout ?? 30_000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(skip)('handle and monitor hardening', () => {
  const nss = new Namespaces();
  let A: Netns;

  beforeAll(async () => {
    A = await nss.create('hcore');
  });
  afterAll(async () => {
    await nss.cleanup();
  });

  it('terminating workers that have a monitor open while events are delivered never aborts the process', () => {
    // Each worker keeps its monitor busy with its own link churn; terminate() lands while
    // deliveries are queued, and a Napi::Error escaping the delivery used to abort (exit 134).
    const r = child(`
      import { Worker } from 'node:worker_threads';
      const code = \`
        const { open } = await import(${JSON.stringify(dist + 'index.js')});
        const { parentPort, workerData } = await import('node:worker_threads');
        const h = await open({ netns: ${JSON.stringify(A.name)} });
        const mon = h.monitor({ groups: ['link', 'addr', 'route'] });
        mon.on('event', () => {});
        await mon.ready;
        parentPort.postMessage('ready');
        for (let i = 0;; i++) {
          const name = 'wt' + workerData + '_' + (i % 8);
          await h.link.add({ name, kind: 'bridge' }).catch(() => {});
          await h.link.del(name).catch(() => {});
        }\`;
      for (let round = 0; round < 6; round++) {
        const ws = [0, 1, 2, 3].map((k) => new Worker(code, { eval: true, workerData: round * 4 + k }));
        await Promise.all(ws.map((w) => new Promise((res) => w.once('message', res))));
        await new Promise((res) => setTimeout(res, 30 + 25 * round));
        await Promise.all(ws.map((w) => w.terminate()));
      }
      console.log('survived');`, { timeout: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('survived\n');
    expect(r.status).toBe(0);
  });

  it('a monitor listener that throws is an ordinary uncaught exception, not an abort', () => {
    const r = child(`
      import { open } from ${JSON.stringify(dist + 'index.js')};
      const h = await open({ netns: ${JSON.stringify(A.name)} });
      process.on('uncaughtException', async (e) => {
        console.log('caught', e.message);
        await h.link.del('thr0').catch(() => {});
        process.exit(7);
      });
      const mon = h.monitor({ groups: ['link'] });
      mon.on('newlink', () => { throw new Error('listener broke'); });
      await mon.ready;
      await h.link.add({ name: 'thr0', kind: 'bridge' });`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('caught listener broke\n');
    expect(r.status).toBe(7);
  });

  it('a handle dropped with a call in flight still settles it: 1000 cycles of `await h.close()` as its last use under --expose-gc', () => {
    // The only thing holding a handle during `await h.close()` was the awaiting frame; a GC
    // then joined its thread and dropped the completion, and the process exited mid-await.
    const r = child(`
      import { open } from ${JSON.stringify(dist + 'index.js')};
      const o = { netns: ${JSON.stringify(A.name)} };
      let closed = 0, listed = 0, finallies = 0;
      for (let i = 0; i < 1000; i++) {
        try {
          const p = (await open(o)).close();   // nothing but the promise refers to the handle
          globalThis.gc({ type: 'minor' });  // a young handle goes in a scavenge; full GCs are slow here
          await p;
          closed++;
          if (i % 10 === 0) {
            const q = (await open(o)).link.list();  // dropped unclosed, with a call in flight
            globalThis.gc({ type: 'minor' });
            if ((await q).some((l) => l.name === 'lo')) listed++;
          }
        } finally {
          finallies++;
        }
      }
      console.log('settled', closed, listed, finallies);`, { args: ['--expose-gc'], timeout: 120_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('settled 1000 100 1000\n');
    expect(r.status).toBe(0);
  });

  it('process exit drops the calls not yet started on the handle thread instead of running them', async () => {
    // The first call (2000 bridges in one job) is seen running (a second handle finds its first
    // bridge) before 100 link.add calls are queued behind it and the process exits at once:
    // those 100 must never reach the kernel.
    const ns = await nss.create('hexit');
    const r = child(`
      import { open } from ${JSON.stringify(dist + 'index.js')};
      const o = { netns: ${JSON.stringify(ns.name)} };
      const h = await open(o), watch = await open(o);
      void h.link.addMany(Array.from({ length: 2000 }, (_, i) => ({ name: 'slow' + i, kind: 'bridge' })), { echo: false });
      while (!(await watch.link.list()).some((l) => l.name === 'slow0')) {}
      for (let i = 0; i < 100; i++) void h.link.add({ name: 'late' + i, kind: 'bridge' }, { echo: false });
      console.log('queued');
      process.exit(0);`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('queued\n');
    expect(r.status).toBe(0);
    const ip = spawnSync('ip', ['-n', ns.name, '-j', 'link', 'show'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const names = (JSON.parse(ip.stdout) as { ifname: string }[]).map((l) => l.ifname);
    expect(names.filter((n) => n.startsWith('slow')).length).toBeGreaterThan(0);
    expect(names.filter((n) => n.startsWith('late'))).toEqual([]);
  });
});
