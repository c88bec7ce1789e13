// vitest globalSetup: the Debian packages the suite uses are installed (or named) before any test runs.
// Its teardown is the suite's safety net for daemons a test file left behind (a worker killed by a
// timeout never reaches its afterAll): a dnsmasq that vnetlink started for a test network during
// this run is named on stderr, so the leak can be traced to its state dir, and stopped by pid.
import fs from 'node:fs';
import { ensurePackages } from './packages.mjs';

/** Seconds since boot at which a process started (field 22 of /proc/PID/stat, in clock ticks). */
function startedAt(pid: string): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[19]) / 100;
}

function uptime(): number {
  return Number(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]);
}

export default function setup(): () => void {
  ensurePackages('tests');
  const since = uptime();
  return () => {
    for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
      try {
        const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
        if (!argv[0].endsWith('/dnsmasq') || !argv.some((a) => a.startsWith('--conf-file=/run/vnetlink/'))) continue;
        if (startedAt(pid) < since) continue;
        process.stderr.write(`vitest teardown: a test left dnsmasq ${pid} running (${argv.join(' ')}); stopping it\n`);
        process.kill(Number(pid), 'SIGKILL');
      } catch { /* gone meanwhile */ }
    }
  };
}
