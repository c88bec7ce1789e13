// Regressions from the fifth review: durable network state pruned without its lock, ports
// re-attached on the word of the state file, shaping removed from a port another network
// took, and link.set's two-step master+up left half done.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns } from '../lib/index.js';
import { _onPrune, _simulateCrash } from '../lib/network.js';
import { Namespaces, hasTool, ipLinks, nsExec, privilegedSkipReason, waitFor } from './helpers.js';

const skip = privilegedSkipReason();

describe.skipIf(skip)('fifth review: durable state', () => {
  const nss = new Namespaces();
  let A: Netns;
  let a: Handle;
  let tmp: string;

  beforeAll(async () => {
    hasTool('nft');
    A = await nss.create('rv5');
    a = await open({ netns: A });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-rv5-'));
  });
  afterAll(async () => {
    _onPrune(undefined);
    for (const n of ['prn']) await a?.network.get(n).then((x) => x.destroy(), () => {});
    await a?.close();
    await nss.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('list() prunes a dead namespace\'s state under its lock: a create of that name meanwhile keeps its files', async () => {
    const spec = { name: 'prn', bridge: 'virbr51', address: '192.168.151.1/24', stp: false, dhcp: false, dns: false } as const;
    const old = await a.network.create(spec);
    const dir = old.stateDir;
    const st = JSON.parse(fs.readFileSync(path.join(dir, 'network.json'), 'utf8'));
    // As if its namespace had ended and this one had been given its inode.
    _simulateCrash(old);
    await nsExec(A, 'ip', ['link', 'del', 'virbr51']);
    await nsExec(A, 'nft', ['delete', 'table', 'ip', 'vnetlink_prn']);
    fs.writeFileSync(path.join(dir, 'network.json'), JSON.stringify({ ...st, netnsCookie: String(BigInt(st.netnsCookie) + 1000n) }));
    // While list() is pruning, a create of the same name comes in.
    let made: unknown;
    _onPrune(async (d) => { if (d === dir) made = await a.network.create(spec).catch((e) => e); });
    try {
      expect((await a.network.list()).map((n) => n.name)).not.toContain('prn');
    } finally {
      _onPrune(undefined);
    }
    expect(made).toBeDefined();
    // Either the create waited its turn (EBUSY: the pruner held the lock) and nothing of it
    // exists, or it won and its state is whole; never a running network without its files.
    if (made instanceof Error) {
      expect(made).toMatchObject({ code: 'EBUSY' });
      expect(fs.existsSync(dir)).toBe(false);
      expect(await ipLinks(A)).not.toContainEqual(expect.objectContaining({ ifname: 'virbr51' }));
    } else {
      expect(fs.existsSync(path.join(dir, 'network.json'))).toBe(true);
      expect(fs.existsSync(path.join(dir, 'network.lock'))).toBe(true);
      await (made as any).destroy();
    }
    // Afterwards the name is free and the network is made afresh, state and all.
    const net = await a.network.create(spec);
    try {
      expect(JSON.parse(fs.readFileSync(path.join(net.stateDir, 'network.json'), 'utf8')).netnsCookie).toBe(st.netnsCookie);
      expect((await a.network.list()).find((n) => n.name === 'prn')).toMatchObject({ status: 'active' });
    } finally {
      await net.destroy();
    }
  });
});

describe.skipIf(skip)('fifth review: ports and masters', () => {
  const nss = new Namespaces();
  let A: Netns;
  let a: Handle;
  let tmp: string;
  const BW1 = { inbound: { average: 1250 } };
  const BW2 = { inbound: { average: 2500 } };

  beforeAll(async () => {
    hasTool('tc');
    A = await nss.create('rv5p');
    a = await open({ netns: A });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-rv5p-'));
  });
  afterAll(async () => {
    await a?.close();
    await nss.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const master = async (dev: string) => (await ipLinks(A, dev))[0].master as string | undefined;
  const htbRate = async (dev: string) => {
    const out = await nsExec(A, 'tc', ['class', 'show', 'dev', dev]);
    return /rate (\S+)/.exec(out)?.[1];
  };
  const netSpec = (name: string, br: string, third: number) =>
    ({ name, bridge: br, address: `192.168.${third}.1/24`, stp: false, dhcp: false, dns: false, stateDir: path.join(tmp, name) });

  it('detach and destroy leave alone a shaped port that another network took since', async () => {
    const n1 = await a.network.create(netSpec('mv1', 'virbr52', 152));
    const n2 = await a.network.create(netSpec('mv2', 'virbr53', 153));
    try {
      await (await a.tap.create({ name: 'rv5t2', persist: true, up: true })).close();
      await n1.attach('rv5t2', { bandwidth: BW1 });
      expect(await htbRate('rv5t2')).toBe('10Mbit');
      // The guest's port moves to the other network, which shapes it its own way.
      await n2.attach('rv5t2', { bandwidth: BW2 });
      expect(await master('rv5t2')).toBe('virbr53');
      expect(await htbRate('rv5t2')).toBe('20Mbit');
      await n1.detach('rv5t2');
      expect(await master('rv5t2')).toBe('virbr53');
      expect(await htbRate('rv5t2')).toBe('20Mbit');
      expect(n1.bandwidths()).toEqual([]);
      // And once more through destroy (the first network recorded the port again).
      await n2.detach('rv5t2');
      await n1.attach('rv5t2', { bandwidth: BW1 });
      await n2.attach('rv5t2', { bandwidth: BW2 });
      await n1.destroy();
      expect(await master('rv5t2')).toBe('virbr53');
      expect(await htbRate('rv5t2')).toBe('20Mbit');
      expect(n2.bandwidths()).toEqual([{ port: 'rv5t2', bandwidth: BW2 }]);
    } finally {
      await n1.destroy().catch(() => {});
      await n2.destroy();
      await a.link.del('rv5t2').catch(() => {});
    }
  });

  it('a failed attach puts the port back on the master it had', async () => {
    const n1 = await a.network.create(netSpec('mv3', 'virbr54', 154));
    try {
      await a.link.add({ kind: 'bridge', name: 'rv5br' });
      await (await a.tap.create({ name: 'rv5t3', persist: true })).close();
      await a.link.set('rv5t3', { master: 'rv5br' });
      const real = a.tc.shape;
      a.tc.shape = () => Promise.reject(new Error('injected shape failure'));
      try {
        await expect(n1.attach('rv5t3', { bandwidth: BW1 })).rejects.toThrow('injected shape failure');
      } finally {
        a.tc.shape = real;
      }
      expect(await master('rv5t3')).toBe('rv5br');
      // It was down, and stays so.
      expect((await ipLinks(A, 'rv5t3'))[0].flags).not.toContain('UP');
      expect(n1.bandwidths()).toEqual([]);
    } finally {
      await n1.destroy();
      await a.link.del('rv5t3').catch(() => {});
      await a.link.del('rv5br').catch(() => {});
    }
  });

  it('link.set({ master, up }): when coming up fails, the port goes back to its old master', async () => {
    await a.link.add({ kind: 'bridge', name: 'rv5b1' });
    await a.link.add({ kind: 'bridge', name: 'rv5b2' });
    await a.link.add({ kind: 'veth', name: 'rv5v0', peer: { name: 'rv5v1' } });
    try {
      const real = a._call.bind(a);
      const failUp = (op: string, args: any, nativeOp?: string) =>
        op === 'link.set' && args.up === true && args.master === undefined ? Promise.reject(Object.assign(new Error('injected up failure'), { code: 'EIO' })) : real(op, args, nativeOp);
      // From no master.
      (a as any)._call = failUp;
      try {
        await expect(a.link.set('rv5v0', { master: 'rv5b1', up: true })).rejects.toThrow('injected up failure');
      } finally {
        delete (a as any)._call;
      }
      expect(await master('rv5v0')).toBeUndefined();
      // From another master.
      await a.link.set('rv5v0', { master: 'rv5b2' });
      (a as any)._call = failUp;
      try {
        await expect(a.link.set('rv5v0', { master: 'rv5b1', up: true, mtu: 1400 })).rejects.toThrow('injected up failure');
      } finally {
        delete (a as any)._call;
      }
      expect(await master('rv5v0')).toBe('rv5b2');
      expect((await ipLinks(A, 'rv5v0'))[0].mtu).toBe(1500);
      // Without a failure both happen.
      await a.link.set('rv5v0', { master: 'rv5b1', up: true });
      const l = (await ipLinks(A, 'rv5v0'))[0];
      expect(l.master).toBe('rv5b1');
      expect(l.flags).toContain('UP');
    } finally {
      for (const d of ['rv5v0', 'rv5b1', 'rv5b2']) await a.link.del(d).catch(() => {});
    }
  });
});

describe.skipIf(skip)('fifth review: re-attaching recorded ports', () => {
  const nss = new Namespaces();
  let A: Netns;
  let a: Handle;
  let tmp: string;
  const BW = { inbound: { average: 1250 } };

  beforeAll(async () => {
    hasTool('tc');
    A = await nss.create('rv5r');
    a = await open({ netns: A });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-rv5r-'));
  });
  afterAll(async () => {
    await a?.close();
    await nss.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  const link = async (dev: string) => (await ipLinks(A, dev))[0];
  const shaped = async (dev: string) => /htb/.test(await nsExec(A, 'tc', ['qdisc', 'show', 'dev', dev]));

  it('replace and restart re-attach only the ports whose name, ifindex and kind match the record, one at a time', async () => {
    const spec = { name: 'ra', bridge: 'virbr55', address: '192.168.155.1/24', stp: false, dhcp: false, dns: false, stateDir: path.join(tmp, 'ra') };
    let net = await a.network.create(spec);
    try {
      for (const t of ['rv5a', 'rv5b', 'rv5c']) {
        await (await a.tap.create({ name: t, persist: true, up: true })).close();
        await net.attach(t, { bandwidth: BW });
      }
      const file = path.join(net.stateDir, 'network.json');
      const st = JSON.parse(fs.readFileSync(file, 'utf8'));
      // Each port is recorded with what it was: its index and kind, and a tap's persistence and owner.
      const ix = (await link('rv5a')).ifindex;
      expect(st.ports.find((p: any) => p.name === 'rv5a')).toMatchObject({ name: 'rv5a', bandwidth: BW, index: ix, kind: 'tun', tun: { mode: 'tap', persist: true } });
      // The owner dies. Meanwhile rv5b is deleted and made again (another ifindex), and the
      // state gains entries naming links that never were guest ports (say eth0): one with a
      // made-up identity, one in the older format that recorded only a name.
      _simulateCrash(net);
      await a.link.del('rv5b');
      await (await a.tap.create({ name: 'rv5b', persist: true })).close();
      await a.link.add({ kind: 'veth', name: 'rv5e0', peer: { name: 'rv5e1' } });
      const e0 = (await link('rv5e0')).ifindex;
      st.ports.push({ name: 'rv5e0', bandwidth: BW, index: e0 + 1000, kind: 'veth' }, { name: 'rv5e1', bandwidth: BW });
      fs.writeFileSync(file, JSON.stringify(st));
      // And shaping rv5c fails: that port alone is reported, the others go on.
      const real = a.tc.shape.bind(a.tc);
      a.tc.shape = (dev: string, o: any) => (dev === 'rv5c' ? Promise.reject(new Error('injected shape failure')) : real(dev, o));
      try {
        net = await a.network.create(spec, { replace: true });
      } finally {
        a.tc.shape = real;
      }
      expect((await link('rv5a')).master).toBe('virbr55');
      expect(await shaped('rv5a')).toBe(true);
      for (const d of ['rv5b', 'rv5e0', 'rv5e1']) expect((await link(d)).master, d).toBeUndefined();
      expect(await shaped('rv5e0')).toBe(false);
      expect((await link('rv5c')).master).toBeUndefined();  // the failed attach was undone
      const problems = Object.fromEntries(net.portProblems.map((p) => [p.port, p]));
      expect(Object.keys(problems).sort()).toEqual(['rv5b', 'rv5c', 'rv5e0', 'rv5e1']);
      expect(problems.rv5b.reason).toBe('replaced');
      expect(problems.rv5e0.reason).toBe('replaced');
      expect(problems.rv5e1.reason).toBe('unverified');
      expect(problems.rv5c).toMatchObject({ reason: 'failed', error: expect.objectContaining({ message: 'injected shape failure' }) });
      // What could not be verified is forgotten; the failed one (still the port we recorded) is kept.
      expect(net.bandwidths().map((b) => b.port).sort()).toEqual(['rv5a', 'rv5c']);
      expect(JSON.parse(fs.readFileSync(file, 'utf8')).ports.map((p: any) => p.name).sort()).toEqual(['rv5a', 'rv5c']);

      // restart (the bridge gone underneath) takes the recorded ports back, and reports per port.
      await nsExec(A, 'ip', ['link', 'del', 'virbr55']);
      const again = await net.restart();
      expect(again).toEqual([]);
      expect(net.portProblems).toEqual([]);
      for (const d of ['rv5a', 'rv5c']) {
        expect((await link(d)).master, d).toBe('virbr55');
        expect(await shaped(d), d).toBe(true);
      }
      // A recorded tap replaced behind the network's back is not taken by restart either.
      await nsExec(A, 'ip', ['link', 'del', 'virbr55']);
      await a.link.del('rv5c');
      await (await a.tap.create({ name: 'rv5c', persist: true })).close();
      const third = await net.restart();
      expect(third.map((p) => [p.port, p.reason])).toEqual([['rv5c', 'replaced']]);
      expect((await link('rv5c')).master).toBeUndefined();
      expect((await link('rv5a')).master).toBe('virbr55');
    } finally {
      await net.destroy().catch(() => {});
      for (const d of ['rv5a', 'rv5b', 'rv5c', 'rv5e0']) await a.link.del(d).catch(() => {});
    }
  });
});

describe.skipIf(skip)('fifth review: the state of namespaces that are gone', () => {
  const nss = new Namespaces();
  let A: Netns;
  let a: Handle;
  const fake: string[] = [];

  beforeAll(async () => {
    A = await nss.create('rv5n');
    a = await open({ netns: A });
  });
  afterAll(async () => {
    for (const d of fake) fs.rmSync(d, { recursive: true, force: true });
    await a?.close();
    await nss.cleanup();
  });

  it('list() prunes the /run/vnetlink/netns-* directories of namespaces that no longer exist, only ours, never a network whose owner holds its lock', async () => {
    // Two namespaces, each with a network in its default state directory.
    const B = await nss.create('rv5nb');
    const C = await nss.create('rv5nc');
    const b = await open({ netns: B });
    const c = await open({ netns: C });
    const nb = await b.network.create({ name: 'gone', bridge: 'virbr56', address: '192.168.156.1/24', stp: false, dhcp: false, dns: false });
    const nc = await c.network.create({ name: 'held', bridge: 'virbr57', address: '192.168.157.1/24', stp: false, dhcp: false, dns: false });
    expect(path.basename(path.dirname(nb.stateDir))).toMatch(/^netns-[0-9]+-[0-9]+$/);
    // B's owner goes (its lock with it); C's network keeps its owner, which holds the lock.
    _simulateCrash(nb);
    await b.close();
    await c.close();
    // As their namespaces had ended: a freed namespace inode is soon given to a new one (other
    // tests make namespaces all the time), so the directories move to inodes no namespace has
    // (proc inode numbers are handed out from 0xf0000000 up); the lock held on C's file moves with it.
    const dev = path.basename(path.dirname(nb.stateDir)).split('-')[1];
    const bDir = path.join('/run/vnetlink', `netns-${dev}-4294967291`), cDir = path.join('/run/vnetlink', `netns-${dev}-4294967292`);
    fake.push(bDir, cDir);
    fs.renameSync(path.dirname(nb.stateDir), bDir);
    fs.renameSync(path.dirname(nc.stateDir), cDir);
    // Our layout in a directory of a namespace that never was: only what is ours goes from it.
    const strange = path.join('/run/vnetlink', `netns-${dev}-4294967290`);
    fake.push(strange);
    fs.mkdirSync(path.join(strange, 'notours'), { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(strange, 'notours', 'network.json'), JSON.stringify({ name: 'notours', bridge: 'x', table: 'y' }));
    fs.writeFileSync(path.join(strange, 'keep.txt'), 'not vnetlink\'s\n');
    await a.network.list();
    expect(fs.existsSync(bDir)).toBe(false);
    // C's network is still owned (its lock is held): nothing of it is touched.
    expect(fs.existsSync(path.join(cDir, 'held', 'network.json'))).toBe(true);
    // A directory without our marker, and a file that is not ours, stay.
    expect(fs.readFileSync(path.join(strange, 'keep.txt'), 'utf8')).toBe('not vnetlink\'s\n');
    expect(fs.existsSync(path.join(strange, 'notours', 'network.json'))).toBe(true);
    // Once C's owner is gone too, its directory goes at the next list().
    _simulateCrash(nc);
    await a.network.list();
    expect(fs.existsSync(cDir)).toBe(false);
    expect(fs.existsSync(path.join(strange, 'keep.txt'))).toBe(true);
  });
});

describe.skipIf(skip)('fifth review: fd identity across environments', () => {
  const nss = new Namespaces();
  let N: Netns;
  let nl: Handle;
  const held: number[] = [];

  beforeAll(async () => {
    N = await nss.create('rv5f');
    nl = await open({ netns: N });
    for (const t of ['kc0', 'kd0']) await (await nl.tap.create({ name: t, persist: true, multiQueue: true })).close();
  });
  afterAll(async () => {
    for (const f of held.splice(0)) fs.closeSync(f);
    await nl?.close();
    await nss.cleanup();
  });

  const queues = async (dev: string) => (await ipLinks(N, dev))[0].linkinfo.info_data.numqueues ?? 0;
  /** Opens a queue of `tap` whose fd is number `n` (every lower free number is filled first). */
  const queueAt = async (tap: string, n: number) => {
    for (let attempt = 0; attempt < 10; attempt++) {
      for (let i = 0; i < 4096; i++) {
        const f = fs.openSync('/dev/null', 'r');
        if (f === n) { fs.closeSync(f); break; }
        held.push(f);
        if (f > n) break;
      }
      const t = await nl.tap.create({ name: tap, multiQueue: true });
      if (t.fds[0] === n) return t;
      await t.close();
    }
    throw new Error(`no attempt gave a queue of ${tap} fd ${n}`);
  };

  it('a worker\'s teardown leaves alone another environment\'s queue of the same tap that got the number of an fd the worker closed', async () => {
    const dist = new URL('../dist/index.js', import.meta.url).href;
    const { Worker } = await import('node:worker_threads');
    const w = new Worker(`
      const { parentPort, workerData } = require('node:worker_threads');
      const fs = require('node:fs');
      (async () => {
        const { open } = await import(workerData.dist);
        const nl = await open({ netns: workerData.ns });
        const tap = await nl.tap.create({ name: 'kc0', multiQueue: true });
        const n = tap.fds[0];
        fs.closeSync(n);  // behind the tap's back: the worker's record of n stays
        parentPort.postMessage(n);
        setInterval(() => {}, 1000);  // runs until terminated, nothing closed
      })().catch((e) => parentPort.postMessage(String(e)));`, { eval: true, workerData: { dist, ns: N.name } });
    let mine;
    try {
      const n = await new Promise<unknown>((res, rej) => { w.once('message', res); w.once('error', rej); });
      expect(typeof n, String(n)).toBe('number');
      // This environment's queue of the same tap gets that number.
      mine = await queueAt('kc0', n as number);
    } finally {
      await w.terminate();
    }
    for (const f of held.splice(0)) fs.closeSync(f);
    // The worker's teardown did not close it: still open, still a queue of kc0.
    const fd = mine.fds[0];
    expect(() => fs.fstatSync(fd)).not.toThrow();
    const { native } = await import('../lib/native.js');
    expect(native.Forwarder.probe(fd)).toMatchObject({ tun: true, name: 'kc0' });
    expect(native.fdOwner.kcmp()).toBe(true);
    await waitFor(async () => (await queues('kc0')) === 1, 'only this environment\'s queue to be left on kc0', 20_000);
    await mine.close();
    expect(await queues('kc0')).toBe(0);
  });

  it('closing a tap whose fd number another tap got since disowns only its own record', async () => {
    const { native } = await import('../lib/native.js');
    const before = native.fdOwner.count();
    const a = await nl.tap.create({ name: 'kd0', multiQueue: true });
    const n = a.fds[0];
    fs.closeSync(n);  // behind a's back
    const b = await queueAt('kd0', n);
    for (const f of held.splice(0)) fs.closeSync(f);
    expect(native.fdOwner.count()).toBe(before + 2);
    await a.close();
    // b's record (same number) is still there, so a teardown would still close b's fd; and a's
    // close left b's queue open.
    expect(native.fdOwner.count()).toBe(before + 1);
    expect(native.Forwarder.probe(n)).toMatchObject({ tun: true, name: 'kd0' });
    expect(await queues('kd0')).toBe(1);
    await b.close();
    expect(native.fdOwner.count()).toBe(before);
    expect(await queues('kd0')).toBe(0);
  });
});
