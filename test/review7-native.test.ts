// Regressions from a read of the addon: a thread that cannot be made (a pids limit) used to end
// the process (std::system_error crossing N-API is std::terminate; a forwarder left some workers
// running and a joinable std::thread behind). Now each is a clear error, and all is usable again
// once the limit goes.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { privilegedSkipReason } from './helpers.js';

const root = path.resolve(import.meta.dirname, '..');
const skip = privilegedSkipReason();

/** A pids cgroup this test may make: cgroup v1's pids hierarchy, or v2 with the pids controller. */
function pidsRoot(): string {
  for (const d of ['/sys/fs/cgroup/pids', '/sys/fs/cgroup/unified', '/sys/fs/cgroup']) {
    try {
      if (fs.existsSync(path.join(d, 'pids.max')) || fs.readFileSync(path.join(d, 'cgroup.subtree_control'), 'utf8').split(/\s+/).includes('pids')) return d;
    } catch { /* not this one */ }
    if (d === '/sys/fs/cgroup/pids' && fs.existsSync(path.join(d, 'cgroup.procs'))) return d;
  }
  throw new Error('no pids cgroup controller here to limit threads with');
}

describe.skipIf(skip)('the addon when no thread can be made', () => {
  it('open(), a monitor and Forwarder.start() fail with a clear error instead of ending the process, and work once the limit is lifted', () => {
    const cg = path.join(pidsRoot(), `vnl-r7-${process.pid}`);
    fs.mkdirSync(cg);
    try {
      const script = `import fs from 'node:fs';
await fs.promises.readFile('/proc/self/stat');  // libuv's pool threads exist before the limit
const { open, Forwarder } = await import(${JSON.stringify(path.join(root, 'dist', 'index.js'))});
const cg = process.env.CG;
const h0 = await open();
fs.writeFileSync(cg + '/cgroup.procs', String(process.pid));
fs.writeFileSync(cg + '/pids.max', fs.readFileSync(cg + '/pids.current', 'utf8').trim());
const threadsBefore = fs.readdirSync('/proc/self/task').length;
const out = [];
const attempt = async (what, fn) => { try { await fn(); out.push(what + ': ok'); } catch (e) { out.push(what + ': ' + e.message); } };
await attempt('open', async () => { const h = await open(); await h.close(); });
await attempt('monitor', async () => { const m = h0.monitor({ groups: ['link'] }); for await (const ev of m) break; });
const f = new Forwarder({ mode: 'switch' });
await attempt('forwarder', () => f.start());
// Room for one thread more: the first of two workers starts, the second cannot; the first is
// stopped and joined again (no worker runs behind a stopped engine).
const f2 = new Forwarder({ mode: 'switch', threads: 2 });
fs.writeFileSync(cg + '/pids.max', String(Number(fs.readFileSync(cg + '/pids.current', 'utf8').trim()) + 1));
await attempt('forwarder of two', () => f2.start());
out.push('threads after: ' + (fs.readdirSync('/proc/self/task').length - threadsBefore));
fs.writeFileSync(cg + '/pids.max', 'max');
await attempt('forwarder of two after', () => f2.start());
await f2.close();
await attempt('open after', async () => { const h = await open(); await h.link.get('lo'); await h.close(); });
await attempt('forwarder after', () => f.start());
await f.close();
await h0.close();
console.log(out.join('\\n'));`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', env: { ...process.env, CG: cg }, timeout: 60_000 });
      expect(r.stderr, r.stdout).toBe("");
      expect(r.status).toBe(0);
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^open: open: cannot start the handle's thread: Resource temporarily unavailable/);
      expect(lines[1]).toMatch(/^monitor: monitor: cannot start its thread: Resource temporarily unavailable/);
      expect(lines[2]).toMatch(/^forwarder: forwarder\.start: Resource temporarily unavailable/);
      expect(lines[3]).toMatch(/^forwarder of two: forwarder\.start: Resource temporarily unavailable/);
      expect(lines.slice(4)).toEqual(['threads after: 0', 'forwarder of two after: ok', 'open after: ok', 'forwarder after: ok']);
    } finally {
      fs.rmdirSync(cg);
    }
  });
});
