// A network that outlives its process: one `vnetlink network create` process makes it and
// exits, a second lists it (still active, no owner), a third destroys it — the way a VM
// manager that restarts finds its networks again.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const title = 'durable network: created by one process, listed by a second, destroyed by a third';

const bin = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'vnetlink.js');
const xml = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'test', 'fixtures', 'default.xml');

export async function run(ctx) {
  const ns = await ctx.ns('durable');
  const vnl = (...args) => execFileSync(process.execPath, [bin, ...args, '--netns', ns.name], { encoding: 'utf8' });
  const made = JSON.parse(vnl('network', 'create', '--xml', xml, '--json'));
  ctx.defer(() => { try { vnl('network', 'destroy', 'default'); } catch { /* already gone */ } });
  ctx.say(`process 1: network create --xml default.xml -> ${made.bridge} ${made.address}, dnsmasq pid ${made.dnsmasqPid}; exited`);
  for (const line of vnl('network', 'list').trimEnd().split('\n')) ctx.say(`process 2: ${line}`);
  const listed = JSON.parse(vnl('network', 'list', '--json'));
  if (listed[0]?.status !== 'active' || listed[0]?.dnsmasqPid !== made.dnsmasqPid) throw new Error(`not active after its creator exited: ${JSON.stringify(listed)}`);
  ctx.say(`process 3: ${vnl('network', 'destroy', 'default').trim()}`);
  const after = JSON.parse(vnl('network', 'list', '--json'));
  if (after.length) throw new Error(`still listed: ${JSON.stringify(after)}`);
  ctx.say('network list: (empty)');
}
