// The CLI's argument parsing and output: node:util.parseArgs for every command (so
// `--count=5` works), one usage error type (exit 2), and tables aligned to their content.
import { parseArgs, type ParseArgsConfig } from 'node:util';

/** A usage error: printed with the command's usage line, exit status 2. */
export class UsageError extends Error {
  constructor(message: string, readonly usage?: string) {
    super(message);
    this.name = 'UsageError';
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** The options every command takes. */
export const common: Options = {
  netns: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

export interface Parsed {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** parseArgs, strict, with the common options; its errors become UsageErrors. */
export function parse(argv: string[], options: Options, usage: string): Parsed {
  try {
    const r = parseArgs({ args: argv, options: { ...common, ...options }, strict: true, allowPositionals: true });
    return r as Parsed;
  } catch (e: any) {
    throw new UsageError(String(e?.message ?? e).replace(/\. To specify a positional argument.*$/s, ''), usage);
  }
}

/** An integer option within [min, max], or undefined when absent. */
export function intOpt(p: Parsed, name: string, min: number, max: number, usage: string): number | undefined {
  const raw = p.values[name];
  if (raw === undefined) return undefined;
  const s = String(raw);
  const n = /^-?\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max} (got ${JSON.stringify(s)})`, usage);
  return n;
}

/** A comma-separated list option whose words must all be known. */
export function listOpt<T extends string>(p: Parsed, name: string, known: readonly T[], usage: string): T[] | undefined {
  const raw = p.values[name];
  if (raw === undefined) return undefined;
  const words = String(raw).split(',').map((s) => s.trim()).filter(Boolean);
  if (!words.length) throw new UsageError(`--${name} needs at least one of: ${known.join(', ')}`, usage);
  for (const w of words) if (!(known as readonly string[]).includes(w)) throw new UsageError(`--${name}: unknown ${name.replace(/s$/, '')} '${w}' (known: ${known.join(', ')})`, usage);
  return words as T[];
}

/** Exactly `n` positionals (names in `what`), or a UsageError. */
export function positionals(p: Parsed, what: string[], usage: string, optional = 0): string[] {
  const got = p.positionals;
  if (got.length < what.length - optional) throw new UsageError(`missing ${what.slice(got.length).join(' ')}`, usage);
  if (got.length > what.length) throw new UsageError(`unexpected argument '${got[what.length]}'`, usage);
  return got;
}

/**
 * Rows as columns, each as wide as its widest cell, separated by two spaces; `right` names
 * the columns aligned to the right (numbers). The last column is not padded.
 */
export function table(header: string[] | undefined, rows: string[][], right: number[] = []): string {
  const all = header ? [header, ...rows] : rows;
  const cols = Math.max(0, ...all.map((r) => r.length));
  const w = Array.from({ length: cols }, (_, i) => Math.max(0, ...all.map((r) => (r[i] ?? '').length)));
  return all.map((r) => r.map((c, i) => {
    const cell = c ?? '';
    if (right.includes(i)) return cell.padStart(w[i]);
    return i === r.length - 1 ? cell : cell.padEnd(w[i]);
  }).join('  ').trimEnd()).join('\n');
}

/** One JSON document on stdout. */
export function printJson(x: unknown): void {
  process.stdout.write(JSON.stringify(x, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2) + '\n');
}

// C0 controls, DEL, the C1 controls (U+009B is a CSI on some terminals), and the Unicode
// format characters that reorder or hide text (bidi overrides and isolates, zero-width marks).
const CONTROL = /[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;
const escapeChar = (c: string) => {
  const n = c.charCodeAt(0);
  return n < 0x100 ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
};

/**
 * A name from the kernel, an OVSDB server or a state or lease file, as the human output shows
 * it: control characters (newlines and tabs too) become `\xNN` (`\uNNNN` above U+00FF), so
 * no name can move the cursor, recolour or rewrite the terminal, or forge a line; a backslash
 * becomes `\\`, so an escape cannot be faked either.
 */
export function shown(s: unknown): string {
  return String(s).replace(/\\/g, '\\\\').replace(CONTROL, escapeChar);
}

/** Text on stdout. Every printed name goes through `shown`; this escapes whatever is left anyway. */
export function print(text: string): void {
  const safe = terminalText(text);
  if (safe) process.stdout.write(safe.endsWith('\n') ? safe : safe + '\n');
}

/** `text` with every control character but the layout's newlines and tabs escaped as `shown` does. */
export function terminalText(text: string): string {
  return text.replace(CONTROL, (c) => (c === '\n' || c === '\t' ? c : escapeChar(c)));
}
