// Two "hosts" for the tunnel kinds: namespaces A and B joined by a veth underlay
// (u0 198.51.100.1/25 in A, u1 198.51.100.2/25 in B), each with a handle. Overlays use
// 198.51.100.129/.130 (/25), so nothing routes out of either namespace.
import os from 'node:os';
import { expect } from 'vitest';
import { NetlinkError, open, type Handle, type Netns } from '../../lib/index.js';
import { ipLinks, type Namespaces } from '../helpers.js';

export interface Hosts { A: Netns; B: Netns; a: Handle; b: Handle }

export async function twoHosts(nss: Namespaces, prefix: string): Promise<Hosts> {
  const A = await nss.create(`${prefix}a`);
  const B = await nss.create(`${prefix}b`);
  const a = await open({ netns: A });
  const b = await open({ netns: B });
  await a.link.add({ kind: 'veth', name: 'u0', peer: { name: 'u1', netns: B }, up: true });
  await b.link.set('u1', { up: true });
  await a.link.set('lo', { up: true });
  await b.link.set('lo', { up: true });
  await a.addr.add('u0', '198.51.100.1/25');
  await b.addr.add('u1', '198.51.100.2/25');
  return { A, B, a, b };
}

/** The kernel's refusal of a kind it has no driver for: clear, and nothing left behind. */
export async function expectRefused(ns: Netns, add: Promise<unknown>, kind: string, before: string[]): Promise<void> {
  const e: any = await add.catch((x: unknown) => x);
  expect(e).toBeInstanceOf(NetlinkError);
  expect(e.code).toBe('EOPNOTSUPP');
  expect(e.op).toBe('link.add');
  expect(e.message).toContain(`link kind ${kind} is not available in this kernel`);
  expect((await ipLinks(ns)).map((l: any) => l.ifname).sort()).toEqual([...before].sort());
}

/** The running kernel is at least major.minor. */
export function kernelAtLeast(major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(os.release());
  return !!m && (Number(m[1]) > major || (Number(m[1]) === major && Number(m[2]) >= minor));
}
