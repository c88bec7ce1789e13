// ip monitor, decoded: a monitor watches a namespace while 200 veth pairs are created in one
// pipelined batch (link.addMany) and removed with one group delete.
import { open } from '../../dist/index.js';

export const title = 'events and bulk devices (ip monitor; ip -batch link add; ip link del group)';

export async function run(ctx) {
  const ns = await ctx.ns('mon');
  const nl = await open({ netns: ns });
  ctx.defer(() => nl.close());
  const mon = nl.monitor({ groups: ['link', 'addr'] });
  ctx.defer(() => mon.close());
  const count = { newlink: 0, dellink: 0, newaddr: 0, resync: 0 };
  mon.on('event', (ev) => { if (ev.type in count) count[ev.type]++; });
  mon.on('newaddr', (ev) => ctx.say(`event: newaddr ${ev.addr.cidr} on ${ev.addr.link}`));
  await mon.ready;

  const specs = Array.from({ length: 200 }, (_, i) => ({ kind: 'veth', name: `p${i}a`, group: 7, peer: { name: `p${i}b`, group: 7 } }));
  specs[100] = { kind: 'veth', name: 'a-name-far-too-long' };
  let t = performance.now();
  const rs = await nl.link.addMany(specs);
  const failed = rs.flatMap((r, i) => (r.status === 'rejected' ? [`#${i}: ${r.reason.message}`] : []));
  ctx.say(`addMany: ${rs.length - failed.length} pairs created in ${(performance.now() - t).toFixed(0)} ms; refused ${failed.join('; ')}`);
  await nl.addr.add('p0a', '198.51.100.1/24');
  t = performance.now();
  await nl.link.delGroup(7);
  ctx.say(`delGroup(7): ${2 * (rs.length - failed.length)} links removed in ${(performance.now() - t).toFixed(0)} ms (one by one: ~20 ms each)`);
  const until = Date.now() + 5000;
  while (count.dellink < 398 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  ctx.say(`monitor saw ${count.newlink} newlink, ${count.dellink} dellink, ${count.newaddr} newaddr, ${count.resync} resync`);
}
