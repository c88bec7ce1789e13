// Link results and changes that follow the link's real kind: kind settings of another kind are
// refused by name (they would be dropped by the kernel without a word), unknown kinds are refused
// as filters, and link.add returns the link as link.get reads it.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns } from '../lib/index.js';
import { Namespaces, ipLinks, privilegedSkipReason } from './helpers.js';

const skip = privilegedSkipReason();

describe.skipIf(skip)('links by kind', () => {
  const nss = new Namespaces();
  let N: Netns;
  let nl: Handle;

  beforeAll(async () => {
    N = await nss.create('kinds');
    nl = await open({ netns: N });
    await nl.link.add({ kind: 'bridge', name: 'br0', stp: false });
    await nl.link.add({ kind: 'veth', name: 'up0', peer: { name: 'up1' } });
    await nl.link.add({ kind: 'macvlan', name: 'mv0', link: 'up0', mode: 'bridge' });
  });
  afterAll(async () => {
    await nl?.close();
    await nss.cleanup();
  });

  it('refuses a macvlan mode on a bridge, naming `mode`, and changes nothing', async () => {
    const before = (await ipLinks(N, 'br0'))[0];
    const e = await nl.link.set('br0', { mode: 'vepa' }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(RangeError);
    expect((e as Error).message).toMatch(/^link\.set: mode: is not a setting of bridge links \("br0" is a bridge; mode belongs to bond\/ipvlan\/macvlan\/macvtap; a bridge takes stp, /);
    const after = (await ipLinks(N, 'br0'))[0];
    expect(after.linkinfo.info_data).toEqual(before.linkinfo.info_data);
    // And a bridge setting on a macvlan, together with a valid base change: nothing is applied.
    await expect(nl.link.set('mv0', { stp: true, mtu: 1400 })).rejects.toThrow(/^link\.set: stp: is not a setting of macvlan links/);
    expect((await ipLinks(N, 'mv0'))[0].mtu).toBe(1500);
    // A veth has no kind settings at all.
    await expect(nl.link.set('up0', { mode: 'private' })).rejects.toThrow(/^link\.set: mode: is not a setting of veth links \("up0" is a veth; mode belongs to bond\/ipvlan\/macvlan\/macvtap\)$/);
  });

  it('applies the settings of the link\'s own kind (ip -d link show agrees)', async () => {
    await nl.link.set('mv0', { mode: 'private' });
    expect((await ipLinks(N, 'mv0'))[0].linkinfo.info_data.mode).toBe('private');
    await nl.link.set('br0', { stp: true, forwardDelay: 4 });
    const d = (await ipLinks(N, 'br0'))[0].linkinfo.info_data;
    expect(d.stp_state).toBe(1);
    expect(d.forward_delay).toBe(400);
    const l = await nl.link.get('br0');
    expect(l.kind === 'bridge' && l.info.stp).toBe(true);
  });

  it('refuses a kind filter that names no link kind instead of returning an empty list', async () => {
    await expect(nl.link.list({ kind: 'vethh' as 'veth' })).rejects.toThrow(RangeError);
    await expect(nl.link.list({ kind: 'vethh' as 'veth' })).rejects.toThrow(/^link\.list: filter\.kind: must be one of /);
    expect((await nl.link.list({ kind: 'veth' })).map((l) => l.name).sort()).toEqual(['up0', 'up1']);
  });

  it('link.add with master returns the link as link.get reads it, master included', async () => {
    const added = await nl.link.add({ kind: 'veth', name: 'p0', master: 'br0', peer: { name: 'p1' } });
    expect(added.master).toBe('br0');
    const got = await nl.link.get('p0');
    expect(added.masterIndex).toBe(got.masterIndex);
    expect(added.port?.kind).toBe('bridge');
    expect((await ipLinks(N, 'p0'))[0].master).toBe('br0');
  });
});
