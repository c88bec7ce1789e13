// `vnetlink bench create` runs end to end with a tiny count and prints numbers for veth;
// the structure is checked, never the timings.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { Netns } from '../lib/index.js';
import { formatReport } from '../lib/bench/create.js';
import { hasTool, inCI, privilegedSkipReason } from './helpers.js';

const execFileP = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const skip = privilegedSkipReason();

describe.skipIf(skip)('vnetlink bench create', () => {
  beforeAll(() => {
    // The bin runs the compiled package (dist/), as an installed one would.
    if (!fs.existsSync(path.join(root, 'dist', 'bench', 'create.js'))) execFileSync('npx', ['tsc', '-p', '.'], { cwd: root });
  });

  it('is the package bin', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    expect(pkg.bin.vnetlink).toBe('bin/vnetlink.js');
    expect(pkg.files).toEqual(expect.arrayContaining(['bin/', 'bench/nlcreate.c']));
  });

  it('measures veth creation through the API (with and without echo), addMany, the monitor event rate, the C floor, ip -batch, ip per device and pyroute2, and leaves nothing behind', async () => {
    hasTool('ip');
    hasTool('cc');
    // The bench names its namespaces vnl-bench-PID-N: only this run's (its pid) are checked,
    // not those of other bench runs on the machine meanwhile.
    let benchPid = 0;
    const stdout = await new Promise<string>((res, rej) => {
      const c = execFile('node', [path.join(root, 'bin', 'vnetlink.js'), 'bench', 'create', '--kind', 'veth', '--count', '6', '--batch', '--json', '--del-sample', '2'],
        { timeout: 120_000, maxBuffer: 16 << 20 }, (e, out, err) => (e ? rej(Object.assign(e, { stderr: err })) : res(out)));
      benchPid = c.pid!;
    });
    expect(benchPid).toBeGreaterThan(0);
    const rep = JSON.parse(stdout);
    expect(rep.count).toBe(6);
    expect(rep.host.cpus).toBeGreaterThan(0);
    const byTool = Object.fromEntries(rep.results.map((r: any) => [r.tool, r]));
    expect(Object.keys(byTool).sort()).toEqual(['addmany', 'api', 'api-noecho', 'c', 'ip-batch', 'ip-proc', 'monitor', 'pyroute2']);
    for (const tool of ['api', 'api-noecho', 'addmany', 'c', 'ip-batch', 'ip-proc']) {
      const r = byTool[tool];
      expect(r.kind).toBe('veth');
      expect(r.skipped).toBeUndefined();
      expect(r.createPerSec).toBeGreaterThan(0);
      expect(r.delOneCount).toBe(2);
      expect(r.delOnePerSec).toBeGreaterThan(0);
      expect(r.delBulkCount).toBe(4);
      expect(r.delBulkPerSec).toBeGreaterThan(0);
    }
    for (const tool of ['api', 'c']) {
      expect(byTool[tool].p50Ms).toBeGreaterThan(0);
      expect(byTool[tool].p99Ms).toBeGreaterThanOrEqual(byTool[tool].p50Ms);
    }
    if (inCI) expect(byTool.pyroute2.skipped).toBeUndefined();
    // The monitor saw every dellink of the group-delete burst (6 pairs: 12 ends).
    expect(byTool.monitor).toMatchObject({ events: 12, resyncs: 0, drained: 12 });
    expect(byTool.monitor.eventsPerSec).toBeGreaterThan(0);
    // The text form has a block per kind with the ratio against the C floor.
    const text = formatReport(rep);
    expect(text).toMatch(/^veth:$/m);
    expect(text).toMatch(/^\s+c\s+\d+\s+1\.00x/m);
    expect(text).toMatch(/^\s+api\s+\d+\s+\d+\.\d\dx/m);
    // Every throwaway namespace is gone.
    expect((await Netns.list()).filter((n) => n.startsWith(`vnl-bench-${benchPid}-`))).toEqual([]);
  }, 180_000);

  it('refuses unknown kinds and options (a usage error: exit 2)', async () => {
    const r = await execFileP('node', [path.join(root, 'bin', 'vnetlink.js'), 'bench', 'create', '--kind', 'dummy0'], { timeout: 20_000 }).catch((e) => e);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown kind 'dummy0'/);
  });
});
