// npm run test:kernel's argument and file checks, and the quoting of what it writes into the
// guest's stage-2 script (the guest run itself is the test:kernel stage of .ci/run, not here).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kindTests, parseArgs, selectFiles } from './kernel/run.mjs';
import { shq } from './kernel/image.mjs';
import { guestReason, kindProbe } from './kernel/kinds.mjs';

const exists = () => true;

describe('test:kernel runner', () => {
  it('takes --accel, --timeout and kind test files', () => {
    expect(parseArgs([], { exists })).toEqual({ accel: 'auto', timeoutSec: 600, all: false, files: [] });
    expect(parseArgs(['--accel', 'tcg', '--timeout', '60', './test/kinds/dummy.test.ts', 'test/kinds/dummy.test.ts', 'test/kinds/vlan.test.ts'], { exists }))
      .toEqual({ accel: 'tcg', timeoutSec: 60, all: false, files: ['test/kinds/dummy.test.ts', 'test/kinds/vlan.test.ts'] });
    expect(parseArgs(['--all', '--timeout', '1200'], { exists })).toEqual({ accel: 'auto', timeoutSec: 1200, all: true, files: [] });
  });

  it('names the bad argument', () => {
    expect(() => parseArgs(['--accel', 'hvf'], { exists })).toThrow(/--accel must be auto, kvm or tcg, not "hvf"/);
    expect(() => parseArgs(['--accel'], { exists })).toThrow(/--accel needs a value/);
    for (const t of ['5', '1.5', '99999', 'x', '']) expect(() => parseArgs(['--timeout', t], { exists })).toThrow(/--timeout must be whole seconds/);
    expect(() => parseArgs(['--verbose'], { exists })).toThrow(/unknown option "--verbose"/);
    expect(() => parseArgs(['--all', 'test/kinds/dummy.test.ts'], { exists })).toThrow(/--all and test files exclude each other/);
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

  it('sends a kind test to the guest exactly when this host cannot run all of it, and says why', () => {
    const has = (k: string) => k === 'veth' || k === 'bridge';
    const probes = (body: string) => `import { inKernelGuest, kindAvailable } from '../helpers.js';\n${body}`;
    // No guest branch at all: the host suite runs every line of it.
    expect(guestReason(`it('x', async () => { await kindAvailable('dummy'); });`, has)).toBe('');
    expect(guestReason(probes(`const p = await kindAvailable('dummy'); if (inKernelGuest) expect(p).toBe(true);`), has)).toBe('this kernel lacks dummy');
    expect(guestReason(probes(`await kindAvailable('veth'); await kindAvailable( 'bond' ); await kindAvailable('bond');`), has)).toBe('this kernel lacks bond');
    expect(guestReason(probes(`const p = await kindAvailable('bridge'); if (inKernelGuest) expect(p).toBe(true);`), has)).toBe('');
    // A probe it cannot answer for the file sends it to the guest rather than nowhere.
    expect(guestReason(probes(`await kindAvailable('bridge'); if (inKernelGuest && kernelAtLeast(6, 7)) {}`), has)).toBe('it probes with kernelAtLeast');
    expect(guestReason(probes(`if (inKernelGuest) expect(await vlanFilteringAvailable()).toBe(true);`), has)).toBe('it probes with vlanFilteringAvailable');
    expect(guestReason(probes(`if (inKernelGuest) {}`), has)).toBe('it reads inKernelGuest without a kindAvailable probe');
    expect(guestReason(probes(`for (const k of kinds) await kindAvailable(k); if (inKernelGuest) {}`), has)).toBe('a kindAvailable probe of a kind not written as a literal');

    const files: Record<string, string> = {
      'test/kinds/a.test.ts': probes(`await kindAvailable('veth'); if (inKernelGuest) {}`),
      'test/kinds/b.test.ts': probes(`await kindAvailable('vrf'); if (inKernelGuest) {}`),
      'test/kinds/c.test.ts': `it('plain', () => {});`,
    };
    expect(selectFiles(Object.keys(files), has, (f: string) => files[f])).toEqual({
      guest: [{ file: 'test/kinds/b.test.ts', why: 'this kernel lacks vrf' }],
      host: ['test/kinds/a.test.ts', 'test/kinds/c.test.ts'],
    });
  });

  it('probes a kind with ip in a namespace it removes again', () => {
    const mine = () => spawnSync('ip', ['netns', 'list'], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l.startsWith(`vt-vnlkind-${process.pid}-`));
    expect(kindProbe('veth')).toBe(true);
    expect(kindProbe('nosuchkind0')).toBe(false);
    expect(() => kindProbe('a b; reboot')).toThrow(/"a b; reboot" is not a link kind/);
    expect(mine()).toEqual([]);
  });
});
