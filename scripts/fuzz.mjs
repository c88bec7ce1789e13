#!/usr/bin/env node
// npm run fuzz -- [--seconds N] [--build-only] [NAME...]
// Builds every fuzz/*_fuzz.cc as a libFuzzer binary (clang, ASan + UBSan) linked with the real
// addon sources that need no N-API, then runs each for N seconds on its seed corpus
// (fuzz/corpus/NAME/, read-only; new inputs go to build-fuzz/corpus/NAME/). JavaScript fuzzers
// (fuzz/*.fuzz.mjs) run as `node FILE --seconds N`. Exits non-zero when any of them crashed,
// failed an oracle or did not build; crash inputs are kept in build-fuzz/artifacts/.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'build-fuzz');
const args = process.argv.slice(2);
let seconds = 60;
let buildOnly = false;
const only = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--seconds') seconds = Number(args[++i]);
  else if (args[i] === '--build-only') buildOnly = true;
  else only.push(args[i]);
}
if (!Number.isInteger(seconds) || seconds < 1) {
  console.error('fuzz: --seconds must be a positive integer');
  process.exit(2);
}

const cxx = process.env.FUZZ_CXX ?? 'clang++';
const sanitize = ['-fsanitize=address,undefined', '-fno-sanitize-recover=all', '-fno-omit-frame-pointer'];
const cflags = ['-std=c++17', '-g', '-O1', '-fexceptions', '-pthread', `-I${path.join(root, 'native')}`, `-I${root}`, ...sanitize];

function walk(dir) {
  return fs.readdirSync(dir, { recursive: true }).map(String).map((f) => path.join(dir, f));
}
const nativeFiles = walk(path.join(root, 'native'));
// The addon's sources that do not speak N-API: codec, transport, ops, the forwarder core.
const libSources = nativeFiles.filter((f) => f.endsWith('.cc') && !/#include\s*<napi\.h>|#include\s*"napi\//.test(fs.readFileSync(f, 'utf8'))).sort();
const headersMtime = Math.max(...nativeFiles.concat(walk(path.join(root, 'fuzz'))).filter((f) => f.endsWith('.h')).map((f) => fs.statSync(f).mtimeMs));

const stale = (target, sources) => !fs.existsSync(target) || sources.some((s) => fs.statSync(s).mtimeMs > fs.statSync(target).mtimeMs) || headersMtime > fs.statSync(target).mtimeMs;

function run(cmd, argv, opts = {}) {
  return new Promise((resolve) => {
    const p = spawn(cmd, argv, { stdio: opts.quiet ? ['ignore', 'pipe', 'pipe'] : 'inherit', ...opts });
    let text = '';
    p.stdout?.on('data', (d) => { text += d; });
    p.stderr?.on('data', (d) => { text += d; });
    p.on('close', (code, signal) => resolve({ code: code ?? (signal ? 128 : 1), text }));
  });
}

async function compileLib() {
  fs.mkdirSync(path.join(out, 'obj'), { recursive: true });
  const todo = libSources.map((src) => ({ src, obj: path.join(out, 'obj', path.relative(root, src).replace(/[/\\]/g, '_') + '.o') }))
    .filter(({ src, obj }) => stale(obj, [src, fileURLToPath(import.meta.url)]));
  const jobs = Math.max(1, Math.min(os.cpus().length, 4));
  let failed = false;
  const queue = todo.slice();
  await Promise.all(Array.from({ length: jobs }, async () => {
    for (let t; (t = queue.shift());) {
      const r = await run(cxx, [...cflags, '-fsanitize=fuzzer-no-link', '-c', t.src, '-o', t.obj], { quiet: true });
      if (r.code !== 0) { failed = true; console.error(`fuzz: compiling ${path.relative(root, t.src)} failed\n${r.text}`); }
    }
  }));
  if (failed) process.exit(1);
  return libSources.map((src) => path.join(out, 'obj', path.relative(root, src).replace(/[/\\]/g, '_') + '.o'));
}

const fuzzDir = path.join(root, 'fuzz');
const pick = (f) => only.length === 0 || only.some((n) => f.includes(n));
const harnesses = fs.readdirSync(fuzzDir).filter((f) => f.endsWith('_fuzz.cc') && pick(f)).sort();
const jsFuzzers = fs.readdirSync(fuzzDir).filter((f) => f.endsWith('.fuzz.mjs') && pick(f)).sort();
if (harnesses.length + jsFuzzers.length === 0) {
  console.error('fuzz: nothing to run');
  process.exit(2);
}

if (harnesses.length && spawnSync(cxx, ['--version'], { stdio: 'ignore' }).status !== 0) {
  console.error(`fuzz: ${cxx} not found (Debian: apt-get install clang libclang-rt-14-dev)`);
  process.exit(1);
}
const objs = harnesses.length ? await compileLib() : [];
const results = [];
for (const h of harnesses) {
  const name = h.replace(/\.cc$/, '');
  const bin = path.join(out, name);
  const src = path.join(fuzzDir, h);
  if (stale(bin, [src, ...objs])) {
    const r = await run(cxx, [...cflags, '-fsanitize=fuzzer', src, ...objs, '-o', bin], { quiet: true });
    if (r.code !== 0) {
      console.error(`fuzz: building ${h} failed\n${r.text}`);
      results.push({ name, ok: false, why: 'build failed' });
      continue;
    }
  }
  if (buildOnly) continue;
  const work = path.join(out, 'corpus', name);
  const seeds = path.join(fuzzDir, 'corpus', name);
  const artifacts = path.join(out, 'artifacts');
  fs.mkdirSync(work, { recursive: true });
  fs.mkdirSync(artifacts, { recursive: true });
  console.log(`fuzz: ${name} for ${seconds}s`);
  const r = await run(bin, [
    `-max_total_time=${seconds}`, '-timeout=10', '-rss_limit_mb=2048', '-max_len=16384', '-print_final_stats=1',
    `-artifact_prefix=${artifacts}/${name}-`, work, ...(fs.existsSync(seeds) ? [seeds] : []),
  ], {
    quiet: true,
    env: { ...process.env, VNL_KIND_TABLES: path.join(fuzzDir, 'kind-tables.json'), ASAN_OPTIONS: 'detect_leaks=1:abort_on_error=1', UBSAN_OPTIONS: 'halt_on_error=1:print_stacktrace=1' },
  });
  const stats = r.text.split('\n').filter((l) => /^stat::(number_of_executed_units|new_units_added)|^#\d+\s+DONE/.test(l)).join(' ');
  if (r.code === 0) {
    console.log(`fuzz: ${name} ok ${stats}`);
    results.push({ name, ok: true });
  } else {
    console.error(r.text.split('\n').slice(-80).join('\n'));
    results.push({ name, ok: false, why: `exit ${r.code}` });
  }
}
for (const f of buildOnly ? [] : jsFuzzers) {
  console.log(`fuzz: ${f} for ${seconds}s`);
  const r = await run(process.execPath, [path.join(fuzzDir, f), '--seconds', String(seconds)], { cwd: root });
  results.push({ name: f, ok: r.code === 0, why: `exit ${r.code}` });
}
const bad = results.filter((r) => !r.ok);
console.log(`fuzz: ${results.length - bad.length} ok, ${bad.length} failed${bad.length ? ': ' + bad.map((b) => `${b.name} (${b.why})`).join(', ') : ''}`);
process.exit(bad.length ? 1 : 0);
