// `vnetlink bench slot`: the per-sandbox network recipe of a Firecracker- or gVisor-style
// manager, set up and torn down `count` times by each tool in the same run:
//   a new namespace; a veth pair, one end (eth0) inside; point-to-point addresses on both ends;
//   a default route inside; a bridge inside and a persistent multi-queue vnet_hdr tap on it; a
//   DNAT port-forward rule on the host (host port -> the sandbox's address, port 22).
// Teardown: the rule deleted, the namespace deleted; it counts as done when the kernel has
// destroyed the namespace's devices (the host ends of the veths are gone).
// The "host" is a throwaway namespace of the bench's own: nothing is made in the caller's.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { open, type Handle } from '../handle.js';
import { Netns } from '../netns.js';
import { nftExpr } from '../nft.js';
import { packageRoot } from '../native.js';
import { UsageError, intOpt, listOpt, parse, positionals, table } from '../cli/args.js';
import { KernelIdle } from './idle.js';

const execFileP = promisify(execFile);

export const slotTools = ['vnetlink', 'vnetlink-seq', 'shell', 'ip-batch', 'pyroute2', 'c'] as const;
export type SlotTool = (typeof slotTools)[number];

/** The most slots one run can address (three /24s of point-to-point peers). */
export const MAX_SLOTS = 3 * 253;
const NETS = ['198.51.100', '203.0.113', '192.168.122'];
const TABLE = 'vnl_slots';
const CHAIN = 'pre';
const PORT0 = 10000;

export interface SlotAddr { host: string; inside: string; port: number }
/** Slot k's addresses: the host end is x.1 (shared, /32 with a peer), the inside end x.(j+2). */
export function slotAddr(k: number): SlotAddr {
  const net = NETS[Math.floor(k / 253)];
  return { host: `${net}.1`, inside: `${net}.${(k % 253) + 2}`, port: PORT0 + k };
}

export interface BenchSlotOptions {
  count: number;
  tools?: SlotTool[];
  repeat?: number;
  /** Slots in flight at once for `vnetlink` (its steps inside a slot are always pipelined). Default 4. */
  concurrency?: number;
  progress?: (line: string) => void;
}

export interface SlotResult {
  tool: SlotTool;
  count: number;
  runs: number;
  /** Slots set up per second (median of the runs). */
  setupPerSec?: number;
  /** One slot's setup, ms (medians over runs of the per-run p50/p99). */
  p50Ms?: number;
  p99Ms?: number;
  /** Slots torn down per second, until the kernel destroyed their devices. */
  teardownPerSec?: number;
  /** Processes started per slot (shell-outs), for the record. */
  procsPerSlot?: number;
  skipped?: string;
}

export interface SlotReport {
  host: { cpus: number; kernel: string; node: string; loadavg: number[] };
  count: number;
  concurrency: number;
  results: SlotResult[];
}

interface Run { setupMs: number; lat?: number[]; teardownMs: number; procs?: number; skipped?: string }

let runSeq = 0;
const live = new Set<string>();

/** Deletes the bench's namespaces synchronously (signal handlers). */
export function slotAbort(): void {
  for (const n of live) spawnSync('ip', ['netns', 'del', n], { stdio: 'ignore' });
  live.clear();
}

