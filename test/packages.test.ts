// The test command's own set-up: what it does when a Debian package the suite needs is missing.
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ensurePackages, missingPackages, wanted } from './setup/packages.mjs';

const ghost = [{ name: 'vnetlink-no-such-package', commands: ['vnetlink-no-such-command'], why: 'a probe' }];

describe('the test command\'s package check', () => {
  it('lists every package the suite uses, and each is installed here (the set-up installed what was missing)', () => {
    const names = wanted('tests').map((p) => p.name);
    for (const p of ['nftables', 'dnsmasq-base', 'busybox', 'iputils-ping', 'openvswitch-switch', 'strace', 'conntrack', 'dnsutils', 'clang', 'libclang-rt-14-dev', 'qemu-system-x86'])
      expect(names).toContain(p);
    expect(names).not.toContain('busybox-static');  // conflicts with busybox; the VM tests unpack it
    expect(missingPackages(wanted('tests'))).toEqual([]);
  });

  it('names what is missing and the one command that installs it when it may not install', () => {
    const prev = process.env.VNETLINK_NO_INSTALL;
    process.env.VNETLINK_NO_INSTALL = '1';
    try {
      expect(() => ensurePackages('tests', { packages: ghost, log: () => {} }))
        .toThrow(/missing: vnetlink-no-such-package\n[^]*apt-get update && apt-get install -y --no-install-recommends vnetlink-no-such-package/);
    } finally {
      if (prev === undefined) delete process.env.VNETLINK_NO_INSTALL; else process.env.VNETLINK_NO_INSTALL = prev;
    }
  });

  it('as a user that is not root, fails with that message instead of trying apt-get', () => {
    const url = new URL('./setup/packages.mjs', import.meta.url).href;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
      import { ensurePackages } from ${JSON.stringify(url)};
      try { ensurePackages('tests', { packages: ${JSON.stringify(ghost)} }); console.log('no error'); }
      catch (e) { console.log(e.message); }`], { uid: 65534, gid: 65534, encoding: 'utf8', cwd: '/' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('(not running as root)');
    expect(r.stdout).toContain('apt-get install -y --no-install-recommends vnetlink-no-such-package');
    expect(r.stdout).not.toContain('installing');
  });
});
