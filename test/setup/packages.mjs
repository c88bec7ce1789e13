// The Debian packages the tests and the demo use (listed in packages.json): which are missing,
// and installing them when we may (root with apt-get). Plain JS so `npm run demo` can use it too.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
/** @type {{ packages: { name: string, commands?: string[], files?: string[], demo?: boolean, why: string }[], downloads?: { packages: string[] } }} */
const list = require('./packages.json');

export const inCI = process.env.CI === 'true' || process.env.CI === '1';

// Daemons live in sbin, which a non-login shell's PATH may lack.
const searchPath = `${process.env.PATH ?? ''}:/usr/local/sbin:/usr/sbin:/sbin`;
const onPath = (cmd) => searchPath.split(':').some((d) => d && isExecutable(`${d}/${cmd}`));
function isExecutable(file) {
  try { fs.accessSync(file, fs.constants.X_OK); return fs.statSync(file).isFile(); } catch { return false; }
}

/** The packages for `who` ('tests' or 'demo'). */
export function wanted(who) {
  return list.packages.filter((p) => who === 'tests' || p.demo);
}

/** Names of the wanted packages that are not installed. dpkg decides where it exists. */
export function missingPackages(pkgs) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Package} ${db:Status-Abbrev}\\n', ...pkgs.map((p) => p.name)], { encoding: 'utf8' });
  if (!r.error) {
    const installed = new Set(r.stdout.split('\n').filter((l) => /^\S+ ii/.test(l)).map((l) => l.split(' ')[0].replace(/:.*/, '')));
    return pkgs.filter((p) => !installed.has(p.name)).map((p) => p.name);
  }
  return pkgs.filter((p) => !(p.commands ?? []).every(onPath) || !(p.files ?? []).every((f) => fs.existsSync(f))).map((p) => p.name);
}

export function installCommand(names) {
  return `apt-get update && apt-get install -y --no-install-recommends ${names.join(' ')}`;
}

function run(cmd, args, env) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive', ...env }, maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-15).join('\n');
    throw new Error(`\`${cmd} ${args.join(' ')}\` failed (${r.error?.message ?? `exit ${r.status}`}):\n${out}`);
  }
}

/**
 * Makes sure every package `who` needs is installed. As root with apt-get, installs the missing
 * ones (one `apt-get update`, one `apt-get install`) and says so; otherwise throws one error
 * naming them and the command that installs them. `VNETLINK_ALLOW_MISSING=1` (never in CI)
 * carries on instead, and the tests that need them are skipped.
 */
export function ensurePackages(who, { log = (s) => console.log(s), packages = wanted(who) } = {}) {
  const missing = missingPackages(packages);
  if (!missing.length) {
    // (When something is installed, that run's apt-get update refreshes the lists anyway.)
    if (who === 'tests' && packages === wanted(who)) refreshListsFor(list.downloads?.packages ?? [], log);
    return;
  }
  const isRoot = process.getuid?.() === 0;
  const hasApt = spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  if (isRoot && hasApt && process.env.VNETLINK_NO_INSTALL !== '1') {
    log(`vnetlink ${who}: installing missing Debian packages: ${missing.join(' ')}`);
    withoutServiceStarts(() => {
      const lock = ['-o', 'DPkg::Lock::Timeout=600'];
      run('apt-get', [...lock, 'update', '-qq']);
      run('apt-get', [...lock, 'install', '-y', '-qq', '--no-install-recommends', ...missing]);
    });
    const still = missingPackages(packages);
    if (still.length) throw new Error(`vnetlink ${who}: apt-get ran but these are still missing: ${still.join(' ')}`);
    log(`vnetlink ${who}: installed ${missing.join(' ')}`);
    return;
  }
  if (process.env.VNETLINK_ALLOW_MISSING === '1' && !inCI) {
    log(`vnetlink ${who}: missing ${missing.join(' ')}; VNETLINK_ALLOW_MISSING=1, so what needs them is skipped`);
    return;
  }
  const why = !isRoot ? 'not running as root' : !hasApt ? 'apt-get is not available' : 'VNETLINK_NO_INSTALL=1';
  throw new Error(
    `${who === 'demo' ? 'npm run demo needs' : 'The vnetlink tests need'} Debian packages that are missing: ${missing.join(' ')}\n` +
    `They were not installed automatically (${why}). Install them as root with:\n` +
    `  ${installCommand(missing)}\n` +
    (inCI ? '' : 'or set VNETLINK_ALLOW_MISSING=1 to skip what needs them.'));
}

// The VM tests `apt-get download` some packages: when apt's lists do not know them yet (a fresh
// machine has none), one `apt-get update` as root fixes that; otherwise those tests say why.
function refreshListsFor(names, log) {
  if (!names.length || process.getuid?.() !== 0) return;
  const r = spawnSync('apt-cache', ['policy', ...names], { encoding: 'utf8' });
  if (r.error) return;
  const known = (r.stdout.match(/Candidate: [0-9]/g) ?? []).length;
  if (known >= names.length) return;
  log(`vnetlink tests: apt-get update (apt's lists do not know ${names.join(', ')} yet)`);
  run('apt-get', ['-o', 'DPkg::Lock::Timeout=600', 'update', '-qq']);
}

// A package's maintainer script must not start a daemon (ovsdb-server, ...) in the root
// namespace: Debian's invoke-rc.d consults /usr/sbin/policy-rc.d, and 101 means "not now".
function withoutServiceStarts(fn) {
  const policy = '/usr/sbin/policy-rc.d';
  let ours = false;
  try {
    fs.writeFileSync(policy, '#!/bin/sh\n# written by vnetlink tests while installing packages\nexit 101\n', { mode: 0o755, flag: 'wx' });
    ours = true;
  } catch { /* one exists already: it decides */ }
  try { fn(); } finally { if (ours) fs.rmSync(policy, { force: true }); }
}
