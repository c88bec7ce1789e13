// Regressions from a security read of the network layer: a second network of the same name in
// another state directory tore the first one down; a state directory under a directory another
// user could write was accepted (root then wrote through a swapped symlink).
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns } from '../lib/index.js';
import { Namespaces, hasTool, ipLinks, nsExec, privilegedSkipReason } from './helpers.js';

const execFileP = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const skip = privilegedSkipReason();

// No DHCP and no DNS: no dnsmasq; the bridge and the nft table are what is at stake.
const spec = (name: string, bridge: string, stateDir: string) => ({ name, bridge, stp: false, address: '192.168.151.1/24', dns: false, stateDir });

describe.skipIf(skip)('network state: one name per namespace, state directories nobody else can swap', () => {
  const nss = new Namespaces();
  let ns: Netns;
  let h: Handle;
  let tmp: string;

  const bridges = async () => (await ipLinks(ns)).filter((l) => l.linkinfo?.info_kind === 'bridge').map((l) => `${l.ifname}:${l.ifalias ?? ''}`).sort();
  const table = () => nsExec(ns, 'nft', ['list', 'table', 'ip', 'vnetlink_r7']);

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
    const a = await h.network.create(spec('r7', 'r7bra', path.join(tmp, 'a', 'r7')));
    const before = await table();
    expect(await bridges()).toEqual(['r7bra:vnetlink:network:r7']);
    await expect(h.network.create(spec('r7', 'r7brb', path.join(tmp, 'b', 'r7')))).rejects.toMatchObject({ code: 'EBUSY', message: expect.stringMatching(/network\.create: .*"r7".*state directory/) });
    expect(await bridges()).toEqual(['r7bra:vnetlink:network:r7']);
    expect(await table()).toBe(before);
    await a.destroy();

    // Another process made it and ended without destroying it (the network outlives it); its
    // lock is on its own directory, so only the bridge's record tells this one apart.
    const code = `import { open } from ${JSON.stringify(path.join(root, 'dist', 'index.js'))};
const nl = await open({ netns: process.env.NS });
await nl.network.create(${JSON.stringify(spec('r7', 'r7bra', path.join(tmp, 'a', 'r7')))});
process.exit(0);`;
    await execFileP(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, NS: ns.name }, timeout: 60_000 });
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
    const n = await h.network.create(spec('r7', 'r7brc', path.join(pub, 'r7')));
    expect(await bridges()).toEqual(['r7brc:vnetlink:network:r7']);
    await n.destroy();
    expect(fs.readdirSync(pub)).toEqual([]);
  });
});
