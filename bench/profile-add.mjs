#!/usr/bin/env node
// Where the time of one awaited link.add goes: the same veth create, interleaved in blocks of
// 20 in one namespace so machine noise hits every variant alike, as medians of per-call times:
//   api      nl.link.add(spec)                       (TS validation + echo + decode)
//   echo     the native op with the normalized spec  (no TS validation)
//   noecho   the same without NLM_F_ECHO             (= link.add(spec, { echo: false }))
//   noop     a do-nothing op: the event-loop + thread hand-off round trip alone
// Usage (root, after npm run build): node bench/profile-add.mjs [ROUNDS]
import { open, Netns } from '../dist/index.js';
import { normalizeSpec } from '../dist/link.js';

const rounds = Number(process.argv[2] ?? 30);
const ns = await Netns.create(`vnl-prof-${process.pid}`);
const nl = await open({ netns: ns.name });
const lat = { api: [], echo: [], noecho: [], noop: [] };
const med = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
try {
  let i = 0;
  for (let round = 0; round < rounds; round++) {
    for (const mode of Object.keys(lat)) {
      for (let k = 0; k < 20; k++, i++) {
        const spec = { kind: 'veth', name: `d${i}`, group: 9, peer: { name: `d${i}p`, group: 9 } };
        const t = performance.now();
        if (mode === 'api') await nl.link.add(spec);
        else if (mode === 'echo') await nl._call('link.add', normalizeSpec('link.add', spec));
        else if (mode === 'noecho') await nl._call('link.add', { ...normalizeSpec('link.add', spec), echo: false });
        else await nl._call('noop', {}, 'handle.ready');
        lat[mode].push(performance.now() - t);
      }
    }
    if (round % 10 === 9) await nl.link.delGroup(9);
  }
  for (const [k, v] of Object.entries(lat)) console.log(`${k.padEnd(7)} median ${(med(v) * 1000).toFixed(0)} us over ${v.length} calls`);
} finally {
  await nl.close();
  await ns.delete();
}
