#!/usr/bin/env node
// Fuzzes what an OVSDB server's bytes go through first: the streaming JSON splitter
// (lib/ovsdb/json-stream.ts) and the datum decoders (lib/ovsdb/datum.ts), from dist/ (run
// `npx tsc -p tsconfig.json` first). Random JSON-RPC streams and mutations of them are cut at
// random points. The oracle:
//   - nothing ever throws but an OvsdbError (code 'protocol');
//   - a valid stream, however it is cut, gives back exactly JSON.parse of each message, in order;
//   - a mutated stream cut at random points gives a prefix of what the same bytes fed one at a
//     time give, fails exactly when that does, and stays failed;
//   - sets and maps decode back to what was encoded (a '__proto__' key included).
// Usage: node fuzz/ovsdb-json.fuzz.mjs [--seconds N] [--seed S]; exits 1 on the first violation.
import fs from 'node:fs';
import { isDeepStrictEqual } from 'node:util';

const dist = new URL('../dist/ovsdb/', import.meta.url);
if (!fs.existsSync(new URL('json-stream.js', dist))) {
  console.error('ovsdb-json fuzz: dist/ is not built (run `npx tsc -p tsconfig.json` first)');
  process.exit(2);
}
const { JsonSplitter } = await import(new URL('json-stream.js', dist).href);
const { atom, map, mapOf, optional, set, setOf } = await import(new URL('datum.js', dist).href);
const { OvsdbError, preview } = await import(new URL('errors.js', dist).href);

const args = process.argv.slice(2);
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : dflt; };
const seconds = opt('--seconds', 10);
const seed0 = opt('--seed', Math.floor(Math.random() * 2 ** 31));
if (!Number.isFinite(seconds) || seconds < 0 || !Number.isInteger(seed0)) {
  console.error('usage: node fuzz/ovsdb-json.fuzz.mjs [--seconds N] [--seed S]');
  process.exit(2);
}

// mulberry32: small, seedable, good enough to pick cases.
let state = seed0 >>> 0;
function rnd() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const int = (n) => Math.floor(rnd() * n);
const pick = (a) => a[int(a.length)];

