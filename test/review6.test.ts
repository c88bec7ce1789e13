// Regressions from the sixth review (findings read in the code): package metadata that pointed
// nowhere, macvlan source MACs set on a link not in source mode, a stale generic netlink family id,
// and codec decode errors that looked like kernel refusals.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkError, VnetlinkError, open, type Handle } from '../lib/index.js';
import { Namespaces, ipLinks, privilegedSkipReason } from './helpers.js';

describe('package.json', () => {
  it('carries no repository, bugs or homepage URL: the project has no public home to point at', () => {
    const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
    // These were placeholders (github.com/vnetlink/vnetlink); npm shows them on the package page.
    for (const k of ['repository', 'bugs', 'homepage']) expect(pkg, k).not.toHaveProperty(k);
    expect(JSON.stringify(pkg)).not.toMatch(/github\.com\/vnetlink/);
  });
});

describe.skipIf(privilegedSkipReason())('link.set macs on a macvlan/macvtap', () => {
  const nss = new Namespaces();
  let h: Handle;
  let ns: Awaited<ReturnType<Namespaces['create']>>;
  beforeAll(async () => {
    ns = await nss.create('rv6mv');
    h = await open({ netns: ns });
    await h.link.add({ kind: 'veth', name: 'up0', peer: { name: 'up1' } });
  });
  afterAll(async () => { await h?.close(); await nss.cleanup(); });

  it('is refused naming macs when the link is not in source mode (as link.add refuses it), and the link is unchanged', async () => {
    for (const kind of ['macvlan', 'macvtap'] as const) {
      const name = `${kind.slice(0, 5)}b`;
      await h.link.add({ kind, name, link: 'up0', mode: 'bridge' });
      const e = await h.link.set(name, { macs: ['52:54:00:aa:00:01'] }).catch((x) => x);
      expect(e, kind).toBeInstanceOf(RangeError);
      expect(e.message).toMatch(new RegExp(`link\\.set: macs: is only meaningful with mode: 'source' \\("${name}" is in mode bridge`));
      // What ip sees: still bridge mode, no source MACs.
      const [l] = await ipLinks(ns, name);
      expect(l.linkinfo.info_data.mode).toBe('bridge');
      expect(l.linkinfo.info_data.macaddr_count ?? 0).toBe(0);
      // Changing to source mode in the same call is what the check asks for; it works.
      await h.link.set(name, { mode: 'source', macs: ['52:54:00:aa:00:01'] });
      const [s] = await ipLinks(ns, name);
      expect(s.linkinfo.info_data.mode).toBe('source');
      expect(s.linkinfo.info_data.macaddr_data).toEqual(['52:54:00:aa:00:01']);
      // And leaving source mode while setting macs is refused too.
      const e2 = await h.link.set(name, { mode: 'vepa', macs: ['52:54:00:aa:00:02'] }).catch((x) => x);
      expect(e2.message).toMatch(/macs: is only meaningful with mode: 'source' .*in mode vepa/);
      expect((await ipLinks(ns, name))[0].linkinfo.info_data.mode).toBe('source');
      await h.link.del(name);
    }
  });
});

describe.skipIf(privilegedSkipReason())('a generic netlink family id gone stale (its module reloaded)', () => {
  const nss = new Namespaces();
  let ns: Awaited<ReturnType<Namespaces['create']>>;
  beforeAll(async () => { ns = await nss.create('rv6gn'); });
  afterAll(async () => { await nss.cleanup(); });

  it('genl.family answers the id the kernel has now, not the cached one', async () => {
    await using h = await open({ netns: ns });
    const real = await h.genl.family('nlctrl');
    expect(real.id).toBe(0x10);   // GENL_ID_CTRL, fixed
    await h.genl._poisonCache('nlctrl', 0x7777);
    expect((await h.genl.family('nlctrl')).id).toBe(0x10);
  });

  it("a wireguard request sent to a stale id (now another family's, which answers EOPNOTSUPP) is resolved again and resent", async () => {
    // What a handle with a good cache answers: ENODEV (no wg0) where the kernel has wireguard,
    // ENOENT naming the family where it does not (this host).
    await using clean = await open({ netns: ns });
    const want = await clean.wireguard.get('wg0').then(() => undefined, (x) => x);
    expect(['ENODEV', 'ENOENT']).toContain(want?.code);
    await using h = await open({ netns: ns });
    // The stale id is nlctrl's: it has no command 0 (WG_CMD_GET_DEVICE) and says EOPNOTSUPP.
    await h.genl._poisonCache('wireguard', 0x10);
    const got = await h.wireguard.get('wg0').then(() => undefined, (x) => x);
    expect(got?.code).toBe(want.code);
    expect(got.message).toBe(want.message);
  });
});

describe.skipIf(privilegedSkipReason())('a message vnetlink cannot read', () => {
  const nss = new Namespaces();
  let h: Handle;
  beforeAll(async () => { h = await open({ netns: await nss.create('rv6dec') }); });
  afterAll(async () => { await h?.close(); await nss.cleanup(); });

  // RTM_NEWLINK with IFLA_MTU (4 bytes) holding 1: what a truncated reply looks like.
  const shortMtu = () => {
    const b = Buffer.alloc(16 + 16 + 8);
    b.writeUInt32LE(b.length, 0); b.writeUInt16LE(16, 4);   // RTM_NEWLINK
    b.writeUInt16LE(5, 32); b.writeUInt16LE(4, 34); b[36] = 1;   // nla_len 5, IFLA_MTU, one byte
    return b;
  };

  it('from the kernel is an EPROTO VnetlinkError saying what was wrong, not a NetlinkError that looks like a refusal', async () => {
    const e = await h._call('codec.decode', { kind: 'link', bytes: shortMtu() }).catch((x) => x);
    expect(e).toBeInstanceOf(VnetlinkError);
    expect(e).not.toBeInstanceOf(NetlinkError);
    expect(e.code).toBe('EPROTO');
    expect(e.op).toBe('codec.decode');
    expect(e.message).toBe('codec.decode: a message from the kernel is malformed: attribute 4 is 1 bytes, expected at least 4 (EPROTO)');
  });

  it('handed to link.decode by the caller is a RangeError naming bytes', async () => {
    for (const bytes of [shortMtu(), Buffer.from([1, 2, 3]), Buffer.alloc(16, 0xff)]) {
      const e = await h.link.decode(bytes).catch((x) => x);
      expect(e).toBeInstanceOf(RangeError);
      expect(e.message).toMatch(/^link\.decode: bytes: is not a well-formed message \(/);
    }
  });
});
