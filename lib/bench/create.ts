// `vnetlink bench create`: device creation and removal rates per kind, through the API and,
// in the same run, through `ip -batch`, one `ip` process per device, pyroute2 and a raw
// netlink C program (the floor). Every tool works in a throwaway namespace of its own.
import { execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { open, type Handle } from '../handle.js';
import { Netns } from '../netns.js';
import { packageRoot } from '../native.js';
import { UsageError, intOpt, listOpt, parse, positionals, table } from '../cli/args.js';
import { KernelIdle } from './idle.js';
import { benchSlotCli, slotUsage } from './slot.js';

const execFileP = promisify(execFile);

export const benchKinds = ['bridge', 'veth', 'tap', 'macvtap', 'vxlan'] as const;
export type BenchKind = (typeof benchKinds)[number];
export const benchTools = ['api', 'api-noecho', 'addmany', 'addmany-noecho', 'c', 'ip-batch', 'ip-proc', 'pyroute2', 'monitor'] as const;
export type BenchTool = (typeof benchTools)[number];

export interface BenchCreateOptions {
  kinds: BenchKind[];
  /** Devices per kind and tool. */
  count: number;
  /** Also measure `link.addMany` (the pipelined path). */
  batch?: boolean;
  /** Devices deleted one by one (the rest go in one group delete). Default min(count, 50). */
  delSample?: number;
  /** Which tools (default: all that apply; addmany only with batch). */
  tools?: BenchTool[];
  /** Runs per (kind, tool); medians are reported. Default 1. */
  repeat?: number;
  /** Progress lines (on a terminal). */
  progress?: (line: string) => void;
  /**
   * Wait for the kernel to finish tearing down the previous rep's namespace before each rep
   * (default true; see idle.ts). False shows what a rep measures when it does not.
   */
  settle?: boolean;
}

export interface BenchResult {
  kind: BenchKind;
  tool: BenchTool;
  count: number;
  /** Creates per second (sequential, one awaited request at a time; addmany: pipelined). */
  createPerSec?: number;
  /** Latency of a single create, ms (api and c only). */
  p50Ms?: number;
  p99Ms?: number;
  /** Deletes one by one per second, over delOneCount devices. */
  delOnePerSec?: number;
  delOneCount?: number;
  /** Devices per second removed by one group delete, over delBulkCount devices. */
  delBulkPerSec?: number;
  delBulkCount?: number;
  /** monitor: link events per second delivered to JS during a group-delete burst, and resyncs seen. */
  eventsPerSec?: number;
  events?: number;
  /** monitor: events per second JS takes from a backlog (the burst queued while JS was busy). */
  drainPerSec?: number;
  drained?: number;
  resyncs?: number;
  runs: number;
  skipped?: string;
}

export interface BenchReport {
  host: { cpus: number; kernel: string; node: string };
  count: number;
  results: BenchResult[];
}

const GROUP = 4242;
let nsSeq = 0;

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] : 0;
}
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
}
const rate = (n: number, ms: number) => (ms > 0 ? (n * 1000) / ms : Infinity);

function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** The kind needs a lower device (a veth in the bench namespace, never a host uplink). */
const needsLower = (k: BenchKind) => k === 'macvtap' || k === 'vxlan';

function apiSpec(kind: BenchKind, i: number): any {
  const name = `d${i}`;
  switch (kind) {
    case 'veth': return { kind, name, group: GROUP, peer: { name: `d${i}p`, group: GROUP } };
    case 'bridge': return { kind, name, group: GROUP };
    case 'macvtap': return { kind, name, group: GROUP, link: 'low0', mode: 'bridge' };
    case 'vxlan': return { kind, name, group: GROUP, vni: i + 1, dstPort: 4789, link: 'low0' };
    default: return { name, group: GROUP };
  }
}

function ipLines(kind: BenchKind, i: number): string[] {
  const name = `d${i}`;
  switch (kind) {
    case 'veth': return [`link add ${name} group ${GROUP} type veth peer name d${i}p group ${GROUP}`];
    case 'bridge': return [`link add ${name} group ${GROUP} type bridge`];
    case 'macvtap': return [`link add ${name} link low0 group ${GROUP} type macvtap mode bridge`];
    case 'vxlan': return [`link add ${name} group ${GROUP} type vxlan id ${i + 1} dstport 4789 dev low0`];
    case 'tap': return [`tuntap add mode tap name ${name}`, `link set ${name} group ${GROUP}`];
  }
}

