// vitest globalSetup: the Debian packages the suite uses are installed (or named) before any test runs.
// Its teardown is the suite's safety net for daemons a test file left behind (a worker killed by a
// timeout never reaches its afterAll): a dnsmasq that vnetlink started for a test network during
// this run is named on stderr, so the leak can be traced to its state dir, and stopped by pid.
// Only when the process that owns its network is gone: another suite (or a demo) running at the
// same time owns its dnsmasq through a live process, and must keep it.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ensurePackages } from './packages.mjs';

/**
 * The ifb and dummy modules, when the kernel autoloads them for the first `ip link add type ifb`
 * (or dummy) in a test namespace, also make ifb0/ifb1 (dummy0) in the root namespace, which the
 * tests never touch. Loaded first with no default devices, they make none. Modules that are
 * built in, absent or already loaded are left as they are.
 */
function loadWithoutDefaultDevices(): void {
  for (const [mod, param] of [['ifb', 'numifbs=0'], ['dummy', 'numdummies=0']]) {
    if (fs.existsSync(`/sys/module/${mod}`)) continue;
    spawnSync('modprobe', ['-q', mod, param], { stdio: 'ignore', timeout: 30_000 });
  }
}

/** Seconds since boot at which a process started (field 22 of /proc/PID/stat, in clock ticks). */
function startedAt(pid: string): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[19]) / 100;
}

/** Whether the network whose dnsmasq reads `conf` still has a live owner (its state's owner pid). */
function ownerAlive(conf: string): boolean {
  try {
    const st = JSON.parse(fs.readFileSync(path.join(path.dirname(conf), 'network.json'), 'utf8'));
    const pid = st?.owner?.pid;
    if (!Number.isInteger(pid) || pid <= 0) return false;
    const start = st.owner.start;
    const now = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = now.slice(now.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return false;
    return start === undefined || String(start) === fields[19];
  } catch {
    return false; // no state, or no such process: nobody owns it
  }
}

function uptime(): number {
  return Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
}

export default function setup(): () => void {
  ensurePackages('tests');
  loadWithoutDefaultDevices();
  const since = uptime();
  return () => {
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        if (!argv[0].endsWith('/dnsmasq') || !argv.some((a) => a.startsWith('--conf-file=/run/vnetlink/'))) continue;
        if (startedAt(pid) < since) continue;
        const conf = argv.find((a) => a.startsWith('--conf-file='))!.slice('--conf-file='.length);
        if (ownerAlive(conf)) continue;
        process.stderr.write(`vitest teardown: a test left dnsmasq ${pid} running (${argv.join(' ')}); stopping it\n`);
        process.kill(Number(pid), 'SIGKILL');
      } catch { /* gone meanwhile */ }
    }
  };
}