function quantile(sorted: number[], q: number): number {
  return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * q))] : NaN;
}
function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
}
function have(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

/** The first error of settled promises, thrown; their values otherwise. */
async function all<T extends readonly unknown[]>(ps: readonly [...{ [K in keyof T]: Promise<T[K]> }]): Promise<T> {
  const rs = await Promise.allSettled(ps);
  const bad = rs.find((r) => r.status === 'rejected') as PromiseRejectedResult | undefined;
  if (bad) throw bad.reason;
  return rs.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

interface Ctx { host: Handle; hostNs: string; prefix: string; count: number }

function ruleExprs(a: SlotAddr) {
  const { match, stmt } = nftExpr;
  return [...match.l4proto('tcp'), ...match.dport(a.port), ...stmt.dnat('ip', a.inside, 22)];
}

// ---- vnetlink ----------------------------------------------------------------------------

/** One slot through the API. `pipelined`: independent steps in flight together. */
async function vnlSetup(c: Ctx, k: number, pipelined: boolean): Promise<number> {
  const a = slotAddr(k);
  const sb = `${c.prefix}${k}`;
  const vh = `vh${k}`;
  const rule = () => c.host.nft.transaction().addRule({ family: 'ip', table: TABLE, chain: CHAIN, exprs: ruleExprs(a) }).commit({ echo: true });
  const veth = () => c.host.link.add({ kind: 'veth', name: vh, peer: { name: 'eth0', netns: sb } }, { echo: false });
  const hostEnd = () => all([c.host.addr.add(vh, `${a.host}/32`, { peer: a.inside }), c.host.link.set(vh, { up: true })]);
  const bridgeTap = async (h: Handle) => {
    await h.link.add({ kind: 'bridge', name: 'br0', up: true }, { echo: false });
    const t = await h.tap.create({ name: 'tap0', multiQueue: true, vnetHdr: true, persist: true, master: 'br0', up: true });
    await t.close();
  };
  const inside = async (h: Handle) => {
    await all([h.addr.add('eth0', `${a.inside}/32`, { peer: a.host }), h.link.set('eth0', { up: true })]);
    await h.route.add({ dst: 'default', via: a.host });
  };
  if (!pipelined) {
    const created = await rule();
    await Netns.create(sb);
    live.add(sb);
    await veth();
    await hostEnd();
    const h = await open({ netns: sb });
    try { await inside(h); await bridgeTap(h); } finally { await h.close(); }
    return created[0].handle;
  }
  const ruleP = rule();
  const nsP = Netns.create(sb).then(() => { live.add(sb); });
  const vethP = nsP.then(veth);
  const hostP = vethP.then(hostEnd);
  const hP = nsP.then(() => open({ netns: sb }));
  const workP = hP.then((h) => all([bridgeTap(h), vethP.then(() => inside(h))]).finally(() => h.close()));
  const [created] = await all([ruleP, nsP, vethP, hostP, hP, workP]);
  return created[0].handle;
}

async function vnlTeardown(c: Ctx, k: number, handle: number): Promise<void> {
  const sb = `${c.prefix}${k}`;
  await all([
    c.host.nft.transaction().delRule({ family: 'ip', table: TABLE, chain: CHAIN, handle }).commit(),
    Netns.delete(sb).then(() => { live.delete(sb); }),
  ]);
}

async function runVnl(c: Ctx, pipelined: boolean, concurrency: number, tick: (i: number) => void): Promise<Run> {
  const lat: number[] = new Array(c.count);
  const handles: number[] = new Array(c.count);
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    for (let k = next++; k < c.count; k = next++) {
      const s = performance.now();
      handles[k] = await vnlSetup(c, k, pipelined);
      lat[k] = performance.now() - s;
      tick(k);
    }
  };
  await all(Array.from({ length: pipelined ? concurrency : 1 }, worker));
  const setupMs = performance.now() - t0;
  await verify(c);
  const t1 = performance.now();
  next = 0;
  const down = async () => {
    for (let k = next++; k < c.count; k = next++) await vnlTeardown(c, k, handles[k]);
  };
  await all(Array.from({ length: pipelined ? concurrency : 1 }, down));
  await hostEndsGone(c);
  return { setupMs, lat, teardownMs: performance.now() - t1 };
}

// ---- processes ---------------------------------------------------------------------------

function shellSetupCmds(c: Ctx, k: number): string[][] {
  const a = slotAddr(k);
  const sb = `${c.prefix}${k}`;
  const vh = `vh${k}`;
  return [
    ['ip', 'netns', 'add', sb],
    ['ip', '-n', c.hostNs, 'link', 'add', vh, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', sb],
    ['ip', '-n', c.hostNs, 'addr', 'add', a.host, 'peer', `${a.inside}/32`, 'dev', vh],
    ['ip', '-n', c.hostNs, 'link', 'set', vh, 'up'],
    ['ip', '-n', sb, 'addr', 'add', a.inside, 'peer', `${a.host}/32`, 'dev', 'eth0'],
    ['ip', '-n', sb, 'link', 'set', 'eth0', 'up'],
    ['ip', '-n', sb, 'route', 'add', 'default', 'via', a.host],
    ['ip', '-n', sb, 'link', 'add', 'br0', 'up', 'type', 'bridge'],
    ['ip', '-n', sb, 'tuntap', 'add', 'dev', 'tap0', 'mode', 'tap', 'multi_queue', 'vnet_hdr'],
    ['ip', '-n', sb, 'link', 'set', 'tap0', 'master', 'br0', 'up'],
    ['nsenter', `--net=/run/netns/${c.hostNs}`, 'nft', '--echo', '--handle', 'add', 'rule', 'ip', TABLE, CHAIN,
      'tcp', 'dport', String(a.port), 'dnat', 'to', `${a.inside}:22`],
  ];
}

const handleOf = (out: string): number => {
  const m = /# handle (\d+)/.exec(out);
  if (!m) throw new Error(`bench slot: nft printed no rule handle: ${out.trim()}`);
  return Number(m[1]);
};

async function run(argv: string[], input?: string): Promise<string> {
  if (input === undefined) return (await execFileP(argv[0], argv.slice(1))).stdout;
  return new Promise((res, rej) => {
    const p = execFile(argv[0], argv.slice(1), (e, out, err) => (e ? rej(new Error(`${argv.join(' ')}: ${err || e.message}`)) : res(out)));
    p.stdin!.end(input);
  });
}

async function runShell(c: Ctx, batch: boolean, tick: (i: number) => void): Promise<Run> {
  const lat: number[] = [];
  const handles: number[] = [];
  let procs = 0;
  const t0 = performance.now();
  for (let k = 0; k < c.count; k++) {
    const s = performance.now();
    const cmds = shellSetupCmds(c, k);
    live.add(`${c.prefix}${k}`);
    if (!batch) {
      let out = '';
      for (const cmd of cmds) out = await run(cmd);
      procs = cmds.length;
      handles.push(handleOf(out));
    } else {
      // One `ip -batch` per namespace it works in (a batch cannot switch namespace, and
      // `netns add` under -n would mount in a private mount namespace), one `nft -f`.
      const strip = (cmd: string[]) => cmd.slice(cmd[1] === '-n' ? 3 : 1).join(' ');
      await run(['ip', '-batch', '-'], strip(cmds[0]) + '\n');
      await run(['ip', '-n', c.hostNs, '-batch', '-'], cmds.slice(1, 4).map(strip).join('\n') + '\n');
      await run(['ip', '-n', `${c.prefix}${k}`, '-batch', '-'], cmds.slice(4, 10).map(strip).join('\n') + '\n');
      const a = slotAddr(k);
      const out = await run(['nsenter', `--net=/run/netns/${c.hostNs}`, 'nft', '--echo', '--handle', '-f', '-'],
        `add rule ip ${TABLE} ${CHAIN} tcp dport ${a.port} dnat to ${a.inside}:22\n`);
      procs = 4;
      handles.push(handleOf(out));
    }
    lat.push(performance.now() - s);
    tick(k);
  }
  const setupMs = performance.now() - t0;
  await verify(c);
  const t1 = performance.now();
  for (let k = 0; k < c.count; k++) {
    const nft = ['nsenter', `--net=/run/netns/${c.hostNs}`, 'nft'];
    if (batch) await run([...nft, '-f', '-'], `delete rule ip ${TABLE} ${CHAIN} handle ${handles[k]}\n`);
    else await run([...nft, 'delete', 'rule', 'ip', TABLE, CHAIN, 'handle', String(handles[k])]);
    await run(['ip', 'netns', 'del', `${c.prefix}${k}`]);
    live.delete(`${c.prefix}${k}`);
  }
  await hostEndsGone(c);
  return { setupMs, lat, teardownMs: performance.now() - t1, procs };
}

// ---- pyroute2 and C: one process doing every slot, reporting its own clock ---------------

const PY = String.raw`
import json, subprocess, sys, time
from pyroute2 import IPRoute, netns
host_ns, prefix, count, table, chain, port0 = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], int(sys.argv[6])
nets = ['198.51.100', '203.0.113', '192.168.122']
def addr(k):
    n = nets[k // 253]
    return n + '.1', '%s.%d' % (n, k % 253 + 2), port0 + k
netns.pushns(host_ns); host = IPRoute(); netns.popns()
nft = ['nsenter', '--net=/run/netns/' + host_ns, 'nft']
lat, handles = [], []
t0 = time.perf_counter()
for k in range(count):
    s = time.perf_counter()
    hip, iip, port = addr(k)
    sb = prefix + str(k)
    netns.create(sb)
    host.link('add', ifname='vh%d' % k, kind='veth', peer={'ifname': 'eth0', 'net_ns_fd': sb})
    vh = host.link_lookup(ifname='vh%d' % k)[0]
    host.addr('add', index=vh, local=hip, address=iip, prefixlen=32)
    host.link('set', index=vh, state='up')
    netns.pushns(sb)
    ipr = IPRoute()
    eth0 = ipr.link_lookup(ifname='eth0')[0]
    ipr.addr('add', index=eth0, local=iip, address=hip, prefixlen=32)
    ipr.link('set', index=eth0, state='up')
    ipr.route('add', dst='0.0.0.0/0', gateway=hip)
    ipr.link('add', ifname='br0', kind='bridge')
    br = ipr.link_lookup(ifname='br0')[0]
    ipr.link('set', index=br, state='up')
    ipr.link('add', ifname='tap0', kind='tuntap', mode='tap', ifr={'multi_queue': True, 'vnet_hdr': True, 'no_pi': True})
    tap = ipr.link_lookup(ifname='tap0')[0]
    ipr.link('set', index=tap, master=br, state='up')
    ipr.close()
    netns.popns()
    out = subprocess.run(nft + ['--echo', '--handle', 'add', 'rule', 'ip', table, chain, 'tcp', 'dport', str(port), 'dnat', 'to', iip + ':22'], check=True, capture_output=True, text=True).stdout
    handles.append(int(out.rsplit('# handle ', 1)[1].split()[0]))
    lat.append((time.perf_counter() - s) * 1000)
setup = time.perf_counter() - t0
print(json.dumps({'setupMs': setup * 1000, 'lat': lat, 'handles': handles}), flush=True)
sys.stdin.readline()  # the bench verifies the slots meanwhile
t1 = time.perf_counter()
for k in range(count):
    subprocess.run(nft + ['delete', 'rule', 'ip', table, chain, 'handle', str(handles[k])], check=True)
    netns.remove(prefix + str(k))
print(json.dumps({'teardownMs': (time.perf_counter() - t1) * 1000}), flush=True)
`;

let cBinary: Promise<string | { skipped: string }> | undefined;
function buildC(): Promise<string | { skipped: string }> {
  cBinary ??= (async () => {
    const src = path.join(packageRoot, 'bench', 'nlslot.c');
    if (!fs.existsSync(src)) return { skipped: 'bench/nlslot.c is not in this package' };
    const cc = ['cc', 'gcc', 'clang'].find(have);
    if (!cc) return { skipped: 'no C compiler (cc) to build bench/nlslot.c' };
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-slot-'));
    const out = path.join(dir, 'nlslot');
    try {
      await execFileP(cc, ['-O2', '-o', out, src, '-lpthread']);
    } catch (e: any) {
      return { skipped: `cc failed: ${String(e.stderr ?? e).split('\n')[0]}` };
    }
    process.once('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
    return out;
  })();
  return cBinary;
}

/** Runs a one-process tool: it prints its setup JSON, waits for a line on stdin, tears down, prints again. */
async function runProcTool(c: Ctx, argv: string[], tick: (i: number) => void): Promise<Run> {
  const { spawn } = await import('node:child_process');
  for (let k = 0; k < c.count; k++) live.add(`${c.prefix}${k}`);
  const p = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  const lines: string[] = [];
  let buf = '';
  let wake: (() => void) | undefined;
  p.stdout.on('data', (d) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) { lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); wake?.(); }
  });
  const exited = new Promise<number>((res) => p.on('close', (code) => { wake?.(); res(code ?? 1); }));
  let done = false;
  void exited.then(() => { done = true; });
  const line = async (): Promise<any> => {
    while (!lines.length) {
      if (done) throw new Error(`bench slot: ${path.basename(argv[0])} failed: ${err.trim().split('\n').slice(-3).join(' | ')}`);
      await new Promise<void>((r) => { wake = r; setTimeout(r, 200); });
    }
    return JSON.parse(lines.shift()!);
  };
  const s = await line();
  tick(c.count - 1);
  await verify(c);
  const t1 = performance.now();
  p.stdin.end('go\n');
  await line();
  await hostEndsGone(c);
  const teardownMs = performance.now() - t1;
  if ((await exited) !== 0) throw new Error(`bench slot: ${path.basename(argv[0])} exited with an error: ${err.trim()}`);
  for (let k = 0; k < c.count; k++) live.delete(`${c.prefix}${k}`);
  return { setupMs: s.setupMs, lat: s.lat, teardownMs };
}

