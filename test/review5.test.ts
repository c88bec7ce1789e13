// Regressions from the fifth review: durable network state pruned without its lock, ports
// re-attached on the word of the state file, shaping removed from a port another network
// took, and link.set's two-step master+up left half done.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns } from '../lib/index.js';
import { _onPrune, _simulateCrash } from '../lib/network.js';
import { Namespaces, hasTool, ipLinks, nsExec, privilegedSkipReason } from './helpers.js';

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
    const bDir = path.dirname(nb.stateDir), cDir = path.dirname(nc.stateDir);
    expect(path.basename(bDir)).toMatch(/^netns-[0-9]+-[0-9]+$/);
    // B's owner goes (its lock with it); C's network keeps its owner, which holds the lock.
    _simulateCrash(nb);
    await b.close();
    await c.close();
    // Our layout in a directory of a namespace that never was: only what is ours goes from it.
    const dev = path.basename(bDir).split('-')[1];
    const strange = path.join('/run/vnetlink', `netns-${dev}-4294967290`);
    fake.push(strange);
    fs.mkdirSync(path.join(strange, 'notours'), { recursive: true, mode: 0o700 });
    fs.writeFileSync(path.join(strange, 'notours', 'network.json'), JSON.stringify({ name: 'notours', bridge: 'x', table: 'y' }));
    fs.writeFileSync(path.join(strange, 'keep.txt'), 'not vnetlink\'s\n');
    // Both namespaces end (nothing else holds them).
    await nss.made.find((n) => n.name === B.name)!.delete();
    await nss.made.find((n) => n.name === C.name)!.delete();
    await a.network.list();
    expect(fs.existsSync(bDir)).toBe(false);
    // C's network is still owned (its lock is held): nothing of it is touched.
    expect(fs.existsSync(path.join(nc.stateDir, 'network.json'))).toBe(true);
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
