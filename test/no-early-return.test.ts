// A test that returns early after a tool or privilege check is reported as passed without having
// run. This guard fails the run when any test file does that; ctx.skip()/it.skipIf say "skipped".
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

// The shape the pre-stop hook looks for: a check call, then a bare `return` on the same line.
const earlyReturn = /(hasTool|which|command -v|isRoot|skipReason|existsSync)[^;]*\)[^;]*\)?\s*return\s*;?\s*(\/\/.*)?$/i;

function testFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? testFiles(p) : /\.(ts|mts|js|mjs)$/.test(e.name) ? [p] : [];
  });
}

/** `file:line: text` for every early return after a check in `src`. */
export function earlyReturns(file: string, src: string): string[] {
  return src.split('\n').flatMap((line, i) =>
    earlyReturn.test(line) && !/skip\(/.test(line) ? [`${file}:${i + 1}: ${line.trim()}`] : []);
}

describe('the test suite', () => {
  it('the guard recognises an early return after a tool check, and not a skip', () => {
    const bare = 'ret' + 'urn;'; // spelled apart so this file does not match itself
    expect(earlyReturns('x.ts', `  if (!hasTool('nft')) ${bare}`)).toHaveLength(1);
    expect(earlyReturns('x.ts', `  if (privilegedSkipReason()) ${bare}  // outside CI`)).toHaveLength(1);
    expect(earlyReturns('x.ts', "  needTools(ctx, 'nft');\n  if (!hasTool('nft')) ctx.skip('needs nft');")).toHaveLength(0);
  });

  it('has no test that returns early after a tool or privilege check (it would count as passed)', () => {
    const root = path.resolve(import.meta.dirname, '..');
    const self = path.resolve(import.meta.filename);
    const found = testFiles(path.join(root, 'test')).filter((f) => f !== self)
      .flatMap((f) => earlyReturns(path.relative(root, f), fs.readFileSync(f, 'utf8')));
    expect(found, 'use needTools(ctx, ...) / ctx.skip(reason) / it.skipIf instead').toEqual([]);
  });
});
