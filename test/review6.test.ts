// Regressions from the sixth review (findings read in the code): package metadata that pointed
// nowhere, macvlan source MACs set on a link not in source mode, a stale generic netlink family id,
// and codec decode errors that looked like kernel refusals.
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle } from '../lib/index.js';
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
