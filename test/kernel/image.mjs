// The kernel-kinds guest's pieces: Debian 12's generic 6.12 kernel (`linux-image-6.12-amd64`, from
// bookworm-security: 6.1's `linux-image-amd64` has no netkit, which came in 6.7; the cloud flavour
// the VM tests boot has no 9p, and the guest's root is the host's `/` over 9p), its modules pruned
// to what networking needs and indexed with depmod so the host's own `modprobe` works inside the
// guest, and busybox-static for the initramfs. Fetched with `apt-get download` and unpacked with
// `dpkg-deb -x` (never installed), cached under the VM tests' cache directory keyed by the package
// versions, so only the first run downloads. The initramfs itself is built per run (it names the
// checkout and node to run), in a temp dir the caller removes.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CACHE_DIR, candidate, cpioNewc, kernelPackage, moduleDepends, moduleOrder, unpack } from '../../examples/vm/image.js';

/** The meta package whose versioned kernel the guest boots. */
export const KERNEL_META = 'linux-image-6.12-amd64';
/** What stage 1 (busybox) loads to reach the root: the 9p transport and the overlay over it. */
export const BOOT_MODULES = ['virtio_pci', '9pnet_virtio', '9p', 'overlay'];
/**
 * The link kinds' modules stage 2 loads with modprobe (and reports): the kinds this project creates
 * that a host kernel may lack. Anything else the tests need autoloads through the same modprobe.
 */
export const KIND_MODULES = ['dummy', '8021q', 'bonding', 'ipvlan', 'ipvtap', 'vrf', 'geneve', 'ip_gre', 'ip6_gre', 'wireguard', 'netkit', 'veth', 'macvlan', 'vxlan', 'bridge', 'tun', 'ifb'];
/** The module directories kept from the package (plus whatever those modules depend on). */
const KEEP = ['kernel/net', 'kernel/drivers/net', 'kernel/drivers/virtio', 'kernel/fs/9p', 'kernel/fs/overlayfs',
  'kernel/fs/netfs', 'kernel/fs/fscache', 'kernel/crypto', 'kernel/lib', 'kernel/arch'];

const PREFIX = 'kinds-';
/** A cache entry of another package version unused this long is removed. */
const STALE_MS = 24 * 3600_000;

const run = (cmd, args, cwd) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });

/**
 * Decompresses the package's modules in place (6.12 ships them as .ko.xz): moduleDepends reads a
 * plain .ko, and busybox's insmod in stage 1 loads only plain ones. Done once, when the cache
 * entry is built; one xz per few hundred files.
 */
function decompress(modRoot) {
  const xz = fs.readdirSync(path.join(modRoot, 'kernel'), { recursive: true }).map(String)
    .filter((rel) => rel.endsWith('.ko.xz')).map((rel) => path.join(modRoot, 'kernel', rel));
  for (let i = 0; i < xz.length; i += 400) run('xz', ['-d', '-q', '--', ...xz.slice(i, i + 400)]);
}

/** Every .ko under dir, by module name ('-' as '_'), relative to modRoot. */
function koFiles(modRoot) {
  const out = new Map();
  for (const rel of fs.readdirSync(path.join(modRoot, 'kernel'), { recursive: true }).map(String)) {
    if (rel.endsWith('.ko')) out.set(path.basename(rel, '.ko').replace(/-/g, '_'), path.join('kernel', rel));
  }
  return out;
}

/**
 * Deletes the modules outside KEEP that no kept module depends on (the package is ~400 MB, most
 * of it drivers for hardware a guest never has), then writes modules.dep with depmod.
 */
function prune(kroot, kver) {
  const modRoot = path.join(kroot, 'lib/modules', kver);
  const all = koFiles(modRoot);
  const keep = new Set();
  const visit = (name, depth) => {
    if (keep.has(name) || !all.has(name)) return;
    if (depth > 32) throw new Error(`module dependencies of ${name} nest too deep`);
    keep.add(name);
    for (const d of moduleDepends(fs.readFileSync(path.join(modRoot, all.get(name))))) visit(d.replace(/-/g, '_'), depth + 1);
  };
  for (const [name, rel] of all) if (KEEP.some((k) => rel.startsWith(k + '/'))) visit(name, 0);
  for (const [name, rel] of all) if (!keep.has(name)) fs.rmSync(path.join(modRoot, rel));
  run('depmod', ['-b', kroot, kver]);
  return keep.size;
}

/** The cache entry's name: both packages and their versions (a new kernel is a new entry). */
export function cacheKey() {
  const kpkg = kernelPackage(KERNEL_META);
  return `${PREFIX}${kpkg}_${candidate(kpkg)}+busybox-static_${candidate('busybox-static')}`.replace(/[^A-Za-z0-9._+-]/g, '_');
}

/**
 * The cached kernel pieces, built on first use:
 * `{ dir, key, kver, vmlinuz, modules (lib/modules/KVER), busybox, boot: [{ name, file }] }`.
 * Entries of other package versions that no run used for a day are removed when a new one is built.
 */
