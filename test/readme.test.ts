// README.md runs as written: every ```ts block type-checks under --strict against the published
// types (dist/*.d.ts, through the package's own name), and the tour runs in throwaway namespaces.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Netns } from '../lib/index.js';
import { privilegedSkipReason, uniqueName } from './helpers.js';

const root = path.resolve(import.meta.dirname, '..');
const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8');
const blocks = [...readme.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => ({
  code: m[1],
  line: readme.slice(0, m.index).split('\n').length + 1,
}));

// What the prose around the blocks establishes ("nl is a handle, as in the tour"): names only,
// never library values, which each block must import itself.
const prelude = `import type { Handle, Link, LinkSpec } from 'vnetlink';
declare global {
  /** A handle (the tour's). */ const nl: Handle;
  /** Handles in the host's and the guest's namespaces. */ const host: Handle; const guest: Handle;
  /** An Ethernet frame to send. */ const frame: Buffer;
  /** Link specs to create. */ const specs: LinkSpec[];
  /** The caller's own copy of the link table. */ let state: Link[] | undefined;
  /** libvirt's interface and domain UUIDs. */ const ifaceUuid: string; const vmUuid: string;
  /** QEMU's other arguments (machine, memory, disk, ...). */ const vmArgs: string[];
}
export {};
`;

describe('README.md', () => {
  let dir: string;
  beforeAll(() => {
    // Inside the package, so `import ... from 'vnetlink'` resolves to this package's dist/.
    dir = fs.mkdtempSync(path.join(root, 'test', '.readme-'));
  });
  afterAll(() => {
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('has TypeScript blocks, the tour first', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(8);
    expect(blocks[0].code).toContain('Netns.create(');
  });

  it('every ts block type-checks under tsc --strict against the published types', () => {
    fs.writeFileSync(path.join(dir, 'prelude.d.ts'), prelude);
    const files = blocks.map((b, i) => {
      const f = `block${i + 1}-line${b.line}.ts`;
      // Each block is a module of its own (top-level await, its own imports).
      fs.writeFileSync(path.join(dir, f), `${b.code}\nexport {};\n`);
      return f;
    });
    fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({
      compilerOptions: {
        target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', lib: ['ES2022', 'ESNext.Disposable'],
        strict: true, noEmit: true, skipLibCheck: false, types: ['node'],
      },
      files: ['prelude.d.ts', ...files],
    }));
    const r = spawnSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', dir], { encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  }, 120_000);

  it.skipIf(privilegedSkipReason())('the tour runs as written, in throwaway namespaces, and leaves none behind', () => {
    // The tour's namespace names, made unique; nothing else of it changes.
    const names = { demo: uniqueName('tour'), other: uniqueName('tour') };
    let code = blocks[0].code.replace(/'(demo|other)'/g, (_, n: 'demo' | 'other') => `'${names[n]}'`);
    code += `\nconsole.log('TOUR ' + JSON.stringify({ kind: v0.kind, up: v0.up, peerElsewhere: v0.linkNetnsId !== undefined }));\n`;
    const js = ts.transpileModule(code, { compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext } }).outputText;
    fs.writeFileSync(path.join(dir, 'tour.mjs'), js);
    try {
      const r = spawnSync(process.execPath, [path.join(dir, 'tour.mjs')], { encoding: 'utf8', timeout: 60_000 });
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.stdout).toContain('TOUR {"kind":"veth","up":true,"peerElsewhere":true}');
      expect(r.stdout).toMatch(/^v0 \w+ \d+$/m);
    } finally {
      for (const n of Object.values(names)) Netns.delete(n).catch(() => {});
    }
    expect(fs.readdirSync('/run/netns').filter((n) => Object.values(names).includes(n))).toEqual([]);
  }, 120_000);
});
