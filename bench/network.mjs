// network.create + destroy round trips per second, and the time from network.create to a
// guest's first DHCP lease, in fresh namespaces. The anchor, measured in the same run, builds
// the same network the way a shell script would: ip link/addr, sysctl, `nft -f`, dnsmasq,
// then kill, `nft delete table`, `ip link del`.
//
//   node bench/network.mjs [--rounds 20] [--reps 3] [--leases 3]
//
// Prints one line per measurement and a summary of medians.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { open, Netns } from '../dist/index.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const ROUNDS = Number(arg('rounds', 20));
const REPS = Number(arg('reps', 3));
const LEASES = Number(arg('leases', 3));
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnl-bench-net-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));
const now = () => performance.now();
const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2; };
const results = {};
const record = (key, value, unit, note = '') => {
  (results[key] ??= { unit, xs: [] }).xs.push(value);
  console.log(`${key.padEnd(44)} ${value.toFixed(unit === '/s' ? 1 : 0).padStart(8)} ${unit} ${note}`);
};

const spec = (extra = {}) => ({ name: 'bench', bridge: 'virbr0', stp: false, address: '192.168.122.1/24',
  dhcp: { start: '192.168.122.2', end: '192.168.122.254', ping: false }, ...extra });

function sh(cmd, args, input) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

// The anchor: the same network from processes (what libvirt does through its helpers).
const NFT = `table ip vnetlink_bench {
  chain forward { type filter hook forward priority filter; policy accept;
    iifname "virbr0" oifname "virbr0" counter accept
    ip daddr 192.168.122.0/24 oifname "virbr0" ct state established,related counter accept
    ip saddr 192.168.122.0/24 iifname "virbr0" counter accept
    oifname "virbr0" counter reject
    iifname "virbr0" counter reject
  }
  chain prerouting { type nat hook prerouting priority dstnat; policy accept; }
  chain nat { type nat hook postrouting priority srcnat; policy accept;
    ip saddr 192.168.122.0/24 ip daddr 224.0.0.0/24 counter return
    ip saddr 192.168.122.0/24 ip daddr 255.255.255.255 counter return
    ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 meta l4proto tcp counter masquerade to :1024-65535
    ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 meta l4proto udp counter masquerade to :1024-65535
    ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 counter masquerade
  }
}
`;
function anchorRound(ns) {
  const dir = path.join(tmp, 'anchor');
  fs.mkdirSync(dir, { recursive: true });
  const conf = path.join(dir, 'dnsmasq.conf');
  fs.writeFileSync(conf, ['strict-order', `pid-file=${dir}/pid`, 'except-interface=lo', 'bind-dynamic', 'interface=virbr0',
    'dhcp-range=192.168.122.2,192.168.122.254,255.255.255.0', 'dhcp-no-override', 'dhcp-authoritative', 'dhcp-lease-max=253',
    `dhcp-leasefile=${dir}/leases`, 'no-ping', ''].join('\n'));
  sh('ip', ['-n', ns, 'link', 'add', 'virbr0', 'address', '52:54:00:00:00:01', 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
  sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv6.conf.virbr0.accept_ra=0', 'net.ipv6.conf.virbr0.autoconf=0']);
  sh('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], NFT);
  sh('ip', ['-n', ns, 'addr', 'add', '192.168.122.1/24', 'dev', 'virbr0']);
  sh('ip', ['-n', ns, 'link', 'set', 'virbr0', 'up']);
  sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  sh('ip', ['netns', 'exec', ns, '/usr/sbin/dnsmasq', `--conf-file=${conf}`]);
  const pid = Number(fs.readFileSync(path.join(dir, 'pid'), 'utf8'));
  process.kill(pid, 'SIGTERM');
  while (fs.existsSync(`/proc/${pid}/stat`) && !/\) [ZX] /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'))) spawnSync('sleep', ['0.005']);
  sh('ip', ['netns', 'exec', ns, 'nft', 'delete', 'table', 'ip', 'vnetlink_bench']);
  sh('ip', ['-n', ns, 'link', 'del', 'virbr0']);
  sh('ip', ['netns', 'exec', ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=0']);
}

const script = path.join(tmp, 'udhcpc.sh');
fs.writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && echo "$ip"\nexit 0\n', { mode: 0o755 });

async function firstLease(label, extra) {
  const H = await Netns.create(`vnl-bn-h-${process.pid}`);
  const G = await Netns.create(`vnl-bn-g-${process.pid}`);
  const h = await open({ netns: H });
  const g = await open({ netns: G });
  try {
    await h.link.add({ kind: 'veth', name: 'vnet0', peer: { name: 'eth0', netns: G } });
    await g.link.set('eth0', { up: true });
    const t0 = now();
    const net = await h.network.create(spec(extra));
    await net.attach('vnet0');
    const ip = execFileSync('ip', ['netns', 'exec', G.name, 'busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '30', '-T', '1', '-s', script],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const ms = now() - t0;
    if (!/^192\.168\.122\.\d+$/.test(ip)) throw new Error(`no lease: ${ip}`);
    record(`first lease: ${label}`, ms, 'ms', `(${ip})`);
    await net.destroy();
  } finally {
    await h.close(); await g.close(); await H.delete(); await G.delete();
  }
}

const ns = await Netns.create(`vnl-bn-${process.pid}`);
const h = await open({ netns: ns });
try {
  for (let rep = 0; rep < REPS; rep++) {
    let t0 = now();
    let create = 0, destroy = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const a = now();
      const net = await h.network.create(spec());
      const b = now();
      await net.destroy();
      create += b - a;
      destroy += now() - b;
    }
    record('vnetlink create+destroy round trips', (ROUNDS / (now() - t0)) * 1000, '/s');
    record('vnetlink network.create (mean)', create / ROUNDS, 'ms');
    record('vnetlink net.destroy (mean)', destroy / ROUNDS, 'ms');
    t0 = now();
    for (let i = 0; i < ROUNDS; i++) anchorRound(ns.name);
    record('anchor ip/sysctl/nft/dnsmasq round trips', (ROUNDS / (now() - t0)) * 1000, '/s');
  }
} finally {
  await h.close();
  await ns.delete();
}

for (let i = 0; i < LEASES; i++) await firstLease('no STP, no-ping', {});
for (let i = 0; i < LEASES; i++) await firstLease('no STP, dnsmasq pings first', { dhcp: { start: '192.168.122.2', end: '192.168.122.254' } });
for (let i = 0; i < LEASES; i++) await firstLease('STP on (seed), no-ping', { stp: true });
console.log('\nmedians:');
const fmt = (x, unit) => x.toFixed(unit === '/s' ? 1 : 0);
for (const [k, { unit, xs }] of Object.entries(results))
  console.log(`  ${k.padEnd(44)} ${fmt(median(xs), unit).padStart(8)} ${unit}  (n=${xs.length}, ${fmt(Math.min(...xs), unit)}–${fmt(Math.max(...xs), unit)})`);
const ours = median(results['vnetlink create+destroy round trips'].xs), anchor = median(results['anchor ip/sysctl/nft/dnsmasq round trips'].xs);
console.log(`  round trips vs anchor: ${(ours / anchor).toFixed(1)}x`);
