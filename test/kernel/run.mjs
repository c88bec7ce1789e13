#!/usr/bin/env node
// npm run test:kernel -- [--accel auto|kvm|tcg] [--timeout SECONDS] [--all | test/kinds/FILE.test.ts ...]
// Runs link-kind tests inside a QEMU guest booted with Debian's stock kernel, which has the kinds'
// modules a host kernel may lack (dummy, 8021q, bonding, ipvlan, vrf, geneve, gre, wireguard,
// netkit, ...): by default the test/kinds/*.test.ts this host cannot run in full (kinds.mjs's
// guestReason, from a probe of this kernel), with --all every one, or the files named. The
// guest's root is the host's / shared read-only over virtio-9p under a tmpfs overlay, so it runs
// this checkout with the host's node and tools; the tests see VNETLINK_KERNEL_GUEST=1 (a kind whose
// module is missing fails there instead of skipping). All the files run in one vitest, one after
// another in one worker. Prints the guest's vitest output and exits with its exit code; on its
// time limit it kills QEMU and exits 1.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { guestReason, kindProbe } from './kinds.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const KINDS_DIR = 'test/kinds';
const FILE_RE = /^test\/kinds\/[A-Za-z0-9][A-Za-z0-9._-]*\.test\.ts$/;
/** Boot, module loading and vitest's own start, on top of the tests' time limit. */
const BOOT_SLACK_SEC = 180;

/**
 * The runner's options from its arguments; throws an Error naming the bad argument.
 * @param {string[]} argv
 * @param {{ exists?: (file: string) => boolean }} [io]
 */
export function parseArgs(argv, { exists = (f) => fs.existsSync(path.join(root, f)) } = {}) {
  const o = { accel: 'auto', timeoutSec: 600, all: false, files: /** @type {string[]} */ ([]) };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--accel') {
      const v = value();
      if (!['auto', 'kvm', 'tcg'].includes(v)) throw new Error(`--accel must be auto, kvm or tcg, not ${JSON.stringify(v)}`);
      o.accel = v;
    } else if (a === '--timeout') {
      const v = value();
      const n = Number(v);
      if (!/^\d+$/.test(v) || n < 10 || n > 3600) throw new Error(`--timeout must be whole seconds from 10 to 3600, not ${JSON.stringify(v)}`);
      o.timeoutSec = n;
    } else if (a === '--all') {
      o.all = true;
    } else if (a.startsWith('-')) {
      throw new Error(`unknown option ${JSON.stringify(a)}`);
    } else {
      // Only kind tests, by their path in the checkout: the guest gets them as words of a shell
      // command line, and nothing else belongs in a guest run.
      const f = path.posix.normalize(a.replace(/^\.\//, ''));
      if (!FILE_RE.test(f)) throw new Error(`test file ${JSON.stringify(a)} is not ${KINDS_DIR}/NAME.test.ts`);
      if (!exists(f)) throw new Error(`test file ${JSON.stringify(a)} does not exist`);
      if (!o.files.includes(f)) o.files.push(f);
    }
  }
  if (o.all && o.files.length) throw new Error('--all and test files exclude each other');
  return o;
}

/** The kind tests in the checkout, sorted. */
export function kindTests(dir = path.join(root, KINDS_DIR)) {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).map((f) => `${KINDS_DIR}/${f}`).filter((f) => FILE_RE.test(f)).sort();
}

/**
 * The kind tests to boot the guest for, each with why; the others this host runs in full.
 * @param {string[]} files
 * @param {(kind: string) => boolean} has
 */
export function selectFiles(files, has, read = (f) => fs.readFileSync(path.join(root, f), 'utf8')) {
  const guest = [], host = [];
  for (const f of files) {
    const why = guestReason(read(f), has);
    if (why) guest.push({ file: f, why }); else host.push(f);
  }
  return { guest, host };
}

/**
 * The accelerator arguments. Under TCG the guest CPU gets every feature QEMU emulates (node
 * needs more than qemu64) and each vCPU its own host thread.
 */
const TCG = ['-accel', 'tcg,thread=multi', '-cpu', 'max'];
async function accelFor(mode, log) {
  if (mode === 'kvm') return ['-accel', 'kvm', '-cpu', 'host'];
  if (mode === 'tcg') return TCG;
  const { accelArgs, kvmRefusal } = await import('../../examples/vm/qemu-guest.js');
  const why = kvmRefusal();
  const a = await accelArgs();
  if (!a.includes('tcg')) return a;
  log(`test:kernel: TCG, ${why || 'KVM did not boot the probe guest'} (several times slower)`);
  return TCG;
}

