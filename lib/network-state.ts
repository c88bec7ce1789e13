// Durable networks: what a network is and what it created, written atomically to its state
// directory after every change, and read back by another process to list the networks of a
// namespace and to re-adopt one — only after checking that what it finds is really ours.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import type { Handle } from './handle.js';
import { ourDnsmasqStart } from './dnsmasq.js';
import type { Bandwidth } from './bandwidth.js';
import { rangeError } from './validate.js';

/** The state file in a network's directory (also read by older code as its metadata). */
export const STATE_FILE = 'network.json';
export const STATE_VERSION = 1;

/** A port forward as the state records it (its rules are found again by their comment). */
export interface ForwardState { proto: 'tcp' | 'udp'; hostPort: number; guest: string; guestPort: number; hostAddress?: string; localhost?: boolean }

/**
 * What a port was when it was attached: restart and replace take back only the link that still
 * has this name, index and kind (and, for a tap, mode, persistence, multi-queue and owner), so a
 * name reused by another link, or a state file naming some other interface, enslaves nothing.
 */
export interface PortIdentity {
  index: number;
  kind: string;
  tun?: { mode?: string; persist?: boolean; multiQueue?: boolean; uid?: number; gid?: number };
}

/**
 * A guest port attached with a bandwidth (restart and replace attach and shape it again). The
 * identity fields are absent in state written before they were recorded: such a port is not
 * taken back (it cannot be told from another link of that name).
 */
export interface PortState extends Partial<PortIdentity> { name: string; bandwidth: Bandwidth }

/** Everything another process needs to find, check and drive the network again. */
export interface NetworkState {
  version?: number;
  name: string;
  bridge: string;
  table: string;
  ipForwardBefore?: string;
  ip6ForwardBefore?: string;
  /** The validated (normalized) spec the network was made from. */
  spec?: Record<string, any>;
  bridgeIndex?: number;
  /** Gateway address(es) with prefix, as put on the bridge. */
  addresses?: string[];
  forwards?: ForwardState[];
  ports?: PortState[];
  /** The running daemon: pid, its start time (field 22 of /proc/PID/stat) and its conf path. */
  dnsmasq?: { pid: number; start: string; conf: string; binary?: string };
  /** route_localnet on the bridge before the first `localhost` forward set it (restored after the last). */
  routeLocalnetBefore?: string;
  /**
   * SO_NETNS_COOKIE of the namespace the network lives in: the default directory is named by
   * the namespace's inode, which a new namespace can get once the old one is gone.
   */
  netnsCookie?: string;
  /** The process that last owned the network (it holds the lock while it runs). */
  owner?: { pid: number; start?: string };
  updated?: string;
}

/**
 * Writes the state atomically: a temp file in the same directory, fsync, rename over the
 * old one, fsync of the directory — so a reader (or a crash) sees the old state or the new
 * one, never half of either.
 */
export function writeState(dir: string, s: NetworkState): void {
  const file = path.join(dir, STATE_FILE);
  const tmp = path.join(dir, `.${STATE_FILE}.${process.pid}.tmp`);
  const data = JSON.stringify({ ...s, version: STATE_VERSION, updated: new Date().toISOString() }) + '\n';
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_TRUNC | fs.constants.O_NOFOLLOW, 0o600);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  try {
    fs.renameSync(tmp, file);
  } catch (e) {
    try { fs.unlinkSync(tmp); } catch { /* gone */ }
    throw e;
  }
  const d = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try { fs.fsyncSync(d); } finally { fs.closeSync(d); }
}

/**
 * Why the dnsmasq binary a state file records must not be run (restart and update run it, as
 * root), or undefined when it may: an absolute, normalized path to a regular, executable file
 * owned by root (or us) and writable by no one else, in directories (each of them, up to "/")
 * that no one else can write to either, so nobody but root can have put or swapped it there.
 * The checks follow the path as it resolves now (symlinks included, as exec would).
 */
