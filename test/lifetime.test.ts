// Lifetimes: every kind of object (handle, tap, macvtap queues, Forwarder, monitor) made and
// closed 1000 times, dropped unclosed, and left open in worker threads that are terminated.
// Each scenario runs in a child process, so a crash, an abort or a hang fails the test; the
// child counts settled promises and compares its fds (/proc/self/fd) and threads
// (/proc/self/task) with a baseline taken after one warm-up cycle of each kind.
import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns } from '../lib/index.js';
import { Namespaces, privilegedSkipReason } from './helpers.js';

const skip = privilegedSkipReason();
const dist = new URL('../dist/index.js', import.meta.url).href;
const CYCLES = 1000;
// ~40 s here when quiet; the three children run side by side, and a loaded machine slows them.
const TIMEOUT = 170_000;

/** What every child starts with: counters of fds and threads, and a bounded wait for both. */
const prelude = (ns: string) => `
  import fs from 'node:fs';
  import { open, Forwarder } from ${JSON.stringify(dist)};
  const NS = ${JSON.stringify(ns)};
  const N = ${CYCLES};
  const fds = () => fs.readdirSync('/proc/self/fd').length;
  // Queue fds of taps and macvtaps (numbers the caller owns; macvtap's are opened through a
  // private node, unlinked at once) apart from the library's own.
  const isTapFd = (f) => { try { const l = fs.readlinkSync('/proc/self/fd/' + f); return l === '/dev/net/tun' || l.startsWith('/dev/tap') || l.startsWith('/tap-'); } catch { return false; } };
  const ownFds = () => fs.readdirSync('/proc/self/fd').filter((f) => !isTapFd(f)).length;
  const threads = () => fs.readdirSync('/proc/self/task').length;
  const tick = () => new Promise((r) => setTimeout(r, 20));
  // Finalizers of collected native objects run after the GC that found them: give them a
  // bounded number of turns, then report what is left.
  async function settleTo(base) {
    for (let i = 0; i < 250; i++) {
      globalThis.gc?.();
      await tick();
      if (fds() <= base.fds && threads() <= base.threads) break;
    }
    // Fewer than at the baseline is fine (something of the warm-up was released later).
    return { fds: Math.max(0, fds() - base.fds), threads: Math.max(0, threads() - base.threads) };
  }
  const out = {};
`;

type ChildResult = { status: number | null; signal: NodeJS.Signals | null; stderr: string; result: any };

/** Runs a child without blocking this process, so the scenarios run side by side. */
function runChild(script: string, gc: boolean): Promise<ChildResult> {
  const args = [...(gc ? ['--expose-gc'] : []), '--input-type=module', '-e', script];
  return new Promise((resolve) => {
    const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 150_000 });
    let stdout = '', stderr = '';
    c.stdout.on('data', (d) => { stdout += d; });
    c.stderr.on('data', (d) => { stderr += d; });
    c.on('close', (status, signal) => {
      let result: any;
      try { result = JSON.parse(stdout.trim().split('\n').at(-1) ?? ''); } catch { result = stdout; }
      resolve({ status, signal, stderr, result });
    });
  });
}

