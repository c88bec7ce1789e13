// The addon loader: when no prebuild or local build fits, the error says what it tried and how to build.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadNative, packageRoot } from '../lib/native.js';

describe('the addon loader', () => {
  it('loads the addon from this checkout', () => {
    expect(loadNative(packageRoot).ops).toContain('link.get');
  });

  it('without an addon, names each file it tried and how to build one (npm rebuild; g++, make, python3)', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'vnetlink-loader-'));
    try {
      // One candidate exists but is not an addon: the error tells "not found" from "did not load".
      const pb = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
      fs.mkdirSync(pb, { recursive: true });
      fs.writeFileSync(path.join(pb, 'vnetlink.node'), 'not an ELF file');
      let err: Error | undefined;
      try { loadNative(root); } catch (e) { err = e as Error; }
      expect(err).toBeInstanceOf(Error);
      expect((err as Error & { code?: string }).code).toBe('ERR_VNETLINK_ADDON');
      expect(err!.message).toContain(`${path.join(pb, 'vnetlink.node')}: exists but did not load`);
      expect(err!.message).toContain(`${path.join(root, 'build', 'Release', 'vnetlink.node')}: not found`);
      expect(err!.message).toContain('npm rebuild vnetlink');
      expect(err!.message).toMatch(/g\+\+.*make.*python3/);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