const TRICKY = ['"', '\\', '{', '}', '[', ']', ',', ':', '\n', '\t', '\u0000', '\u001f', 'ü', '€', '😀', '\ud800', 'uuid', 'set', 'map', '__proto__', ' '];
function str() {
  let s = '';
  const n = int(12);
  for (let i = 0; i < n; i++) s += rnd() < 0.5 ? pick(TRICKY) : String.fromCharCode(32 + int(95));
  return s;
}
function num() {
  return pick([0, -0, 1, -1, 2 ** 53, -(2 ** 63), 1e308, 5e-324, 0.1, int(1e6), -int(1e6)]);
}
function atomValue() {
  const k = int(4);
  return k === 0 ? str() : k === 1 ? num() : k === 2 ? rnd() < 0.5 : ['uuid', `${int(1e9).toString(16)}-uuid`];
}
function value(depth) {
  const k = depth <= 0 ? int(4) : int(7);
  switch (k) {
    case 0: return str();
    case 1: return num();
    case 2: return pick([true, false, null]);
    case 3: return atomValue();
    case 4: return Array.from({ length: int(5) }, () => value(depth - 1));
    case 5: { const o = {}; for (let i = int(5); i > 0; i--) o[str()] = value(depth - 1); return o; }
    default: return rnd() < 0.5 ? ['set', Array.from({ length: int(4) }, atomValue)] : ['map', Array.from({ length: int(4) }, () => [atomValue(), atomValue()])];
  }
}
/** Messages shaped like OVSDB's JSON-RPC, and some that are only JSON. */
function message() {
  const d = int(6);
  switch (int(6)) {
    case 0: return { method: 'echo', params: [], id: 'echo' };
    case 1: return { id: int(1000), result: value(d), error: null };
    case 2: return { id: int(1000), result: null, error: { error: str(), details: str() } };
    case 3: return { method: 'update', params: [`iface-${int(9)}`, { Interface: { [str()]: { new: { name: str(), ofport: ['set', [int(100)]], external_ids: ['map', [[str(), str()]]] } } } }], id: null };
    case 4: return Array.from({ length: int(4) }, () => value(d));
    default: { const o = {}; for (let i = int(4); i > 0; i--) o[str()] = value(d); return o; }
  }
}
const WS = [' ', '\n', '\r\n', '\t', ''];
function stream() {
  const msgs = Array.from({ length: 1 + int(6) }, message);
  const texts = msgs.map((m) => JSON.stringify(m));
  const bytes = Buffer.from(texts.map((t) => pick(WS) + t).join('') + pick(WS), 'utf8');
  return { texts, bytes };
}
/** Random cut points: empty pieces, single bytes and long runs. */
function cut(bytes) {
  const out = [];
  for (let i = 0; i < bytes.length;) {
    const n = pick([0, 1, 1, 2, 3, 7, 64, int(bytes.length + 1)]);
    out.push(bytes.subarray(i, i + n));
    i += n;
  }
  if (rnd() < 0.3) out.push(Buffer.alloc(0));
  return out;
}
const INTERESTING = [0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x00, 0xff, 0x80, 0xc3, 0x0a, 0x20, 0x30, 0x2c];
function mutate(bytes) {
  let b = Buffer.from(bytes);
  for (let n = 1 + int(4); n > 0; n--) {
    const at = int(b.length + 1);
    switch (int(7)) {
      case 0: if (b.length) b[Math.min(at, b.length - 1)] ^= 1 << int(8); break;
      case 1: b = Buffer.concat([b.subarray(0, at), Buffer.from([pick(INTERESTING)]), b.subarray(at)]); break;
      case 2: b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + int(8))]); break;
      case 3: { const len = int(32); b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + len), b.subarray(at)]); break; }
      case 4: b = b.subarray(0, at); break;
      case 5: { const k = pick([1, 127, 128, 129, 1000, 20_000]); b = Buffer.concat([b.subarray(0, at), Buffer.from('['.repeat(k) + (rnd() < 0.5 ? ']'.repeat(k) : '')), b.subarray(at)]); break; }
      default: b = Buffer.concat([b.subarray(0, at), Buffer.from(str()), b.subarray(at)]);
    }
  }
  return b;
}

let failures = 0;
function violation(what, detail) {
  failures++;
  console.error(`ovsdb-json fuzz: VIOLATION (${what}) with --seed ${seed0}`);
  console.error(detail);
  process.exit(1);
}
/** Runs fn; an error that is not an OvsdbError('protocol') is a violation. Returns the error or undefined. */
function guarded(what, fn, input) {
  try {
    fn();
    return undefined;
  } catch (e) {
    if (!(e instanceof OvsdbError) || e.code !== 'protocol') violation(`${what} threw ${e?.name}: ${e?.message}`, `input (base64, first 2 KB): ${Buffer.from(input).subarray(0, 2048).toString('base64')}`);
    return e;
  }
}
function feed(chunks, maxBytes) {
  const s = new JsonSplitter(maxBytes);
  const got = [];
  const err = guarded('JsonSplitter.push', () => { for (const c of chunks) got.push(...s.push(c)); }, Buffer.concat(chunks));
  return { got, err, s };
}

