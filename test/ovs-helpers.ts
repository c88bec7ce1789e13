// Open vSwitch for tests: ovsdb-server and ovs-vswitchd started inside a test namespace with
// everything (db, sockets, pid files, logs) in a temp dir, stopped by pid; and a parser for
// `ovs-vsctl show` so tests can compare what OVS's own tool prints with what the API says.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Ovsdb, open, type Handle, type Netns, type Tap } from '../lib/index.js';
import { hasTool, inCI, type Namespaces } from './helpers.js';

const execFileP = promisify(execFile);
export const OVS_SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';

/** Why OVS tests cannot run here, or undefined. In CI a missing tool throws (hasTool). */
export function ovsSkipReason(): string | undefined {
  const absent = ['ovsdb-server', 'ovs-vswitchd', 'ovsdb-tool', 'ovs-vsctl'].find((t) => !hasTool(t));
  if (absent) return `${absent} is not installed (apt-get install openvswitch-switch)`;
  if (!fs.existsSync(OVS_SCHEMA)) {
    if (inCI) throw new Error(`${OVS_SCHEMA} is missing in CI (the test command installs openvswitch-switch)`);
    return `${OVS_SCHEMA} is missing`;
  }
  return undefined;
}

export interface OvsDaemons {
  dir: string;
  /** ovsdb-server's unix socket. */
  sock: string;
  pids: number[];
  /** Runs ovs-vsctl against this database (inside the namespace). */
  vsctl(args: string[]): Promise<string>;
  /** Stops both daemons by pid and removes the temp dir. */
  stop(): Promise<void>;
}

/**
 * Starts ovsdb-server (+ ovs-vswitchd unless `vswitchd: false`) inside `ns`. `init: false` skips
 * `ovs-vsctl init`, leaving the Open_vSwitch table empty as a fresh `ovsdb-tool create` makes it.
 */
