// Regressions from the seventh review (dnsmasq pids and the network state): a pid that changed
// hands is never signalled, a process is our dnsmasq only if it runs a dnsmasq as us, a state
// file's dnsmasq binary is checked before anything runs it, and asking whether a network is
// owned never takes its lock from under a create or get in another process.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns } from '../lib/index.js';
import { Dnsmasq, findDnsmasq, procStart, stopPid, type DnsmasqConfig } from '../lib/dnsmasq.js';
import { readState } from '../lib/network-state.js';
import { Namespaces, hasTool, nsExec, privilegedSkipReason, waitFor, inProcess } from './helpers.js';

const skip = privilegedSkipReason();
const root = path.resolve(import.meta.dirname, '..');
const dist = JSON.stringify(path.join(root, 'dist', 'index.js'));


/** A running child and whether (and by what) it was ended. */
interface Watched { child: ChildProcess; pid: number; start: string; ended: () => string | null }
function watch(child: ChildProcess): Watched {
  let how: string | null = null;
  child.once('exit', (code, sig) => { how = sig ?? `exit ${code}`; });
  return { child, pid: child.pid!, start: '', ended: () => how };
}
async function kill(w: Watched | undefined): Promise<void> {
  if (!w || w.ended() !== null) return;
  const gone = new Promise((r) => w.child.once('exit', r));
  try { w.child.kill('SIGKILL'); } catch { /* gone */ }
  await gone;
}

/** Starts `argv` in NS (ip netns exec keeps the pid), running once /proc shows `exe`. */
async function stranger(ns: Netns, argv: string[], exe: string): Promise<Watched> {
  const w = watch(spawn('ip', ['netns', 'exec', ns.name, ...argv], { stdio: 'ignore' }));
  await waitFor(() => { try { return fs.readlinkSync(`/proc/${w.pid}/exe`) === exe; } catch { return false; } }, `${argv[0]} to run`, 20_000);
  w.start = procStart(w.pid)!;
  return w;
}

/**
 * A `sleep` in NS that got the pid `pid` (as a process starting after a daemon died may): the
 * next pid is set with ns_last_pid and a process started, again until no other fork on the
 * machine came in between.
 */
async function sleepWithPid(ns: Netns, pid: number): Promise<Watched> {
  for (let i = 0; i < 1000; i++) {
    fs.writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
    const w = watch(spawn('ip', ['netns', 'exec', ns.name, 'sleep', '300'], { stdio: 'ignore' }));
    if (w.pid === pid) {
      await waitFor(() => { try { return fs.readlinkSync(`/proc/${pid}/exe`).endsWith('/sleep'); } catch { return false; } }, 'sleep to run', 20_000);
      w.start = procStart(pid)!;
      return w;
    }
    await kill(w);
  }
  throw new Error(`could not start a process with pid ${pid}`);
}

const alive = (w: Watched) => procStart(w.pid) === w.start && w.ended() === null;