// ---- checks shared by every tool ----------------------------------------------------------

/** Every slot exists as the recipe says (so every tool did the same work); throws if not. */
async function verify(c: Ctx): Promise<void> {
  const links = (await c.host.link.list()).filter((l) => /^vh\d+$/.test(l.name));
  const up = links.filter((l) => l.up).length;
  const rules = (await c.host.nft.listRules('ip', TABLE, CHAIN)).length;
  if (links.length !== c.count || up !== c.count || rules !== c.count)
    throw new Error(`bench slot: expected ${c.count} slots, found ${links.length} host veth ends (${up} up) and ${rules} DNAT rules`);
  for (const k of new Set([0, c.count - 1])) {
    const h = await open({ netns: `${c.prefix}${k}` });
    try {
      const tap = await h.link.get('tap0');
      const info = tap.info as { multiQueue?: boolean; vnetHdr?: boolean; persist?: boolean };
      const routes = await h.route.list();
      const addrs = await h.addr.list('eth0');
      const ok = tap.master === 'br0' && tap.up && info.multiQueue && info.vnetHdr && info.persist &&
        routes.some((r: any) => r.dst === 'default' && r.via === slotAddr(k).host) &&
        addrs.some((x: any) => x.address === slotAddr(k).inside);
      if (!ok) throw new Error(`bench slot: slot ${k} is not as the recipe says (tap ${JSON.stringify({ master: tap.master, up: tap.up, ...info })}, ${routes.length} routes, ${addrs.length} addresses)`);
    } finally {
      await h.close();
    }
  }
}

