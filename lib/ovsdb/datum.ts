// RFC 7047 §5.1 encodings. A set of one atom may be sent bare; any other set is
// ["set", [atoms]]; a map is ["map", [[key, value], ...]]; a row reference is ["uuid", "..."]
// and, inside one transaction, ["named-uuid", "name"] for a row that op inserts.
import { OvsdbError, preview } from './errors.js';

export type Atom = string | number | boolean | UuidRef;
export type UuidRef = ['uuid', string] | ['named-uuid', string];
export type Datum = Atom | ['set', Atom[]] | ['map', [Atom, Atom][]];

export const uuid = (u: string): ['uuid', string] => ['uuid', u];
export const namedUuid = (n: string): ['named-uuid', string] => ['named-uuid', n];

/** Emits a set strictly: always the ["set", [...]] form, so one atom is never ambiguous. */
export function set(atoms: readonly Atom[]): ['set', Atom[]] {
  return ['set', [...atoms]];
}

/** Emits a string->string map. */
export function map(obj: Readonly<Record<string, string>>): ['map', [string, string][]] {
  return ['map', Object.entries(obj).map(([k, v]) => [k, v] as [string, string])];
}

function isTagged(v: unknown, tag: string): v is [string, unknown] {
  return Array.isArray(v) && v.length === 2 && v[0] === tag;
}

/** Decodes one atom: ["uuid", u] becomes the uuid string; scalars pass through. */
export function atom(v: unknown): string | number | boolean {
  if (isTagged(v, 'uuid') || isTagged(v, 'named-uuid')) {
    if (typeof v[1] !== 'string') throw protocol(`not an OVSDB uuid: ${preview(v)}`);
    return v[1];
  }
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  throw protocol(`not an OVSDB atom: ${preview(v)}`);
}

// What a server sends is decoded here: malformed data is its fault, not a caller's TypeError.
function protocol(msg: string): OvsdbError {
  return new OvsdbError('ovsdb', 'protocol', msg);
}

/** Decodes a set column leniently: a bare atom or ["set", [...]] gives an array of atoms. */
export function setOf(v: unknown): (string | number | boolean)[] {
  if (isTagged(v, 'set')) {
    if (!Array.isArray(v[1])) throw protocol(`not an OVSDB set: ${preview(v)}`);
    return v[1].map(atom);
  }
  if (v === undefined) return [];
  return [atom(v)];
}

/** Decodes an optional column (a set of 0 or 1): undefined when empty. */
export function optional(v: unknown): string | number | boolean | undefined {
  return setOf(v)[0];
}

/**
 * Decodes a map column into an object with string keys. It has no prototype, so every key a
 * server sends (`__proto__` too) is an ordinary own property.
 */
export function mapOf(v: unknown): Record<string, string> {
  const out: Record<string, string> = Object.create(null);
  if (!isTagged(v, 'map')) return out;
  if (!Array.isArray(v[1])) throw protocol(`not an OVSDB map: ${preview(v)}`);
  for (const pair of v[1] as unknown[]) {
    if (!Array.isArray(pair) || pair.length !== 2) throw protocol(`not an OVSDB map pair: ${preview(pair)}`);
    out[String(atom(pair[0]))] = String(atom(pair[1]));
  }
  return out;
}
