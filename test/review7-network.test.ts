// Regressions from a security read of the network layer: a second network of the same name in
// another state directory tore the first one down; a state directory under a directory another
// user could write was accepted (root then wrote through a swapped symlink).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns, type Network } from '../lib/index.js';
import { _simulateCrash } from '../lib/network.js';
import { Namespaces, hasTool, inProcess, ipLinks, nsExec, privilegedSkipReason } from './helpers.js';

const skip = privilegedSkipReason();

// No DHCP and no DNS: no dnsmasq; the bridge and the nft table are what is at stake.
const spec = (name: string, bridge: string, stateDir: string) => ({ name, bridge, stp: false, address: '192.168.151.1/24', dns: false, stateDir });
// With dnsmasq (DHCP, no DNS port): the daemon's lifecycle is what is at stake.
const dspec = (name: string, bridge: string, stateDir: string) => ({ ...spec(name, bridge, stateDir), dhcp: { start: '192.168.151.10', end: '192.168.151.99', ping: false } });
const dnsmasqPids = (ns: Netns) => spawnSync('ip', ['netns', 'pids', ns.name], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean)
  .filter((p) => { try { return fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim() === 'dnsmasq'; } catch { return false; } }).map(Number);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));


describe.skipIf(skip)('network state: one name per namespace, state directories nobody else can swap', () => {
  const nss = new Namespaces();
  let ns: Netns;
  let h: Handle;
  let tmp: string;

  const bridges = async () => (await ipLinks(ns)).filter((l) => l.linkinfo?.info_kind === 'bridge').map((l) => `${l.ifname}:${l.ifalias ?? ''}`).sort();
  // Stateless (-s): the rules, not their counters (the bridge's own multicast counts packets).
  const table = () => nsExec(ns, 'nft', ['-s', 'list', 'table', 'ip', 'vnetlink_r7']);
  // Whatever a test made goes after it, even when it failed half-way (no cascade into the next).
  const made: Network[] = [];
  const mk = async (sp: Parameters<Handle['network']['create']>[0]) => { const n = await h.network.create(sp); made.push(n); return n; };
  afterEach(async () => {
    for (const n of made.splice(0)) await n.destroy().catch(() => {});
    for (const d of ['a', 'b']) await h.network.cleanup('r7', { stateDir: path.join(tmp, d, 'r7') }).catch(() => false);
  });

  beforeAll(async () => {
    hasTool('nft');
    ns = await nss.create('r7n');
    h = await open({ netns: ns });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-r7n-'));
    for (const d of ['a', 'b']) fs.mkdirSync(path.join(tmp, d));
  });
  afterAll(async () => {
    for (const d of ['a', 'b']) await h?.network.cleanup('r7', { stateDir: path.join(tmp, d, 'r7') }).catch(() => false);
    await h?.close();
    await nss.cleanup();
    // Only what the test made: the two state directories' parents are removed by cleanup.
    for (const d of ['a', 'b', 'pub', 'nobody']) fs.rmSync(path.join(tmp, d), { recursive: true, force: true });
    fs.rmdirSync(tmp);
  });

  it('refuses a second network of a live name from another stateDir, in this process and from another, and leaves the first intact', async () => {
    const a = await mk(spec('r7', 'r7bra', path.join(tmp, 'a', 'r7')));
    const before = await table();
    expect(await bridges()).toEqual(['r7bra:vnetlink:network:r7']);
    await expect(h.network.create(spec('r7', 'r7brb', path.join(tmp, 'b', 'r7')))).rejects.toMatchObject({ code: 'EBUSY', message: expect.stringMatching(/network\.create: .*"r7".*state directory/) });
    expect(await bridges()).toEqual(['r7bra:vnetlink:network:r7']);
    expect(await table()).toBe(before);
    await a.destroy();

    // Another process made it and ended without destroying it (the network outlives it); its
    // lock is on its own directory, so only the bridge's record tells this one apart.
    await inProcess(ns.name, `await nl.network.create(${JSON.stringify(spec('r7', 'r7bra', path.join(tmp, 'a', 'r7')))});`);
    expect(await bridges()).toEqual(['r7bra:vnetlink:network:r7']);
    const made = await table();
    await expect(h.network.create(spec('r7', 'r7brb', path.join(tmp, 'b', 'r7')))).rejects.toMatchObject({ code: 'EBUSY', message: expect.stringMatching(/bridge "r7bra" .*not recorded in the state directory .*\/b/) });
    expect(await bridges()).toEqual(['r7bra:vnetlink:network:r7']);
    expect(await table()).toBe(made);
    // Its own directory still finds it, active; nothing was left in b.
    expect((await h.network.list({ stateDir: path.join(tmp, 'a', 'r7') })).map((n) => [n.name, n.status])).toEqual([['r7', 'active']]);
    expect(fs.readdirSync(path.join(tmp, 'b'))).toEqual([]);
    // The explicit cleanup by name from the other directory removes it (the caller asked).
    expect(await h.network.cleanup('r7', { stateDir: path.join(tmp, 'b', 'r7') })).toBe(true);
    expect(await bridges()).toEqual([]);
    await h.network.cleanup('r7', { stateDir: path.join(tmp, 'a', 'r7') });
  });

  it('refuses a stateDir below a directory others may write (not sticky) or another user owns, before anything exists', async () => {
    const pub = path.join(tmp, 'pub');
    fs.mkdirSync(pub);
    fs.chmodSync(pub, 0o777);
    const nobody = path.join(tmp, 'nobody');
    fs.mkdirSync(nobody, { mode: 0o755 });
    fs.chownSync(nobody, 65534, 65534);
    await expect(h.network.create(spec('r7', 'r7brc', path.join(pub, 'r7')))).rejects.toThrow(/^network\.create: stateDir: ".*\/pub" is writable by other users \(mode 777\) and not sticky/);
    await expect(h.network.create(spec('r7', 'r7brc', path.join(nobody, 'r7')))).rejects.toThrow(/^network\.create: stateDir: ".*\/nobody" belongs to uid 65534/);
    expect(fs.readdirSync(pub)).toEqual([]);
    expect(fs.readdirSync(nobody)).toEqual([]);
    expect(await bridges()).toEqual([]);
    // Sticky and world-writable (as /tmp itself) is fine when the directories below are ours.
    fs.chmodSync(pub, 0o1777);
    const n = await mk(spec('r7', 'r7brc', path.join(pub, 'r7')));
    expect(await bridges()).toEqual(['r7brc:vnetlink:network:r7']);
    await n.destroy();
    expect(fs.readdirSync(pub)).toEqual([]);
  });

  it('refuses DHCP host names dnsmasq would read as a keyword or a lease time, naming the field', async () => {
    for (const name of ['ignore', 'infinite', 'Ignore', '3600', '45m', '2d', '1w']) {
      const sp = { ...dspec('r7', 'r7brd', path.join(tmp, 'a', 'r7')), dhcp: { start: '192.168.151.10', end: '192.168.151.99', hosts: [{ mac: '52:54:00:00:07:01', ip: '192.168.151.7', name }] } };
      await expect(h.network.create(sp), name).rejects.toThrow(new RegExp(`^network\\.create: dhcp\\.hosts\\[0\\]\\.name: "${name}" is a keyword or a lease time to dnsmasq`));
    }
    expect(await bridges()).toEqual([]);
    expect(fs.readdirSync(path.join(tmp, 'a'))).toEqual([]);
  });

  it('a get() that fails leaves no dnsmasq watcher behind (it would restart the daemon of a network nobody owns)', async () => {
    hasTool('dnsmasq');
    const dir = path.join(tmp, 'a', 'r7');
    const n = await mk(dspec('r7', 'r7bre', dir));
    const pid = n.dnsmasqPid!;
    _simulateCrash(n);  // bridge, table, dnsmasq and state stay; no owner
    // A recorded forward that no longer validates (its guest outside the subnet) fails the get.
    const file = path.join(dir, 'network.json');
    const st = JSON.parse(fs.readFileSync(file, 'utf8'));
    st.forwards = [{ proto: 'tcp', hostPort: 8080, guest: '10.9.9.9', guestPort: 80 }];
    fs.writeFileSync(file, JSON.stringify(st));
    await expect(h.network.get('r7', { stateDir: dir })).rejects.toThrow(/guest/);
    expect(dnsmasqPids(ns)).toEqual([pid]);
    // The adopted daemon dies: nothing of the failed get() may bring it back.
    process.kill(pid, 'SIGKILL');
    await sleep(3000);  // six watch intervals; a leftover watcher would have restarted it
    expect(dnsmasqPids(ns)).toEqual([]);
    expect(await h.network.cleanup('r7', { stateDir: dir })).toBe(true);
    expect(await bridges()).toEqual([]);
  });

  it('update() with a DHCP range whose dnsmasq cannot start keeps the old range, and its forwards are all or nothing', async () => {
    hasTool('dnsmasq');
    const dir = path.join(tmp, 'a', 'r7');
    // A dnsmasq that refuses to run the new range only (the old one must come back).
    const bin = path.join(tmp, 'bin');
    fs.mkdirSync(bin, { mode: 0o755 });
    const real = spawnSync('sh', ['-c', 'command -v dnsmasq || echo /usr/sbin/dnsmasq'], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } }).stdout.trim();
    fs.writeFileSync(path.join(bin, 'dnsmasq'), `#!/bin/sh\nconf=\${1#--conf-file=}\ngrep -q '^dhcp-range=192.168.151.20,' "$conf" && { echo 'refusing the new range' >&2; exit 3; }\nexec ${real} "$@"\n`, { mode: 0o755 });
    const n = await mk({ ...dspec('r7', 'r7brf', dir), dnsmasq: path.join(bin, 'dnsmasq') });
    try {
      const conf = () => fs.readFileSync(path.join(dir, 'dnsmasq.conf'), 'utf8').split('\n').find((l) => l.startsWith('dhcp-range='));
      const recorded = () => JSON.parse(fs.readFileSync(path.join(dir, 'network.json'), 'utf8')).spec.dhcp;
      const old = conf();
      expect(old).toMatch(/^dhcp-range=192\.168\.151\.10,192\.168\.151\.99,/);
      const pid0 = n.dnsmasqPid;
      await expect(n.update({ dhcp: { start: '192.168.151.20', end: '192.168.151.30' } })).rejects.toThrow();
      // The old range is what the network records, what its conf says, and what a new dnsmasq serves.
      expect(recorded()).toMatchObject({ start: '192.168.151.10', end: '192.168.151.99' });
      expect(conf()).toBe(old);
      expect(n.dnsmasqPid).not.toBe(pid0);
      expect(dnsmasqPids(ns)).toEqual([n.dnsmasqPid]);

      // Forwards: the second of two adds is refused (the port the first just took), so the
      // first is taken back too.
      await expect(n.update({ forwards: { add: [
        { proto: 'tcp', hostPort: 8081, guest: '192.168.151.7', guestPort: 80 },
        { proto: 'tcp', hostPort: 8081, guest: '192.168.151.8', guestPort: 80 },
      ] } })).rejects.toMatchObject({ code: 'EEXIST' });
      expect(n.forwards()).toEqual([]);
      expect(await nsExec(ns, 'nft', ['list', 'table', 'ip', 'vnetlink_r7'])).not.toContain('8081');
    } finally {
      await n.destroy();
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });

  it('restart() that cannot re-add a forward keeps the rest recorded; destroy() leaves a namesake bridge that is not its own', async () => {
    hasTool('dnsmasq');
    const dir = path.join(tmp, 'a', 'r7');
    const n = await mk(spec('r7', 'r7brg', dir));
    await n.forwardPort({ proto: 'tcp', hostPort: 8082, guest: '192.168.151.7', guestPort: 80 });
    await n.forwardPort({ proto: 'tcp', hostPort: 8083, guest: '192.168.151.8', guestPort: 80 });
    const real = n.forwardPort.bind(n);
    let calls = 0;
    (n as any).forwardPort = (f: any) => (++calls === 2 ? Promise.reject(Object.assign(new Error('injected'), { code: 'EIO' })) : real(f));
    await expect(n.restart()).rejects.toThrow('injected');
    delete (n as any).forwardPort;
    const hostPorts = () => JSON.parse(fs.readFileSync(path.join(dir, 'network.json'), 'utf8')).forwards.map((f: any) => f.hostPort).sort();
    expect(hostPorts()).toEqual([8082, 8083]);
    // The next restart adds what is missing.
    await n.restart();
    const table = await nsExec(ns, 'nft', ['list', 'table', 'ip', 'vnetlink_r7']);
    expect(table).toContain('dport 8082');
    expect(table).toContain('dport 8083');
    expect(hostPorts()).toEqual([8082, 8083]);

    // Its bridge deleted underneath and a stranger's bridge of that name made: destroy() leaves it.
    await nsExec(ns, 'ip', ['link', 'del', 'r7brg']);
    await nsExec(ns, 'ip', ['link', 'add', 'r7brg', 'type', 'bridge']);
    await n.destroy();
    expect(await bridges()).toEqual(['r7brg:']);
    await nsExec(ns, 'ip', ['link', 'del', 'r7brg']);
  });

  it('a restart() that fails after re-making the bridge, then a crash: create({ replace }) rebuilds it; a refusal keeps a running network\'s state', async () => {
    const dir = path.join(tmp, 'a', 'r7');
    const n = await mk(spec('r7', 'r7brh', dir));
    await nsExec(ns, 'ip', ['link', 'del', 'r7brh']);
    const realAdd = h.addr.add.bind(h.addr);
    (h.addr as any).add = () => Promise.reject(Object.assign(new Error('injected'), { code: 'EIO' }));
    try {
      await expect(n.restart()).rejects.toThrow('injected');
    } finally {
      (h.addr as any).add = realAdd;
    }
    _simulateCrash(n);
    made.splice(0);
    // The state recorded the new bridge's index: it is this network's own, not a stranger.
    const again = await h.network.create(spec('r7', 'r7brh', dir), { replace: true });
    made.push(again);
    expect(await bridges()).toEqual(['r7brh:vnetlink:network:r7']);
    _simulateCrash(again);
    made.splice(0);
    // Refused before anything (a bridge tagged r7 this directory does not record): its state stays.
    await expect(h.network.create(spec('r7', 'r7bri', path.join(tmp, 'b', 'r7')))).rejects.toMatchObject({ code: 'EBUSY' });
    expect(fs.existsSync(path.join(dir, 'network.json'))).toBe(true);
    await expect(h.network.create(spec('r7', 'r7brh', dir), { replace: true }).then((x) => { made.push(x); return 'ok'; })).resolves.toBe('ok');
    await expect(h.network.get('r7', { stateDir: path.join(tmp, 'b', 'r7') })).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('get() of the same name from another directory while it runs here is refused; two concurrent creates of one directory: one wins, one EEXIST', async () => {
    const n = await mk(spec('r7', 'r7brj', path.join(tmp, 'a', 'r7')));
    // A leftover state of the same name in b (copied, as a crashed run would leave it).
    fs.mkdirSync(path.join(tmp, 'b', 'r7'), { mode: 0o700 });
    for (const f of ['vnetlink-network', 'network.json']) fs.copyFileSync(path.join(tmp, 'a', 'r7', f), path.join(tmp, 'b', 'r7', f));
    await expect(h.network.get('r7', { stateDir: path.join(tmp, 'b', 'r7') })).rejects.toMatchObject({ code: 'EBUSY', message: expect.stringMatching(/already runs in this namespace from the state directory .*\/a\/r7/) });
    expect(await table()).toContain('chain nat');
    for (const f of ['vnetlink-network', 'network.json']) fs.unlinkSync(path.join(tmp, 'b', 'r7', f));
    fs.rmdirSync(path.join(tmp, 'b', 'r7'));
    await n.destroy();

    const sp = spec('r7', 'r7brk', path.join(tmp, 'a', 'r7'));
    const got = await Promise.allSettled([mk(sp), mk(sp)]);
    expect(got.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect((got.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toMatchObject({ code: 'EEXIST' });
    expect(await bridges()).toEqual(['r7brk:vnetlink:network:r7']);
  });

  it("a dnsmasq the network starts through a wrapper script is recognised as its own (list: active), and a binary under a sticky group-writable directory is run", async () => {
    hasTool('dnsmasq');
    const dir = path.join(tmp, 'a', 'r7');
    const bin = path.join(tmp, 'sbin');
    fs.mkdirSync(bin);
    fs.chmodSync(bin, 0o1775);  // as /nix/store: sticky, group-writable
    const real = spawnSync('sh', ['-c', 'command -v dnsmasq || echo /usr/sbin/dnsmasq'], { encoding: 'utf8', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } }).stdout.trim();
    fs.writeFileSync(path.join(bin, 'dnsmasq'), `#!/bin/sh\nexec ${real} "$@"\n`, { mode: 0o755 });
    try {
      const n = await mk({ ...dspec('r7', 'r7brl', dir), dnsmasq: path.join(bin, 'dnsmasq') });
      const [info] = await h.network.list({ stateDir: dir });
      expect(info).toMatchObject({ name: 'r7', status: 'active', missing: [] });
      // Another process adopts the very daemon (same pid), not a second one.
      _simulateCrash(n);
      made.splice(0);
      const pid = n.dnsmasqPid;
      const adopted = await h.network.get('r7', { stateDir: dir });
      made.push(adopted);
      expect(adopted.dnsmasqPid).toBe(pid);
      expect(dnsmasqPids(ns)).toEqual([pid]);
    } finally {
      for (const n of made.splice(0)) await n.destroy().catch(() => {});
      fs.rmSync(bin, { recursive: true, force: true });
    }
  });

  it('two concurrent creates of one name from two directories: one is refused; a get() after a firewall flush keeps the forwards for restart(); a renamed bridge is still its own', async () => {
    const got = await Promise.allSettled([mk(spec('r7', 'r7brm', path.join(tmp, 'a', 'r7'))), mk(spec('r7', 'r7brn', path.join(tmp, 'b', 'r7')))]);
    expect(got.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect((got.find((r) => r.status === 'rejected') as PromiseRejectedResult).reason).toMatchObject({ code: 'EBUSY' });
    expect((await bridges()).length).toBe(1);
    for (const n of made.splice(0)) await n.destroy();
    expect(await bridges()).toEqual([]);

    const dir = path.join(tmp, 'a', 'r7');
    const n = await mk(spec('r7', 'r7bro', dir));
    await n.forwardPort({ proto: 'tcp', hostPort: 8090, guest: '192.168.151.7', guestPort: 80 });
    await n.forwardPort({ proto: 'udp', hostPort: 8091, guest: '192.168.151.8', guestPort: 53 });
    _simulateCrash(n);
    made.splice(0);
    // A firewall reload took the table; the bridge is renamed meanwhile.
    await nsExec(ns, 'nft', ['delete', 'table', 'ip', 'vnetlink_r7']);
    await nsExec(ns, 'ip', ['link', 'set', 'r7bro', 'name', 'r7brp']);
    const recorded = () => JSON.parse(fs.readFileSync(path.join(dir, 'network.json'), 'utf8')).forwards.map((f: any) => f.hostPort).sort();
    // The renamed bridge (its recorded index) is not taken for another network's.
    const back = await h.network.get('r7', { stateDir: dir });
    made.push(back);
    expect(back.forwards().map((f) => f.hostPort).sort()).toEqual([8090, 8091]);
    expect(recorded()).toEqual([8090, 8091]);
    await nsExec(ns, 'ip', ['link', 'set', 'r7brp', 'name', 'r7bro']);
    await back.restart();
    const t = await table();
    expect(t).toContain('dport 8090');
    expect(t).toContain('dport 8091');
    expect(recorded()).toEqual([8090, 8091]);
  });
});
