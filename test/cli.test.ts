// The `vnetlink` CLI run as a subprocess, as a person or an agent would, inside throwaway
// namespaces: its --json matches what the library returns, its text reads like ip/brctl,
// and usage errors exit 2, failures 1.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle } from '../lib/index.js';
import { Namespaces, runCli as cli, hasTool, ipLinks, nsExec, privilegedSkipReason, uniqueName } from './helpers.js';

const root = path.resolve(import.meta.dirname, '..');
const bin = path.join(root, 'bin', 'vnetlink.js');  // spawned directly where output is streamed
const skip = privilegedSkipReason();

async function ok(...args: string[]): Promise<string> {
  const r = await cli(...args);
  if (r.code !== 0) throw new Error(`vnetlink ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}
const json = async (...args: string[]) => JSON.parse(await ok(...args, '--json'));
/** ip's first line without the qdisc, which rtnetlink's link dump does not carry. */
const ipHeader = (s: string) => s.split('\n')[0].replace(/ qdisc \S+/, '').replace(/,M-DOWN/, '').trim();

describe('vnetlink CLI: help, version, exit codes', () => {
  beforeAll(() => {
    if (!fs.existsSync(path.join(root, 'dist', 'cli', 'index.js'))) throw new Error('dist/ is not built (npm test runs tsc first)');
  });

  it('prints the package version and the command list', async () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
    expect((await ok('--version')).trim()).toBe(pkg.version);
    const h = await ok('help');
    for (const c of ['link', 'addr', 'route', 'bridge', 'tap', 'netns', 'monitor', 'nft', 'bench']) expect(h).toMatch(new RegExp(`^  ${c}\\s`, 'm'));
    expect(await ok('help', 'tap')).toMatch(/vnetlink tap add NAME --persist/);
    expect(await ok('link', '--help')).toMatch(/vnetlink link add NAME --type KIND/);
  });

  it('bench --help and bench create --help print its usage; bench create refuses unknown kinds with exit 2', async () => {
    expect(await ok('bench', '--help')).toMatch(/^usage: vnetlink bench create/);
    expect(await ok('bench', 'create', '--help')).toMatch(/^usage: vnetlink bench create/);
    const r = await cli('bench', 'create', '--kind', 'dummy0');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown kind 'dummy0'/);
    const c = await cli('bench', 'create', '--count=0');
    expect(c.code).toBe(2);
    expect(c.stderr).toMatch(/--count must be an integer from 1 to 100000/);
  });

  it('exits 2 on usage errors: unknown command, unknown option, missing argument, contradicting flags', async () => {
    for (const args of [['frobnicate'], ['link', 'list', '--bogus'], ['link', 'show'], ['tap', 'add', 'tp0'], ['help', 'nope'], ['link', 'set', 'x', '--up', '--down'], ['monitor', '--groups', 'link,nope'], []]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^vnetlink: |^usage: /);
    }
  });
});

describe.skipIf(skip)('vnetlink CLI in a throwaway namespace', () => {
  const spaces = new Namespaces();
  let ns: string;
  let nl: Handle;

  beforeAll(async () => {
    hasTool('ip');
    ns = (await spaces.create('cli')).name;
    nl = await open({ netns: ns });
  });
  afterAll(async () => {
    await nl?.close();
    await spaces.cleanup();
  });

  it('link add/set/show/list/del: --json is what the library returns, the text is ip link\'s', async () => {
    await ok('link', 'add', 'br0', '--type', 'bridge', '--netns', ns);
    await ok('link', 'add', 'v0', '--type', 'veth', '--peer', 'v1', '--master', 'br0', '--netns', ns);
    await ok('link', 'set', 'v0', 'up', '--mtu=1400', '--netns', ns);
    await ok('link', 'set', 'v1', '--up', '--alias', 'guest side', '--netns', ns);
    const mine = await json('link', 'show', 'v0', '--netns', ns);
    const lib = await nl.link.get('v0');
    expect(mine).toMatchObject({ index: lib.index, name: 'v0', kind: 'veth', mtu: 1400, master: 'br0', up: true, mac: lib.mac });
    // The list matches the library's, link by link.
    const list = await json('link', 'list', '--netns', ns);
    const libList = await nl.link.list();
    expect(list.map((l: any) => [l.index, l.name, l.kind, l.mac, l.mtu])).toEqual(libList.map((l) => [l.index, l.name, l.kind, l.mac, l.mtu]));
    // The text: every link's first line is ip's (less the qdisc), its second line too.
    const text = await ok('link', 'list', '--netns', ns);
    for (const name of ['lo', 'br0', 'v0', 'v1']) {
      const ip = await nsExec(ns, 'ip', ['link', 'show', name]);
      const block = text.split('\n').findIndex((l) => l.startsWith(`${libList.find((x) => x.name === name)!.index}: `));
      expect(block, name).toBeGreaterThanOrEqual(0);
      expect(text.split('\n')[block], name).toBe(ipHeader(ip));
      expect(text.split('\n')[block + 1].trim(), name).toBe(ip.split('\n')[1].trim());
    }
    expect(text).toMatch(/^    alias guest side$/m);
    const d = await ok('link', 'show', 'br0', '-d', '--netns', ns);
    expect(d).toMatch(/^    bridge .*stp off/m);
    // Only a filter by kind.
    expect((await json('link', 'list', '--type', 'veth', '--netns', ns)).map((l: any) => l.name).sort()).toEqual(['v0', 'v1']);
    await ok('link', 'del', 'v0', '--netns', ns);
    expect((await ipLinks(ns)).map((l) => l.ifname)).not.toContain('v1');
  });

  it('fails with exit 1 and the kernel\'s error for a missing link', async () => {
    const r = await cli('link', 'show', 'nope0', '--netns', ns);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/nope0|ENODEV|No such device/);
  });

  it('addr add/list/del and route add/list/del read like ip addr and ip route', async () => {
    await ok('link', 'set', 'br0', 'up', '--netns', ns);
    await ok('addr', 'add', '198.51.100.1/24', 'dev', 'br0', '--netns', ns);
    const as = await json('addr', 'list', 'br0', '--family', 'inet', '--netns', ns);
    expect(as).toEqual(await nl.addr.list('br0', { family: 'inet' }));
    expect(await ok('addr', 'show', 'br0', '--netns', ns)).toMatch(/^    inet 198\.51\.100\.1\/24 scope global br0$/m);
    expect((await nsExec(ns, 'ip', ['addr', 'show', 'br0']))).toMatch(/inet 198\.51\.100\.1\/24 scope global br0/);
    await ok('route', 'add', '203.0.113.0/24', 'via', '198.51.100.2', 'dev', 'br0', '--netns', ns);
    const rt = (await ok('route', '--netns', ns)).trim().split('\n').sort();
    const ip = (await nsExec(ns, 'ip', ['route'])).trim().split('\n').map((l) => l.trim().replace(/ linkdown$/, '')).sort();
    expect(rt).toEqual(ip);
    expect(await json('route', 'list', '--netns', ns)).toEqual(await nl.route.list());
    await ok('route', 'del', '203.0.113.0/24', '--netns', ns);
    await ok('addr', 'del', '198.51.100.1/24', '--dev', 'br0', '--netns', ns);
    expect(await nl.addr.list('br0', { family: 'inet' })).toEqual([]);
  });

  it('bridge show is brctl\'s table with columns aligned to their content', async () => {
    await ok('link', 'add', 'virbr0', '--type', 'bridge', '--stp', '--mac', '52:54:00:82:32:7e', '--netns', ns);
    for (const p of ['vnet0', 'vnet1']) await ok('tap', 'add', p, '--persist', '--master', 'virbr0', '--netns', ns);
    const text = (await ok('bridge', 'show', '--netns', ns)).trimEnd().split('\n');
    expect(text[0]).toMatch(/^bridge name\s+bridge id\s+STP enabled\s+interfaces$/);
    const col = (s: string) => text[0].indexOf(s);
    const row = text.findIndex((l) => l.startsWith('virbr0 '));
    expect(text[row].slice(col('bridge id'))).toMatch(/^8000\.52540082327e\s+yes\s+vnet0$/);
    expect(text[row].indexOf('yes')).toBe(col('STP enabled'));
    expect(text[row].indexOf('vnet0')).toBe(col('interfaces'));
    expect(text[row + 1].trim()).toBe('vnet1');
    expect(text[row + 1].indexOf('vnet1')).toBe(col('interfaces'));
    expect(await json('bridge', 'show', 'virbr0', '--netns', ns)).toEqual(await nl.bridge.show('virbr0'));
  });

  it('tap add --persist makes a multi-queue vnet_hdr tap owned by a user that outlives the CLI; tap del removes it', async () => {
    const r = await json('tap', 'add', 'tp0', '--persist', '--queues', '2', '--vnet-hdr', '--owner', '1234', '--netns', ns);
    expect(r).toMatchObject({ name: 'tp0', queues: 2, persist: true });
    const d = (await nsExec(ns, 'ip', ['-d', 'link', 'show', 'tp0']));
    expect(d).toMatch(/tun type tap/);
    expect(d).toMatch(/pi off vnet_hdr on multi_queue/);
    expect(d).toMatch(/persist on user 1234/);
    // A non-tap is refused by tap del.
    const bad = await cli('tap', 'del', 'br0', '--netns', ns);
    expect(bad.code).toBe(2);
    await ok('tap', 'del', 'tp0', '--netns', ns);
    expect((await ipLinks(ns)).map((l) => l.ifname)).not.toContain('tp0');
  });

  it('netns list/add/del', async () => {
    const name = uniqueName('clins');
    await ok('netns', 'add', name);
    try {
      expect(await json('netns', 'list')).toContain(name);
      expect((await ok('netns', 'list')).split('\n')).toContain(name);
    } finally {
      await ok('netns', 'del', name);
    }
    expect(await json('netns', 'list')).not.toContain(name);
  });

  it('monitor --json prints one event per line (NDJSON) and stops after --count', async () => {
    const child = spawn('node', [bin, 'monitor', '--groups', 'link', '--existing', '--json', '--count', '50', '--netns', ns], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: any[] = [];
    let buf = '';
    let synced!: () => void;
    const isSynced = new Promise<void>((res) => { synced = res; });
    let sawNew!: () => void;
    const newLink = new Promise<void>((res) => { sawNew = res; });
    child.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const ev = JSON.parse(buf.slice(0, i));
        buf = buf.slice(i + 1);
        lines.push(ev);
        if (ev.type === 'synced') synced();
        if (ev.type === 'newlink' && !ev.existing && ev.link.name === 'mon0') sawNew();
      }
    });
    try {
      await isSynced;
      expect(lines.filter((e) => e.existing).map((e) => e.link.name)).toEqual(expect.arrayContaining(['lo', 'br0', 'virbr0']));
      await nl.link.add({ kind: 'bridge', name: 'mon0' });
      await Promise.race([newLink, new Promise((_, rej) => setTimeout(() => rej(new Error('no newlink for mon0')), 10_000))]);
    } finally {
      child.kill('SIGINT');
      await new Promise((res) => child.once('exit', res));
    }
    expect(lines.find((e) => e.link?.name === 'mon0').link.kind).toBe('bridge');
  });

  it('nft list prints what nft prints for a table vnetlink wrote, and --json matches the library', async () => {
    hasTool('nft');
    await nl.nft.masquerade({ table: 'vnetlink_cli', subnet: '192.168.122.0/24', ports: [1024, 65535] });
    const mine = await ok('nft', 'list', '--family', 'ip', '--table', 'vnetlink_cli', '--netns', ns);
    const theirs = await nsExec(ns, 'nft', ['list', 'table', 'ip', 'vnetlink_cli']);
    const norm = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean);
    expect(norm(mine)).toEqual(norm(theirs));
    const j = await json('nft', 'list', '--family', 'ip', '--table', 'vnetlink_cli', '--netns', ns);
    expect(j.rules.map((r: any) => r.handle)).toEqual((await nl.nft.listRules('ip', 'vnetlink_cli')).map((r) => r.handle));
    const r = await cli('nft', 'list', '--table', 'x', '--netns', ns);
    expect(r.code).toBe(2);
  });

  it('network create --xml / list / show / leases / forward add+rm / update / destroy, each command a separate process', async () => {
    hasTool('dnsmasq');
    const xml = path.join(root, 'test', 'fixtures', 'default.xml');
    await nl.link.del('virbr0').catch(() => {});  // the bridge test's (when run); default.xml names it too
    const made = await json('network', 'create', '--xml', xml, '--netns', ns);
    expect(made).toMatchObject({ name: 'default', bridge: 'virbr0', address: '192.168.122.1/24' });
    // The command exited; the network runs on, listed the same way by the CLI and the library.
    const list = await json('network', 'list', '--netns', ns);
    expect(list).toEqual(await nl.network.list());
    expect(list[0]).toMatchObject({ name: 'default', status: 'active', missing: [], dnsmasqPid: made.dnsmasqPid });
    const text = (await ok('network', 'list', '--netns', ns)).trimEnd().split('\n');
    expect(text[0]).toMatch(/^Name\s+State\s+Bridge\s+Address\s+Owner\s+Missing$/);
    expect(text[1]).toMatch(/^default\s+active\s+virbr0\s+192\.168\.122\.1\/24\s+-\s+-$/);
    expect(text[1].indexOf('active')).toBe(text[0].indexOf('State'));
    // A second create of a running name fails (exit 1, EEXIST), it is not torn down.
    const again = await cli('network', 'create', '--xml', xml, '--netns', ns);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/EEXIST|already/);
    await ok('network', 'forward', 'add', 'default', 'tcp', '8080', '192.168.122.50:80', '--netns', ns);
    expect(await nsExec(ns, 'nft', ['list', 'table', 'ip', 'vnetlink_default'])).toMatch(/tcp dport 8080 .*dnat to 192\.168\.122\.50:80/);
    expect(await ok('network', 'show', 'default', '--netns', ns)).toMatch(/^Forward:\s+tcp \*:8080 -> 192\.168\.122\.50:80$/m);
    await ok('network', 'forward', 'rm', 'default', 'tcp', '8080', '--netns', ns);
    expect(await nsExec(ns, 'nft', ['list', 'table', 'ip', 'vnetlink_default'])).not.toMatch(/8080/);
    const pid = list[0].dnsmasqPid;
    await ok('network', 'update', 'default', '--add-host', '52:54:00:00:00:09,192.168.122.9,nine', '--netns', ns);
    const shown = await json('network', 'show', 'default', '--netns', ns);
    expect(shown.spec.dhcp.hosts).toEqual([{ mac: '52:54:00:00:00:09', ip: '192.168.122.9', name: 'nine' }]);
    expect(shown.dnsmasqPid).toBe(pid);
    expect((await ok('network', 'leases', 'default', '--netns', ns)).trim()).toMatch(/^Expiry Time\s+MAC address\s+IP address\s+Hostname\s+Client ID$/);
    expect(await json('network', 'leases', 'default', '--netns', ns)).toEqual([]);
    await ok('network', 'destroy', 'default', '--netns', ns);
    expect(await nl.network.list()).toEqual([]);
    expect(await nsExec(ns, 'ip', ['link', 'show', 'type', 'bridge'])).not.toMatch(/virbr0/);
  });
});
