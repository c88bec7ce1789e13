// Regressions found in the third review (NAT network state and port forwards): each of these
// used to leave a forward stuck, a sysctl changed for good, or another namespace's state
// taken for this one's.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns } from '../lib/index.js';
import { procStart, stopPid } from '../lib/dnsmasq.js';
import { Namespaces, hasTool, inCI, nsExec, privilegedSkipReason, waitFor, inProcess } from './helpers.js';

const skip = privilegedSkipReason();


describe.skipIf(skip)('third review regressions', () => {
  const nss = new Namespaces();
  let A: Netns;
  let a: Handle;
  let tmp: string;

  beforeAll(async () => {
    hasTool('nft');
    A = await nss.create('rv3');
    a = await open({ netns: A });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-rv3-'));
  });
  afterAll(async () => {
    for (const n of ['stale', 'v6r']) await a?.network.get(n).then((x) => x.destroy(), () => {});
    await a?.close();
    await nss.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const ruleset = (table: string) => nsExec(A, 'nft', ['list', 'table', 'ip', table]);
  const localnet = async (br: string) => (await nsExec(A, 'cat', [`/proc/sys/net/ipv4/conf/${br}/route_localnet`])).trim();

  it('a forward whose conntrack cleanup fails is still removed: rules gone, state updated, port free again', async () => {
    const net = await a.network.create({ name: 'pfct', bridge: 'virbr31', address: '192.168.131.1/24', stp: false,
      dhcp: false, dns: false, stateDir: path.join(tmp, 'pfct') });
    try {
      const pf = await net.forwardPort({ proto: 'tcp', hostPort: 8090, guest: '192.168.131.10', guestPort: 80 });
      expect(await ruleset(net.table)).toContain('vnetlink:pf:tcp:*:8090');
      // The rules' removal succeeds; listing the connections to end them fails.
      const real = a._call.bind(a);
      (a as any)._call = (op: string, args: object, nativeOp?: string) =>
        nativeOp === 'ct.list' ? Promise.reject(new Error('injected ct failure')) : real(op, args, nativeOp);
      try {
        await expect(pf.remove()).rejects.toThrow('injected ct failure');
      } finally {
        delete (a as any)._call;
      }
      expect(await ruleset(net.table)).not.toContain('vnetlink:pf');
      expect(net.forwards()).toEqual([]);
      expect(JSON.parse(fs.readFileSync(path.join(net.stateDir, 'network.json'), 'utf8')).forwards).toEqual([]);
      await expect(pf.remove()).resolves.toBeUndefined();  // nothing left to do
      const again = await net.forwardPort({ proto: 'tcp', hostPort: 8090, guest: '192.168.131.11', guestPort: 80 });
      expect(await ruleset(net.table)).toContain('vnetlink:pf:tcp:*:8090');
      await again.remove();
      expect(await ruleset(net.table)).not.toContain('vnetlink:pf');
    } finally {
      await net.destroy();
    }
  });

  it('route_localnet goes back to what it was once the last localhost forward is removed (and after a failed add)', async () => {
    const net = await a.network.create({ name: 'pflo', bridge: 'virbr32', address: '192.168.132.1/24', stp: false,
      dhcp: false, dns: false, stateDir: path.join(tmp, 'pflo') });
    try {
      expect(await localnet('virbr32')).toBe('0');
      const one = await net.forwardPort({ proto: 'tcp', hostPort: 2201, guest: '192.168.132.10', guestPort: 22, localhost: true });
      const two = await net.forwardPort({ proto: 'udp', hostPort: 2202, guest: '192.168.132.10', localhost: true });
      const plain = await net.forwardPort({ proto: 'tcp', hostPort: 2203, guest: '192.168.132.10' });
      expect(await localnet('virbr32')).toBe('1');
      await one.remove();
      expect(await localnet('virbr32')).toBe('1');  // `two` still needs it
      await two.remove();
      expect(await localnet('virbr32')).toBe('0');
      await plain.remove();
      expect(await localnet('virbr32')).toBe('0');
      // A localhost forward whose rules cannot be added leaves it as it was.
      const real = a._call.bind(a);
      (a as any)._call = (op: string, args: object, nativeOp?: string) =>
        op === 'network.forwardPort' && nativeOp === 'nft.commit' ? Promise.reject(new Error('injected commit failure')) : real(op, args, nativeOp);
      try {
        await expect(net.forwardPort({ proto: 'tcp', hostPort: 2204, guest: '192.168.132.10', localhost: true })).rejects.toThrow('injected commit failure');
      } finally {
        delete (a as any)._call;
      }
      expect(await localnet('virbr32')).toBe('0');
      expect(net.forwards()).toEqual([]);
    } finally {
      await net.destroy();
    }
  });

  it('state written in another network namespace (same inode, other cookie) is not adopted, not listed, and is pruned', async () => {
    // A process makes the network in the default state directory and exits without a word.
    const made = await inProcess(A.name, `const n = await nl.network.create({ name: 'stale', bridge: 'virbr33', address: '192.168.133.1/24', stp: false, dhcp: false, dns: false });
      return { dir: n.stateDir };`);
    const dir: string = made.dir;
    const st = JSON.parse(fs.readFileSync(path.join(dir, 'network.json'), 'utf8'));
    // The cookie of this namespace is recorded (SO_NETNS_COOKIE: a decimal 64-bit number).
    expect(st.netnsCookie).toMatch(/^[0-9]+$/);
    expect((await a.network.list()).find((n) => n.name === 'stale')).toMatchObject({ status: 'active' });
    // Now as if that namespace had ended and this one had been given its inode: nothing of
    // the network runs here, and its state names another namespace's cookie.
    await nsExec(A, 'ip', ['link', 'del', 'virbr33']);
    await nsExec(A, 'nft', ['delete', 'table', 'ip', 'vnetlink_stale']);
    fs.writeFileSync(path.join(dir, 'network.json'), JSON.stringify({ ...st, netnsCookie: String(BigInt(st.netnsCookie) + 1000n) }));
    await expect(a.network.get('stale')).rejects.toMatchObject({ code: 'ENOENT', message: expect.stringMatching(/another network namespace/) });
    expect((await a.network.list()).map((n) => n.name)).not.toContain('stale');
    // list() pruned it: our files and the directory are gone.
    expect(fs.existsSync(dir)).toBe(false);
    // A network of that name is made afresh, and records this namespace's cookie.
    const net = await a.network.create({ name: 'stale', bridge: 'virbr33', address: '192.168.133.1/24', stp: false, dhcp: false, dns: false });
    try {
      expect(JSON.parse(fs.readFileSync(path.join(net.stateDir, 'network.json'), 'utf8')).netnsCookie).toBe(st.netnsCookie);
    } finally {
      await net.destroy();
    }
  });

  it('cleanup(name) without a stateDir leaves alone a network of that name running in this process from a caller\'s stateDir', async () => {
    const net = await a.network.create({ name: 'twin', bridge: 'virbr36', address: '192.168.136.1/24', stp: false, dhcp: false, dns: false, stateDir: path.join(tmp, 'twin') });
    try {
      await expect(a.network.cleanup('twin')).rejects.toMatchObject({ code: 'EBUSY', message: expect.stringMatching(/already runs in this namespace from the state directory/) });
      expect(JSON.parse(await nsExec(A, 'ip', ['-j', 'link', 'show', 'virbr36']))[0].ifalias).toBe('vnetlink:network:twin');
      expect(await ruleset('vnetlink_twin')).toContain('chain forward');
    } finally {
      await net.destroy();
    }
    // Once it is gone, cleanup has nothing to remove.
    expect(await a.network.cleanup('twin')).toBe(false);
  });

  it('list({ stateDir }) reports the network recorded in a caller\'s state directory', async () => {
    const dir = path.join(tmp, 'lsd');
    const net = await a.network.create({ name: 'lsd', bridge: 'virbr34', address: '192.168.134.1/24', stp: false, dhcp: false, dns: false, stateDir: dir });
    try {
      expect((await a.network.list()).map((n) => n.name)).not.toContain('lsd');
      const got = await a.network.list({ stateDir: dir });
      expect(got).toHaveLength(1);
      expect(got[0]).toMatchObject({ name: 'lsd', bridge: 'virbr34', stateDir: dir, status: 'active', owner: process.pid });
      expect(await a.network.list({ stateDir: path.join(tmp, 'nothing-here') })).toEqual([]);
      await expect(a.network.list({ stateDir: 'relative/dir' })).rejects.toThrow(/stateDir/);
    } finally {
      await net.destroy();
    }
  });

  it('restart() of a dual-stack network whose bridge and tables were removed rebuilds the ip6 table and the IPv6 gateway address', async () => {
    const net = await a.network.create({ name: 'v6r', bridge: 'virbr35', address: '192.168.135.1/24', address6: 'fd00:135::1/64', stp: false, dhcp: false, dns: false });
    try {
      const v6 = async () => (JSON.parse(await nsExec(A, 'ip', ['-j', '-6', 'addr', 'show', 'dev', 'virbr35']))[0]?.addr_info ?? [])
        .filter((x: any) => x.scope === 'global').map((x: any) => `${x.local}/${x.prefixlen}`);
      expect(await v6()).toEqual(['fd00:135::1/64']);
      await nsExec(A, 'ip', ['link', 'del', 'virbr35']);
      await nsExec(A, 'nft', ['delete', 'table', 'ip', 'vnetlink_v6r']);
      await nsExec(A, 'nft', ['delete', 'table', 'ip6', 'vnetlink_v6r']);
      await net.restart();
      expect(await v6()).toEqual(['fd00:135::1/64']);
      expect(await nsExec(A, 'nft', ['list', 'table', 'ip6', 'vnetlink_v6r'])).toMatch(/oifname "virbr35"/);
      expect((await a.network.list()).find((n) => n.name === 'v6r')).toMatchObject({ status: 'active', missing: [] });
    } finally {
      await net.destroy();
    }
  });
});

describe.skipIf(skip)('stopPid', () => {
  it('gives up with ETIMEDOUT on a process that outlives SIGKILL (blocked in the kernel) instead of waiting forever', async (ctx) => {
    // A task frozen by the cgroup v1 freezer stays (state D) after SIGKILL until it is thawed:
    // the same as one blocked in the kernel, on demand.
    const freezer = '/sys/fs/cgroup/freezer';
    if (!fs.existsSync(path.join(freezer, 'cgroup.procs'))) {
      if (inCI) throw new Error('the cgroup v1 freezer is missing');
      ctx.skip('needs the cgroup v1 freezer');
    }
    const cg = path.join(freezer, `vt-stoppid-${process.pid}`);
    fs.mkdirSync(cg);
    const child = spawn('sleep', ['300'], { stdio: 'ignore' });
    const exited = new Promise((r) => child.once('exit', r));
    try {
      fs.writeFileSync(path.join(cg, 'cgroup.procs'), String(child.pid));
      fs.writeFileSync(path.join(cg, 'freezer.state'), 'FROZEN');
      await waitFor(() => fs.readFileSync(path.join(cg, 'freezer.state'), 'utf8').trim() === 'FROZEN', 'the cgroup to freeze', 20_000);
      const e = await stopPid(child.pid!, procStart(child.pid!)!, 100, 1000).catch((x) => x);
      expect(e).toMatchObject({ code: 'ETIMEDOUT', message: expect.stringMatching(new RegExp(`pid ${child.pid} is still there 1000 ms after SIGKILL \\(state D`)) });
    } finally {
      fs.writeFileSync(path.join(cg, 'freezer.state'), 'THAWED');
      child.kill('SIGKILL');
      await exited;
      fs.rmdirSync(cg);
    }
  });
});
