// What one link.add / tap.create costs in syscalls, seen from outside with strace (counts, never
// times): one recvmsg per datagram (no MSG_PEEK probe), and a tap made with one open, one
// TUNSETIFF, no fcntl but the addon's identity dup, no extra socket, no TUNSETOFFLOAD 0 and no sysfs read.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { hasTool, ipLinks, privilegedSkipReason, uniqueName } from './helpers.js';
import { Netns } from '../lib/index.js';

const execFileP = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const skip = privilegedSkipReason();
const N = 10;

/** Runs `body` (module code with `h`, a handle in `ns`) under strace -f; returns the trace lines. */
async function traced(ns: string, body: string, syscalls: string): Promise<{ lines: string[]; links: any[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vnl-percall-'));
  try {
    const script = path.join(dir, 's.mjs');
    const out = path.join(dir, 'trace');
    fs.writeFileSync(script, `import { execFileSync } from 'node:child_process';
import { open } from ${JSON.stringify(path.join(root, 'dist', 'index.js'))};
const h = await open({ netns: ${JSON.stringify(ns)} });
await h.link.list();
process.stdout.write('BEGIN\\n');
${body}
process.stdout.write('END\\n');
process.stdout.write(execFileSync('ip', ['-n', ${JSON.stringify(ns)}, '-j', 'link', 'show']));
await h.close();
`);
    // Markers in the trace (the write of BEGIN/END to stdout) bracket the calls measured.
    const { stdout } = await execFileP('strace', ['-f', '-qq', '-o', out, '-e', `trace=${syscalls},write`, '-s', '8', 'node', script], { timeout: 120_000 });
    const lines = fs.readFileSync(out, 'utf8').split('\n');
    const b = lines.findIndex((l) => /write\(1, "BEGIN/.test(l));
    const e = lines.findIndex((l) => /write\(1, "END/.test(l));
    expect(b).toBeGreaterThanOrEqual(0);
    expect(e).toBeGreaterThan(b);
    return { lines: lines.slice(b + 1, e), links: JSON.parse(stdout.slice(stdout.indexOf('END\n') + 4)) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const count = (lines: string[], re: RegExp) => lines.filter((l) => re.test(l)).length;

describe.skipIf(skip)('per-call syscalls', () => {
  it(`${N} echoed link.add of veths and bridges: one recvmsg per reply datagram, none with MSG_PEEK`, async () => {
    hasTool('strace');
    const ns = await Netns.create(uniqueName('vnl-percall'));
    try {
      const { lines: t } = await traced(ns.name, `for (let i = 0; i < ${N}; i++) {
  await h.link.add({ kind: 'veth', name: 'v' + i, peer: { name: 'v' + i + 'p' } });
  await h.link.add({ kind: 'bridge', name: 'b' + i });
}`, 'recvmsg,sendto');
      expect(count(t, /recvmsg\(.*MSG_PEEK/)).toBe(0);
      expect(count(t, /sendto\(/)).toBe(2 * N);
      // Each create: the echo and the ack, two datagrams, two reads.
      expect(count(t, /recvmsg\(/)).toBe(4 * N);
      expect((await ipLinks(ns)).filter((l) => /^(v\d+p?|b\d+)$/.test(l.ifname))).toHaveLength(3 * N);
    } finally {
      await ns.delete();
    }
  });

  it(`${N} tap.create: one open and one TUNSETIFF per tap, no fcntl but the identity dup, no new socket, no TUNSETOFFLOAD without offloads, no sysfs; a fe: MAC alone costs no netlink message`, async () => {
    hasTool('strace');
    const ns = await Netns.create(uniqueName('vnl-percall'));
    try {
      const { lines: t, links } = await traced(ns.name, `const taps = [];
for (let i = 0; i < ${N}; i++) taps.push(await h.tap.create({ name: 't' + i }));
for (let i = 0; i < ${N}; i++) taps.push(await h.tap.create({ name: 'g' + i, group: 7, vnetHdr: true }));
globalThis.keep = taps;`, 'openat,ioctl,fcntl,socket,sendto,recvmsg,close,fstat,newfstatat,statx');
      expect(count(t, /openat\(.*\/dev\/net\/tun/)).toBe(2 * N);
      expect(count(t, /TUNSETIFF/)).toBe(2 * N);
      expect(count(t, /TUNSETOFFLOAD/)).toBe(0);
      // The only fcntl: the addon's private dup of each queue fd, which kcmp compares against
      // to know the fd is still ours (native/napi/addon.cc, fdOwner).
      expect(count(t, /fcntl\(/)).toBe(count(t, /fcntl\(\d+, F_DUPFD_CLOEXEC/));
      expect(count(t, /fcntl\(/)).toBeLessThanOrEqual(2 * N);
      expect(count(t, /socket\(/)).toBe(0);
      expect(count(t, /openat\(.*(class\/net|tun_flags)/)).toBe(0);
      // One stat of each queue fd (/dev/net/tun is 10:200): the addon's, which also hands the
      // identity to lib/tap.ts, so JS does not stat it again.
      expect(count(t, /(fstat|newfstatat|statx)\(.*makedev\(0xa, 0xc8\)/)).toBe(2 * N);
      // The MAC of the first ten went by SIOCSIFHWADDR on the queue fd; the group (and the MAC)
      // of the other ten by one RTM_NEWLINK each.
      expect(count(t, /SIOCSIFHWADDR/)).toBe(N);
      expect(count(t, /sendto\(/)).toBe(N);
      // What ip saw while the taps were open: every tap has a fe: MAC, the second ten group 7.
      const taps = links.filter((l: any) => /^[tg]\d+$/.test(l.ifname));
      expect(taps).toHaveLength(2 * N);
      for (const l of taps) expect(l.address).toMatch(/^fe:/);
      expect(taps.filter((l: any) => l.group === '7' || l.group === 7).length).toBe(N);
    } finally {
      await ns.delete();
    }
  });
});
