// macvtap create + open + delete rates: vnetlink (link.add, macvtap.open, close, delGroup)
// against `ip -batch` plus opening /dev/tap<ifindex>, in the same run, in a fresh namespace
// whose uplink is a veth. Deletion is one group delete on both sides (one by one, each
// device costs an RCU wait that would hide everything else). Closing a macvtap fd costs an
// RCU wait in the kernel (synchronize_net in tap_put_queue) on both sides, so it is its own phase.
//
//   node bench/macvtap.mjs [N=200] [ROUNDS=5]
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { open, Netns } from '../dist/index.js';

const N = Number(process.argv[2] ?? 200);
const ROUNDS = Number(process.argv[3] ?? 5);
const GROUP = 7;
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const now = () => performance.now();

const ns = await Netns.create(`bench-mt-${process.pid}`);
const nl = await open({ netns: ns });
const res = { vnl: { create: [], open: [], close: [], del: [], total: [] }, ip: { create: [], open: [], close: [], del: [], total: [], openFailed: 0 } };
try {
  await nl.link.add({ kind: 'veth', name: 'u0', peer: { name: 'u1' }, up: true });
  await nl.link.set('u1', { up: true });
  for (let r = 0; r < ROUNDS; r++) {
    // vnetlink: create N, open each (vnet header on, as a VM would), close, delete the group.
    let t0 = now();
    const names = [];
    for (let i = 0; i < N; i++) names.push((await nl.link.add({ kind: 'macvtap', name: `mt${i}`, link: 'u0', mode: 'bridge', group: GROUP })).name);
    let t1 = now();
    const qs = [];
    for (const n of names) qs.push(await nl.macvtap.open(n, { vnetHdr: true }));
    let t2 = now();
    for (const q of qs) await q.close();
    let tc = now();
    await nl.link.delGroup(GROUP);
    let t3 = now();
    res.vnl.create.push(t1 - t0); res.vnl.open.push(t2 - t1); res.vnl.close.push(tc - t2); res.vnl.del.push(t3 - tc); res.vnl.total.push(t3 - t0);

    // The anchor: one `ip -batch` process creates them, one `ip -j` lists the ifindexes, then
    // /dev/tap<ifindex> is opened and closed for each (trusting a node that may belong to
    // another namespace's macvtap: the problem vnetlink avoids), and `ip -batch` deletes.
    t0 = now();
    execFileSync('ip', ['-n', ns.name, '-batch', '-'], { input: names.map((n) => `link add ${n} link u0 group ${GROUP} type macvtap mode bridge\n`).join('') });
    t1 = now();
    const idx = JSON.parse(execFileSync('ip', ['-n', ns.name, '-j', 'link', 'show', 'type', 'macvtap'], { encoding: 'utf8' })).map((l) => l.ifindex);
    const fds = [];
    for (const i of idx) {
      try { fds.push(fs.openSync(`/dev/tap${i}`, fs.constants.O_RDWR | fs.constants.O_NONBLOCK)); } catch { res.ip.openFailed++; }
    }
    t2 = now();
    for (const fd of fds) fs.closeSync(fd);
    tc = now();
    execFileSync('ip', ['-n', ns.name, '-batch', '-'], { input: `link del group ${GROUP}\n` });
    t3 = now();
    res.ip.create.push(t1 - t0); res.ip.open.push(t2 - t1); res.ip.close.push(tc - t2); res.ip.del.push(t3 - tc); res.ip.total.push(t3 - t0);
  }
} finally {
  await nl.close();
  await ns.delete();
}

const rate = (ms) => (N / (ms / 1000)).toFixed(0);
console.log(`macvtap, N=${N}, ${ROUNDS} rounds, medians (per second):`);
console.log('phase            vnetlink   ip -batch + /dev/tapN   ratio');
for (const k of ['create', 'open', 'close', 'del', 'total']) {
  const a = median(res.vnl[k]), b = median(res.ip[k]);
  console.log(`${(k === 'del' ? 'delete (group)' : k === 'total' ? 'create+open+del' : k).padEnd(16)} ${rate(a).padStart(8)}   ${rate(b).padStart(21)}   ${(b / a).toFixed(2)}x`);
}
if (res.ip.openFailed) console.log(`(/dev/tapN opens that failed: ${res.ip.openFailed} of ${N * ROUNDS})`);
