// Regressions found in review: each of these used to crash the process, reach the kernel with
// input TypeScript should have refused, or leave something behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, NetlinkError, type Handle, type Netns } from '../lib/index.js';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Namespaces, ipLinks, nsExec, privilegedSkipReason, waitFor } from './helpers.js';

const skip = privilegedSkipReason();

describe.skipIf(skip)('review regressions', () => {
  const nss = new Namespaces();
  let A: Netns;
  let a: Handle;

  beforeAll(async () => {
    A = await nss.create('rv');
    a = await open({ netns: A });
    await a.link.add({ kind: 'veth', name: 'up0', peer: { name: 'up1' } });
  });
  afterAll(async () => {
    await a?.close();
    await nss.cleanup();
  });

  const macsN = (n: number) => Array.from({ length: n }, (_, i) => `52:54:00:${((i >> 16) & 0xff).toString(16).padStart(2, '0')}:${((i >> 8) & 0xff).toString(16).padStart(2, '0')}:${(i & 0xff).toString(16).padStart(2, '0')}`);

  it('a nest too long for 16 bits is a NetlinkError from the codec, not std::terminate', async () => {
    // Straight to the native op, past the TS limit: the nest's destructor used to throw while
    // another exception unwound through the enclosing nests, which killed the process.
    const e = await a._call('link.add', { kind: 'macvlan', name: 'mvbig', top: { link: 'up0' }, data: { mode: 16, macs: macsN(6000) } }).catch((x) => x);
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e.code).toBe('EMSGSIZE');
    expect((await a.link.get('up0')).name).toBe('up0');
  });

  it('takes 5000 source MACs, the most TS allows, in one request', async () => {
    const l = await a.link.add({ kind: 'macvlan', name: 'mv5k', link: 'up0', mode: 'source', macs: macsN(5000) });
    expect(l.info.macCount ?? (await a.link.get('mv5k')).info.macCount).toBe(5000);
    await a.link.del('mv5k');
  });

  it('a source-mode MAC list too long for one netlink nest is an error, not a crash, and creates nothing', async () => {
    const before = (await ipLinks(A)).map((l) => l.ifname).sort();
    const e = await a.link.add({ kind: 'macvlan', name: 'mvbig', link: 'up0', mode: 'source', macs: macsN(6000) }).catch((x) => x);
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/macs: at most 5000 MACs/);
    // The handle still works and nothing was made.
    expect((await a.link.get('up0')).name).toBe('up0');
    expect((await ipLinks(A)).map((l) => l.ifname).sort()).toEqual(before);
  });

  it('a reply larger than the 128 KiB receive buffer is read whole by link.get (it used to be lost: EMSGSIZE)', async () => {
    // 5400 source MACs (64.8 KB) plus 496 altnames of 127 bytes (64 KB, the kernel's limit)
    // make one RTM_NEWLINK of about 131 KB, answered to a non-dump RTM_GETLINK.
    await a.link.add({ kind: 'macvlan', name: 'mvhuge', link: 'up0', mode: 'source', macs: macsN(5000) });
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnl-big-'));
    try {
      const extra = macsN(5400).slice(5000).map((m) => `link set dev mvhuge type macvlan macaddr add ${m}`);
      const alts = Array.from({ length: 496 }, (_, i) => `link property add dev mvhuge altname ${String(i).padStart(3, '0')}${'x'.repeat(124)}`);
      fs.writeFileSync(path.join(dir, 'batch'), [...extra, ...alts].join('\n') + '\n');
      await nsExec(A, 'ip', ['-batch', path.join(dir, 'batch')]);
      const l = await a.link.get('mvhuge');
      expect(l.info.macCount).toBe(5400);
      // The handle's socket holds no stale reply: the next requests are answered normally.
      expect((await a.link.get('up0')).name).toBe('up0');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      await a.link.del('mvhuge').catch(() => {});
    }
  });

  it('macvtap.open checks offloads by the same rules as tap.create, before any syscall', async () => {
    // Not a macvtap, not even a link: a RangeError naming the field must come first.
    const e = await a.macvtap.open('nolink0', { offloads: { csum: true, tsoEcn: true } }).catch((x) => x);
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/macvtap\.open: offloads\.tsoEcn: needs tso4 or tso6/);
    const e2 = await a.macvtap.open('nolink0', { vnetHdr: false, offloads: { csum: true } }).catch((x) => x);
    expect(e2).toBeInstanceOf(RangeError);
    expect(e2.message).toMatch(/offloads: need vnetHdr/);
  });

  it('link.add into another namespace returns the real link, sets its alias and brings the peer up', async () => {
    // Fresh namespaces, so both ends get ifindex 2: the decoder dropped a peer index equal to
    // the link's own, and with it the peer's `up`; the alias was silently dropped too.
    const [X, Y] = await Promise.all([nss.create('rvx'), nss.create('rvy')]);
    await using x = await open({ netns: X });
    const l = await x.link.add({ kind: 'veth', name: 'n0', netns: Y, alias: 'in Y', peer: { name: 'n1', up: true } });
    expect(l).toMatchObject({ name: 'n0', kind: 'veth', alias: 'in Y', linkIndex: 2 });
    const [n0] = await ipLinks(Y, 'n0');
    expect(n0.ifindex).toBe(l.index);
    expect(n0.ifalias).toBe('in Y');
    expect((await ipLinks(X, 'n1'))[0].flags).toContain('UP');
    // The same from the other side: the peer goes to Y and comes up there.
    const m = await x.link.add({ kind: 'veth', name: 'm0', peer: { name: 'm1', netns: Y, up: true } });
    expect(m.linkIndex).toBe((await ipLinks(Y, 'm1'))[0].ifindex);
    expect((await ipLinks(Y, 'm1'))[0].flags).toContain('UP');
    const e = await x.link.add({ kind: 'macvlan', name: 'mv%d', link: 'n1', netns: Y }).catch((z) => z);
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/name: a name pattern cannot be resolved in another namespace/);
  });

  it('a failed attach to an existing persistent tap leaves that tap in place, still persistent', async () => {
    const t = await a.tap.create({ name: 'pt0', mode: 'tun', persist: true });
    await t.close();
    await a.link.add({ kind: 'bridge', name: 'rvbr0' });
    try {
      // Attaching clears persistence, then the bridge refuses a tun (not Ethernet): the step fails.
      const e = await a.tap.create({ name: 'pt0', mode: 'tun', persist: false, master: 'rvbr0' }).catch((x) => x);
      expect(e).toBeInstanceOf(NetlinkError);
      const [pt] = await ipLinks(A, 'pt0');
      expect(pt?.ifname).toBe('pt0');
      expect(pt.linkinfo.info_data.persist).toBe(true);
    } finally {
      await a.link.del('pt0').catch(() => {});
      await a.link.del('rvbr0');
    }
  });

  it('a failed attach to an existing tap leaves its owner and group as they were (set or none)', async () => {
    const owned = await a.tap.create({ name: 'po0', mode: 'tun', persist: true, uid: 1000, gid: 1001 });
    const bare = await a.tap.create({ name: 'po1', mode: 'tun', persist: true });
    await owned.close();
    await bare.close();
    await a.link.add({ kind: 'bridge', name: 'rvbr1' });
    const sysfs = async (n: string, f: string) => (await nsExec(A, 'cat', [`/sys/class/net/${n}/${f}`])).trim();
    try {
      for (const name of ['po0', 'po1']) {
        // The bridge refuses a tun (not Ethernet), after the attach itself succeeded.
        const e = await a.tap.create({ name, mode: 'tun', uid: 2000, gid: 2001, master: 'rvbr1' }).catch((x) => x);
        expect(e).toBeInstanceOf(NetlinkError);
      }
      expect([await sysfs('po0', 'owner'), await sysfs('po0', 'group')]).toEqual(['1000', '1001']);
      expect([await sysfs('po1', 'owner'), await sysfs('po1', 'group')]).toEqual(['-1', '-1']);
      expect((await ipLinks(A, 'po0'))[0].linkinfo.info_data.persist).toBe(true);
    } finally {
      await a.link.del('po0').catch(() => {});
      await a.link.del('po1').catch(() => {});
      await a.link.del('rvbr1');
    }
  });

  it('a tap closed while queues are being added closes those queues too, so the device goes away', async () => {
    const t = await a.tap.create({ name: 'aq0', queues: 2 });
    const adding = t.addQueues(2);
    const closing = t.close();  // overtakes addQueues
    const added = await adding;
    await closing;
    expect(added).toHaveLength(2);
    expect(t.fds).toHaveLength(4);
    // A non-persistent tap disappears only when its last fd closes.
    await waitFor(async () => !(await ipLinks(A)).some((l) => l.ifname === 'aq0'), 'aq0 to disappear', 3000);
  });

  it('link.list by a group at or above 2^31 lists that group, not every link', async () => {
    await a.link.add({ kind: 'veth', name: 'hg0', group: 0xfffffff0, peer: { name: 'hg1' } });
    try {
      expect((await a.link.list({ group: 0xfffffff0 })).map((l) => l.name)).toEqual(['hg0']);
      expect(await a.link.list({ group: 0x80000000 })).toEqual([]);
    } finally {
      await a.link.del('hg0');
    }
  });

  it('the native macvtap.open refuses zero queues instead of using an fd it never opened', async () => {
    await a.link.add({ kind: 'macvtap', name: 'mvt0', link: 'up0', mode: 'bridge' });
    try {
      // Straight to the native op, past the TS check (queues 1–256).
      const e = await a._call('macvtap.open', { name: 'mvt0', queues: 0 }).catch((x) => x);
      expect(e).toBeInstanceOf(NetlinkError);
      expect(e.code).toBe('EINVAL');
      expect(e.message).toMatch(/queues must be 1-256/);
    } finally {
      await a.link.del('mvt0');
    }
  });

  it('the native tap.create refuses zero queues instead of using an fd it never opened', async () => {
    const e = await a._call('tap.create', { name: 'tq0', queues: 0 }).catch((x) => x);
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e.code).toBe('EINVAL');
    expect((await ipLinks(A)).map((l) => l.ifname)).not.toContain('tq0');
  });
});