/** Where the C floor gets built (once per process), or why it cannot be. */
let cBinary: Promise<string | { skipped: string }> | undefined;
function buildC(): Promise<string | { skipped: string }> {
  cBinary ??= (async () => {
    const src = path.join(packageRoot, 'bench', 'nlcreate.c');
    if (!fs.existsSync(src)) return { skipped: 'bench/nlcreate.c is not in this package' };
    const cc = ['cc', 'gcc', 'clang'].find(have);
    if (!cc) return { skipped: 'no C compiler (cc) to build bench/nlcreate.c' };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-bench-'));
    const out = path.join(dir, 'nlcreate');
    try {
      await execFileP(cc, ['-O2', '-o', out, src]);
    } catch (e: any) {
      return { skipped: `cc failed: ${String(e.stderr ?? e).split('\n')[0]}` };
    }
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    return out;
  })();
  return cBinary;
}

const PY = String.raw`
import json, sys, time
from pyroute2 import IPRoute
kind, n, group, sample = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ipr = IPRoute()
low = ipr.link_lookup(ifname='low0')
low = low[0] if low else None
t0 = time.perf_counter()
for i in range(n):
    name = 'd%d' % i
    if kind == 'veth': ipr.link('add', ifname=name, kind='veth', peer={'ifname': name + 'p', 'group': group}, group=group)
    elif kind == 'bridge': ipr.link('add', ifname=name, kind='bridge', group=group)
    elif kind == 'macvtap': ipr.link('add', ifname=name, kind='macvtap', link=low, macvtap_mode='bridge', group=group)
    elif kind == 'vxlan': ipr.link('add', ifname=name, kind='vxlan', vxlan_id=i + 1, vxlan_port=4789, vxlan_link=low, group=group)
    elif kind == 'tap':
        ipr.link('add', ifname=name, kind='tuntap', mode='tap')
        ipr.link('set', index=ipr.link_lookup(ifname=name)[0], group=group)
create = time.perf_counter() - t0
t1 = time.perf_counter()
for i in range(sample): ipr.link('del', ifname='d%d' % i)
one = time.perf_counter() - t1
t2 = time.perf_counter()
if n > sample: ipr.link('del', group=group)
bulk = time.perf_counter() - t2
print(json.dumps({'createSec': create, 'delOneSec': one, 'delGroupSec': bulk}))
`;

interface Run { drained?: number; drainMs?: number; events?: number; eventsMs?: number; resyncs?: number; createMs?: number; lat?: number[]; delOneMs?: number; delOne?: number; delBulkMs?: number; delBulk?: number; skipped?: string }

/** Namespaces the bench is using right now, removed by `benchAbort` on SIGINT/SIGTERM. */
const live = new Set<string>();

/** Deletes the bench's namespaces synchronously (for signal handlers); their devices go with them. */
export function benchAbort(): void {
  for (const name of live) spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  live.clear();
}

/** Set while benchCreate runs with settling on. */
let idle: KernelIdle | undefined;

async function withNs<T>(kind: BenchKind, fn: (ns: Netns, h: Handle) => Promise<T>): Promise<T> {
  if (idle) await idle.wait();
  const ns = await Netns.create(`vnl-bench-${process.pid}-${++nsSeq}`);
  live.add(ns.name);
  const h = await open({ netns: ns.name });
  try {
    if (needsLower(kind)) {
      await h.link.add({ kind: 'veth', name: 'low0', peer: { name: 'low1' } });
      await h.link.set('low0', { up: true });
    }
    return await fn(ns, h);
  } finally {
    await h.close();
    if (idle) await idle.deleteNs(ns.name);
    else await ns.delete();
    live.delete(ns.name);
  }
}

async function timeIp(ns: Netns, lines: string[]): Promise<number> {
  const file = path.join(os.tmpdir(), `vnetlink-bench-${process.pid}-${nsSeq}.batch`);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  try {
    const t = performance.now();
    await execFileP('ip', ['-n', ns.name, '-batch', file]);
    return performance.now() - t;
  } finally {
    fs.rmSync(file, { force: true });
  }
}

