// Two guest namespaces, each holding a tap whose fd vnetlink's Forwarder owns: the guests
// reach each other only through the forwarder's native thread, as two VMs would through QEMU.
import { execFileSync, spawn } from 'node:child_process';
import { Forwarder, open } from '../../dist/index.js';

export const title = 'userspace forwarder between two guests\' tap fds (ping, TCP, stats)';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function run(ctx) {
  const offloads = { csum: true, tso4: true, tso6: true };
  const guests = [];
  for (const [i, prefix] of [[1, 'vm1'], [2, 'vm2']]) {
    const ns = await ctx.ns(prefix);
    const nl = await open({ netns: ns });
    ctx.defer(() => nl.close());
    const tap = await nl.tap.create({ name: 'tap0', vnetHdr: true, offloads, up: true });
    ctx.defer(() => tap.close());
    await nl.addr.add('tap0', `198.51.100.${i}/24`);
    guests.push({ ns, tap, ip: `198.51.100.${i}` });
    ctx.say(`${ns.name}: ${tap.name} (index ${tap.index}, fd ${tap.fds[0]}, vnet header + TSO) 198.51.100.${i}/24`);
  }
  const [a, b] = guests;
  const fw = new Forwarder({ mode: 'switch' });
  ctx.defer(() => fw.close());
  fw.add('vm1', a.tap.fds);
  fw.add('vm2', b.tap.fds);
  fw.start();
  ctx.say('forwarder: switch mode, ports vm1 and vm2, one native thread');

  const frames = fw.frames('vm2');
  const ping = execFileSync('ip', ['netns', 'exec', a.ns.name, 'ping', '-c', '3', '-i', '0.2', '-W', '2', b.ip], { encoding: 'utf8' });
  ctx.say(ping.trim().split('\n').filter((l) => /packets|rtt/.test(l)).join('\n  '));
  for (;;) {
    const { value: f } = await frames.next();
    if (f.data.readUInt16BE(12) === 0x0800 && f.data[23] === 1) {
      ctx.say(`frames('vm2') saw ${f.direction} ICMP ${f.data.subarray(26, 30).join('.')} -> ${f.data.subarray(30, 34).join('.')}, ${f.length} bytes`);
      break;
    }
  }
  await frames.return();

  const srv = spawn('ip', ['netns', 'exec', b.ns.name, 'iperf3', '-s', '-1', '-B', b.ip], { stdio: 'ignore' });
  ctx.defer(() => { try { srv.kill('SIGKILL'); } catch { /* gone */ } });
  await sleep(300);
  const out = JSON.parse(execFileSync('ip', ['netns', 'exec', a.ns.name, 'iperf3', '-c', b.ip, '-n', '256M', '-J'], { encoding: 'utf8' }));
  ctx.say(`TCP: 256 MiB in ${out.end.sum_received.seconds.toFixed(2)} s = ${(out.end.sum_received.bits_per_second / 1e9).toFixed(1)} Gbit/s through the forwarder`);
  for (const [port, s] of Object.entries(fw.stats())) {
    const drops = Object.values(s.drops).reduce((x, y) => x + y, 0);
    ctx.say(`${port}: rx ${s.rxPackets} frames / ${(s.rxBytes / 2 ** 20).toFixed(1)} MiB, tx ${s.txPackets} / ${(s.txBytes / 2 ** 20).toFixed(1)} MiB, drops ${drops}, average rx frame ${Math.round(s.rxBytes / s.rxPackets)} B`);
  }
  ctx.say(`forwarder CPU: ${fw.cpu().map((c) => c.toFixed(2) + ' s').join(', ')}`);
  ctx.say(`learned: ${fw.fdb().map((e) => `${e.mac} on ${e.port}`).join(', ')}`);
}
