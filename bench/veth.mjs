#!/usr/bin/env node
// Issue 2's benchmark: create then delete N (default 1000) veth pairs, one at a time and
// awaited, through the API, next to `ip -batch`, one `ip link add` process per pair and the
// raw-netlink C floor, in the same run. Deletes are all one by one here (no group delete).
//   node bench/veth.mjs [--count N] [--repeat R] [--json]
// Needs root and a built package (npm run build).
import { benchCreate, formatReport } from '../dist/bench/create.js';

const args = process.argv.slice(2);
const opt = (name, d) => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : d; };
const count = opt('--count', 1000);
const rep = await benchCreate({
  kinds: ['veth'], count, delSample: count, repeat: opt('--repeat', 1),
  tools: ['api', 'c', 'ip-batch', 'ip-proc'],
  progress: process.stderr.isTTY ? (l) => process.stderr.write(`\r\x1b[K${l}`) : undefined,
});
if (process.stderr.isTTY) process.stderr.write('\r\x1b[K');
if (args.includes('--json')) console.log(JSON.stringify(rep, null, 2));
else {
  console.log(formatReport(rep));
  const by = Object.fromEntries(rep.results.map((r) => [r.tool, r]));
  const ratio = (a, b) => (a / b).toFixed(2);
  console.log(`\nAPI vs ip -batch: creates ${ratio(by.api.createPerSec, by['ip-batch'].createPerSec)}x, deletes ${ratio(by.api.delOnePerSec, by['ip-batch'].delOnePerSec)}x`);
  console.log(`API vs ip per pair: creates ${ratio(by.api.createPerSec, by['ip-proc'].createPerSec)}x, deletes ${ratio(by.api.delOnePerSec, by['ip-proc'].delOnePerSec)}x`);
}