async function runOnce(kind: BenchKind, tool: BenchTool, count: number, sample: number, tick: (i: number) => void): Promise<Run> {
  return withNs(kind, async (ns, h) => {
    const r: Run = {};
    const anyH = h as any;
    switch (tool) {
      case 'monitor': {
        // How fast decoded events reach JS: N devices made in one pipelined batch, then one
        // group delete, whose dellink burst is the fastest change the kernel produces.
        if (kind === 'tap') return { skipped: 'measured with rtnetlink kinds only' };
        const mon = h.monitor({ groups: ['link'] });
        let events = 0;
        let resyncs = 0;
        let lastAt = 0;
        let want = Infinity;
        let done: () => void = () => {};
        const finished = new Promise<void>((res) => { done = res; });
        mon.on('event', (e: any) => {
          if (e.type === 'resync') resyncs++;
          else if (e.type === 'dellink' && /^d\d+p?$/.test(e.link.name)) { events++; lastAt = performance.now(); if (events >= want) done(); }
        });
        await mon.ready;
        const specs = Array.from({ length: count }, (_, i) => apiSpec(kind, i));
        const rs = await h.link.addMany(specs, { echo: false });
        const bad = rs.find((x) => x.status === 'rejected') as PromiseRejectedResult | undefined;
        if (bad) { await mon.close(); return { skipped: String(bad.reason?.message ?? bad.reason) }; }
        want = kind === 'veth' ? 2 * count : count;
        const t0 = performance.now();
        await h.link.delGroup(GROUP);
        await Promise.race([finished, new Promise((res) => setTimeout(res, 5000 + count))]);
        const eventsMs = lastAt - t0;
        const burst = events;
        // Capacity: the same burst again while the JS thread is kept busy, so the events pile
        // up (decoded, in the monitor's queue); then the time JS takes to take them all.
        const rs2 = await h.link.addMany(specs, { echo: false });
        if (rs2.some((x) => x.status === 'rejected')) throw new Error('bench: re-create failed');
        events = 0;
        const again = new Promise<void>((res) => { done = res; });
        const del = h.link.delGroup(GROUP);
        const busyUntil = performance.now() + 400 + count / 5;
        while (performance.now() < busyUntil) { /* hold the event loop */ }
        const t1 = performance.now();
        await Promise.race([again, new Promise((res) => setTimeout(res, 5000 + count))]);
        await del;
        const drainMs = lastAt - t1;
        const drained = events;
        await mon.close();
        tick(count - 1);
        return { events: burst, eventsMs, resyncs, drained, drainMs } as Run;
      }
      case 'api':
      case 'api-noecho':
      case 'addmany':
      case 'addmany-noecho': {
        if (kind === 'tap') {
          if (tool !== 'api') return { skipped: tool.startsWith('addmany') ? 'taps are made with the tun ioctl, not rtnetlink: no batched path' : 'taps are not echoed' };
          if (typeof anyH.tap?.create !== 'function') return { skipped: 'nl.tap is not in this build yet' };
          const taps: any[] = [];
          const lat: number[] = [];
          const t0 = performance.now();
          for (let i = 0; i < count; i++) {
            const s = performance.now();
            taps.push(await anyH.tap.create({ name: `d${i}`, group: GROUP }));
            lat.push(performance.now() - s);
            tick(i);
          }
          r.createMs = performance.now() - t0;
          r.lat = lat;
          // A non-persistent tap goes with its fd.
          await timeDeletes(r, count, sample, (i) => taps[i].close(), () => h.link.delGroup(GROUP));
          for (const t of taps.slice(sample)) await t.close();
          return r;
        }
        const specs = Array.from({ length: count }, (_, i) => apiSpec(kind, i));
        const t0 = performance.now();
        if (tool === 'api' || tool === 'api-noecho') {
          const lat: number[] = [];
          const addOpts = { echo: tool === 'api' };
          try {
            for (let i = 0; i < count; i++) {
              const s = performance.now();
              await h.link.add(specs[i], addOpts);
              lat.push(performance.now() - s);
              tick(i);
            }
          } catch (e: any) {
            if (e instanceof RangeError && /kind/.test(e.message)) return { skipped: `link kind '${kind}' is not in this build yet` };
            throw e;
          }
          r.lat = lat;
        } else {
          const rs = await h.link.addMany(specs, { concurrency: 64, echo: tool === 'addmany' });
          const bad = rs.find((x) => x.status === 'rejected') as PromiseRejectedResult | undefined;
          if (bad) {
            if (bad.reason instanceof RangeError && /kind/.test(bad.reason.message)) return { skipped: `link kind '${kind}' is not in this build yet` };
            throw bad.reason;
          }
          tick(count - 1);
        }
        r.createMs = performance.now() - t0;
        await timeDeletes(r, count, sample, (i) => h.link.del(`d${i}`), () => h.link.delGroup(GROUP));
        return r;
      }
      case 'c': {
        const bin = await buildC();
        if (typeof bin !== 'string') return bin;
        const { stdout } = await execFileP('ip', ['netns', 'exec', ns.name, bin, kind, String(count), 'd', String(GROUP), needsLower(kind) ? 'low0' : '-', String(sample)]);
        const j = JSON.parse(stdout);
        tick(count - 1);
        return { createMs: j.createSec * 1000, lat: undefined, p50: j.p50Ms, p99: j.p99Ms, delOneMs: j.delOneSec * 1000, delOne: j.delOneCount, delBulkMs: j.delGroupSec * 1000, delBulk: j.delGroupCount } as Run & { p50: number; p99: number };
      }
      case 'ip-batch': {
        const lines: string[] = [];
        for (let i = 0; i < count; i++) lines.push(...ipLines(kind, i));
        r.createMs = await timeIp(ns, lines);
        tick(count - 1);
        r.delOneMs = await timeIp(ns, Array.from({ length: sample }, (_, i) => `link del d${i}`));
        r.delOne = sample;
        if (count > sample) {
          r.delBulkMs = await timeIp(ns, [`link del group ${GROUP}`]);
          r.delBulk = count - sample;
        }
        return r;
      }
      case 'ip-proc': {
        const t0 = performance.now();
        for (let i = 0; i < count; i++) {
          for (const l of ipLines(kind, i)) await execFileP('ip', ['-n', ns.name, ...l.split(' ')]);
          tick(i);
        }
        r.createMs = performance.now() - t0;
        const t1 = performance.now();
        for (let i = 0; i < sample; i++) await execFileP('ip', ['-n', ns.name, 'link', 'del', `d${i}`]);
        r.delOneMs = performance.now() - t1;
        r.delOne = sample;
        if (count > sample) {
          const t2 = performance.now();
          await execFileP('ip', ['-n', ns.name, 'link', 'del', 'group', String(GROUP)]);
          r.delBulkMs = performance.now() - t2;
          r.delBulk = count - sample;
        }
        return r;
      }
      case 'pyroute2': {
        const py = '/usr/bin/python3';
        if (!fs.existsSync(py) || spawnSync(py, ['-c', 'import pyroute2'], { stdio: 'ignore' }).status !== 0)
          return { skipped: 'pyroute2 is not installed for /usr/bin/python3 (Debian: python3-pyroute2)' };
        const { stdout } = await execFileP('ip', ['netns', 'exec', ns.name, py, '-c', PY, kind, String(count), String(GROUP), String(sample)], { maxBuffer: 1 << 20 });
        const j = JSON.parse(stdout.trim().split('\n').pop()!);
        tick(count - 1);
        return { createMs: j.createSec * 1000, delOneMs: j.delOneSec * 1000, delOne: sample, delBulkMs: j.delGroupSec * 1000, delBulk: count - sample };
      }
    }
  });
}

