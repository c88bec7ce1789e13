// Booting a guest (test/vm/ and the demo): QEMU (256 MB, one vCPU, -nodefaults) with the serial console on pipes.
// The guest's /init (init.sh) answers commands written to the console with "VNL ..." lines;
// every wait here is for a line with given content, with a timeout and an AbortSignal.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { guestImage } from './image.js';

export const QEMU = 'qemu-system-x86_64';

/** @type {Promise<string[]> | undefined} */
let accel;

/**
 * Why KVM cannot boot a stock kernel here, known without booting one; '' when only a probe boot
 * can tell. PVM (the `kvm_pvm` vendor module, for machines whose own hypervisor gives them no
 * VT-x/AMD-V) runs only guest kernels built as PVM guests, which no Debian kernel is: QEMU either
 * aborts (`-cpu host`: "failed to set MSR 0x10a") or the kernel hangs before its first line.
 */
export function kvmRefusal() {
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
  } catch {
    return '/dev/kvm is not usable';
  }
  const vendor = (m) => fs.existsSync(`/sys/module/${m}`);
  if (vendor('kvm_pvm') && !vendor('kvm_intel') && !vendor('kvm_amd')) return 'KVM here is PVM (kvm_pvm), which boots only kernels built as PVM guests';
  return '';
}

/**
 * The accelerator arguments: KVM when it really boots our kernel, else TCG. `/dev/kvm` exists
 * on machines whose hypervisor cannot run a stock kernel under KVM (QEMU aborts, or the guest
 * dies with an emulation failure much later), so the probe boots the guest and waits a short
 * while for its first line. VNETLINK_VM_ACCEL=tcg|kvm skips the probe.
 */
export function accelArgs() {
  const forced = process.env.VNETLINK_VM_ACCEL;
  if (forced === 'tcg') return Promise.resolve(['-accel', 'tcg']);
  if (forced === 'kvm') return Promise.resolve(['-accel', 'kvm', '-cpu', 'host']);
  accel ??= (async () => {
    if (kvmRefusal()) return ['-accel', 'tcg'];
    const kvm = ['-accel', 'kvm', '-cpu', 'host'];
    const vm = Vm.spawn({ accel: kvm, scenario: 'probe', name: 'kvm-probe' });
    try {
      // Generous: a loaded machine is slow even with KVM, and falling back to TCG for a
      // slow probe makes every later boot many times slower.
      await vm.line(/^VNL probe=ok/, 'the KVM probe guest', 60_000);
      return kvm;
    } catch {
      return ['-accel', 'tcg'];
    } finally {
      await vm.kill();
    }
  })();
  return accel;
}

/**
 * @typedef {object} VmOptions
 * @property {string} name  a label for errors
 * @property {'agent' | 'probe'} [scenario]  what init.sh runs: 'agent' (commands over the console) or 'probe'
 * @property {string} [netns]  the network namespace QEMU runs in (through `ip netns exec`); it only uses the fds it is given
 * @property {string[]} [args]  QEMU arguments for the NICs, e.g. qemuNetdev(...).args
 * @property {(number | 'ignore')[]} [fds]  element i becomes the child's fd 3 + i (qemuNetdev(...).stdio.slice(3))
 * @property {string[]} [wrapper]  a command prefix QEMU runs under (e.g. a helper that opens taps, then execs QEMU)
 * @property {string[]} [accel]  accelerator arguments (default: accelArgs())
 */

/** @type {Set<Vm>} */
const live = new Set();

/** Kills every VM still running (afterAll safety net). */
export async function killAll() {
  await Promise.all([...live].map((vm) => vm.kill()));
}

/** One QEMU process and its console. */
export class Vm {
  /** Every console line so far (kernel and init), for error messages. */
  lines = [];
  #buf = '';
  /** @type {Set<() => void>} */
  #waiters = new Set();
  #seq = 0;
  #stderr = '';