describe.skipIf(skip)('object lifetimes', () => {
  const nss = new Namespaces();
  let A: Netns;
  let a: Handle;
  let runs: Record<'plain' | 'gc' | 'workers', Promise<ChildResult>>;

  beforeAll(async () => {
    A = await nss.create('life');
    a = await open({ netns: A });
    // A persistent tap and a macvtap over a veth: cycles attach to them and detach, so each
    // cycle makes and releases the objects and fds without a device deletion (an RCU wait) each.
    await a.link.add({ kind: 'veth', name: 'lv0', peer: { name: 'lv1' } });
    await a.link.add({ kind: 'macvtap', name: 'lmvt0', link: 'lv0', mode: 'bridge' });
    await a.link.set('lv0', { up: true });
    for (const name of ['ltap0', 'ltap1']) await (await a.tap.create({ name, persist: true, vnetHdr: true })).close();
    // The three scenarios run side by side (each is mostly one thread waiting on another).
    runs = { plain: runChild(cycles(false), false), gc: runChild(cycles(true), true), workers: runChild(workers(), true) };
  });
  afterAll(async () => {
    if (runs) await Promise.all(Object.values(runs));
    await a?.close();
    await nss.cleanup();
  }, TIMEOUT);

  const cycles = (gc: boolean) => `
    ${prelude(A.name)}
    // One handle per kind: the kinds cycle side by side, and a macvtap queue's close (an RCU
    // wait in the kernel, ~20 ms) does not hold up the others.
    const hs = {};
    for (const k of ['monitor', 'tap', 'macvtap']) hs[k] = await open({ netns: NS });
    async function handle() { const h = await open({ netns: NS }); await h.close(); }
    async function monitor() { const m = hs.monitor.monitor({ groups: ['link'] }); await m.ready; await m.close(); }
    async function tap() { const t = await hs.tap.tap.create({ name: '${gc ? 'ltap1' : 'ltap0'}', vnetHdr: true }); await t.close(); }
    async function macvtap() { const q = await hs.macvtap.macvtap.open('lmvt0'); await q.close(); }
    async function forwarder() {
      const fw = new Forwarder();
      const [x, y] = Forwarder.socketpair();
      fw.add('p', x);
      fw.start();
      await fw.close();
      fs.closeSync(x); fs.closeSync(y);
    }
    const kinds = { handle, monitor, tap, macvtap, forwarder };
    for (const f of Object.values(kinds)) await f();  // warm-up: lazily made threads and fds
    const base = { fds: fds(), threads: threads() };
    await Promise.all(Object.entries(kinds).map(async ([name, f]) => {
      let settled = 0;
      for (let i = 0; i < N; i++) { await f(); settled++; }
      out[name] = { settled };
    }));
    const left = await settleTo(base);
    for (const k of Object.keys(kinds)) Object.assign(out[k], left);
    ${gc ? `
    // Dropped unclosed, with a call in flight: collected, their threads and sockets released.
    // (Made in functions of their own, so no register of this frame still holds the last one.)
    async function dropHandle() { return (await open({ netns: NS })).link.get('lo'); }
    function dropForwarder() { const fw = new Forwarder(); const [x, y] = Forwarder.socketpair(); fw.add('p', x); fw.start(); fs.closeSync(x); fs.closeSync(y); }
    let settled = 0;
    for (let i = 0; i < N; i++) {
      const p = dropHandle();
      if (i % 50 === 0) globalThis.gc();
      if ((await p).name === 'lo') settled++;
    }
    out.droppedHandles = { settled, ...(await settleTo(base)) };
    for (let i = 0; i < N; i++) dropForwarder();
    out.droppedForwarders = { settled: N, ...(await settleTo(base)) };` : ''}
    for (const h of Object.values(hs)) await h.close();
    console.log(JSON.stringify(out));`;

  const workers = () => `
      ${prelude(A.name)}
      import { Worker } from 'node:worker_threads';
      const code = \`
        const { open, Forwarder } = await import(${JSON.stringify(dist)});
        const { parentPort } = await import('node:worker_threads');
        const h = await open({ netns: ${JSON.stringify(A.name)} });
        const mon = h.monitor({ groups: ['link', 'addr'] });
        mon.on('event', () => {});
        await mon.ready;
        const tap = await h.tap.create({ name: 'wtap%d', vnetHdr: true });
        const q = await h.macvtap.open('lmvt0');
        const fw = new Forwarder();
        fw.add('tap', tap.fds);
        fw.add('mvt', q.fds);
        fw.start();
        parentPort.postMessage('open');
        // Calls in flight and events queued when terminate() lands.
        for (;;) await h.link.set('lv1', { mtu: 1400 + Math.floor(Math.random() * 100) });\`;
      const one = async () => {
        const w = new Worker(code, { eval: true });
        await new Promise((res, rej) => { w.once('message', res); w.once('error', rej); });
        await new Promise((res) => setTimeout(res, 20));
        return w.terminate();
      };
      await one();  // warm-up
      await settleTo({ fds: 0, threads: 0 });
      const base = { fds: ownFds(), threads: threads() };
      let terminated = 0;
      for (let i = 0; i < 10; i++) { await one(); terminated++; }
      const left = await settleTo({ fds: Infinity, threads: base.threads });
      out.workers = { settled: terminated, threads: left.threads, fds: ownFds() - base.fds };
      console.log(JSON.stringify(out));`;

  const expectClean = (r: ChildResult, kinds: string[]) => {
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    for (const k of kinds) expect([k, r.result[k]]).toEqual([k, { settled: CYCLES, fds: 0, threads: 0 }]);
  };

  it(`${CYCLES} cycles of each kind, without --expose-gc: every promise settles, fds and threads back to baseline`, async () => {
    expectClean(await runs.plain, ['handle', 'monitor', 'tap', 'macvtap', 'forwarder']);
  }, TIMEOUT);

  it(`the same under --expose-gc, plus ${CYCLES} handles and Forwarders dropped unclosed`, async () => {
    expectClean(await runs.gc, ['handle', 'monitor', 'tap', 'macvtap', 'forwarder', 'droppedHandles', 'droppedForwarders']);
  }, TIMEOUT);

  it('worker threads terminated with every kind of object open: no crash, no hang, threads and the library\'s fds back to baseline', async () => {
    const r = await runs.workers;
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    // The library's own threads and fds (sockets, eventfds, the forwarder's) are all released.
    expect(r.result.workers).toEqual({ settled: 10, threads: 0, fds: 0 });
  }, TIMEOUT);
});