/** Runs the benchmark and returns medians per (kind, tool). */
export async function benchCreate(o: BenchCreateOptions): Promise<BenchReport> {
  const count = o.count;
  const sample = Math.min(count, o.delSample ?? 50);
  const repeat = Math.max(1, o.repeat ?? 1);
  const tools = (o.tools ?? benchTools.filter((t) => (t !== 'addmany' && t !== 'addmany-noecho' && t !== 'monitor') || o.batch)) as BenchTool[];
  const results: BenchResult[] = [];
  idle = o.settle === false ? undefined : await KernelIdle.create();
  live.add(idle?.probeNs ?? '');
  live.delete('');
  try {
  for (const kind of o.kinds) {
    for (const tool of tools) {
      const runs: (Run & { p50?: number; p99?: number })[] = [];
      let skipped: string | undefined;
      for (let k = 0; k < repeat && !skipped; k++) {
        let last = 0;
        const tick = (i: number) => {
          const now = performance.now();
          if (o.progress && (now - last > 100 || i === count - 1)) {
            last = now;
            o.progress(`${kind} ${tool}${repeat > 1 ? ` run ${k + 1}/${repeat}` : ''}: ${i + 1}/${count}`);
          }
        };
        if ((tool === 'ip-batch' || tool === 'ip-proc') && !have('ip')) { skipped = 'iproute2 (ip) is not installed'; break; }
        const r = await runOnce(kind, tool, count, sample, tick);
        if (r.skipped) skipped = r.skipped;
        else runs.push(r);
      }
      const res: BenchResult = { kind, tool, count, runs: runs.length };
      if (skipped && !runs.length) res.skipped = skipped;
      if (runs.length && runs[0].events !== undefined) {
        res.events = median(runs.map((r) => r.events!));
        res.eventsPerSec = median(runs.map((r) => rate(r.events!, r.eventsMs!)));
        res.resyncs = Math.max(...runs.map((r) => r.resyncs!));
        res.drained = median(runs.map((r) => r.drained!));
        res.drainPerSec = median(runs.map((r) => rate(r.drained!, r.drainMs!)));
      } else if (runs.length) {
        res.createPerSec = median(runs.map((r) => rate(count, r.createMs!)));
        const lats = runs.filter((r) => r.lat).map((r) => [...r.lat!].sort((a, b) => a - b));
        if (lats.length) {
          res.p50Ms = median(lats.map((l) => quantile(l, 0.5)));
          res.p99Ms = median(lats.map((l) => quantile(l, 0.99)));
        } else if (runs[0].p50 !== undefined) {
          res.p50Ms = median(runs.map((r) => r.p50!));
          res.p99Ms = median(runs.map((r) => r.p99!));
        }
        if (runs[0].delOne) {
          res.delOneCount = runs[0].delOne;
          res.delOnePerSec = median(runs.map((r) => rate(r.delOne!, r.delOneMs!)));
        }
        if (runs[0].delBulk) {
          res.delBulkCount = runs[0].delBulk;
          res.delBulkPerSec = median(runs.map((r) => rate(r.delBulk!, r.delBulkMs!)));
        }
      }
      results.push(res);
    }
  }
  } finally {
    if (idle) { live.delete(idle.probeNs); await idle.close(); idle = undefined; }
  }
  return {
    host: { cpus: os.cpus().length, kernel: os.release(), node: process.version },
    count,
    results,
  };
}

