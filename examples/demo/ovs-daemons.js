// Open vSwitch for the demo parts: a private ovsdb-server and ovs-vswitchd inside a throwaway
// namespace, everything (db, sockets, pid files, logs) in a temp dir, stopped by pid at the end.
// The library itself only ever talks to the database socket; starting OVS is the demo's job.
// (Not a part: demo.js runs only files named NN-*.js.)
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const SCHEMA = '/usr/share/openvswitch/vswitch.ovsschema';
const have = (cmd) => spawnSync('sh', ['-c', `PATH=$PATH:/usr/sbin:/sbin command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/** What is missing to run OVS here (a sentence), or undefined. */
export function ovsMissing(tools = ['ovsdb-server', 'ovs-vswitchd', 'ovsdb-tool']) {
  const missing = tools.filter((c) => !have(c));
  if (missing.length) return missing.join(', ');
  if (!fs.existsSync(SCHEMA)) return SCHEMA;
  return undefined;
}

// Exited, or a zombie waiting for pid 1 to reap it (a detached daemon's parent is init).
const running = (pid) => {
  try { const st = fs.readFileSync(`/proc/${pid}/stat`, 'utf8'); return st.slice(st.lastIndexOf(')') + 2)[0] !== 'Z'; } catch { return false; }
};

/**
 * Starts ovsdb-server and ovs-vswitchd in `ns`; ctx.defer stops them by pid and removes the dir.
 * Returns { sock, pids, vsctl(args), appctl(args) } (the tools run inside the namespace).
 */
export function startOvs(ctx, ns) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'demo-ovs-'));
  const env = { ...process.env, OVS_RUNDIR: dir, OVS_DBDIR: dir, OVS_LOGDIR: dir, OVS_SYSCONFDIR: dir };
  const inNs = (cmd, args) => execFileSync('ip', ['netns', 'exec', ns.name, cmd, ...args], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  const pids = [];
  ctx.defer(async () => {
    for (const pid of pids.reverse()) {
      try { process.kill(pid, 'SIGTERM'); } catch { continue; }
      for (let i = 0; i < 250 && running(pid); i++) await new Promise((r) => setTimeout(r, 20));
      try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const sock = path.join(dir, 'db.sock');
  execFileSync('ovsdb-tool', ['create', path.join(dir, 'conf.db'), SCHEMA], { env, stdio: 'pipe' });
  inNs('ovsdb-server', [path.join(dir, 'conf.db'), `--remote=punix:${sock}`, `--unixctl=${dir}/ovsdb-server.ctl`,
    `--pidfile=${dir}/ovsdb-server.pid`, `--log-file=${dir}/ovsdb-server.log`, '--detach', '--no-chdir']);
  pids.push(Number(fs.readFileSync(`${dir}/ovsdb-server.pid`, 'utf8')));
  inNs('ovs-vswitchd', [`unix:${sock}`, `--unixctl=${dir}/ovs-vswitchd.ctl`, `--pidfile=${dir}/ovs-vswitchd.pid`,
    `--log-file=${dir}/ovs-vswitchd.log`, '--detach', '--no-chdir']);
  pids.push(Number(fs.readFileSync(`${dir}/ovs-vswitchd.pid`, 'utf8')));
  return {
    sock,
    pids,
    vsctl: (args) => inNs('ovs-vsctl', [`--db=unix:${sock}`, '--timeout=20', ...args]),
    appctl: (args) => inNs('ovs-appctl', ['-t', `${dir}/ovs-vswitchd.ctl`, '--timeout=20', ...args]),
  };
}