  /** @internal use Vm.start / Vm.boot */
  constructor(child, name) {
    /** @type {import('node:child_process').ChildProcess} */
    this.child = child;
    /** @type {string} */
    this.name = name;
    live.add(this);
    /** @type {Promise<number | null>} */
    this.exited = new Promise((resolve) => child.once('exit', (code, sig) => {
      live.delete(this);
      this.lines.push(`[qemu exited: ${code ?? sig}]`);
      this.#wake();
      resolve(code);
    }));
    child.stdout.setEncoding('latin1');
    child.stdout.on('data', (d) => {
      this.#buf += d;
      let i;
      while ((i = this.#buf.indexOf('\n')) >= 0) {
        // Bound what we keep: a runaway guest must not grow memory without limit.
        if (this.lines.length < 20_000) this.lines.push(this.#buf.slice(0, i).replace(/\r$/, ''));
        this.#buf = this.#buf.slice(i + 1);
      }
      if (this.#buf.length > 65536) this.#buf = this.#buf.slice(-65536);
      this.#wake();
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => { if (this.#stderr.length < 65536) this.#stderr += d; });
    child.on('error', (e) => { this.lines.push(`[spawn error: ${e.message}]`); this.#wake(); });
  }

  #wake() {
    for (const w of [...this.#waiters]) w();
  }

  get pid() {
    return this.child.pid;
  }

  get stderr() {
    return this.#stderr;
  }

  /**
   * Starts QEMU with the guest image (`start`/`boot` pick the accelerator).
   * @param {VmOptions & { accel: string[] }} o
   */
  static spawn(o) {
    const img = guestImage();
    const qemu = [QEMU, ...o.accel, '-nodefaults', '-no-user-config', '-display', 'none', '-serial', 'stdio', '-no-reboot',
      '-m', '256', '-smp', '1', '-kernel', img.kernel, '-initrd', img.initrd,
      // no_timer_check: under TCG on a loaded host the kernel's boot check that the timer
      // interrupt arrives in time can fail and panic ("IO-APIC + timer doesn't work!").
      '-append', `console=ttyS0 quiet panic=-1 no_timer_check vnl.scenario=${o.scenario ?? 'agent'}`, ...(o.args ?? [])];
    const argv = [...(o.wrapper ?? []), ...qemu];
    const cmd = o.netns ? ['ip', 'netns', 'exec', o.netns, ...argv] : argv;
    const stdio = ['pipe', 'pipe', 'pipe', ...(o.fds ?? [])];
    const child = spawn(cmd[0], cmd.slice(1), { stdio });
    return new Vm(child, o.name);
  }

  /**
   * Starts an agent guest (resolves once QEMU is spawned, so the caller may close its fd copies).
   * @param {VmOptions} o
   */
  static async start(o) {
    return Vm.spawn({ ...o, accel: o.accel ?? await accelArgs() });
  }

  /** Waits for the agent's "ready" line and returns the MAC the guest sees on eth0. */
  async ready(timeoutMs = 200_000, signal = undefined) {
    const l = await this.line(/^VNL ready mac=/, 'the guest to boot', timeoutMs, signal);
    return l.slice('VNL ready mac='.length).trim();
  }

  /**
   * Boots an agent guest and waits for it to be ready; kills it if it never is.
   * @param {VmOptions} o
   */
  static async boot(o, timeoutMs = 200_000, signal = undefined) {
    const vm = await Vm.start(o);
    try {
      return { vm, mac: await vm.ready(timeoutMs, signal) };
    } catch (e) {
      await vm.kill();
      throw e;
    }
  }

  /** Resolves with the first console line (from `from` on) matching `re`. */
  line(re, what, timeoutMs = 30_000, signal = undefined, from = 0) {
    return new Promise((resolve, reject) => {
      let timer;
      const done = (err, l) => {
        this.#waiters.delete(check);
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        if (err) reject(err); else resolve(l);
      };
      const fail = (why) => done(new Error(`${this.name}: ${why} waiting for ${what} (${re})\n` +
        `console:\n${this.lines.slice(-60).join('\n')}${this.#stderr ? `\nqemu stderr:\n${this.#stderr}` : ''}`));
      const check = () => {
        for (let i = from; i < this.lines.length; i++) if (re.test(this.lines[i])) return done(undefined, this.lines[i]);
        if (this.child.exitCode !== null || this.child.signalCode !== null) fail('QEMU exited');
      };
      const onAbort = () => fail('aborted');
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort);
      timer = setTimeout(() => fail(`no line after ${timeoutMs} ms`), timeoutMs);
      this.#waiters.add(check);
      check();
    });
  }

  /**
   * Runs one init.sh command in the guest and resolves with its key=value results (and `rc`).
   * Rejects when the command fails (rc ≠ 0) unless `allowFail`.
   */
  async cmd(command, opts = {}) {
    const id = `c${++this.#seq}`;
    const from = this.lines.length;
    this.child.stdin.write(`${id} ${command}\n`);
    const end = await this.line(new RegExp(`^VNL ${id} end rc=\\d+`), `"${command}"`, opts.timeoutMs ?? 60_000, opts.signal, from);
    const out = {};
    for (const l of this.lines.slice(from)) {
      if (!l.startsWith(`VNL ${id} `)) continue;
      for (const m of l.slice(id.length + 5).matchAll(/(\w+)=(\S*)/g)) out[m[1]] = m[2];
      if (l === end) break;
    }
    if (out.rc !== '0' && !opts.allowFail) {
      throw new Error(`${this.name}: "${command}" failed (rc ${out.rc}${out.error ? `, ${out.error}` : ''})\n` +
        `console:\n${this.lines.slice(-30).join('\n')}`);
    }
    return out;
  }

  /** Kills QEMU by pid (SIGKILL) and waits until it has exited, which releases its fds. */
  async kill() {
    if (this.child.exitCode === null && this.child.signalCode === null && this.child.pid) {
      try { process.kill(this.child.pid, 'SIGKILL'); } catch { /* already gone */ }
    }
    if (this.child.pid) await this.exited;
  }

  async [Symbol.asyncDispose]() {
    await this.kill();
  }
}

/** True when QEMU accepts `-netdev dgram` (QEMU ≥ 7.2). */
export function qemuHasDgram() {
  const r = spawnSync(QEMU, ['-netdev', 'help'], { encoding: 'utf8' });
  return /\bdgram\b/.test(r.stdout ?? '');
}