const fmt = (x: number | undefined, digits = 0) => (x === undefined ? '-' : Number.isFinite(x) ? x.toFixed(digits) : 'inf');

/** A plain-text table per kind, columns aligned to their content, with ratios against the C floor of the same run. */
export function formatReport(rep: BenchReport): string {
  const out: string[] = [];
  out.push(`vnetlink bench create: ${rep.count} devices per kind and tool (${rep.host.cpus} cpus, kernel ${rep.host.kernel}, node ${rep.host.node})`);
  const kinds = [...new Set(rep.results.map((r) => r.kind))];
  for (const kind of kinds) {
    const rows = rep.results.filter((r) => r.kind === kind);
    const floor = rows.find((r) => r.tool === 'c' && r.createPerSec)?.createPerSec;
    out.push('');
    out.push(`${kind}:`);
    const cells: string[][] = [];
    const notes: string[] = [];
    for (const r of rows) {
      if (r.skipped) { notes.push(`${r.tool}: skipped: ${r.skipped}`); continue; }
      if (r.eventsPerSec !== undefined) {
        notes.push(`${r.tool}: ${fmt(r.eventsPerSec)} link events/s delivered to JS during a group-delete burst (${r.events} events, ${r.resyncs} resyncs);`);
        notes.push(`${' '.repeat(r.tool.length + 1)} ${fmt(r.drainPerSec)} events/s taken by JS from a backlog of ${r.drained} (queued while JS was busy)`);
        continue;
      }
      const ratio = floor && r.createPerSec ? `${(r.createPerSec / floor).toFixed(2)}x` : '-';
      cells.push([r.tool, fmt(r.createPerSec), ratio, fmt(r.p50Ms, 3), fmt(r.p99Ms, 3),
        fmt(r.delOnePerSec) + (r.delOneCount ? ` (${r.delOneCount})` : ''), fmt(r.delBulkPerSec) + (r.delBulkCount ? ` (${r.delBulkCount})` : '')]);
    }
    if (cells.length) out.push(...table(['tool', 'creates/s', 'vs C', 'p50 ms', 'p99 ms', 'del 1-by-1/s', 'del bulk/s'], cells, [1, 2, 3, 4, 5, 6]).split('\n').map((l) => `  ${l}`));
    out.push(...notes.map((l) => `  ${l}`));
  }
  return out.join('\n');
}

