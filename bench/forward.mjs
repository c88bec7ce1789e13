// Forwarding benchmark: two guest namespaces, each holding one tap (or a veth end), joined by
//   fw       vnetlink's Forwarder (wire mode) over the taps' fds, vnet header + TSO offloads
//   fw-busy  the same with busyPollUs: 20000 (--busy)
//   bridge   a kernel bridge between two veths (anchor)
//   vde      vde_switch over two taps (anchor)
// Measures iperf3 TCP Gbit/s, iperf3 UDP 64-byte delivered packets/s, ping RTT, and the CPU the
// forwarder (or vde_switch) used. Rounds interleave the variants; medians and ratios against
// the same run's kernel bridge are printed.
//
//   fw-mixed (only with --only) fw, but b's tap has no vnet header (software segmentation)
//
// With --quad: four guests on one switch, two pairs (1->2, 3->4) running at the same time:
//   fw4 / fw4-busy  one Forwarder in switch mode over four taps (without / with busyPollUs)
//   bridge4         a kernel bridge over four veths (anchor)
// Per pair and aggregate TCP Gbit/s and UDP 64 B pps, ping RTT per pair (one pair at a time).
//
//   node bench/forward.mjs [--rounds 3] [--secs 2] [--busy 20000] [--only fw,fw-mixed,bridge,vde] [--quad]
//   (root; nothing touches the root namespace)
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Forwarder, Netns, open } from '../dist/index.js';

const arg = (k, d) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? Number(process.argv[i + 1]) : d; };
const ROUNDS = arg('rounds', 3);
const SECS = arg('secs', 2);
const BUSY = arg('busy', 20000);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnl-bench-fwd-'));
const tag = `${process.pid}`;
const ipA = '198.51.100.1', ipB = '198.51.100.2';

const ip = (...a) => execFileSync('ip', a, { encoding: 'utf8' });
const inNs = (ns, cmd, args, timeout = 60_000) => execFileSync('ip', ['netns', 'exec', ns.name, cmd, ...args], { encoding: 'utf8', timeout });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const median = (xs) => { const s = [...xs].sort((x, y) => x - y); return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN; };
const procCpu = (pid) => { const f = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" "); return (Number(f[11]) + Number(f[12])) / 100; }; // utime+stime, USER_HZ=100

const QUAD = process.argv.includes('--quad');
const gA = await Netns.create(`vb-fwd-a-${tag}`);
const gB = await Netns.create(`vb-fwd-b-${tag}`);
const H = await Netns.create(`vb-fwd-h-${tag}`);
const gC = QUAD ? await Netns.create(`vb-fwd-c-${tag}`) : undefined;
const gD = QUAD ? await Netns.create(`vb-fwd-d-${tag}`) : undefined;
const quad = QUAD ? [gA, gB, gC, gD] : [];
const quadIp = (i) => `198.51.100.${i + 1}`;
const execFileP = promisify(execFile);
const inNsP = async (ns, cmd, args, timeout = 60_000) => (await execFileP('ip', ['netns', 'exec', ns.name, cmd, ...args], { encoding: 'utf8', timeout })).stdout;
// Everything this run made lives in these namespaces and the temp dir: kill what runs inside,
// delete them, also on Ctrl-C or SIGTERM.
let tornDown = false;
async function teardown() {
  if (tornDown) return;
  tornDown = true;
  for (const ns of [gA, gB, H, ...quad.slice(2)]) {
    spawnSync('ip', ['netns', 'pids', ns.name], { encoding: 'utf8' }).stdout?.split('\n').filter(Boolean).forEach((p) => { try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ } });
    await ns.delete().catch(() => {});
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { teardown().finally(() => process.exit(130)); });

