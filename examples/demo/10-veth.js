// Two namespaces joined by a veth pair with addresses, and a ping between them.
import { execFileSync } from 'node:child_process';
import { open } from '../../dist/index.js';

export const title = 'veth pair between two namespaces (ip link add ... type veth peer netns ...)';

export async function run(ctx) {
  const a = await ctx.ns('a');
  const b = await ctx.ns('b');
  const na = await open({ netns: a });
  const nb = await open({ netns: b });
  ctx.defer(() => na.close());
  ctx.defer(() => nb.close());
  const v0 = await na.link.add({ kind: 'veth', name: 'v0', peer: { name: 'v1', netns: b }, up: true });
  await nb.link.set('v1', { up: true });
  await na.addr.add('v0', '198.51.100.1/24');
  await nb.addr.add('v1', '198.51.100.2/24');
  ctx.say(`${a.name}: v0 (index ${v0.index}, ${v0.mac}) 198.51.100.1/24`);
  ctx.say(`${b.name}: v1 198.51.100.2/24`);
  const out = execFileSync('ip', ['netns', 'exec', a.name, 'ping', '-c', '3', '-i', '0.2', '-W', '2', '198.51.100.2'], { encoding: 'utf8' });
  ctx.say(out.trim().split('\n').filter((l) => /packets|rtt/.test(l)).join('\n  '));
}
