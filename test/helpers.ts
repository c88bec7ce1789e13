// Test scaffolding: throwaway namespaces, tools that must exist in CI, and ways to see what
// a user would see (`ip -j`, `nft`, ...), always inside a test namespace.
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { Netns } from '../lib/index.js';

const execFileP = promisify(execFile);
const repoRoot = path.resolve(import.meta.dirname, '..');
export const inCI = process.env.CI === 'true' || process.env.CI === '1';
export const isRoot = process.getuid?.() === 0;

let seq = 0;
/** A unique namespace name: prefix, pid, counter. */
export function uniqueName(prefix: string): string {
  return `vt-${prefix}-${process.pid}-${++seq}`;
}

/** True when a command is on PATH. In CI a missing tool is a failure, never a skip. */
export function hasTool(cmd: string): boolean {
  const ok = spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
  if (!ok && inCI) throw new Error(`required tool '${cmd}' is missing in CI (the test command installs the packages in test/setup/packages.json)`);
  return ok;
}

/**
 * Skips the running test (with the reason) when a tool is missing; in CI a missing tool throws.
 * Use it instead of an early `return`, which would count as a pass.
 */
export function needTools(ctx: { skip(note?: string): never }, ...cmds: string[]): void {
  const missing = cmds.filter((c) => !hasTool(c));
  if (missing.length) ctx.skip(`needs ${missing.join(', ')} (see test/setup/packages.json)`);
}

/** Why a privileged test cannot run here, or undefined when it can. Throws in CI. */
export function privilegedSkipReason(): string | undefined {
  if (!isRoot) {
    if (inCI) throw new Error('tests must run as root in CI');
    return 'needs root (CAP_NET_ADMIN)';
  }
  return undefined;
}

/** Namespaces made by a test; `cleanup()` removes them all (call it in afterAll/finally). */
export class Namespaces {
  readonly made: Netns[] = [];
  readonly pids: number[] = [];

  async create(prefix: string): Promise<Netns> {
    const ns = await Netns.create(uniqueName(prefix));
    this.made.push(ns);
    return ns;
  }

  /** Kills a daemon pid in teardown. */
  track(pid: number | undefined): void {
    if (pid) this.pids.push(pid);
  }

  async cleanup(): Promise<void> {
    for (const pid of this.pids.splice(0)) {
      try { process.kill(pid, 'SIGTERM'); } catch { /* already gone */ }
    }
    for (const ns of this.made.splice(0).reverse()) {
      try {
        // Kill anything still running inside before dropping the name.
        spawnSync('ip', ['netns', 'pids', ns.name], { encoding: 'utf8' }).stdout
          ?.split('\n').filter(Boolean).forEach((p) => { try { process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ } });
        await ns.delete();
      } catch { /* best effort */ }
    }
  }
}

/** Runs a command inside a namespace (`ip netns exec NAME ...`) and returns stdout. */
export async function nsExec(ns: Netns | string, cmd: string, args: string[], opts: { timeout?: number } = {}): Promise<string> {
  const name = typeof ns === 'string' ? ns : ns.name;
  try {
    const { stdout } = await execFileP('ip', ['netns', 'exec', name, cmd, ...args], { timeout: opts.timeout ?? 30_000, maxBuffer: 64 << 20 });
    return stdout;
  } catch (e: any) {
    // Say how it ended: an exit code, or a signal (a timeout kills with SIGTERM).
    if (e && typeof e === 'object') e.message += ` [exit ${e.code ?? '-'}, signal ${e.signal ?? '-'}${e.killed ? ', killed' : ''}]`;
    throw e;
  }
}

/** Like nsExec but resolves with the exit code instead of throwing. */
export async function nsRun(ns: Netns | string, cmd: string, args: string[], timeout = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const name = typeof ns === 'string' ? ns : ns.name;
  try {
    const { stdout, stderr } = await execFileP('ip', ['netns', 'exec', name, cmd, ...args], { timeout, maxBuffer: 64 << 20 });
    return { code: 0, stdout, stderr };
  } catch (e: any) {
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(e) };
  }
}

/** `ip -j -d link show [dev NAME]` inside a namespace, parsed. */
export async function ipLinks(ns: Netns | string, dev?: string): Promise<any[]> {
  const name = typeof ns === 'string' ? ns : ns.name;
  const args = ['-n', name, '-j', '-d', 'link', 'show'];
  if (dev) args.push('dev', dev);
  const { stdout } = await execFileP('ip', args);
  return JSON.parse(stdout);
}

/** `ip -j addr show` inside a namespace, parsed. */
export async function ipAddrs(ns: Netns | string, dev?: string): Promise<any[]> {
  const name = typeof ns === 'string' ? ns : ns.name;
  const args = ['-n', name, '-j', 'addr', 'show'];
  if (dev) args.push('dev', dev);
  const { stdout } = await execFileP('ip', args);
  return JSON.parse(stdout);
}

/** Polls until fn returns a truthy value or the deadline passes. */
export async function waitFor<T>(fn: () => Promise<T> | T, what: string, timeoutMs = 15_000, everyMs = 50): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const r = await fn();
      if (r) return r;
    } catch (e) { last = e; }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${last ? `: ${last}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Open fds and threads of this process, to prove handles leak neither. */
export function fdCount(): number {
  return require_('node:fs').readdirSync('/proc/self/fd').length;
}
export function threadCount(): number {
  return require_('node:fs').readdirSync('/proc/self/task').length;
}
import { createRequire } from 'node:module';
import { kindProbe } from './kernel/kinds.mjs';
const require_ = createRequire(import.meta.url);

const kindCache = new Map<string, Promise<boolean>>();
/**
 * Whether this kernel can create a link of `kind` (built in, or a module it loads on demand),
 * probed once per kind with `ip` in a throwaway namespace (test/kernel/kinds.mjs, which the
 * guest runner uses too). Kind tests prove the behaviour when it is there, and the clear
 * refusal when it is not.
 */
export function kindAvailable(kind: string): Promise<boolean> {
  let p = kindCache.get(kind);
  if (!p) {
    p = Promise.resolve().then(() => kindProbe(kind));
    kindCache.set(kind, p);
  }
  return p;
}

/** Inside the Debian-kernel guest every kind must be there: a missing one fails the test. */
export const inKernelGuest = process.env.VNETLINK_KERNEL_GUEST === '1';

/** Runs the `vnetlink` CLI (bin/vnetlink.js); resolves with its exit code and output (never throws). */
export async function runCli(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await execFileP('node', [path.join(repoRoot, 'bin', 'vnetlink.js'), ...args], { timeout: 50_000 });
    return { code: 0, stdout, stderr };
  } catch (e: any) {
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? String(e) };
  }
}

/**
 * Runs `body` in a fresh node process with `nl` open in namespace `ns` (`open`, `network` and
 * `execFile` in scope), which then just ends: no close(), no destroy(), as a crashed or
 * finished manager would. Resolves with what `body` returned (as JSON).
 */
export async function inProcess(ns: string, body: string, env: Record<string, string> = {}): Promise<any> {
  const code = `import { open, network } from ${JSON.stringify(path.join(repoRoot, 'dist', 'index.js'))};
import { execFile } from 'node:child_process';
const nl = await open({ netns: process.env.NS });
const out = await (async () => { ${body} })();
console.log(JSON.stringify(out ?? null));
process.exit(0);
`;
  const { stdout } = await execFileP(process.execPath, ['--input-type=module', '-e', code], { env: { ...process.env, NS: ns, ...env }, timeout: 60_000 });
  return JSON.parse(stdout.trim().split('\n').pop()!);
}
