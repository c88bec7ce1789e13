// NODE_DEBUG=vnetlink traces each call and each netlink message, decoded; without it, nothing.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Netns } from '../lib/index.js';
import { Namespaces, privilegedSkipReason } from './helpers.js';

const skip = privilegedSkipReason();

describe.skipIf(skip)('NODE_DEBUG=vnetlink', () => {
  const nss = new Namespaces();
  let N: Netns;
  beforeAll(async () => { N = await nss.create('dbg'); });
  afterAll(async () => { await nss.cleanup(); });

  const run = (env: Record<string, string>) => {
    const url = new URL('../dist/index.js', import.meta.url).href;
    return spawnSync(process.execPath, ['--input-type=module', '-e', `
      import { open } from ${JSON.stringify(url)};
      const nl = await open({ netns: ${JSON.stringify(N.name)} });
      await nl.link.add({ kind: 'veth', name: 'dbg0', peer: { name: 'dbg1' } });
      await nl.link.get('nope0').catch(() => {});
      await nl.link.set('dbg0', { mtu: 70000 }).catch(() => {});
      await nl.link.del('dbg0');
      await nl.close();
      console.log('ok');`], { encoding: 'utf8', env: { ...process.env, ...env } });
  };

  it('prints calls and messages (type, flags, attributes, errno, extack) on stderr', () => {
    const r = run({ NODE_DEBUG: 'vnetlink' });
    expect(r.stdout.trim()).toBe('ok');
    const lines = r.stderr.split('\n');
    expect(lines.some((l) => /^VNETLINK \d+: call link\.add \{"kind":"veth","name":"dbg0"/.test(l))).toBe(true);
    // The create request as the kernel gets it, with the name and the kind in its attributes.
    expect(lines.some((l) => /^VNETLINK \d+: > RTM_NEWLINK flags=REQUEST,ACK,ECHO,EXCL,CREATE seq=\d+ len=\d+ ifinfomsg\{.*attrs:.* 3="dbg0".*"veth"/.test(l))).toBe(true);
    // The kernel's refusal of the lookup, and of the MTU with its extended ack.
    expect(lines.some((l) => /^VNETLINK \d+: < NLMSG_ERROR .*errno=19 \(No such device\)/.test(l))).toBe(true);
    expect(lines.some((l) => /^VNETLINK \d+: < NLMSG_ERROR .*errno=22 .*extack="[^"]+"/.test(l))).toBe(true);
    expect(lines.some((l) => /^VNETLINK \d+: failed link\.get: link\.get: no such device "nope0" \(ENODEV\)/.test(l))).toBe(true);
  });

  it('is silent without NODE_DEBUG', () => {
    const r = run({ NODE_DEBUG: '' });
    expect(r.stdout.trim()).toBe('ok');
    expect(r.stderr).toBe('');
  });
});