/** Teardown is complete when the kernel has destroyed every slot's devices. */
async function hostEndsGone(c: Ctx, timeoutMs = 120000): Promise<void> {
  const end = performance.now() + timeoutMs;
  for (;;) {
    const left = (await c.host.link.list()).filter((l) => /^vh\d+$/.test(l.name)).length;
    if (!left) return;
    if (performance.now() > end) throw new Error(`bench slot: ${left} host veth ends still there ${timeoutMs} ms after teardown`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

// ---- the run ----------------------------------------------------------------------------

async function runOnce(tool: SlotTool, count: number, concurrency: number, idle: KernelIdle, tick: (i: number) => void): Promise<Run> {
  if ((tool === 'shell' || tool === 'ip-batch' || tool === 'pyroute2') && !(have('ip') && have('nft') && have('nsenter')))
    return { skipped: 'needs ip (iproute2), nft (nftables) and nsenter (util-linux)', setupMs: 0, teardownMs: 0 };
  let argv: string[] | undefined;
  if (tool === 'pyroute2') {
    const py = '/usr/bin/python3';
    if (!fs.existsSync(py) || spawnSync(py, ['-c', 'import pyroute2'], { stdio: 'ignore' }).status !== 0)
      return { skipped: 'pyroute2 is not installed for /usr/bin/python3 (Debian: python3-pyroute2)', setupMs: 0, teardownMs: 0 };
    argv = [py, '-c', PY];
  }
  if (tool === 'c') {
    const bin = await buildC();
    if (typeof bin !== 'string') return { ...bin, setupMs: 0, teardownMs: 0 };
    argv = [bin];
  }
  await idle.wait();
  const id = `${process.pid}-${++runSeq}`;
  const hostNs = `vnl-slothost-${id}`;
  const prefix = `vnl-sb-${id}-`;
  await Netns.create(hostNs);
  live.add(hostNs);
  const host = await open({ netns: hostNs });
  const c: Ctx = { host, hostNs, prefix, count };
  try {
    await host.link.set('lo', { up: true });
    await host.nft.transaction()
      .addTable({ family: 'ip', name: TABLE })
      .addChain({ family: 'ip', table: TABLE, name: CHAIN, type: 'nat', hook: 'prerouting', priority: 'dstnat' })
      .commit();
    switch (tool) {
      case 'vnetlink': return await runVnl(c, true, concurrency, tick);
      case 'vnetlink-seq': return await runVnl(c, false, 1, tick);
      case 'shell': return await runShell(c, false, tick);
      case 'ip-batch': return await runShell(c, true, tick);
      default: return await runProcTool(c, [...argv!, hostNs, prefix, String(count), TABLE, CHAIN, String(PORT0)], tick);
    }
  } finally {
    for (let k = 0; k < count; k++) if (live.has(`${prefix}${k}`)) { await Netns.delete(`${prefix}${k}`).catch(() => undefined); live.delete(`${prefix}${k}`); }
    await host.close();
    await idle.deleteNs(hostNs);
    live.delete(hostNs);
  }
}

export async function benchSlot(o: BenchSlotOptions): Promise<SlotReport> {
  const count = o.count;
  if (!Number.isInteger(count) || count < 1 || count > MAX_SLOTS) throw new RangeError(`bench slot: count must be 1-${MAX_SLOTS}`);
  const repeat = Math.max(1, o.repeat ?? 1);
  const concurrency = Math.max(1, o.concurrency ?? 4);
  const tools = o.tools ?? [...slotTools];
  const results: SlotResult[] = [];
  const idle = await KernelIdle.create();
  live.add(idle.probeNs);
  try {
    const runs = new Map<SlotTool, Run[]>(tools.map((t) => [t, []]));
    const skipped = new Map<SlotTool, string>();
    // Reps interleave the tools, so a noisy stretch of time hits them all alike.
    for (let r = 0; r < repeat; r++) {
      for (const tool of tools) {
        if (skipped.has(tool)) continue;
        let last = 0;
        const tick = (i: number) => {
          const now = performance.now();
          if (o.progress && (now - last > 100 || i === count - 1)) { last = now; o.progress(`${tool}${repeat > 1 ? ` run ${r + 1}/${repeat}` : ''}: ${i + 1}/${count}`); }
        };
        const x = await runOnce(tool, count, concurrency, idle, tick);
        if (x.skipped) skipped.set(tool, x.skipped);
        else runs.get(tool)!.push(x);
      }
    }
    for (const tool of tools) {
      const rs = runs.get(tool)!;
      const res: SlotResult = { tool, count, runs: rs.length };
      if (skipped.has(tool)) res.skipped = skipped.get(tool);
      if (rs.length) {
        res.setupPerSec = median(rs.map((x) => (count * 1000) / x.setupMs));
        res.teardownPerSec = median(rs.map((x) => (count * 1000) / x.teardownMs));
        const lats = rs.filter((x) => x.lat?.length).map((x) => [...x.lat!].sort((a, b) => a - b));
        if (lats.length) {
          res.p50Ms = median(lats.map((l) => quantile(l, 0.5)));
          res.p99Ms = median(lats.map((l) => quantile(l, 0.99)));
        }
        if (rs[0].procs) res.procsPerSlot = rs[0].procs;
      }
      results.push(res);
    }
  } finally {
    live.delete(idle.probeNs);
    await idle.close();
  }
  return { host: { cpus: os.cpus().length, kernel: os.release(), node: process.version, loadavg: os.loadavg() }, count, concurrency, results };
}

const fmt = (x: number | undefined, d = 0) => (x === undefined || !Number.isFinite(x) ? '-' : x.toFixed(d));

export function formatSlotReport(rep: SlotReport): string {
  const by = (t: SlotTool) => rep.results.find((r) => r.tool === t)?.setupPerSec;
  const floor = by('c'), shell = by('shell'), py = by('pyroute2');
  const ratio = (x: number | undefined, y: number | undefined) => (x && y ? `${(x / y).toFixed(2)}x` : '-');
  const cells = rep.results.filter((r) => !r.skipped || r.runs).map((r) => [r.tool, fmt(r.setupPerSec, 1), fmt(r.p50Ms, 2), fmt(r.p99Ms, 2),
    fmt(r.teardownPerSec, 1), ratio(r.setupPerSec, floor), ratio(r.setupPerSec, shell), ratio(r.setupPerSec, py)]);
  const out = [`vnetlink bench slot: ${rep.count} slots per tool (${rep.host.cpus} cpus, kernel ${rep.host.kernel}, node ${rep.host.node}, load ${rep.host.loadavg.map((x) => x.toFixed(2)).join(' ')}; vnetlink: ${rep.concurrency} slots in flight)`, ''];
  out.push(...table(['tool', 'setup slots/s', 'p50 ms', 'p99 ms', 'teardown slots/s', 'vs C', 'vs shell', 'vs pyroute2'], cells, [1, 2, 3, 4, 5, 6, 7]).split('\n').map((l) => `  ${l}`));
  for (const r of rep.results) if (r.skipped) out.push(`  ${r.tool}: skipped: ${r.skipped}`);
  return out.join('\n');
}

export const slotUsage = `usage: vnetlink bench slot [--count N] [--repeat R] [--concurrency C] [--tools ${slotTools.join(',')}] [--json]
Sets up and tears down N sandbox network slots per tool, in throwaway namespaces: a namespace, a
veth pair with one end inside, point-to-point addresses on both ends, a default route inside, a
bridge and a persistent multi-queue vnet_hdr tap on it inside, and a DNAT port-forward rule on the
(throwaway) host. Tools: the API (C slots in flight, each slot's independent steps pipelined;
vnetlink-seq: every step awaited in turn), one ip/nft process per step, ip -batch + nft -f, pyroute2,
and bench/nlslot.c (raw netlink, the floor). Prints slots/s and p50/p99 of one slot's setup, and
teardown slots/s until the kernel has destroyed the slots' devices. N is at most ${MAX_SLOTS}.`;

const slotOpts = { count: { type: 'string' }, repeat: { type: 'string' }, concurrency: { type: 'string' }, tools: { type: 'string' } } as const;

export async function benchSlotCli(argv: string[]): Promise<number> {
  const p = parse(argv, slotOpts, slotUsage);
  if (p.values.help) { process.stdout.write(slotUsage + '\n'); return 0; }
  positionals(p, [], slotUsage);
  if (p.values.netns !== undefined) throw new UsageError('bench slot works in throwaway namespaces of its own; --netns does not apply', slotUsage);
  const o: BenchSlotOptions = { count: intOpt(p, 'count', 1, MAX_SLOTS, slotUsage) ?? 200 };
  const rp = intOpt(p, 'repeat', 1, 50, slotUsage);
  if (rp !== undefined) o.repeat = rp;
  const cc = intOpt(p, 'concurrency', 1, 64, slotUsage);
  if (cc !== undefined) o.concurrency = cc;
  const tools = listOpt(p, 'tools', slotTools, slotUsage);
  if (tools) o.tools = tools;
  if (process.stderr.isTTY) o.progress = (line) => process.stderr.write(`\r\x1b[K${line}`);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      slotAbort();
      process.stderr.write(`\nvnetlink bench: interrupted (${sig}); its namespaces were removed\n`);
      process.exit(130);
    });
  }
  const rep = await benchSlot(o);
  if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
  process.stdout.write((p.values.json ? JSON.stringify(rep, null, 2) : formatSlotReport(rep)) + '\n');
  return 0;
}