async function measure(cpuNow) {
  const r = {};
  const srvPid = path.join(tmp, 'iperf3.pid');
  inNs(gB, 'iperf3', ['-s', '-D', '-I', srvPid, '-B', ipB]);
  try {
    for (let i = 0; i < 50 && !fs.existsSync(srvPid); i++) await sleep(10);
    await sleep(100);
    const ping = inNs(gA, 'ping', ['-q', '-c', '100', '-i', '0.005', '-W', '1', ipB]);
    r.rttUs = Number(/= [\d.]+\/([\d.]+)\//.exec(ping)[1]) * 1000;
    let c0 = cpuNow(), t0 = process.hrtime.bigint();
    const tcp = JSON.parse(inNs(gA, 'iperf3', ['-c', ipB, '-t', String(SECS), '-J']));
    r.tcpGbps = tcp.end.sum_received.bits_per_second / 1e9;
    r.tcpCpu = (cpuNow() - c0) / (Number(process.hrtime.bigint() - t0) / 1e9);
    await sleep(100);
    c0 = cpuNow(); t0 = process.hrtime.bigint();
    const udp = JSON.parse(inNs(gA, 'iperf3', ['-c', ipB, '-u', '-l', '64', '-b', '0', '-t', String(SECS), '-J']));
    const u = udp.end.sum_received ?? udp.end.sum;
    r.udpPps = (u.packets - u.lost_packets) / u.seconds;
    r.udpCpu = (cpuNow() - c0) / (Number(process.hrtime.bigint() - t0) / 1e9);
  } finally {
    try { process.kill(Number(fs.readFileSync(srvPid, 'utf8')), 'SIGKILL'); } catch { /* gone */ }
    fs.rmSync(srvPid, { force: true });
  }
  return r;
}

// Two pairs at once (0->1, 2->3): the switch carries both streams.
async function measure4(cpuNow) {
  const r = { pairs: [] };
  const pids = [1, 3].map((i) => path.join(tmp, `iperf3-${i}.pid`));
  for (const [k, i] of [[0, 1], [1, 3]]) inNs(quad[i], 'iperf3', ['-s', '-D', '-I', pids[k], '-B', quadIp(i)]);
  try {
    for (let i = 0; i < 50 && !pids.every((p) => fs.existsSync(p)); i++) await sleep(10);
    await sleep(100);
    const rtt = [];
    for (const [a, b] of [[0, 1], [2, 3]]) {
      const ping = inNs(quad[a], 'ping', ['-q', '-c', '100', '-i', '0.005', '-W', '1', quadIp(b)]);
      rtt.push(Number(/= [\d.]+\/([\d.]+)\//.exec(ping)[1]) * 1000);
    }
    let c0 = cpuNow(), t0 = process.hrtime.bigint();
    const tcp = await Promise.all([[0, 1], [2, 3]].map(([a, b]) => inNsP(quad[a], 'iperf3', ['-c', quadIp(b), '-t', String(SECS), '-J'])));
    const tcpG = tcp.map((o) => JSON.parse(o).end.sum_received.bits_per_second / 1e9);
    r.tcpCpu = (cpuNow() - c0) / (Number(process.hrtime.bigint() - t0) / 1e9);
    await sleep(100);
    c0 = cpuNow(); t0 = process.hrtime.bigint();
    const udp = await Promise.all([[0, 1], [2, 3]].map(([a, b]) => inNsP(quad[a], 'iperf3', ['-c', quadIp(b), '-u', '-l', '64', '-b', '0', '-t', String(SECS), '-J'])));
    const udpP = udp.map((o) => { const e = JSON.parse(o).end; const u = e.sum_received ?? e.sum; return (u.packets - u.lost_packets) / u.seconds; });
    r.udpCpu = (cpuNow() - c0) / (Number(process.hrtime.bigint() - t0) / 1e9);
    r.pairs = [0, 1].map((k) => ({ tcpGbps: tcpG[k], udpPps: udpP[k], rttUs: rtt[k] }));
    r.tcpGbps = tcpG[0] + tcpG[1];
    r.udpPps = udpP[0] + udpP[1];
    r.rttUs = (rtt[0] + rtt[1]) / 2;
  } finally {
    for (const p of pids) { try { process.kill(Number(fs.readFileSync(p, 'utf8')), 'SIGKILL'); } catch { /* gone */ } fs.rmSync(p, { force: true }); }
  }
  return r;
}

async function fw4Run(busyPollUs) {
  const hs = await Promise.all(quad.map((ns) => open({ netns: ns })));
  const offloads = { csum: true, tso4: true, tso6: true };
  const taps = [];
  for (const [i, h] of hs.entries()) {
    taps.push(await h.tap.create({ name: 'tap0', vnetHdr: true, offloads, up: true }));
    await h.addr.add('tap0', `${quadIp(i)}/24`);
  }
  const fw = new Forwarder({ mode: 'switch', busyPollUs });
  taps.forEach((t, i) => fw.add(`g${i}`, t.fds));
  for (const t of taps) await t.close();
  fw.start();
  try {
    return await measure4(() => fw.cpu().reduce((x, y) => x + y, 0));
  } finally {
    await fw.close();
    for (const h of hs) await h.close();
  }
}

async function addrs(devA, devB) {
  for (const [ns, dev, a] of [[gA, devA, ipA], [gB, devB, ipB]]) {
    ip('-n', ns.name, 'link', 'set', dev, 'up');
    ip('-n', ns.name, 'addr', 'add', `${a}/24`, 'dev', dev);
  }
}

const variants = {
  async fw(busyPollUs = 0, plainB = false) {
    const na = await open({ netns: gA }), nb = await open({ netns: gB });
    const offloads = { csum: true, tso4: true, tso6: true };
    const ta = await na.tap.create({ name: 'tap0', vnetHdr: true, offloads, up: true });
    const tb = await nb.tap.create(plainB ? { name: 'tap0', up: true } : { name: 'tap0', vnetHdr: true, offloads, up: true });
    await na.addr.add('tap0', `${ipA}/24`); await nb.addr.add('tap0', `${ipB}/24`);
    const fw = new Forwarder({ mode: 'wire', busyPollUs });
    fw.add('a', ta.fds); fw.add('b', tb.fds);
    await ta.close(); await tb.close(); // the forwarder holds its own copies
    fw.start();
    try {
      return await measure(() => fw.cpu().reduce((x, y) => x + y, 0));
    } finally {
      await fw.close(); await na.close(); await nb.close();
    }
  },
  async 'fw-busy'() { return fwRun(BUSY); },
  // b's tap has no vnet header: a's GSO frames are segmented in software on the way.
  async 'fw-mixed'() { return fwRun(0, true); },
  async bridge() {
    ip('-n', H.name, 'link', 'add', 'br0', 'type', 'bridge');
    ip('-n', H.name, 'link', 'set', 'br0', 'up');
    for (const [ns, p] of [[gA, 'va'], [gB, 'vb']]) {
      ip('-n', ns.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', p, 'netns', H.name);
      ip('-n', H.name, 'link', 'set', p, 'master', 'br0', 'up');
    }
    await addrs('eth0', 'eth0');
    try {
      return await measure(() => 0);
    } finally {
      ip('-n', gA.name, 'link', 'del', 'eth0'); ip('-n', gB.name, 'link', 'del', 'eth0');
      ip('-n', H.name, 'link', 'del', 'br0');
    }
  },
  async vde() {
    const pidf = path.join(tmp, 'vde.pid');
    ip('-n', H.name, 'tuntap', 'add', 'dev', 'tapa', 'mode', 'tap');
    ip('-n', H.name, 'tuntap', 'add', 'dev', 'tapb', 'mode', 'tap');
    inNs(H, 'vde_switch', ['-t', 'tapa', '-t', 'tapb', '-s', path.join(tmp, 'vde.sock'), '-M', path.join(tmp, 'vde.mgmt'), '-d', '-p', pidf]);
    for (let i = 0; i < 100 && !fs.existsSync(pidf); i++) await sleep(10);
    const pid = Number(fs.readFileSync(pidf, 'utf8'));
    ip('-n', H.name, 'link', 'set', 'tapa', 'netns', gA.name);
    ip('-n', H.name, 'link', 'set', 'tapb', 'netns', gB.name);
    await addrs('tapa', 'tapb');
    try {
      return await measure(() => procCpu(pid));
    } finally {
      try { process.kill(pid, 'SIGTERM'); } catch { /* gone */ }
      await sleep(50);
      for (const [ns, d] of [[gA, 'tapa'], [gB, 'tapb']]) spawnSync('ip', ['-n', ns.name, 'link', 'del', d]);
      fs.rmSync(path.join(tmp, 'vde.sock'), { recursive: true, force: true });
    }
  },
};

variants.fw4 = () => fw4Run(0);
variants['fw4-busy'] = () => fw4Run(BUSY);
variants.bridge4 = async () => {
  ip('-n', H.name, 'link', 'add', 'br4', 'type', 'bridge');
  ip('-n', H.name, 'link', 'set', 'br4', 'up');
  quad.forEach((ns, i) => {
    ip('-n', ns.name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', `q${i}`, 'netns', H.name);
    ip('-n', H.name, 'link', 'set', `q${i}`, 'master', 'br4', 'up');
    ip('-n', ns.name, 'link', 'set', 'eth0', 'up');
    ip('-n', ns.name, 'addr', 'add', `${quadIp(i)}/24`, 'dev', 'eth0');
  });
  try {
    return await measure4(() => 0);
  } finally {
    for (const ns of quad) ip('-n', ns.name, 'link', 'del', 'eth0');
    ip('-n', H.name, 'link', 'del', 'br4');
  }
};
const quadNames = ['fw4', 'fw4-busy', 'bridge4'];
const fwRun = variants.fw;
const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1].split(',') : null;
for (const k of Object.keys(variants)) {
  if (only ? !only.includes(k) : k === 'fw-mixed' || quadNames.includes(k) !== QUAD) delete variants[k];
  else if (quadNames.includes(k) && !QUAD) delete variants[k];
}
const results = Object.fromEntries(Object.keys(variants).map((k) => [k, []]));
try {
  for (let round = 0; round < ROUNDS; round++) {
    for (const [name, fn] of Object.entries(variants)) {
      const r = await fn();
      results[name].push(r);
      if (r.pairs) r.pairs.forEach((p, i) => console.error(`round ${round + 1} ${name.padEnd(8)} pair ${i + 1}: tcp ${p.tcpGbps.toFixed(2)} Gbit/s  udp64 ${Math.round(p.udpPps)} pps  rtt ${p.rttUs.toFixed(0)} us`));
      console.error(`round ${round + 1} ${name.padEnd(8)} tcp ${r.tcpGbps.toFixed(2)} Gbit/s  udp64 ${Math.round(r.udpPps)} pps  rtt ${r.rttUs.toFixed(0)} us  cpu tcp ${(r.tcpCpu * 100).toFixed(0)}% udp ${(r.udpCpu * 100).toFixed(0)}%`);
    }
  }
} finally {
  await teardown();
}

const med = {};
for (const [k, rs] of Object.entries(results)) {
  med[k] = Object.fromEntries(['tcpGbps', 'udpPps', 'rttUs', 'tcpCpu', 'udpCpu'].map((m) => [m, median(rs.map((r) => r[m]))]));
}
// Ratios are taken round by round (each against the anchor measured minutes apart at most),
// then the median: the machine is shared, and its load drifts between rounds.
const ratio = (k, anchor, m) => {
  if (QUAD && anchor === 'bridge') anchor = 'bridge4';
  return results[anchor] ? median(results[k].map((r, i) => r[m] / results[anchor][i][m])) : NaN;
};
console.log(`\nmedians of ${ROUNDS} rounds, ${SECS} s per iperf3 run, fw-busy = busyPollUs ${BUSY} (${os.cpus().length} CPUs, shared)\n`);
// vde_switch is measured only with two guests (--quad has no vde variant): no ×vde columns then.
const vde = Boolean(results.vde);
console.log(`| variant | TCP Gbit/s | ×bridge |${vde ? ' ×vde |' : ''} UDP 64 B pps | ×bridge |${vde ? ' ×vde |' : ''} ping RTT µs | ×bridge | CPU (TCP / UDP) |`);
console.log(`|---|---|---|${vde ? '---|' : ''}---|---|${vde ? '---|' : ''}---|---|---|`);
for (const [k, m] of Object.entries(med)) {
  const cpu = k === 'bridge' || k === 'bridge4' ? 'kernel' : `${(m.tcpCpu * 100).toFixed(0)}% / ${(m.udpCpu * 100).toFixed(0)}%`;
  const vdeCell = (metric, digits) => (vde ? ` ${ratio(k, 'vde', metric).toFixed(digits)} |` : '');
  console.log(`| ${k} | ${m.tcpGbps.toFixed(2)} | ${ratio(k, 'bridge', 'tcpGbps').toFixed(2)} |${vdeCell('tcpGbps', 1)} ${Math.round(m.udpPps)} | ${ratio(k, 'bridge', 'udpPps').toFixed(2)} |${vdeCell('udpPps', 2)} ${m.rttUs.toFixed(0)} | ${ratio(k, 'bridge', 'rttUs').toFixed(2)} | ${cpu} |`);
}
if (QUAD) {
  console.log('\nper pair (medians of the rounds; both pairs ran at the same time):\n');
  console.log('| variant | pair | TCP Gbit/s | UDP 64 B pps | ping RTT µs |');
  console.log('|---|---|---|---|---|');
  for (const [k, rs] of Object.entries(results)) for (const i of [0, 1]) {
    const m = (f) => median(rs.map((r) => r.pairs[i][f]));
    console.log(`| ${k} | ${i ? '3→4' : '1→2'} | ${m('tcpGbps').toFixed(2)} | ${Math.round(m('udpPps'))} | ${m('rttUs').toFixed(0)} |`);
  }
}