export function binaryProblem(b: unknown): string | undefined {
  if (typeof b !== 'string' || b === '' || b.length > 4096 || b.includes('\0')) return 'is not a path';
  if (!path.isAbsolute(b) || path.normalize(b) !== b) return `${JSON.stringify(b)} is not an absolute, normalized path`;
  const trusted = (st: fs.Stats) => (st.uid === 0 || st.uid === process.geteuid!()) && !(st.mode & 0o022);
  // A directory others may write is fine when sticky (/nix/store is 1775 root:nixbld, /tmp
  // 1777): there only an entry's owner may rename or remove it, and the entry is checked too.
  const trustedDir = (st: fs.Stats) => (st.uid === 0 || st.uid === process.geteuid!()) && (!(st.mode & 0o022) || !!(st.mode & 0o1000));
  let real: string, st: fs.Stats;
  try {
    real = fs.realpathSync(b);
    st = fs.statSync(real);
  } catch { return `${JSON.stringify(b)} does not exist`; }
  if (!st.isFile() || !(st.mode & 0o111)) return `${JSON.stringify(b)} is not an executable regular file`;
  if (!trusted(st)) return `${JSON.stringify(b)} is not owned by root or is writable by group or others`;
  for (let d = path.dirname(real); ; d = path.dirname(d)) {
    let ds: fs.Stats;
    try { ds = fs.statSync(d); } catch { return `${JSON.stringify(d)} cannot be read`; }
    if (!trustedDir(ds)) return `${JSON.stringify(b)} is in ${JSON.stringify(d)}, which is not root's or is writable by group or others (and not sticky)`;
    if (d === '/') return undefined;
  }
}

/**
 * The state of the network in `dir`, or undefined when there is none (or it is not readable JSON
 * of ours). A recorded dnsmasq binary that must not be run (see binaryProblem) is refused: with
 * `op` (a caller about to drive the network) as an error naming the field; without (one that
 * only looks, or replaces the network anyway) by dropping it, so nothing can run it later.
 */
export function readState(dir: string, op?: string): NetworkState | undefined {
  let text: string;
  try {
    const file = path.join(dir, STATE_FILE);
    if (!fs.lstatSync(file).isFile()) return undefined;
    text = fs.readFileSync(file, 'utf8');
  } catch { return undefined; }
  if (text.length > 1 << 20) return undefined;
  let s: any;
  try { s = JSON.parse(text); } catch { return undefined; }
  // Untrusted bytes on disk: only the shape we write is accepted.
  if (!s || typeof s !== 'object' || typeof s.name !== 'string' || typeof s.bridge !== 'string' || typeof s.table !== 'string') return undefined;
  if (s.dnsmasq !== undefined && !(Number.isInteger(s.dnsmasq?.pid) && s.dnsmasq.pid > 0 && typeof s.dnsmasq.start === 'string' && typeof s.dnsmasq.conf === 'string')) delete s.dnsmasq;
  if (s.dnsmasq?.binary !== undefined) {
    const why = binaryProblem(s.dnsmasq.binary);
    if (why && op) throw rangeError(op, 'dnsmasq.binary', `${path.join(dir, STATE_FILE)} records a dnsmasq binary that will not be run: ${why}`);
    if (why) delete s.dnsmasq.binary;
  }
  if (s.forwards !== undefined && !Array.isArray(s.forwards)) delete s.forwards;
  if (s.netnsCookie !== undefined && (typeof s.netnsCookie !== 'string' || !/^[0-9]{1,20}$/.test(s.netnsCookie))) s.netnsCookie = 'invalid';
  // Each entry's bandwidth is validated again where it is used.
  if (s.ports !== undefined) {
    if (!Array.isArray(s.ports)) delete s.ports;
    else s.ports = s.ports.filter((p: any) => p && typeof p === 'object' && typeof p.name === 'string' && p.bandwidth && typeof p.bandwidth === 'object').slice(0, 4096)
      .map((p: any) => {
        // An identity of the wrong shape is no identity: the port counts as unverified.
        const ok = Number.isInteger(p.index) && p.index > 0 && typeof p.kind === 'string' && p.kind.length <= 32 && (p.tun === undefined || (p.tun && typeof p.tun === 'object' && !Array.isArray(p.tun)));
        const out: PortState = { name: p.name, bandwidth: p.bandwidth };
        if (ok) {
          out.index = p.index;
          out.kind = p.kind;
          if (p.tun) out.tun = pickTun(p.tun);
        }
        return out;
      });
  }
  return s as NetworkState;
}

