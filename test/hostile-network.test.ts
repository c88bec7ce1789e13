// A careless or hostile caller drives network.create / cleanup / forwardPort with strings that
// would reach a file path, dnsmasq's conf, a sysctl path or an nft rule. Every one must be
// refused with an error naming the field, before anything exists: no link, no table, no
// directory, no daemon. Then the state directory's regressions: dnsmasq directive injection,
// "/.." deleting other networks' directories, a foreign dnsmasq.conf overwritten, and two
// processes fighting over one network.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns, type Network } from '../lib/index.js';
import { Namespaces, hasTool, ipLinks, nsExec, privilegedSkipReason, waitFor } from './helpers.js';

const skip = privilegedSkipReason();

/** Strings no network string field may take: each one is read specially by a file system, dnsmasq, sysctl or nft. */
export const HOSTILE: string[] = [
  '', ' ', '\t', '\n', '\r', '\r\n', '\0', 'a\0b', '\x01', '\x1b[31m', '\x7f', '\x85', '\u2028', '\u00a0',
  'a\nb', 'x\n#', 'x\nconf-script=/tmp/evil.sh\n#', 'ok\ninterface=eth0', 'a\rb', 'a\tb', 'a b', ' lead', 'trail ',
  '..', '.', '../x', 'x/..', '/..', 'a/../b', '//', 'a//b',
  'a,b', 'vb,eth0', ',', 'a"b', '"', '"; drop; #', "a'b", "'", '\\', 'a\\b', '\\n', '#', 'a#b', '# comment',
  '$(id)', '`id`', 'a;b', 'a|b', 'a&b', 'a>b', 'a<b', '*', 'vb*', 'a?b', 'a[b]', 'a{b}', 'a=b', 'a:b', 'a@b!',
  'x'.repeat(5000), 'é'.repeat(3000), '%d', '%s%s%n',
];
/** Values of the wrong type, for every field. */
export const WRONG_TYPES: unknown[] = [1, -1, 0, NaN, true, null, {}, [], ['a'], () => 'a', Symbol('s'), 10n];