describe.skipIf(skip)('seventh review: dnsmasq pids, identity, binary, lock probe', () => {
  const nss = new Namespaces();
  let A: Netns, B: Netns;
  let a: Handle, b: Handle;
  let tmp: string;
  const binary = findDnsmasq();
  const others: Array<Watched | undefined> = [];

  beforeAll(async () => {
    hasTool('dnsmasq');
    hasTool('setpriv');
    hasTool('strace');
    A = await nss.create('rv7');
    a = await open({ netns: A });
    // The lock test's network lives apart, so nothing another test left can stand in its way.
    B = await nss.create('rv7l');
    b = await open({ netns: B });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-rv7-'));
    await a.link.add({ kind: 'bridge', name: 'rv7br0' });
  });
  afterAll(async () => {
    for (const w of others) await kill(w);
    for (const n of ['rv7bin', 'rv7c']) await a?.network.cleanup(n, { stateDir: path.join(tmp, n) }).catch(() => {});
    await b?.network.cleanup('rv7lk', { stateDir: path.join(tmp, 'rv7lk') }).catch(() => {});
    await a?.close();
    await b?.close();
    await nss.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const cfg = (dir: string): DnsmasqConfig => ({ iface: 'rv7br0', netmask: '255.255.255.0', dir,
    dhcp: { start: '192.168.122.2', end: '192.168.122.254', leaseMax: 253, ping: false, hosts: [] },
    dns: { enable: false, forwarders: [], localOnly: false, hosts: [] } });

  it('stopPid signals no process whose start time is not the one it was given', async () => {
    const w = await stranger(A, ['sleep', '300'], fs.realpathSync('/usr/bin/sleep'));
    others.push(w);
    await stopPid(w.pid, String(Number(w.start) + 1), 100, 1000);
    expect(alive(w)).toBe(true);
    // The same call with its real start time ends it: the check does not stop everything.
    await stopPid(w.pid, w.start, 100, 10_000);
    await waitFor(() => w.ended() !== null, 'the sleep to end');
    expect(w.ended()).toBe('SIGTERM');
  });

  it('after a failed watcher restart, stop() leaves alone a process that got the dead daemon\'s pid', async () => {
    const dir = fs.mkdtempSync(path.join(tmp, 'wd-'));
    const d = new Dnsmasq(a, binary!, cfg(dir), 100);
    const pid = await d.start();
    nss.track(pid);
    expect(fs.readlinkSync(`/proc/${pid}/exe`)).toBe(fs.realpathSync(binary!));
    // Every restart fails from now on (its directory is gone), then the daemon dies.
    fs.rmSync(dir, { recursive: true });
    process.kill(pid, 'SIGKILL');
    await waitFor(() => !fs.existsSync(`/proc/${pid}`), 'the daemon to be reaped', 20_000);
    await waitFor(() => d.lastError, 'a restart to fail', 20_000);
    expect(d.lastError!.message).toMatch(/ENOENT/);
    const w = await sleepWithPid(A, pid);
    others.push(w);
    await d.stop();
    expect(alive(w)).toBe(true);
    expect(d.pid).toBeUndefined();
  });

  it('a failed start stops no stranger whose argv names our conf: not one that is no dnsmasq, not one of another uid', async () => {
    // A "dnsmasq" that exits at once with an error (a shell reading its option as a bad flag),
    // so start() fails and looks for strays of this conf in /proc.
    const bin = fs.mkdtempSync(path.join(tmp, 'bin-'));
    fs.chmodSync(bin, 0o755);
    const fake = path.join(bin, 'dnsmasq');
    fs.copyFileSync(fs.realpathSync('/bin/sh'), fake);
    fs.chmodSync(fake, 0o755);
    const dir = fs.mkdtempSync(path.join(tmp, 'sd-'));
    const conf = path.join(dir, 'dnsmasq.conf');
    const sh = fs.realpathSync('/bin/sh');
    // Root, argv naming our conf, but a shell.
    const notDnsmasq = await stranger(A, ['sh', '-c', 'sleep 300; true', 'sh', `--conf-file=${conf}`], sh);
    others.push(notDnsmasq);
    // The very binary we run, argv naming our conf, but as uid 65534.
    const otherUid = await stranger(A, ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', fake, '-c', 'sleep 300; true', 'x', `--conf-file=${conf}`], fake);
    others.push(otherUid);
    const d = new Dnsmasq(a, fake, cfg(dir), 100);
    await expect(d.start()).rejects.toMatchObject({ code: 'EIO', message: expect.stringMatching(/dnsmasq did not start/) });
    expect(alive(notDnsmasq)).toBe(true);
    expect(alive(otherUid)).toBe(true);
    expect(fs.readFileSync(`/proc/${otherUid.pid}/status`, 'utf8')).toMatch(/^Uid:\s+65534\s/m);
  });

  it('cleanup leaves alone a process in the pid file that only has our conf in its argv', async () => {
    const dir = path.join(tmp, 'rv7c');
    await inProcess(A.name, `await nl.network.create({ name: 'rv7c', bridge: 'rv7brc', address: '192.168.122.1/24', stp: false, dhcp: false, dns: false, stateDir: ${JSON.stringify(dir)} }); return 1;`);
    const w = await stranger(A, ['sh', '-c', 'sleep 300; true', 'sh', `--conf-file=${path.join(dir, 'dnsmasq.conf')}`], fs.realpathSync('/bin/sh'));
    others.push(w);
    fs.writeFileSync(path.join(dir, 'dnsmasq.pid'), `${w.pid}\n`);
    expect(await a.network.cleanup('rv7c', { stateDir: dir })).toBe(true);
    expect(alive(w)).toBe(true);
    // The network's own parts did go.
    expect(await nsExec(A, 'ip', ['-j', 'link', 'show', 'type', 'bridge'])).not.toContain('rv7brc');
  });

  it('readState refuses a recorded dnsmasq binary that is relative, not normalized, writable by others or in a directory others can write', () => {
    const gw = path.join(fs.mkdtempSync(path.join(tmp, 'gw-')), 'dnsmasq');
    fs.copyFileSync(fs.realpathSync(binary!), gw);
    fs.chmodSync(gw, 0o775);
    // A directory everyone may write and that is not sticky: anyone could swap the file. (A
    // sticky one such as /tmp or /nix/store is fine: only an entry's owner may rename it.)
    const ww = fs.mkdtempSync(path.join(tmp, 'ww-'));
    fs.chmodSync(ww, 0o777);
    const inTmp = path.join(ww, 'dnsmasq');
    fs.copyFileSync(fs.realpathSync(binary!), inTmp);
    fs.chmodSync(inTmp, 0o755);
    const bad: Array<[unknown, RegExp]> = [
      ['dnsmasq', /not an absolute, normalized path/],
      ['/usr/sbin/../sbin/dnsmasq', /not an absolute, normalized path/],
      [42, /is not a path/],
      ['/nonexistent/dnsmasq', /does not exist/],
      ['/usr/sbin', /not an executable regular file/],
      [gw, /writable by group or others/],
      [inTmp, /which is not root's or is writable by group or others/],
    ];
    for (const [b, why] of bad) {
      const dir = fs.mkdtempSync(path.join(tmp, 'st-'));
      fs.writeFileSync(path.join(dir, 'network.json'), JSON.stringify({ name: 'x', bridge: 'b', table: 't', dnsmasq: { pid: 1, start: '1', conf: '/c', binary: b } }));
      let e: any;
      try { readState(dir, 'network.get'); } catch (x) { e = x; }
      expect(e, String(b)).toBeInstanceOf(RangeError);
      expect(e.message).toMatch(/^network\.get: dnsmasq\.binary: .*network\.json records a dnsmasq binary that will not be run: /);
      expect(e.message).toMatch(why);
      // A reader that only looks gets the state without it: nothing can run it later.
      expect(readState(dir)!.dnsmasq).toEqual({ pid: 1, start: '1', conf: '/c' });
    }
    const ok = fs.mkdtempSync(path.join(tmp, 'st-'));
    fs.writeFileSync(path.join(ok, 'network.json'), JSON.stringify({ name: 'x', bridge: 'b', table: 't', dnsmasq: { pid: 1, start: '1', conf: '/c', binary } }));
    expect(readState(ok, 'network.get')!.dnsmasq!.binary).toBe(binary);
  });

  it('get refuses a network whose state file names another dnsmasq binary, which restart would run as root', async () => {
    const dir = path.join(tmp, 'rv7bin');
    await inProcess(A.name, `await nl.network.create({ name: 'rv7bin', bridge: 'rv7brb', address: '192.168.122.1/24', stp: false, dhcp: { start: '192.168.122.10', end: '192.168.122.20' }, stateDir: ${JSON.stringify(dir)} }); return 1;`);
    const file = path.join(dir, 'network.json');
    const good = fs.readFileSync(file, 'utf8');
    expect(JSON.parse(good).dnsmasq.binary).toBe(binary);
    const ran = path.join(tmp, 'evil-ran');
    const wwEvil = fs.mkdtempSync(path.join(tmp, 'ww-'));
    fs.chmodSync(wwEvil, 0o777);  // not sticky: anyone could have put or swapped it
    const evil = path.join(wwEvil, 'evil-dnsmasq');
    fs.writeFileSync(evil, `#!/bin/sh\ntouch ${ran}\nexec ${binary} "$@"\n`, { mode: 0o755 });
    fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(good), dnsmasq: { ...JSON.parse(good).dnsmasq, binary: evil } }));
    await expect(a.network.get('rv7bin', { stateDir: dir })).rejects.toThrow(/^network\.get: dnsmasq\.binary: .*evil-dnsmasq.* which is not root's or is writable by group or others/);
    expect(fs.existsSync(ran)).toBe(false);
    // Nothing left behind: no process owns it now.
    expect((await a.network.list({ stateDir: dir }))[0].owner).toBeUndefined();
    // With the binary it was made with, it is adopted as before.
    fs.writeFileSync(file, good);
    const net = await a.network.get('rv7bin', { stateDir: dir });
    await net.restart();
    await net.destroy();
    expect(fs.existsSync(ran)).toBe(false);
  });

  it('findDnsmasq skips relative PATH entries', () => {
    const bin = fs.mkdtempSync(path.join(tmp, 'rel-'));
    fs.writeFileSync(path.join(bin, 'dnsmasq'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    const rel = path.relative(process.cwd(), bin);
    expect(path.isAbsolute(rel)).toBe(false);
    const old = process.env.PATH;
    try {
      process.env.PATH = `${rel}::.:${old}`;
      const found = findDnsmasq();
      expect(found).toBeDefined();
      expect(path.isAbsolute(found!)).toBe(true);
      expect(fs.realpathSync(found!)).not.toBe(fs.realpathSync(path.join(bin, 'dnsmasq')));
      process.env.PATH = `${bin}:${old}`;
      expect(findDnsmasq()).toBe(path.join(bin, 'dnsmasq'));
    } finally {
      process.env.PATH = old;
    }
  });

  it('list() sees a lock held by another process without taking it: a get in the meantime is never EBUSY', async () => {
    const dir = path.join(tmp, 'rv7lk');
    await inProcess(B.name, `await nl.network.create({ name: 'rv7lk', bridge: 'rv7brl', address: '192.168.122.1/24', stp: false, dhcp: false, dns: false, stateDir: ${JSON.stringify(dir)} }); return 1;`);
    const lock = path.join(dir, 'network.lock');
    const ino = fs.statSync(lock).ino;
    const holders = () => fs.readFileSync('/proc/locks', 'utf8').split('\n').map((l) => l.trim().split(/\s+/))
      .filter((f) => f[1] === 'FLOCK' && f[5]?.endsWith(`:${ino}`)).map((f) => Number(f[4]));
    expect(holders()).toEqual([]);
    // An flock held by another process counts as an owner.
    const fl = watch(spawn('flock', ['-n', '-F', lock, 'sleep', '300'], { stdio: 'ignore' }));
    others.push(fl);
    await waitFor(() => holders().length > 0, 'flock to take the lock', 20_000);
    expect((await b.network.list({ stateDir: dir }))[0]).toMatchObject({ status: 'active', owner: expect.any(Number) });
    await kill(fl);
    expect((await b.network.list({ stateDir: dir }))[0].owner).toBeUndefined();

    // A prober listing in a loop, whose every flock(2) strace holds for ten minutes: if list()
    // took the lock to test it, the prober would sit holding it, and the get below would fail.
    const code = `import { open } from ${dist};
const nl = await open({ netns: process.env.NS });
for (let i = 0; ; i++) {
  const [n] = await nl.network.list({ stateDir: process.env.DIR });
  console.log(JSON.stringify({ i, pid: process.pid, owner: n?.owner ?? null }));
  await new Promise((r) => setTimeout(r, 20));
}`;
    const pr = watch(spawn('strace', ['-f', '-qq', '-o', '/dev/null', '--seccomp-bpf', '-e', 'trace=flock', '-e', 'inject=flock:delay_exit=600000000',
      process.execPath, '--input-type=module', '-e', code], { env: { ...process.env, NS: B.name, DIR: dir }, stdio: ['ignore', 'pipe', 'ignore'] }));
    others.push(pr);
    const lines: any[] = [];
    let buf = '';
    pr.child.stdout!.on('data', (b) => {
      buf += b;
      for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) { try { lines.push(JSON.parse(buf.slice(0, i))); } catch { /* not ours */ } }
    });
    try {
      // Either it listed once, or it sits in flock holding the lock (what the old probe did).
      await waitFor(() => lines.length > 0 || holders().length > 0, 'the prober to list or to hold the lock', 40_000);
      const net = await b.network.get('rv7lk', { stateDir: dir });
      try {
        await waitFor(() => lines.some((l) => l.owner === process.pid), 'the prober to see this process own the network', 40_000);
        expect(holders()).toEqual([process.pid]);
      } finally {
        await net.destroy();
      }
    } finally {
      // The prober first (a traced process takes SIGKILL too); strace then exits by itself.
      let kids: string[] = [];
      try { kids = fs.readFileSync(`/proc/${pr.pid}/task/${pr.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean); } catch { /* strace gone */ }
      for (const k of kids) try { process.kill(Number(k), 'SIGKILL'); } catch { /* gone */ }
      await kill(pr);
    }
  });
});
