// npm run test:kernel's argument and file checks, and the quoting of what it writes into the
// guest's stage-2 script (the guest run itself is the test:kernel stage of .ci/run, not here).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kindTests, parseArgs } from './kernel/run.mjs';
import { shq } from './kernel/image.mjs';

const exists = () => true;

describe('test:kernel runner', () => {
  it('takes --accel, --timeout and kind test files', () => {
    expect(parseArgs([], { exists })).toEqual({ accel: 'auto', timeoutSec: 600, files: [] });
    expect(parseArgs(['--accel', 'tcg', '--timeout', '60', './test/kinds/dummy.test.ts', 'test/kinds/dummy.test.ts', 'test/kinds/vlan.test.ts'], { exists }))
      .toEqual({ accel: 'tcg', timeoutSec: 60, files: ['test/kinds/dummy.test.ts', 'test/kinds/vlan.test.ts'] });
  });

  it('names the bad argument', () => {
    expect(() => parseArgs(['--accel', 'hvf'], { exists })).toThrow(/--accel must be auto, kvm or tcg, not "hvf"/);
    expect(() => parseArgs(['--accel'], { exists })).toThrow(/--accel needs a value/);
    for (const t of ['5', '1.5', '99999', 'x', '']) expect(() => parseArgs(['--timeout', t], { exists })).toThrow(/--timeout must be whole seconds/);
    expect(() => parseArgs(['--verbose'], { exists })).toThrow(/unknown option "--verbose"/);
    // Only test/kinds/NAME.test.ts: the files become words of the guest's shell command line.
    for (const f of ['test/tap.test.ts', 'test/kinds/../tap.test.ts', 'test/kinds/a b.test.ts', 'test/kinds/$(reboot).test.ts', '/etc/passwd', 'test/kinds/x.ts']) {
      expect(() => parseArgs([f], { exists }), f).toThrow(/is not test\/kinds\/NAME\.test\.ts/);
    }
    expect(() => parseArgs(['test/kinds/nope.test.ts'], { exists: () => false })).toThrow(/"test\/kinds\/nope.test.ts" does not exist/);
  });

  it('finds the kind tests by name, sorted', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnl-kinds-'));
    try {
      for (const f of ['vlan.test.ts', 'bond.test.ts', 'helpers.ts', 'a b.test.ts', 'notes.md']) fs.writeFileSync(path.join(dir, f), '');
      expect(kindTests(dir)).toEqual(['test/kinds/bond.test.ts', 'test/kinds/vlan.test.ts']);
      expect(kindTests(path.join(dir, 'missing'))).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('quotes the settings it writes into the guest script so sh reads them back verbatim', () => {
    for (const s of ["/work/it's here", 'a b $(x) `y` "z" \\ ; | &', '', '\n']) {
      const r = spawnSync('sh', ['-c', `printf %s ${shq(s)}`], { encoding: 'utf8' });
      expect(r.stdout).toBe(s);
    }
  });
});