describe.skipIf(skip)('hostile input to the network API', () => {
  const nss = new Namespaces();
  let H: Netns;
  let h: Handle;
  let tmp: string;

  beforeAll(async () => {
    H = await nss.create('hostn');
    h = await open({ netns: H });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-hostile-'));
  });
  afterAll(async () => {
    await h?.close();
    await nss.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const base = () => ({ name: 'hn', bridge: 'hbr0', address: '192.168.122.1/24', stp: false,
    dhcp: { start: '192.168.122.2', end: '192.168.122.254', hosts: [{ mac: '52:54:00:00:00:05', ip: '192.168.122.5', name: 'web' }] },
    nat: { outInterface: 'h1' },
    dns: { forwarders: [{ addr: '203.0.113.53', domain: 'example.test' }], domain: 'vm.test', hosts: [{ ip: '192.168.122.77', names: ['printer'] }] } } as any);
  const set = (o: any, field: string, val: unknown) => {
    const ks = field.split('.');
    let t = o;
    for (const k of ks.slice(0, -1)) t = t[/^\d+$/.test(k) ? Number(k) : k];
    t[ks[ks.length - 1]] = val;
    return o;
  };
  /** Nothing of a network exists in the namespace, in the temp dir or under /run/vnetlink. */
  async function expectNothing(): Promise<void> {
    expect((await ipLinks(H)).map((l) => l.ifname)).toEqual(['lo']);
    if (hasTool('nft')) expect((await nsExec(H, 'nft', ['list', 'ruleset'])).trim()).toBe('');
    expect(fs.readdirSync(tmp)).toEqual([]);
    const id = fs.statSync(`/run/netns/${H.name}`);
    expect(fs.existsSync(`/run/vnetlink/netns-${id.dev}-${id.ino}`)).toBe(false);
  }
  async function refused(fn: () => Promise<unknown>, field: string, x?: unknown): Promise<void> {
    let err: unknown;
    try { await fn(); } catch (e) { err = e; }
    expect(err, `expected ${field} to be refused: ${typeof x === "string" ? JSON.stringify(x) : String(x)}`).toBeInstanceOf(Error);
    // The field itself, or a part of it (an object given where a string goes names its key).
    expect((err as Error).message).toMatch(new RegExp(`: ${field.replace(/[.[\]]/g, '\\$&')}[:.[]`));
  }

  // The string fields of a NetworkSpec, each with the hostile strings (a stateDir's inside an
  // absolute path of ours, so that only the hostile part can be what is refused).
  const FIELDS: Array<[string, (x: string) => unknown]> = [
    ['name', (x) => x], ['bridge', (x) => x], ['address', (x) => x], ['address', (x) => `192.168.122.1/24${x}`],
    ['mac', (x) => x], ['dhcp.start', (x) => x], ['dhcp.end', (x) => `192.168.122.254${x}`],
    ['dhcp.hosts.0.mac', (x) => x], ['dhcp.hosts.0.ip', (x) => x], ['dhcp.hosts.0.name', (x) => `web${x}`],
    ['nat.outInterface', (x) => x], ['dnsmasq', (x) => `/usr/sbin/dnsmasq${x}`],
    ['dns.domain', (x) => x], ['dns.domain', (x) => `vm${x}`], ['dns.forwarders.0.addr', (x) => x], ['dns.forwarders.0.domain', (x) => x],
    ['dns.hosts.0.ip', (x) => x], ['dns.hosts.0.names.0', (x) => x], ['dns.hosts.0.names.0', (x) => `printer${x}`],
    ['address6', (x) => x], ['address6', (x) => `fd00:122::1/64${x}`],
  ];

  it(`refuses ${HOSTILE.length} hostile strings and ${WRONG_TYPES.length} wrong types in every string field of network.create, naming the field, creating nothing`, async () => {
    let cases = 0;
    for (const [field, wrap] of FIELDS) {
      // A wrapped empty string is the valid value itself: not a case.
      for (const x of [...HOSTILE.map(wrap).filter((w) => w !== '' || wrap('') === ''), ...WRONG_TYPES]) {
        if (typeof x === 'string' && x !== '' && x === wrap('')) continue;
        await refused(() => h.network.create(set(base(), field, x)), field.replace(/\.(\d+)(?=\.|$)/g, '[$1]'), x);
        cases++;
      }
    }
    expect(cases).toBeGreaterThanOrEqual(FIELDS.length * 40);
    await expectNothing();
  });

  it('refuses hostile state directories in network.create and network.cleanup: control characters, "..", non-normalized paths, dnsmasq syntax', async () => {
    // (".." is hostile as a component, not inside "d..": the second list has it on its own.)
    const dirs = [...HOSTILE.filter((x) => !/^[A-Za-z0-9._/-]{0,100}$/.test(x)).map((x) => `${tmp}/d${x}`), ...HOSTILE.map((x) => `${tmp}/${x}`).filter((d) => d !== `${tmp}/`),
      'relative/dir', `${tmp}/`, `${tmp}/x/`, `${tmp}/./x`, `${tmp}/x/.`, `${tmp}//x`, '/', `${tmp}/x/../..`];
    expect(dirs.length).toBeGreaterThanOrEqual(80);
    for (const d of [...dirs, ...WRONG_TYPES]) {
      await refused(() => h.network.create({ ...base(), stateDir: d }), 'stateDir', d);
      await refused(() => h.network.cleanup('hn', { stateDir: d as string }), 'stateDir', d);
    }
    await expectNothing();
  });

  it('a bridge name dnsmasq, sysctl or nft would read specially is refused up front, naming network.create: bridge', async () => {
    for (const b of ['vb,eth0', 'vb*', 'v"b', "v'b", 'v\\b', 'v#b', 'v$b', 'v;b', 'v=b', 'v+b', 'v@b']) {
      let err: any;
      try { await h.network.create({ ...base(), bridge: b }); } catch (e) { err = e; }
      expect(err?.message).toMatch(/^network\.create: bridge: /);
    }
    await expectNothing();
  });

  it('cleanup and forwardPort refuse hostile names and addresses, naming the field', async () => {
    for (const x of [...HOSTILE, ...WRONG_TYPES]) await refused(() => h.network.cleanup(x as string), 'name', x);
    await expectNothing();
    const net = await h.network.create({ name: 'hpf', bridge: 'hpf0', address: '192.168.122.1/24', stp: false, dhcp: false, dns: false });
    try {
      for (const x of [...HOSTILE, ...WRONG_TYPES]) {
        await refused(() => net.forwardPort({ proto: 'tcp', hostPort: 2222, guest: x as string }), 'guest', x);
        await refused(() => net.forwardPort({ proto: 'tcp', hostPort: 2222, guest: '192.168.122.9', hostAddress: x as string }), 'hostAddress', x);
        await refused(() => net.forwardPort({ proto: x as any, hostPort: 2222, guest: '192.168.122.9' }), 'proto', x);
      }
      // No forward rule came into being.
      if (hasTool('nft')) expect(await nsExec(H, 'nft', ['list', 'table', 'ip', net.table])).not.toContain('dnat to');
    } finally {
      await net.destroy();
    }
    await expectNothing();
  });

  it('a valid kernel name with dots such as "vs.." works: the sysctls of the bridge are written', async () => {
    const net = await h.network.create({ name: 'hdots', bridge: 'vs..', address: '192.168.122.1/24', stp: false, dhcp: false, dns: false });
    try {
      expect((await ipLinks(H, 'vs..'))[0]?.ifalias).toBe('vnetlink:network:hdots');
      expect(await h.sysctl.get('net/ipv6/conf/vs../accept_ra')).toBe('0');
      // The dotted spelling escapes the interface's dots as "/".
      expect(await h.sysctl.get('net.ipv6.conf.vs//.autoconf')).toBe('0');
    } finally {
      await net.destroy();
    }
    await expectNothing();
  });
});

describe.skipIf(skip)('the state directory belongs to vnetlink', () => {
  const nss = new Namespaces();
  let H: Netns;
  let h: Handle;
  let tmp: string;

  beforeAll(async () => {
    H = await nss.create('hostd');
    h = await open({ netns: H });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-sd-'));
  });
  afterAll(async () => {
    await h?.close();
    await nss.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });
  const spec = (name: string, third: number, stateDir?: string) => ({ name, bridge: `sd${third}`, address: `192.168.${third}.1/24`, stp: false,
    dhcp: { start: `192.168.${third}.2`, end: `192.168.${third}.9` }, ...(stateDir ? { stateDir } : {}) });

  it('a newline in stateDir cannot inject a dnsmasq directive: refused, and the script never runs', async () => {
    const evil = path.join(tmp, 'evil.sh'), ran = path.join(tmp, 'ran');
    fs.writeFileSync(evil, `#!/bin/sh\ntouch ${ran}\n`, { mode: 0o755 });
    let err: any;
    try { await h.network.create(spec('inj', 31, `${tmp}/x\nconf-script=${evil}\n#`)); } catch (e) { err = e; }
    expect(err?.message).toMatch(/^network\.create: stateDir: /);
    await new Promise((r) => setTimeout(r, 200));
    expect(fs.existsSync(ran)).toBe(false);
    expect(fs.readdirSync(tmp)).toEqual(['evil.sh']);
    expect((await ipLinks(H)).map((l) => l.ifname)).toEqual(['lo']);
    fs.rmSync(evil);
  });

  it('a stateDir ending in "/.." is refused: another network\'s directory survives', async () => {
    const parent = path.join(tmp, 'nets');
    fs.mkdirSync(parent);
    const a = await h.network.create(spec('sda', 32, path.join(parent, 'a')));
    try {
      for (const d of [path.join(parent, 'a') + '/..', `${parent}/b/..`, `${parent}/a/../a`]) {
        let err: any;
        try { await h.network.create(spec('sdb', 33, d)); } catch (e) { err = e; }
        expect(err?.message).toMatch(/^network\.create: stateDir: /);
        err = undefined;
        try { await h.network.cleanup('sdb', { stateDir: d }); } catch (e) { err = e; }
        expect(err?.message).toMatch(/^network\.cleanup: stateDir: /);
      }
      expect(fs.readdirSync(path.join(parent, 'a'))).toEqual(expect.arrayContaining(['dnsmasq.conf', 'dnsmasq.pid', 'network.json', 'network.lock', 'vnetlink-network']));
      expect(process.kill(a.dnsmasqPid!, 0)).toBe(true);
    } finally {
      await a.destroy();
    }
    // Our directory went; the caller's parent stays.
    expect(fs.readdirSync(parent)).toEqual([]);
    fs.rmdirSync(parent);
  });

  it('an existing directory we did not create is refused by create and cleanup: its dnsmasq.conf is neither overwritten nor deleted', async () => {
    const dir = path.join(tmp, 'foreign');
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.writeFileSync(path.join(dir, 'dnsmasq.conf'), 'someone else\'s conf\n');
    fs.writeFileSync(path.join(dir, 'dnsmasq.pid'), `${process.pid}\n`);
    for (const attempt of [() => h.network.create(spec('fgn', 34, dir)), () => h.network.cleanup('fgn', { stateDir: dir })]) {
      let err: any;
      try { await attempt(); } catch (e) { err = e; }
      expect(err?.message).toMatch(/^network\.(create|cleanup): stateDir: .*not created by vnetlink/);
    }
    expect(fs.readdirSync(dir).sort()).toEqual(['dnsmasq.conf', 'dnsmasq.pid']);
    expect(fs.readFileSync(path.join(dir, 'dnsmasq.conf'), 'utf8')).toBe('someone else\'s conf\n');
    expect((await ipLinks(H)).map((l) => l.ifname)).toEqual(['lo']);
    fs.rmSync(dir, { recursive: true });
  });

  it('a symlink, a directory owned by someone else, a group-writable one, or one made for another network is refused', async () => {
    const real = path.join(tmp, 'real');
    fs.mkdirSync(real, { mode: 0o700 });
    const link = path.join(tmp, 'link');
    fs.symlinkSync(real, link);
    const other = path.join(tmp, 'other');
    fs.mkdirSync(other, { mode: 0o700 });
    fs.writeFileSync(path.join(other, 'vnetlink-network'), 'fo\n');
    fs.chownSync(other, 65534, 65534);
    const open = path.join(tmp, 'open');
    fs.mkdirSync(open);
    fs.writeFileSync(path.join(open, 'vnetlink-network'), 'fo\n');
    fs.chmodSync(open, 0o777);
    const another = path.join(tmp, 'another');
    fs.mkdirSync(another, { mode: 0o700 });
    fs.writeFileSync(path.join(another, 'vnetlink-network'), 'somebody\n');
    const below = path.join(link, 'sub');  // a parent that is a symlink
    for (const [d, why] of [[link, /symbolic link/], [other, /owned by uid 65534/], [open, /writable by others/], [another, /belongs to the network "somebody"/], [below, /real path/]] as const) {
      let err: any;
      try { await h.network.create(spec('fo', 35, d)); } catch (e) { err = e; }
      expect(err?.message).toMatch(/^network\.create: stateDir: /);
      expect(err?.message).toMatch(why);
    }
    expect(fs.readdirSync(real)).toEqual([]);
    expect(fs.readdirSync(other)).toEqual(['vnetlink-network']);
    expect(fs.readdirSync(another)).toEqual(['vnetlink-network']);
    expect((await ipLinks(H)).map((l) => l.ifname)).toEqual(['lo']);
    for (const d of [link, real, other, open, another]) fs.rmSync(d, { recursive: true });
  });

  it('a state directory of ours (a crashed run\'s) is reused, and destroy removes only our files', async () => {
    const dir = path.join(tmp, 'mine');
    const a = await h.network.create(spec('mine', 36, dir));
    fs.writeFileSync(path.join(dir, 'keep.txt'), 'a file someone put there\n');
    await a.destroy();
    // Not recursive: the stranger's file stays, and so does the directory holding it.
    expect(fs.readdirSync(dir)).toEqual(['keep.txt']);
    fs.rmSync(dir, { recursive: true });
  });

  it('two processes creating one network: the second is told it is owned elsewhere and removes nothing; after the owner dies it is leftovers', async () => {
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      const { open } = await import(${JSON.stringify(path.resolve('dist/index.js'))});
      const h = await open({ netns: ${JSON.stringify(H.name)} });
      const net = await h.network.create({ name: 'twice', bridge: 'tw0', address: '192.168.37.1/24', stp: false,
        dhcp: { start: '192.168.37.2', end: '192.168.37.9' } });
      console.log('ready ' + net.dnsmasqPid);
      setInterval(() => {}, 1000);`], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      let out = '';
      child.stdout!.on('data', (d) => { out += d; });
      const pid = Number(await waitFor(() => /ready (\d+)/.exec(out)?.[1], 'the child\'s network', 30_000));
      for (const attempt of [() => h.network.create({ name: 'twice', bridge: 'tw1', address: '192.168.38.1/24', stp: false, dhcp: false }),
        () => h.network.cleanup('twice')]) {
        let err: any;
        try { await attempt(); } catch (e) { err = e; }
        expect(err?.code).toBe('EBUSY');
        expect(err?.message).toMatch(/owned by another process/);
      }
      // The owner's network is untouched: its bridge, its table, its dnsmasq.
      expect((await ipLinks(H, 'tw0'))[0]?.ifalias).toBe('vnetlink:network:twice');
      expect((await ipLinks(H)).map((l) => l.ifname).sort()).toEqual(['lo', 'tw0']);
      if (hasTool('nft')) expect(await nsExec(H, 'nft', ['list', 'tables'])).toContain('vnetlink_twice');
      expect(process.kill(pid, 0)).toBe(true);
      // The owner crashes: its lock goes with it, and what it left is leftovers to clean.
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      expect(await h.network.cleanup('twice')).toBe(true);
      expect((await ipLinks(H)).map((l) => l.ifname)).toEqual(['lo']);
      await waitFor(() => { try { process.kill(pid, 0); return false; } catch { return true; } }, 'the dead owner\'s dnsmasq to be stopped');
    } finally {
      child.kill('SIGKILL');
    }
  });
});