/** The identity fields of a tap (`link.get`'s `info`, or a recorded one), typed and nothing else. */
export function pickTun(t: Record<string, unknown>): NonNullable<PortIdentity['tun']> {
  const out: NonNullable<PortIdentity['tun']> = {};
  if (typeof t.mode === 'string') out.mode = t.mode;
  for (const k of ['persist', 'multiQueue'] as const) if (typeof t[k] === 'boolean') out[k] = t[k] as boolean;
  for (const k of ['uid', 'gid'] as const) if (Number.isInteger(t[k])) out[k] = t[k] as number;
  return out;
}

/** A network of this namespace as `nl.network.list()` reports it. */
export interface NetworkInfo {
  name: string;
  bridge: string;
  /** The gateway address with prefix. */
  address?: string;
  table: string;
  stateDir: string;
  /**
   * `active`: bridge, table and (when it has one) dnsmasq all run and are ours.
   * `degraded`: some of them are missing (see `missing`); a restart() repairs it.
   * `leftover`: none of them runs and no process owns it: remains of a crash, which
   * `create` of the same name (or `cleanup`) removes.
   */
  status: 'active' | 'degraded' | 'leftover';
  /** What is missing: 'bridge', 'table', 'dnsmasq'. */
  missing: Array<'bridge' | 'table' | 'dnsmasq'>;
  /** The pid of the process that owns it now (holds its lock), if any. */
  owner?: number;
  dnsmasqPid?: number;
  forwards: ForwardState[];
}

/** Whether a network made from this (caller's) spec runs dnsmasq: DHCP, or DNS not turned off. */
export function wantsDnsmasq(spec: Record<string, any> | undefined): boolean {
  if (!spec) return false;
  const dns = spec.dns;
  return !!spec.dhcp || spec.address6 !== undefined || !(dns === false || (typeof dns === 'object' && dns !== null && dns.enable === false));
}

/**
 * True when the daemon recorded in the state is alive, the same process (start time), runs our
 * conf as us, and runs the recorded binary (readState dropped one that is not trustworthy; then
 * any file named dnsmasq).
 */
export function dnsmasqAlive(d: NetworkState['dnsmasq']): boolean {
  return !!d && ourDnsmasqStart(d.pid, d.conf, d.binary) === d.start;
}

/** Which of the network's parts are missing, each checked for being ours (tag, name, pid+start+conf). */
export async function missingParts(h: Handle, s: NetworkState, tag: string): Promise<NetworkInfo['missing']> {
  const missing: NetworkInfo['missing'] = [];
  const br = (await h.link.list({ kind: 'bridge' })).find((l) => l.name === s.bridge);
  if (!br || br.alias !== tag + s.name) missing.push('bridge');
  if (!(await h.nft.listTables('ip')).some((t) => t.name === s.table)) missing.push('table');
  if (wantsDnsmasq(s.spec) && !dnsmasqAlive(s.dnsmasq)) missing.push('dnsmasq');
  return missing;
}

/**
 * Whether a process holds the network's lock. Taking it to see (flock LOCK_NB, then letting go)
 * would make a create or get in another process that comes in that moment fail with a spurious
 * EBUSY, and a bounded retry in lockStateDir would only make that rarer. Linux offers no flock
 * test (F_OFD_GETLK is for fcntl locks, and Node has neither), so the kernel's list of held
 * locks is read instead: /proc/locks has one line per lock, "N: FLOCK ADVISORY WRITE PID
 * MAJ:MIN:INO START END" with major and minor in hex, and a lock on the file's device and inode
 * means it is held. Our own live networks hold it too, on another open file, so they count as
 * owned. /proc/locks leaves out locks whose taker is not visible in the PID namespace that
 * /proc belongs to: when this process is not in the initial PID namespace with a /proc of its
 * own (see liveNetnsInodes), or /proc/locks cannot be read, this falls back to trying the lock.
 */
export async function lockHeld(h: Handle, dir: string): Promise<boolean> {
  const file = path.join(dir, 'network.lock');
  let st: fs.Stats;
  try { st = fs.lstatSync(file); } catch { return false; }
  if (!st.isFile()) return false;
  const listed = await listedLock(st);
  if (listed !== undefined) return listed;
  try {
    const { fd } = await h._call<{ fd: number }>('network.list', { path: file }, 'fs.flock');
    fs.closeSync(fd);
    return false;
  } catch (e: any) {
    if (e?.code === 'EAGAIN' || e?.code === 'EWOULDBLOCK') return true;
    return false;
  }
}