export function kernelPieces(log = () => {}) {
  const key = cacheKey();
  const dir = path.join(CACHE_DIR, key);
  if (!fs.existsSync(path.join(dir, 'done'))) {
    fs.mkdirSync(CACHE_DIR, { recursive: true });
    log(`kernel guest: fetching and unpacking ${key.slice(PREFIX.length)} into ${CACHE_DIR} (once)`);
    // Built in a private temp dir and renamed into place: a concurrent run never sees half an entry.
    const tmp = fs.mkdtempSync(path.join(CACHE_DIR, '.build-kinds-'));
    try {
      const kpkg = kernelPackage(KERNEL_META);
      const kroot = unpack(kpkg, path.join(tmp, 'k'));
      const broot = unpack('busybox-static', path.join(tmp, 'bb'));
      const out = path.join(tmp, 'out');
      fs.mkdirSync(out);
      const [kver, ...more] = fs.readdirSync(path.join(kroot, 'lib/modules'));
      if (!kver || more.length) throw new Error(`${kpkg}: expected one lib/modules/ directory, found ${[kver, ...more].join(', ')}`);
      const vmlinuz = `vmlinuz-${kver}`;
      if (!fs.existsSync(path.join(kroot, 'boot', vmlinuz))) throw new Error(`${kpkg} has no /boot/${vmlinuz}`);
      fs.copyFileSync(path.join(kroot, 'boot', vmlinuz), path.join(out, 'vmlinuz'));
      fs.copyFileSync(path.join(broot, 'bin/busybox'), path.join(out, 'busybox'));
      decompress(path.join(kroot, 'lib/modules', kver));
      prune(kroot, kver);
      fs.mkdirSync(path.join(out, 'lib/modules'), { recursive: true });
      fs.renameSync(path.join(kroot, 'lib/modules', kver), path.join(out, 'lib/modules', kver));
      fs.writeFileSync(path.join(out, 'kver'), kver + '\n');
      fs.writeFileSync(path.join(out, 'done'), key + '\n');
      try {
        fs.renameSync(out, dir);
      } catch (e) {
        if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;  // another run won
      }
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
    // Another checkout (another branch, an older main) may be booting its own entry right now:
    // only entries no run has used for a day go.
    for (const e of fs.readdirSync(CACHE_DIR)) {
      if (!e.startsWith(PREFIX) || e === key) continue;
      let used = 0;
      try { used = fs.statSync(path.join(CACHE_DIR, e, 'done')).mtimeMs; } catch { /* no done: removed */ }
      if (Date.now() - used > STALE_MS) fs.rmSync(path.join(CACHE_DIR, e), { recursive: true, force: true });
    }
  }
  const now = new Date();
  fs.utimesSync(path.join(dir, 'done'), now, now);  // in use: no other run removes it
  const kver = fs.readFileSync(path.join(dir, 'kver'), 'utf8').trim();
  const modules = path.join(dir, 'lib/modules', kver);
  return { dir, key, kver, vmlinuz: path.join(dir, 'vmlinuz'), modules, busybox: path.join(dir, 'busybox'), boot: moduleOrder(modules, BOOT_MODULES) };
}

/** Single-quotes a string for sh. */
export const shq = (s) => `'${String(s).replace(/'/g, `'\\''`)}'`;

/**
 * Writes the run's initramfs into `tmpDir`: busybox, the boot modules, stage 1 (init.sh) and
 * stage 2 (stage2.sh) with its settings prepended as shell assignments. Returns its path.
 * @param {ReturnType<typeof kernelPieces>} k
 * @param {{ project: string, node: string, files: string[], ci: string, timeoutSec: number }} o
 */
export function writeInitrd(k, o, tmpDir) {
  const here = path.dirname(new URL(import.meta.url).pathname);
  const settings = [
    `KVER=${shq(k.kver)}`, `MODDIR=${shq(k.modules)}`, `PROJECT=${shq(o.project)}`, `NODE=${shq(o.node)}`,
    `FILES=${shq(o.files.join(' '))}`, `CI_VALUE=${shq(o.ci)}`, `KIND_MODULES=${shq(KIND_MODULES.join(' '))}`,
    `TIMEOUT=${shq(o.timeoutSec)}`,
  ].join('\n');
  const stage2 = fs.readFileSync(path.join(here, 'stage2.sh'), 'utf8').replace(/^#!.*\n/, (l) => `${l}${settings}\n`);
  const entries = [
    ...['bin', 'dev', 'proc', 'sys', 'modules', 'lower', 'rw', 'newroot'].map((d) => ({ name: d, mode: 0o40755 })),
    { name: 'bin/busybox', mode: 0o100755, data: fs.readFileSync(k.busybox) },
    { name: 'bin/sh', mode: 0o120777, data: Buffer.from('busybox') },
    { name: 'init', mode: 0o100755, data: fs.readFileSync(path.join(here, 'init.sh')) },
    { name: 'stage2.sh', mode: 0o100755, data: Buffer.from(stage2) },
    { name: 'modules/order', mode: 0o100644, data: Buffer.from(k.boot.map((m) => m.name).join('\n') + '\n') },
    ...k.boot.map((m) => ({ name: `modules/${m.name}.ko`, mode: 0o100644, data: fs.readFileSync(m.file) })),
  ];
  const file = path.join(tmpDir, 'initrd.cpio');
  fs.writeFileSync(file, cpioNewc(entries));
  return file;
}