const benchOpts = {
  kind: { type: 'string' }, kinds: { type: 'string' }, count: { type: 'string' }, batch: { type: 'boolean' },
  'del-sample': { type: 'string' }, repeat: { type: 'string' }, tools: { type: 'string' }, 'no-settle': { type: 'boolean' },
} as const;

/** `vnetlink bench create ...`: argv after `create`, parsed like every other command. */
export async function benchCreateCli(argv: string[]): Promise<number> {
  const p = parse(argv, benchOpts, usage);
  if (p.values.help) { process.stdout.write(usage + '\n'); return 0; }
  positionals(p, [], usage);
  if (p.values.netns !== undefined) throw new UsageError('bench create works in throwaway namespaces of its own; --netns does not apply', usage);
  if (p.values.kind !== undefined && p.values.kinds !== undefined) throw new UsageError('give --kind or --kinds, not both', usage);
  const opts: BenchCreateOptions = { kinds: ['veth'], count: 200 };
  const kinds = listOpt(p, p.values.kinds !== undefined ? 'kinds' : 'kind', benchKinds, usage);
  if (kinds) opts.kinds = kinds;
  opts.count = intOpt(p, 'count', 1, 100000, usage) ?? opts.count;
  if (p.values.batch) opts.batch = true;
  if (p.values['no-settle']) opts.settle = false;
  const ds = intOpt(p, 'del-sample', 0, 100000, usage);
  if (ds !== undefined) opts.delSample = ds;
  const rp = intOpt(p, 'repeat', 1, 50, usage);
  if (rp !== undefined) opts.repeat = rp;
  const tools = listOpt(p, 'tools', benchTools, usage);
  if (tools) opts.tools = tools;
  const json = !!p.values.json;
  if (process.stderr.isTTY) {
    opts.progress = (line) => process.stderr.write(`\r\x1b[K${line}`);
  }
  // Interrupted: remove the throwaway namespaces (and so every device made in them) first.
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      benchAbort();
      process.stderr.write(`\nvnetlink bench: interrupted (${sig}); its namespaces were removed\n`);
      process.exit(130);
    });
  }
  const rep = await benchCreate(opts);
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  process.stdout.write((json ? JSON.stringify(rep, null, 2) : formatReport(rep)) + '\n');
  return 0;
}

export const usage = `usage: vnetlink bench create [--kind bridge,veth,tap,macvtap,vxlan] [--count N] [--batch] [--json]
                             [--del-sample M] [--repeat R] [--tools api,api-noecho,addmany,addmany-noecho,c,ip-batch,ip-proc,pyroute2,monitor]
                             [--no-settle]
Creates N devices per kind in throwaway namespaces through the API (sequentially awaited, with
and without the echo; with --batch also link.addMany and the monitor's event rate), and the same
work by ip -batch, one ip process per device, pyroute2 (when installed) and bench/nlcreate.c (raw
netlink, compiled with cc if present). Prints creates/s, p50/p99 of a single create, deletes/s one
by one (M devices, default 50) and by one group delete. Before every run it waits until the kernel
has finished tearing down the previous run's namespace (--no-settle: it does not).
Needs root (CAP_NET_ADMIN). Nothing is created outside the throwaway namespaces.`;

/** `vnetlink bench create|slot`. */
export const bench = {
  summary: 'device creation and sandbox-slot rates against ip, nft, pyroute2 and raw netlink',
  get usage() { return usage + '\n\n' + slotUsage; },
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === undefined || sub === '-h' || sub === '--help') {
      if (sub === undefined) throw new UsageError('missing command (create, slot)', this.usage);
      process.stdout.write(this.usage + '\n');
      return 0;
    }
    if (sub === 'slot') return benchSlotCli(rest);
    if (sub !== 'create') throw new UsageError(`unknown command '${sub}' (create, slot)`, this.usage);
    return benchCreateCli(rest);
  },
};

/** Times `sample` deletes one by one, then the rest with one group delete, into `r`. */
async function timeDeletes(r: any, count: number, sample: number, delOne: (i: number) => Promise<unknown>, delGroup: () => Promise<unknown>): Promise<void> {
  const t1 = performance.now();
  for (let i = 0; i < sample; i++) await delOne(i);
  r.delOneMs = performance.now() - t1;
  r.delOne = sample;
  const t2 = performance.now();
  if (count > sample) await delGroup();
  r.delBulkMs = performance.now() - t2;
  r.delBulk = count - sample;
}