/** Whether /proc/locks lists a lock on the file `st` describes; undefined when it cannot tell (see lockHeld). */
async function listedLock(st: fs.Stats): Promise<boolean | undefined> {
  let text: string;
  try {
    if ((await fsp.stat('/proc/self/ns/pid')).ino !== PROC_PID_INIT_INO || (await fsp.readlink('/proc/self')) !== String(process.pid)) return undefined;
    text = await fsp.readFile('/proc/locks', 'utf8');
  } catch { return undefined; }
  // st_dev in the userspace (glibc major()/minor()) encoding, printed as the kernel does.
  const dev = st.dev;
  const major = ((Math.floor(dev / 2 ** 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff)) >>> 0;
  const minor = ((dev & 0xff) | (Math.floor(dev / 2 ** 12) & ~0xff)) >>> 0;
  const want = `${major.toString(16).padStart(2, '0')}:${minor.toString(16).padStart(2, '0')}:${st.ino}`;
  for (const line of text.split('\n')) {
    // "->" lines are waiters blocked on a lock, not holders; ours never wait (LOCK_NB).
    const f = line.trim().split(/\s+/);
    if (f[1] === '->') continue;
    if (f[1] === 'FLOCK' && f[5] === want) return true;
  }
  return false;
}

/** The network's status from what is missing and whether someone owns it. */
export function statusOf(missing: NetworkInfo['missing'], owned: boolean, expected: number): NetworkInfo['status'] {
  if (!missing.length) return 'active';
  return missing.length >= expected && !owned ? 'leftover' : 'degraded';
}

/** The state directories under a namespace's directory (one per network), sorted by name. */
export function stateDirs(nsDir: string): string[] {
  let names: string[];
  try { names = fs.readdirSync(nsDir); } catch { return []; }
  return names.filter((n) => /^[A-Za-z0-9_-]{1,32}$/.test(n)).sort().map((n) => path.join(nsDir, n));
}

/** The initial PID namespace's inode (PROC_PID_INIT_INO, include/linux/proc_ns.h): fixed by the kernel. */
const PROC_PID_INIT_INO = 0xeffffffc;

/**
 * The inodes of every network namespace something still holds: a thread in it, an open fd on
 * it, or a bind mount of it (in any mount namespace). Undefined when this process cannot see
 * every process (it is not in the initial PID namespace), so nothing can be said to be gone.
 * A namespace kept alive only by a socket made in it is not seen; its networks' owners hold
 * their locks, and a dnsmasq inside it is a thread in it, so only a network with neither can be
 * taken for gone.
 */
export async function liveNetnsInodes(): Promise<Set<string> | undefined> {
  try { if ((await fsp.stat('/proc/self/ns/pid')).ino !== PROC_PID_INIT_INO) return undefined; } catch { return undefined; }
  const live = new Set<string>();
  const add = (link: string) => { const m = /^net:\[([0-9]{1,20})\]$/.exec(link); if (m) live.add(m[1]); };
  const links = async (dir: string, tail: string) => {
    let names: string[];
    try { names = await fsp.readdir(dir); } catch { return; }
    await Promise.all(names.map((n) => fsp.readlink(path.join(dir, n, tail)).then(add, () => {})));
  };
  const mountNs = new Set<bigint>();
  let pids: string[];
  try { pids = (await fsp.readdir('/proc')).filter((n) => /^[0-9]+$/.test(n)); } catch { return undefined; }
  for (const pid of pids) {
    const base = `/proc/${pid}`;
    await links(`${base}/task`, 'ns/net');  // every thread: one may have setns'd elsewhere
    await links(`${base}/fd`, '');
    let mnt: bigint;
    try { mnt = (await fsp.stat(`${base}/ns/mnt`, { bigint: true })).ino; } catch { continue; }
    if (mountNs.has(mnt)) continue;
    mountNs.add(mnt);
    let info = '';
    try { info = await fsp.readFile(`${base}/mountinfo`, 'utf8'); } catch { continue; }
    for (const line of info.split('\n')) {
      // "ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - FSTYPE SOURCE OPTS": an nsfs mount's root is "net:[INO]".
      const f = line.split(' ');
      const sep = f.indexOf('-', 6);
      if (sep > 0 && f[sep + 1] === 'nsfs' && f[3]) add(f[3]);
    }
  }
  return live;
}
