// Creation and deletion rates of bridges and taps (1 and 4 queues) through vnetlink, against
// `ip -batch` measured in the same run, in fresh namespaces. Deletion one by one costs an RCU
// grace period per device, so it is measured on a sample of each batch; the rest is removed
// with a group delete (link.delGroup vs `ip link del group`), which is timed as well.
//
//   node bench/create-bridge-tap.mjs [--n 1000] [--sample 100] [--reps 3] [--kinds bridge,tap,tap4]
//
// Prints one line per measurement and a summary of medians with ratios against ip -batch.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open, Netns } from '../dist/index.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const N = Number(arg('n', 1000));
const SAMPLE = Number(arg('sample', 100));
const REPS = Number(arg('reps', 3));
const KINDS = arg('kinds', 'bridge,tap,tap4').split(',');
const GROUP = 77;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnl-bench-'));

const now = () => performance.now();
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };

function ipBatch(ns, lines) {
  const f = path.join(tmp, 'batch');
  fs.writeFileSync(f, lines.join('\n') + '\n');
  const t0 = now();
  const r = spawnSync('ip', ['-n', ns, '-batch', f], { encoding: 'utf8' });
  const ms = now() - t0;
  if (r.status !== 0) throw new Error(`ip -batch failed: ${r.stderr}`);
  return ms;
}
function ipCmd(ns, args) {
  const t0 = now();
  const r = spawnSync('ip', ['-n', ns, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')} failed: ${r.stderr}`);
  return now() - t0;
}
const linkCount = (ns) => JSON.parse(spawnSync('ip', ['-n', ns, '-j', 'link', 'show'], { encoding: 'utf8' }).stdout).length;

const results = {};  // key -> [rates]
function record(key, count, ms) {
  const rate = (count / ms) * 1000;
  (results[key] ??= []).push(rate);
  console.log(`${key.padEnd(34)} ${String(count).padStart(5)} in ${ms.toFixed(0).padStart(6)} ms = ${rate.toFixed(0).padStart(6)}/s`);
}

const name = (kind, i) => `${kind === 'bridge' ? 'b' : 't'}${i}`;

async function viaApi(kind, ns) {
  const nl = await open({ netns: ns.name });
  try {
    const taps = [];
    let t0 = now();
    for (let i = 0; i < N; i++) {
      if (kind === 'bridge') await nl.link.add({ kind: 'bridge', name: name(kind, i), group: GROUP });
      else taps.push(await nl.tap.create({ name: name(kind, i), queues: kind === 'tap4' ? 4 : 1, group: GROUP }));
    }
    record(`${kind} create api`, N, now() - t0);
    t0 = now();
    for (let i = 0; i < SAMPLE; i++) {
      if (kind === 'bridge') await nl.link.del(name(kind, i));
      else await taps[i].close();  // a non-persistent tap goes with its last fd
    }
    record(`${kind} delete one-by-one api`, SAMPLE, now() - t0);
    t0 = now();
    await nl.link.delGroup(GROUP);
    for (const t of taps.slice(SAMPLE)) await t.close();  // devices are gone; closing is cheap now
    record(`${kind} delete group api`, N - SAMPLE, now() - t0);
  } finally {
    await nl.close();
  }
  if (linkCount(ns.name) !== 1) throw new Error('api run left links behind');
}

function viaIp(kind, ns) {
  const add = [];
  for (let i = 0; i < N; i++) {
    if (kind === 'bridge') add.push(`link add ${name(kind, i)} group ${GROUP} type bridge`);
    else add.push(`tuntap add dev ${name(kind, i)} mode tap${kind === 'tap4' ? ' multi_queue' : ''}`);
  }
  record(`${kind} create ip-batch`, N, ipBatch(ns.name, add));
  const del = [];
  for (let i = 0; i < SAMPLE; i++) del.push(`link del ${name(kind, i)}`);
  record(`${kind} delete one-by-one ip-batch`, SAMPLE, ipBatch(ns.name, del));
  if (kind !== 'bridge') {
    // ip tuntap takes no group: tag the rest untimed.
    const tag = [];
    for (let i = SAMPLE; i < N; i++) tag.push(`link set ${name(kind, i)} group ${GROUP}`);
    ipBatch(ns.name, tag);
  }
  record(`${kind} delete group ip`, N - SAMPLE, ipCmd(ns.name, ['link', 'del', 'group', String(GROUP)]));
  if (linkCount(ns.name) !== 1) throw new Error('ip run left links behind');
}

const made = [];
try {
  console.log(`n=${N} sample=${SAMPLE} reps=${REPS} kinds=${KINDS.join(',')} node ${process.version} kernel ${os.release()} cpus ${os.cpus().length}`);
  for (let rep = 0; rep < REPS; rep++) {
    for (const kind of KINDS) {
      const ns = await Netns.create(`vnl-bench-${process.pid}-${rep}-${kind}`);
      made.push(ns);
      // Alternate which side goes first so drift on a shared machine does not favour one.
      if (rep % 2 === 0) { await viaApi(kind, ns); viaIp(kind, ns); } else { viaIp(kind, ns); await viaApi(kind, ns); }
      await ns.delete();
      made.pop();
    }
  }
  console.log('\nmedians over reps (per second), ratio = api / ip');
  for (const kind of KINDS) {
    for (const [what, api, ip] of [
      ['create', `${kind} create api`, `${kind} create ip-batch`],
      ['delete one-by-one', `${kind} delete one-by-one api`, `${kind} delete one-by-one ip-batch`],
      ['delete group', `${kind} delete group api`, `${kind} delete group ip`],
    ]) {
      const a = median(results[api]), b = median(results[ip]);
      console.log(`${kind.padEnd(6)} ${what.padEnd(18)} api ${a.toFixed(0).padStart(6)}  ip ${b.toFixed(0).padStart(6)}  ratio ${(a / b).toFixed(2)}`);
    }
    const g = median(results[`${kind} delete group api`]), o = median(results[`${kind} delete one-by-one api`]);
    console.log(`${kind.padEnd(6)} delGroup vs one-by-one (api): ${(g / o).toFixed(1)}x`);
  }
} finally {
  for (const ns of made) await ns.delete().catch(() => {});
  fs.rmSync(tmp, { recursive: true, force: true });
}
process.exit(0);
