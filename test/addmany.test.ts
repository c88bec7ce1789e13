// link.addMany: many creates in flight on one socket, one result or one error per spec, by index.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, NetlinkError, type Handle, type Netns, type LinkSpec } from '../lib/index.js';
import { Namespaces, ipLinks, privilegedSkipReason } from './helpers.js';

const skip = privilegedSkipReason();

describe.skipIf(skip)('link.addMany', () => {
  const nss = new Namespaces();
  let A: Netns;
  let a: Handle;

  beforeAll(async () => {
    A = await nss.create('am');
    a = await open({ netns: A.name });
  });
  afterAll(async () => {
    await a?.close();
    await nss.cleanup();
  });

  const ours = async (prefix: string) => (await ipLinks(A)).filter((l) => l.ifname.startsWith(prefix));

  it('one bad spec among 100 (rejected in TypeScript) creates the other 99 and reports it by index', async () => {
    const specs: LinkSpec[] = [];
    for (let i = 0; i < 100; i++) specs.push({ kind: 'veth', name: `p${i}a`, group: 51, peer: { name: `p${i}b`, group: 51 } });
    specs[37] = { kind: 'veth', name: 'this-name-is-far-too-long', peer: { name: 'p37b' } };
    const rs = await a.link.addMany(specs, { concurrency: 16 });
    expect(rs.length).toBe(100);
    const rejected = rs.flatMap((r, i) => (r.status === 'rejected' ? [i] : []));
    expect(rejected).toEqual([37]);
    const bad = rs[37] as PromiseRejectedResult;
    expect(bad.reason).toBeInstanceOf(RangeError);
    expect(bad.reason.message).toMatch(/name/);
    // Results are the links as get() returns them, in spec order.
    const r5 = rs[5] as PromiseFulfilledResult<any>;
    expect(r5.value).toMatchObject({ name: 'p5a', kind: 'veth', group: 51 });
    expect(r5.value).toEqual(await a.link.get('p5a').then((l) => ({ ...l, stats: r5.value.stats, operState: r5.value.operState, flags: r5.value.flags, lowerUp: r5.value.lowerUp, carrier: r5.value.carrier })));
    const made = await ours('p');
    expect(made.length).toBe(99 * 2);
    expect(made.some((l) => l.ifname === 'p37b')).toBe(false);
    await a.link.delGroup(51);
    expect(await ours('p')).toEqual([]);
  });

  it('a spec the kernel refuses (EEXIST) rejects only its own index with a NetlinkError', async () => {
    await a.link.add({ kind: 'veth', name: 'q50a', peer: { name: 'qx' } });
    const specs: LinkSpec[] = [];
    for (let i = 0; i < 100; i++) specs.push({ kind: 'veth', name: `q${i}a`, group: 52, peer: { name: `q${i}b`, group: 52 } });
    const rs = await a.link.addMany(specs, { concurrency: 64, echo: false });
    const rejected = rs.flatMap((r, i) => (r.status === 'rejected' ? [i] : []));
    expect(rejected).toEqual([50]);
    const e = (rs[50] as PromiseRejectedResult).reason;
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e.code).toBe('EEXIST');
    expect(e.op).toBe('link.addMany');
    expect((rs[0] as PromiseFulfilledResult<any>).value).toEqual({ name: 'q0a', kind: 'veth' });
    expect((await ours('q')).length).toBe(99 * 2 + 2);
    await a.link.delGroup(52);
    await a.link.del('q50a');
    expect(await ours('q')).toEqual([]);
  });

  it('link.add with echo: false creates the link and returns only its name and kind', async () => {
    const r = await a.link.add({ kind: 'veth', name: 'e0', peer: { name: 'e1' } }, { echo: false });
    expect(r).toEqual({ name: 'e0', kind: 'veth' });
    expect((await ipLinks(A, 'e0'))[0].linkinfo.info_kind).toBe('veth');
    await expect(a.link.add({ kind: 'veth', name: 'e2' }, { echo: 'no' as any })).rejects.toThrow(/echo/);
    await a.link.del('e0');
  });

  it('rejects bad options and a non-array before any syscall', async () => {
    await expect(a.link.addMany({} as any)).rejects.toThrow(/specs/);
    await expect(a.link.addMany([], { concurrency: 0 })).rejects.toThrow(/concurrency/);
    await expect(a.link.addMany([], { nope: 1 } as any)).rejects.toThrow(/nope/);
    expect(await a.link.addMany([])).toEqual([]);
  });
});
