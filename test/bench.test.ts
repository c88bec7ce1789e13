// `vnetlink bench create` runs end to end with a tiny count and prints numbers for veth;
// the structure is checked, never the timings.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { Netns } from '../lib/index.js';
import { formatReport } from '../lib/bench/create.js';
import { formatSlotReport } from '../lib/bench/slot.js';
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
    expect(pkg.files).toEqual(expect.arrayContaining(['bin/', 'bench/nlcreate.c', 'bench/nlslot.c']));
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
    expect(Object.keys(byTool).sort()).toEqual(['addmany', 'addmany-noecho', 'api', 'api-noecho', 'c', 'ip-batch', 'ip-proc', 'monitor', 'pyroute2']);
    for (const tool of ['api', 'api-noecho', 'addmany', 'addmany-noecho', 'c', 'ip-batch', 'ip-proc']) {
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

describe.skipIf(skip)('vnetlink bench slot', () => {
  it('sets up and tears down sandbox slots with every tool, reports slots/s and p50/p99, and leaves nothing behind', async () => {
    hasTool('ip');
    hasTool('nft');
    hasTool('cc');
    const rootLinks = () => JSON.parse(execFileSync('ip', ['-j', 'link', 'show'], { encoding: 'utf8' })).map((l: any) => l.ifname).sort();
    const linksBefore = rootLinks();
    const ours = async () => (await Netns.list()).filter((n) => /^vnl-(sb|slothost|idle)-/.test(n));
    const nsBefore = await ours();
    const { stdout } = await execFileP('node', [path.join(root, 'bin', 'vnetlink.js'), 'bench', 'slot', '--count', '3', '--json'], { timeout: 240_000 });
    const rep = JSON.parse(stdout);
    expect(rep.count).toBe(3);
    expect(rep.host.loadavg).toHaveLength(3);
    const byTool = Object.fromEntries(rep.results.map((r: any) => [r.tool, r]));
    expect(Object.keys(byTool).sort()).toEqual(['c', 'ip-batch', 'pyroute2', 'shell', 'vnetlink', 'vnetlink-seq']);
    for (const tool of ['vnetlink', 'vnetlink-seq', 'shell', 'ip-batch', 'c', ...(inCI ? ['pyroute2'] : [])]) {
      const r = byTool[tool];
      expect(r.skipped, tool).toBeUndefined();
      expect(r.runs).toBe(1);
      expect(r.setupPerSec).toBeGreaterThan(0);
      expect(r.teardownPerSec).toBeGreaterThan(0);
      expect(r.p50Ms).toBeGreaterThan(0);
      expect(r.p99Ms).toBeGreaterThanOrEqual(r.p50Ms);
    }
    expect(byTool.shell.procsPerSlot).toBe(11);
    expect(byTool['ip-batch'].procsPerSlot).toBe(4);
    // The text form: a row per tool with its ratio to the C floor of the same run.
    const text = formatSlotReport(rep);
    expect(text).toMatch(/^\s+c\s+\d+\.\d\s.*1\.00x/m);
    expect(text).toMatch(/^\s+vnetlink\s+\d+\.\d\s/m);
    // Nothing is left: no namespace of the run, no link in the caller's namespace.
    expect(await ours()).toEqual(nsBefore);
    expect(rootLinks()).toEqual(linksBefore);
  }, 300_000);

  it('refuses a count past the address pool (a usage error: exit 2)', async () => {
    const r = await execFileP('node', [path.join(root, 'bin', 'vnetlink.js'), 'bench', 'slot', '--count', '100000'], { timeout: 20_000 }).catch((e) => e);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/count/);
  });
});
