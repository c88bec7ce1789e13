// Golden bytes for link kinds: test/fixtures/link-golden.json holds the RTM_NEWLINK requests
// iproute2 6.1 sent for each labelled `ip` command (test/golden/capture.mjs link). Each kind's
// test maps the commands of its kind to link specs; link.encode must send the same bytes.
import fs from 'node:fs';
import { expect } from 'vitest';
import { NetlinkError, open, type Handle, type LinkSpec, type Netns } from '../../lib/index.js';
import { inKernelGuest, ipLinks, type Namespaces } from '../helpers.js';

export const linkGolden = JSON.parse(fs.readFileSync(new URL('../fixtures/link-golden.json', import.meta.url), 'utf8')) as
  { tool: string; requests: Record<string, string> };

/** A namespace laid out as the capture's (lo 1, ifb0 2, br0 3, vx0 4, vp1 5, vp0 6), and a handle in it. */
export async function goldenLayout(nss: Namespaces, prefix: string): Promise<Handle> {
  // In the throwaway kernel guest, loaded tunnel modules (ip_gre, ipip, ...) give every new
  // namespace fallback devices that take ifindex 2.. and shift the layout: keep them to the
  // guest's initial namespace. (Never outside the guest: that is the host's root namespace.)
  if (inKernelGuest) fs.writeFileSync('/proc/sys/net/core/fb_tunnels_only_for_init_net', '1');
  const ns = await nss.create(prefix);
  const h = await open({ netns: ns });
  await h.link.add({ kind: 'ifb', name: 'ifb0' });
  await h.link.add({ kind: 'bridge', name: 'br0' });
  await h.link.add({ kind: 'vxlan', name: 'vx0', vni: 42, learning: false });
  await h.link.add({ kind: 'veth', name: 'vp0', peer: { name: 'vp1' } });
  expect((await h.link.get('vp0')).index).toBe(6);
  expect((await h.link.get('br0')).index).toBe(3);
  return h;
}

/**
 * Every fixture command of `kind` (its `type KIND` word) has a case, every case a fixture
 * entry, and link.encode gives iproute2's bytes for each (seq and port id zeroed), which
 * link.decode reads back into the spec's kind settings.
 */
export async function expectGolden(h: Handle, kind: string, cases: Record<string, LinkSpec>): Promise<void> {
  const mine = Object.keys(linkGolden.requests).filter((l) => new RegExp(`\\btype ${kind}\\b`).test(l));
  expect(mine.length, `fixture commands for ${kind}`).toBeGreaterThan(0);
  expect(Object.keys(cases).sort()).toEqual(mine.sort());
  for (const [label, spec] of Object.entries(cases)) {
    const b = await h.link.encode(spec);
    b.fill(0, 8, 16);
    expect(b.toString('hex'), label).toBe(linkGolden.requests[label]);
    const back = await h.link.decode(Buffer.from(linkGolden.requests[label], 'hex'));
    expect(back.kind, label).toBe(kind);
    expect(back.name, label).toBe(spec.name);
  }
}

/** A kind the kernel lacks: link.add rejects with a NetlinkError EOPNOTSUPP naming the kind, and `ns` keeps exactly `names`. */
export async function expectKindRefused(add: Promise<unknown>, kind: string, ns: Netns, names: string[]): Promise<void> {
  const e = await add.then(() => undefined, (x) => x);
  expect(e).toBeInstanceOf(NetlinkError);
  expect(e.code).toBe('EOPNOTSUPP');
  expect(e.errno).toBe(95);
  expect(e.op).toBe('link.add');
  expect(e.message).toMatch(new RegExp(`link kind ${kind} is not available in this kernel`));
  expect((await ipLinks(ns)).map((l) => l.ifname).sort()).toEqual([...names].sort());
}