export async function startOvs(ns: Netns, opts: { vswitchd?: boolean; init?: boolean } = {}): Promise<OvsDaemons> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-ovs-'));
  const env = { ...process.env, OVS_RUNDIR: dir, OVS_DBDIR: dir, OVS_LOGDIR: dir, OVS_SYSCONFDIR: dir, OVS_PKGDATADIR: '/usr/share/openvswitch' };
  const run = (cmd: string, args: string[]) => execFileP('ip', ['netns', 'exec', ns.name, cmd, ...args], { env, timeout: 20_000 });
  const sock = path.join(dir, 'db.sock');
  const pids: number[] = [];
  const readPid = (f: string) => Number(fs.readFileSync(path.join(dir, f), 'utf8').trim());
  const d: OvsDaemons = {
    dir, sock, pids,
    vsctl: async (args) => (await run('ovs-vsctl', [`--db=unix:${sock}`, '--timeout=20', ...args])).stdout,
    stop: async () => {
      for (const pid of pids.splice(0).reverse()) {
        try { process.kill(pid, 'SIGTERM'); } catch { continue; }
        const end = Date.now() + 5000;
        while (Date.now() < end && running(pid)) await new Promise((r) => setTimeout(r, 10));
        try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await execFileP('ovsdb-tool', ['create', path.join(dir, 'conf.db'), OVS_SCHEMA], { env });
    await run('ovsdb-server', [path.join(dir, 'conf.db'), `--remote=punix:${sock}`, `--unixctl=${path.join(dir, 'ovsdb-server.ctl')}`,
      `--pidfile=${path.join(dir, 'ovsdb-server.pid')}`, `--log-file=${path.join(dir, 'ovsdb-server.log')}`, '--detach', '--no-chdir']);
    pids.push(readPid('ovsdb-server.pid'));
    if (opts.init !== false) await d.vsctl(['--no-wait', 'init']);
    if (opts.vswitchd !== false) {
      await run('ovs-vswitchd', [`unix:${sock}`, `--unixctl=${path.join(dir, 'ovs-vswitchd.ctl')}`,
        `--pidfile=${path.join(dir, 'ovs-vswitchd.pid')}`, `--log-file=${path.join(dir, 'ovs-vswitchd.log')}`, '--detach', '--no-chdir']);
      pids.push(readPid('ovs-vswitchd.pid'));
    }
  } catch (e) {
    await d.stop();
    throw e;
  }
  return d;
}

/** True while a process has not exited. A detached daemon's zombie waits for pid 1 to reap it: it counts as exited. */
export function running(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

export interface ShownInterface { type?: string; error?: string; options?: string }
export interface ShownPort { tag?: number; trunks?: number[]; interfaces: Record<string, ShownInterface> }
export interface ShownBridge { failMode?: string; datapathType?: string; ports: Record<string, ShownPort> }
export interface Shown { uuid: string; bridges: Record<string, ShownBridge>; ovsVersion?: string }

/** Parses `ovs-vsctl show` (indentation: 4 bridge, 8 port / bridge fields, 12 interface / port fields, 16 interface fields). */
export function parseVsctlShow(text: string): Shown {
  const lines = text.split('\n').filter((l) => l.trim());
  const out: Shown = { uuid: lines[0].trim(), bridges: {} };
  let br: ShownBridge | undefined, port: ShownPort | undefined, iface: ShownInterface | undefined;
  const unq = (s: string) => (s.startsWith('"') ? JSON.parse(s) : s);
  for (const line of lines.slice(1)) {
    const indent = line.length - line.trimStart().length;
    const t = line.trim();
    const kv = t.match(/^([a-z_]+): (.*)$/);
    if (indent === 4 && t.startsWith('Bridge ')) { br = { ports: {} }; out.bridges[unq(t.slice(7))] = br; continue; }
    if (indent === 4 && kv?.[1] === 'ovs_version') { out.ovsVersion = unq(kv[2]); continue; }
    if (indent === 8 && t.startsWith('Port ')) { port = { interfaces: {} }; br!.ports[unq(t.slice(5))] = port; continue; }
    if (indent === 8 && kv) { if (kv[1] === 'fail_mode') br!.failMode = kv[2]; if (kv[1] === 'datapath_type') br!.datapathType = kv[2]; continue; }
    if (indent === 12 && t.startsWith('Interface ')) { iface = {}; port!.interfaces[unq(t.slice(10))] = iface; continue; }
    if (indent === 12 && kv) {
      if (kv[1] === 'tag') port!.tag = Number(kv[2]);
      if (kv[1] === 'trunks') port!.trunks = JSON.parse(kv[2]);
      continue;
    }
    if (indent === 16 && kv) {
      if (kv[1] === 'type') iface!.type = kv[2];
      if (kv[1] === 'error') iface!.error = unq(kv[2]);
      if (kv[1] === 'options') iface!.options = kv[2];
    }
  }
  return out;
}

/** `ovs-vsctl list TABLE` row count (for "nothing left behind"). */
export async function rowCount(ovs: OvsDaemons, table: string): Promise<number> {
  const j = JSON.parse(await ovs.vsctl(['--format=json', '--columns=_uuid', 'list', table]));
  return j.data.length;
}

/** A test file's Open vSwitch: a namespace, a handle in it, the daemons, a connection, and the taps the tests make. */
export interface OvsWorld { N: Netns; nl: Handle; ovsd: OvsDaemons; ovs: Ovsdb; taps: Tap[] }

/** Makes an OvsWorld in a fresh namespace of `nss` (the daemons' pids tracked for its cleanup). */
export async function startOvsWorld(nss: Namespaces, prefix: string): Promise<OvsWorld> {
  const N = await nss.create(prefix);
  const nl = await open({ netns: N });
  const ovsd = await startOvs(N);
  for (const pid of ovsd.pids) nss.track(pid);
  return { N, nl, ovsd, ovs: await Ovsdb.connect(ovsd.sock), taps: [] };
}

/** Undoes startOvsWorld (what of it was made), then the namespaces. */
export async function stopOvsWorld(w: Partial<OvsWorld> | undefined, nss: Namespaces): Promise<void> {
  await w?.ovs?.close();
  for (const t of w?.taps ?? []) await t.close().catch(() => undefined);
  await w?.nl?.close();
  await w?.ovsd?.stop();
  await nss.cleanup();
}

/** Every row of `table` as ovs-vsctl lists it (`--format=json list TABLE`), one object per row, by column name. */
export async function ovsRows(ovs: OvsDaemons, table: string): Promise<any[]> {
  const j = JSON.parse(await ovs.vsctl(['--format=json', 'list', table]));
  return j.data.map((row: unknown[]) => Object.fromEntries(j.headings.map((k: string, i: number) => [k, row[i]])));
}

/** An OVSDB map as ovs-vsctl's JSON writes it (["map", [[k, v], ...]]) as an object. */
export const ovsMap = (m: any): Record<string, string> => Object.fromEntries(m[1]);