const counts = { valid: 0, mutated: 0, datum: 0 };
const end = Date.now() + seconds * 1000;
do {
  // 1. A valid stream, however cut, is exactly its messages.
  {
    const { texts, bytes } = stream();
    const { got, err, s } = feed(cut(bytes));
    if (err) violation(`a valid stream was refused: ${err.message}`, bytes.toString('utf8').slice(0, 2000));
    const want = texts.map((t) => JSON.parse(t));
    if (!isDeepStrictEqual(got, want)) violation('a valid stream reassembled differently', `${preview(got, 500)}\nvs\n${preview(want, 500)}`);
    if (s.pending) violation('pending after a complete stream', bytes.toString('utf8').slice(0, 2000));
    counts.valid++;
  }
  // 2. A mutated stream: random cuts agree with byte-at-a-time feeding.
  {
    const bytes = mutate(stream().bytes);
    const maxBytes = rnd() < 0.2 ? 64 + int(512) : undefined;
    const ref = feed([...bytes].map((x) => Buffer.from([x])), maxBytes);
    const t = feed(cut(bytes), maxBytes);
    if (!!ref.err !== !!t.err) violation(`cut and byte-wise feeding disagree on failing (${ref.err?.message} / ${t.err?.message})`, bytes.toString('base64').slice(0, 4000));
    const prefix = ref.got.slice(0, t.got.length);
    if (t.got.length > ref.got.length || !isDeepStrictEqual(t.got, prefix)) violation('cut feeding gave values byte-wise feeding did not', bytes.toString('base64').slice(0, 4000));
    if (!ref.err && (t.got.length !== ref.got.length || t.s.pending !== ref.s.pending)) violation('cut and byte-wise feeding end differently', bytes.toString('base64').slice(0, 4000));
    if (t.err) {
      // A broken stream stays broken: there is no resync point in OVSDB's framing.
      const again = guarded('JsonSplitter.push after an error', () => t.s.push(Buffer.from('{}')), bytes);
      if (!again) violation('the splitter accepted data after an error', bytes.toString('base64').slice(0, 4000));
    }
    counts.mutated++;
  }
  // 3. Datum decoders: anything a server may send is decoded or refused with OvsdbError.
  {
    const vals = [value(int(6)), message(), atomValue(), ['set', value(2)], ['map', value(2)], ['map', [value(1)]], ['uuid', value(1)]];
    for (const x of vals) {
      for (const [name, fn] of [['atom', atom], ['setOf', setOf], ['mapOf', mapOf], ['optional', optional]]) {
        guarded(name, () => fn(x), Buffer.from(preview(x, 2000)));
      }
      guarded('preview', () => preview(x), Buffer.from('preview'));
    }
    const atoms = Array.from({ length: int(6) }, atomValue);
    const decoded = atoms.map((a) => (Array.isArray(a) ? a[1] : a));
    if (!isDeepStrictEqual(setOf(JSON.parse(JSON.stringify(set(atoms)))), decoded.map((a) => (Object.is(a, -0) ? 0 : a)))) {
      violation('setOf(set(x)) != x', preview(atoms, 1000));
    }
    const obj = {};
    for (let i = int(5); i > 0; i--) Object.defineProperty(obj, rnd() < 0.2 ? '__proto__' : str(), { value: str(), enumerable: true, configurable: true, writable: true });
    const back = mapOf(JSON.parse(JSON.stringify(map(obj))));
    const entries = (o) => Object.entries(o).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    if (!isDeepStrictEqual(entries(back), entries(obj))) violation('mapOf(map(x)) != x', preview(obj, 1000));
    counts.datum++;
  }
} while (Date.now() < end);

// A few fixed hostile inputs every run: deep nesting must be refused, not overflow the stack.
for (const deep of ['['.repeat(200_000), '{"a":'.repeat(100_000)]) {
  const e = guarded('deep nesting', () => new JsonSplitter().push(Buffer.from(deep)), Buffer.from('deep'));
  if (!e) violation('200,000-deep nesting was accepted', 'deep');
}
let deepArr = 1;
for (let i = 0; i < 200_000; i++) deepArr = [deepArr];
for (const fn of [atom, setOf, mapOf, optional, (x) => setOf(['set', [x]]), (x) => mapOf(['map', [[x, x]]])]) guarded('deep datum', () => fn(deepArr), Buffer.from('deep datum'));

console.log(`ovsdb-json fuzz: ${counts.valid} valid streams, ${counts.mutated} mutated streams, ${counts.datum} datum rounds, no violation (seed ${seed0}, ${seconds} s)`);
process.exit(failures ? 1 : 0);
