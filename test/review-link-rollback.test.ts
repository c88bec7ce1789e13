// Regression: link.set({ master, up: true, ... }) sends two requests; when the second (up)
// fails, the first is undone. That included the name, MTU, MAC, group, alias and queue length,
// but not the link flags, GSO/GRO sizes and carrier the same first request changes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns, type Tap } from '../lib/index.js';
import { Namespaces, ipLinks, privilegedSkipReason } from './helpers.js';

const skip = privilegedSkipReason();

describe.skipIf(skip)('link.set master + up: a failed up undoes flags, sizes, carrier and kind settings too', () => {
  const nss = new Namespaces();
  let ns: Netns;
  let h: Handle;
  let tap: Tap;

  beforeAll(async () => {
    ns = await nss.create('rlrb');
    h = await open({ netns: ns });
    await h.link.add({ kind: 'bridge', name: 'rlbr' });
    // A tap: it has a carrier switch (this host's kernel may lack dummy).
    tap = await h.tap.create({ name: 'rld0' });
  });
  /** Makes the handle's second request of link.set (the port coming up) fail, until undone. */
  const failUps = () => {
    const real = h._call.bind(h);
    (h as any)._call = (op: string, args: any, nativeOp?: string) =>
      op === 'link.set' && args.up === true && args.master === undefined
        ? Promise.reject(Object.assign(new Error('injected up failure'), { code: 'EIO' }))
        : real(op, args, nativeOp);
  };
  afterAll(async () => {
    await tap?.close();
    await h?.close();
    await nss.cleanup();
  });

  it('leaves the port as it was: no master, the same flags, sizes and carrier', async () => {
    const before = (await ipLinks(ns, 'rld0'))[0];
    expect(before.flags).toContain('MULTICAST');
    failUps();
    try {
      await expect(h.link.set('rld0', {
        master: 'rlbr', up: true, promisc: true, allmulti: true, arp: false, multicast: false,
        gsoMaxSize: 32768, gsoMaxSegs: 100, groMaxSize: 32768, carrier: false,
      })).rejects.toThrow('injected up failure');
    } finally {
      delete (h as any)._call;
    }
    const after = (await ipLinks(ns, 'rld0'))[0];
    expect(after.master).toBeUndefined();
    expect([...after.flags].sort()).toEqual([...before.flags].sort());
    expect(after.flags).not.toContain('PROMISC');
    expect(after.flags).not.toContain('NOARP');
    expect(after).toMatchObject({ promiscuity: 0, gso_max_size: before.gso_max_size, gso_max_segs: before.gso_max_segs, gro_max_size: before.gro_max_size });
    // Carrier: an open tap's is on; brought up now, it has LOWER_UP, not NO-CARRIER.
    await h.link.set('rld0', { up: true });
    const up = (await ipLinks(ns, 'rld0'))[0];
    expect(up.flags).toContain('LOWER_UP');
    expect(up.flags).not.toContain('NO-CARRIER');
  });

  it("puts a kind setting changed in the same call back too (a macvlan's mode)", async () => {
    await h.link.add({ kind: 'veth', name: 'rlv0', peer: { name: 'rlv1' } });
    await h.link.add({ kind: 'macvlan', name: 'rlmv', link: 'rlv0', mode: 'bridge' });
    const mode = async () => ((await ipLinks(ns, 'rlmv'))[0] as any).linkinfo.info_data.mode;
    expect(await mode()).toBe('bridge');
    failUps();
    try {
      await expect(h.link.set('rlmv', { master: 'rlbr', up: true, mode: 'private' })).rejects.toThrow('injected up failure');
    } finally {
      delete (h as any)._call;
    }
    const after = (await ipLinks(ns, 'rlmv'))[0] as any;
    expect(after.master).toBeUndefined();
    expect(after.linkinfo.info_data.mode).toBe('bridge');
    // Without the injected failure the same call changes both.
    await h.link.set('rlmv', { master: 'rlbr', up: true, mode: 'private' });
    expect(await mode()).toBe('private');
    expect(((await ipLinks(ns, 'rlmv'))[0] as any).master).toBe('rlbr');
  });
});
