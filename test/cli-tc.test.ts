// `vnetlink tc|fdb|rule` as a subprocess in a throwaway namespace: --json equals the library's
// listing, and the text names what tc, bridge and ip would.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns } from '../lib/index.js';
import { Namespaces, privilegedSkipReason } from './helpers.js';

const run = promisify(execFile);
const bin = path.resolve(import.meta.dirname, '..', 'bin', 'vnetlink.js');
const skip = privilegedSkipReason();

describe.skipIf(skip)('vnetlink tc, fdb and rule', () => {
  const nss = new Namespaces();
  let A: Netns;
  let a: Handle;
  const cli = async (...args: string[]) => (await run(process.execPath, [bin, ...args, '--netns', A.name])).stdout;

  beforeAll(async () => {
    A = await nss.create('clitc');
    a = await open({ netns: A });
    await a.link.add({ kind: 'veth', name: 'cv0', peer: { name: 'cv1' }, up: true });
    await a.tc.qdisc.add('cv0', { kind: 'htb', handle: '1:', defaultClass: '1:10' });
    await a.tc.class.add('cv0', { kind: 'htb', parent: '1:', classid: '1:10', rate: '100mbit' });
    await a.tc.qdisc.add('cv0', { kind: 'ingress' });
    await a.link.add({ kind: 'ifb', name: 'cifb', up: true });
    await a.tc.filter.add('cv0', { kind: 'u32', parent: 'ffff:', prio: 1, actions: [{ kind: 'mirred', egress: true, redirect: true, dev: 'cifb' }] });
    await a.link.add({ kind: 'vxlan', name: 'cvx', vni: 7, learning: false });
    await a.fdb.append({ dev: 'cvx', mac: '00:00:00:00:00:00', dst: '198.51.100.9' });
    await a.rule.add({ priority: 123, from: '198.51.100.0/24', table: 77 });
  });
  afterAll(async () => {
    await a?.close();
    await nss.cleanup();
  });

  it('tc qdisc|class|filter show: --json is the library listing, text is tc-shaped', async () => {
    expect(JSON.parse(await cli('tc', 'qdisc', 'show', 'cv0', '--json')).map((q: any) => [q.kind, q.handle]))
      .toEqual((await a.tc.qdisc.list('cv0')).map((q) => [q.kind, q.handle]));
    const text = await cli('tc', 'qdisc', 'show', 'cv0');
    expect(text).toMatch(/^qdisc htb 1: dev cv0 root r2q 10 default 0x10/m);
    expect(text).toMatch(/^qdisc ingress ffff: dev cv0 parent ffff:fff1/m);
    expect(await cli('tc', 'class', 'show', 'cv0')).toMatch(/^class htb 1:10 root prio 0 rate 100Mbit ceil 100Mbit burst \d+b/m);
    const f = await cli('tc', 'filter', 'show', 'cv0', '--parent', 'ffff:');
    expect(f).toMatch(/action mirred \(egress redirect to device cifb\) stolen/);
    expect(JSON.parse(await cli('tc', 'filter', 'show', 'cv0', '--json')).some((x: any) => x.actions?.[0]?.dev === 'cifb')).toBe(true);
  });

  it('fdb show and rule show list what the library lists', async () => {
    expect(await cli('fdb', 'show', '--dev', 'cvx')).toMatch(/^00:00:00:00:00:00 dev cvx dst 198\.51\.100\.9 self permanent$/m);
    expect(JSON.parse(await cli('fdb', 'show', '--dev', 'cvx', '--json'))).toEqual(await a.fdb.list({ dev: 'cvx' }));
    expect(await cli('rule', 'show')).toMatch(/^\s*123:\s+from 198\.51\.100\.0\/24 lookup 77$/m);
    expect(JSON.parse(await cli('rule', 'show', '--json'))).toEqual(await a.rule.list());
  });

  it('usage errors exit 2', async () => {
    const e = await run(process.execPath, [bin, 'tc', 'qdisk', 'show']).catch((x) => x);
    expect(e.code).toBe(2);
    expect(e.stderr).toMatch(/unknown command 'qdisk'/);
    const f = await run(process.execPath, [bin, 'rule', 'show', '--family', 'ipx']).catch((x) => x);
    expect(f.code).toBe(2);
  });
});
