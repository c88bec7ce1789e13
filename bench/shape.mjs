#!/usr/bin/env node
// Shaping accuracy: iperf3 TCP across a veth pair whose host end is shaped with
// nl.tc.shape(), for several rates, egress (host -> guest) and ingress (guest -> host, the
// ifb path on kernels without the police action). Reports the median of --repeat runs of
// --secs seconds each, as measured/target, and the unshaped rate of the same run as anchor.
// Usage: node bench/shape.mjs [--rates 10,50,100] [--repeat 3] [--secs 3]   (root; iperf3)
import { execFileSync, spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { open, Netns } from '../dist/index.js';

const { values } = parseArgs({ options: { rates: { type: 'string', default: '10,50,100' }, repeat: { type: 'string', default: '3' }, secs: { type: 'string', default: '3' } } });
const rates = values.rates.split(',').map(Number);
const repeat = Number(values.repeat), secs = Number(values.secs);
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };

const H = await Netns.create(`vnlbsh${process.pid}`), G = await Netns.create(`vnlbsg${process.pid}`);
const h = await open({ netns: H }), g = await open({ netns: G });
const inNs = (ns, ...a) => execFileSync('ip', ['netns', 'exec', ns.name, ...a], { encoding: 'utf8', timeout: (secs + 20) * 1000 });
try {
  await h.link.add({ kind: 'veth', name: 'hv0', peer: { name: 'eth0', netns: G }, up: true });
  await h.addr.add('hv0', '198.51.100.1/24');
  await g.link.set('eth0', { up: true });
  await g.addr.add('eth0', '198.51.100.2/24');
  const run = (reverse) => {
    spawnSync('ip', ['netns', 'exec', G.name, 'pkill', '-x', 'iperf3']);
    inNs(G, 'iperf3', '-s', '-D', '-1', '-B', '198.51.100.2');
    for (let i = 0; i < 100 && !inNs(G, 'ss', '-ltn').includes(':5201'); i++) execFileSync('sleep', ['0.05']);
    const j = JSON.parse(inNs(H, 'iperf3', '-c', '198.51.100.2', '-t', String(secs), '-J', ...(reverse ? ['-R'] : [])));
    return j.end.sum_received.bits_per_second / 1e6;
  };
  const rows = [];
  const free = [];
  for (let r = 0; r < repeat; r++) free.push(run(false));
  rows.push({ path: 'unshaped', target: '-', median: median(free).toFixed(1), ratio: '-' });
  for (const rate of rates) {
    await h.tc.shape('hv0', { egress: { rate: `${rate}mbit` }, ingress: { rate: `${rate}mbit` } });
    const down = [], up = [];
    for (let r = 0; r < repeat; r++) { down.push(run(false)); up.push(run(true)); }
    rows.push({ path: 'egress (htb)', target: rate, median: median(down).toFixed(1), ratio: (median(down) / rate).toFixed(3) });
    rows.push({ path: 'ingress (ifb + htb)', target: rate, median: median(up).toFixed(1), ratio: (median(up) / rate).toFixed(3) });
    await h.tc.unshape('hv0');
  }
  console.log(`load: ${execFileSync('cat', ['/proc/loadavg'], { encoding: 'utf8' }).trim()}`);
  console.log('| path | target Mbit/s | median Mbit/s | measured/target |');
  console.log('|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.path} | ${r.target} | ${r.median} | ${r.ratio} |`);
} finally {
  spawnSync('ip', ['netns', 'exec', G.name, 'pkill', '-x', 'iperf3']);
  await h.close(); await g.close();
  await H.delete(); await G.delete();
}
