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

  it('terminating workers that have a monitor open and calls in flight never aborts the process', () => {
    // terminate() lands while the worker is calling into the addon and deliveries are queued;
    // a Napi::Error thrown into the terminating environment used to abort (exit 134).
    const r = child(`
      import { Worker } from 'node:worker_threads';
      const code = \`
        const { open } = await import(${JSON.stringify(dist + 'index.js')});
        const { parentPort } = await import('node:worker_threads');
        const h = await open({ netns: ${JSON.stringify(A.name)} });
        const mon = h.monitor({ groups: ['link', 'addr', 'route'] });
        mon.on('event', () => {});
        await mon.ready;
        await h.link.add({ name: 'wt' + process.pid + Math.random().toString(36).slice(2, 6), kind: 'bridge' });
        parentPort.postMessage('ready');
        for (;;) void h.link.get('lo').catch(() => {});\`;
      for (let round = 0; round < 5; round++) {
        const w = new Worker(code, { eval: true });
        await new Promise((res) => w.once('message', res));
        await new Promise((res) => setTimeout(res, 30));
        await w.terminate();
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

  it('a handle dropped with calls in flight still settles them: `await h.close()` as its last use, 1000 cycles under --expose-gc', () => {
    // A collected handle joined its thread and dropped the completions still to come, and the
    // process exited mid-await (code 13, unsettled top-level await), skipping finally blocks.
    // First the addon's handle alone, collected with 200 calls and close() queued (certain to
    // hit the window); then the shape through the public API, 1000 times.
    const r = child(`
      import { native } from ${JSON.stringify(dist + 'native.js')};
      import { open } from ${JSON.stringify(dist + 'index.js')};
      let adds = 0, closed = 0, finallies = 0;
      function startDropped(i) {
        const nh = new native.Handle({ netnsPath: ${JSON.stringify('/run/netns/' + A.name)} });
        for (let k = 0; k < 200; k++) void nh.call('link.add', { name: 'g' + i + '_' + k, kind: 'bridge', echo: false }).then(() => adds++);
        return nh.close();
      }
      for (let i = 0; i < 3; i++) {
        try {
          const p = startDropped(i);  // nothing but the promises refers to the handle now
          globalThis.gc();
          await p;
          closed++;
        } finally {
          finallies++;
        }
      }
      console.log('native', closed, finallies, adds);
      const o = { netns: ${JSON.stringify(A.name)} };
      let listed = 0;
      closed = finallies = 0;
      async function cycle() { const h = await open(o); await h.close(); }
      for (let i = 0; i < 1000; i++) {
        try {
          const p = cycle();
          if (i % 10 === 0) globalThis.gc();
          await p;
          closed++;
          if (i % 100 === 0) {
            const q = (await open(o)).link.list();  // dropped unclosed, with a call in flight
            globalThis.gc();
            if ((await q).some((l) => l.name === 'lo')) listed++;
          }
        } finally {
          finallies++;
        }
      }
      console.log('open/close', closed, listed, finallies);`, { args: ['--expose-gc'], timeout: 50_000 });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('native 3 3 600\nopen/close 1000 10 1000\n');
    expect(r.status).toBe(0);
  });

  it('environment teardown drops the calls not yet started on the handle thread instead of running them', async () => {
    // A worker that exits tears its environment down. Its first call (2000 bridges in one
    // exchange) is seen running (a second handle finds its first bridge) before 100 link.add
    // calls are queued behind it and the worker exits at once: those 100 must never run.
    const ns = await nss.create('hexit');
    const r = child(`
      import { Worker } from 'node:worker_threads';
      const w = new Worker(\`
        const { open } = await import(${JSON.stringify(dist + 'index.js')});
        const o = { netns: ${JSON.stringify(ns.name)} };
        const h = await open(o), watch = await open(o);
        void h.link.addMany(Array.from({ length: 2000 }, (_, i) => ({ name: 'slow' + i, kind: 'bridge' })), { echo: false });
        while (!(await watch.link.list()).some((l) => l.name === 'slow0')) {}
        for (let i = 0; i < 100; i++) void h.link.add({ name: 'late' + i, kind: 'bridge' }, { echo: false });
        process.exit(0);\`, { eval: true });
      w.on('exit', (c) => console.log('worker exited', c));`);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('worker exited 0\n');
    expect(r.status).toBe(0);
    const ip = spawnSync('ip', ['-n', ns.name, '-j', 'link', 'show'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const names = (JSON.parse(ip.stdout) as { ifname: string }[]).map((l) => l.ifname);
    expect(names.filter((n) => n.startsWith('slow')).length).toBeGreaterThan(0);
    expect(names.filter((n) => n.startsWith('late'))).toEqual([]);
  });
});