async function main() {
  let o;
  try {
    o = parseArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`test:kernel: ${e.message}`);
    return 2;
  }
  const started = Date.now();
  // First: the kind probes below need iproute2, and a fresh machine may not have it yet.
  const { ensurePackages } = await import('../setup/packages.mjs');
  ensurePackages('tests');
  let files = o.files;
  if (!files.length) {
    const all = kindTests();
    let picked;
    try {
      picked = o.all ? { guest: all.map((file) => ({ file, why: '--all' })), host: [] } : selectFiles(all, kindProbe);
    } catch (e) {
      console.error(`test:kernel: probing this kernel's link kinds: ${e.message}`);
      return 1;
    }
    for (const g of picked.guest) console.log(`test:kernel: ${g.file} runs in the guest: ${g.why}`);
    if (picked.host.length) console.log(`test:kernel: this host runs in full (npm test), so not in the guest: ${picked.host.join(' ')}`);
    files = picked.guest.map((g) => g.file);
    if (!files.length) {
      // Not an error: every kind test already runs in full on this host.
      console.log(`test:kernel: no ${KINDS_DIR}/*.test.ts needs the guest on this host, nothing to run`);
      return 0;
    }
  }
  const secs = (t) => `${((t - started) / 1000).toFixed(1)} s`;
  const { kernelPieces, writeInitrd } = await import('./image.mjs');
  const { QEMU, Vm } = await import('../../examples/vm/qemu-guest.js');
  const k = kernelPieces((s) => console.log(s));
  const accel = await accelFor(o.accel, (s) => console.log(s));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-kernel-'));
  /** @type {import('../../examples/vm/qemu-guest.js').Vm | undefined} */
  let vm;
  const onSignal = (sig) => {
    // Synchronous: the process is about to end, QEMU and the temp dir must not outlive it.
    if (vm?.pid) try { process.kill(vm.pid, 'SIGKILL'); } catch { /* gone */ }
    fs.rmSync(tmp, { recursive: true, force: true });
    process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const initrd = writeInitrd(k, { project: root, node: process.execPath, files, ci: process.env.CI ?? '', timeoutSec: o.timeoutSec }, tmp);
    const args = [...accel, '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio', '-no-reboot',
      '-m', '2048', '-smp', '2', '-kernel', k.vmlinuz, '-initrd', initrd,
      // A TCG guest starved of host CPU is slow, not broken: no_timer_check, or the kernel's check
      // that the timer interrupt arrives in time panics at boot ("IO-APIC + timer doesn't work!",
      // seen at a load of 19); and no RCU stall reports, pages of console output for nothing.
      '-append', 'console=ttyS0 quiet panic=-1 oops=panic no_timer_check rcupdate.rcu_cpu_stall_suppress=1',
      '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap'];
    console.log(`test:kernel: ${k.key.replace(/^kinds-/, '')} (${accel.join(' ')}), ${files.length} file(s): ${files.join(' ')}`);
    const spawned = Date.now();
    const child = spawn(QEMU, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    vm = new Vm(child, 'kernel guest');
    // Echo the console as it arrives (the guest's vitest output), with the boot milestones timed.
    let printed = 0;
    const echo = () => {
      for (; printed < vm.lines.length; printed++) {
        const l = vm.lines[printed];
        if (/^VNLK (stage1|stage2|modules) /.test(l)) console.log(`${l}   [${((Date.now() - spawned) / 1000).toFixed(1)} s after QEMU started]`);
        else console.log(l);
      }
    };
    child.stdout.on('data', () => setImmediate(echo));
    const end = await vm.line(/^VNLK rc=\d+$/, 'the guest test run', (o.timeoutSec + BOOT_SLACK_SEC) * 1000);
    echo();
    const rc = Number(end.slice('VNLK rc='.length));
    let timer;
    const off = await Promise.race([vm.exited.then(() => true), new Promise((r) => { timer = setTimeout(r, 30_000, false); })]);
    clearTimeout(timer);
    if (!off) console.error('test:kernel: the guest did not power off within 30 s; killed');
    const err = vm.lines.find((l) => l.startsWith('VNLK error='));
    if (err) console.error(`test:kernel: the guest failed before the tests ran: ${err.slice(5)}`);
    console.log(`test:kernel: guest vitest exit code ${rc}, ${secs(Date.now())} in all`);
    return rc;
  } catch (e) {
    console.error(`test:kernel: ${e.message}`);
    return 1;
  } finally {
    await vm?.kill();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  process.exitCode = await main();
}
