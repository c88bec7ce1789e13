// fuzz/kind-tables.json is what the rtnl fuzz harness loads as its link kind tables: the same
// data lib/kinds/index.ts sends with native.setLinkKinds. It is checked in (the harness is
// plain C++ and cannot run TypeScript), so this fails as soon as it differs from the tables.
// Regenerate: npx vitest run test/kind-tables-fixture.test.ts -u
import { describe, expect, it } from 'vitest';
import { kindDefs } from '../lib/kinds/index.js';
import { nativeTable, type KindDef } from '../lib/kinds/schema.js';

const tables = () => Object.values(kindDefs).map((k) => nativeTable(k as KindDef));

describe('fuzz/kind-tables.json', () => {
  it('is exactly the kind tables the addon gets', async () => {
    await expect(JSON.stringify(tables(), null, 1) + '\n').toMatchFileSnapshot('../fuzz/kind-tables.json');
  });

  it('holds every kind, each with fields', () => {
    const t = tables() as { kind: string; fields: unknown[] }[];
    expect(t.map((k) => k.kind).sort()).toEqual(Object.keys(kindDefs).sort());
    for (const k of t) expect(Array.isArray(k.fields)).toBe(true);
  });
});
