// iperf3 for tests, safe beside other test files running at once: the server is this test's
// own (a pid file in a temp dir, stopped by that pid, never `pkill iperf3`, which would kill
// other files' servers too), and a run that fails as iperf3 reports it is tried again.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Netns } from '../lib/index.js';
import { nsRun, waitFor } from './helpers.js';

function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Stops the server whose pid is in `pidfile` (if any) and waits until it is gone. */
async function stopServer(pidfile: string): Promise<void> {
  let pid = 0;
  try { pid = Number(fs.readFileSync(pidfile, 'utf8').trim()); } catch { return; }
  fs.rmSync(pidfile, { force: true });
  if (!(pid > 0) || !alive(pid)) return;
  try { process.kill(pid, 'SIGTERM'); } catch { return; }
  await waitFor(() => !alive(pid), `iperf3 server ${pid} to exit`, 10_000).catch(() => {
    try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
  });
}

/**
 * One TCP run of `secs` seconds from `client` to a one-shot server on `addr` in `server`
 * (`reverse`: the server sends); the receiver's Mbit/s. Up to three tries when iperf3 itself
 * reports the run as failed or its server never listens.
 */
export async function iperfMbps(server: Netns, client: Netns, addr: string, opts: { reverse?: boolean; secs?: number } = {}): Promise<number> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-iperf-'));
  const pidfile = path.join(dir, 'iperf3.pid');
  let last = '';
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      await stopServer(pidfile);
      const d = await nsRun(server, 'iperf3', ['-s', '-D', '-1', '-B', addr, '-I', pidfile]);
      if (d.code !== 0) { last = d.stderr || d.stdout; continue; }
      // `ss` in the server's namespace sees only that namespace's sockets.
      const listening = await waitFor(async () => (await nsRun(server, 'ss', ['-ltn'])).stdout.includes(`${addr}:5201`), 'iperf3 listening', 15_000)
        .then(() => true, () => false);
      if (!listening) { last = 'the iperf3 server never listened'; continue; }
      const r = await nsRun(client, 'iperf3', ['-c', addr, '-t', String(opts.secs ?? 2), '-J', ...(opts.reverse ? ['-R'] : [])], 30_000);
      last = r.stdout || r.stderr;
      try {
        const j = JSON.parse(r.stdout);
        if (!j.error && j.end?.sum_received) return j.end.sum_received.bits_per_second / 1e6;
      } catch { /* not JSON: try again */ }
    }
    throw new Error(`iperf3 failed three times: ${last.slice(0, 500)}`);
  } finally {
    await stopServer(pidfile);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
