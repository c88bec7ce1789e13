// npm run demo: builds vnetlink's pictures inside throwaway namespaces, proves traffic flows,
// prints what it did and removes everything. Each part lives in examples/demo/NN-*.js and
// exports { title, run(ctx) }; ctx.say() prints, ctx.ns(prefix) makes a namespace that is
// deleted at the end, ctx.defer(fn) registers cleanup.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Netns } from '../dist/index.js';
import { ensurePackages, missingPackages, wanted } from '../test/setup/packages.mjs';

if (process.getuid?.() !== 0) {
  console.error('npm run demo: needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN, to make network namespaces); try: sudo npm run demo');
  process.exit(1);
}
// The tools the parts use to show their work (ping, dnsmasq, udhcpc, nft, Open vSwitch): installed
// here as root with apt-get, or named with the command that installs them. Without Open vSwitch
// only the OVS part is left out, and it says why.
try {
  ensurePackages('demo');
} catch (e) {
  if (missingPackages(wanted('demo')).some((p) => p !== 'openvswitch-switch')) {
    console.error(e.message);
    process.exit(1);
  }
}

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'demo');
const parts = fs.readdirSync(dir).filter((f) => /^\d+-.*\.js$/.test(f)).sort();
const only = process.argv.slice(2);

let failed = false;
for (const file of parts) {
  const part = await import(path.join(dir, file));
  if (only.length && !only.some((o) => file.includes(o))) continue;
  const cleanups = [];
  const ctx = {
    say: (...a) => console.log('  ' + a.join(' ')),
    ns: async (prefix) => {
      const ns = await Netns.create(`demo-${prefix}-${process.pid}`);
      cleanups.push(() => ns.delete());
      return ns;
    },
    defer: (fn) => cleanups.push(fn),
  };
  console.log(`\n== ${part.title}`);
  const t0 = performance.now();
  try {
    await part.run(ctx);
    console.log(`  ok (${(performance.now() - t0).toFixed(0)} ms)`);
  } catch (e) {
    failed = true;
    console.log(`  FAILED: ${e?.stack ?? e}`);
  } finally {
    for (const fn of cleanups.reverse()) {
      try { await fn(); } catch (e) { console.log(`  cleanup: ${e.message}`); }
    }
    console.log('  removed everything this part created');
  }
}
process.exit(failed ? 1 : 0);
