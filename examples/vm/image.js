// The guest the VM tests and the demo boot: Debian's cloud kernel and busybox-static, fetched with
// `apt-get download` and unpacked with `dpkg-deb -x` (never installed on the host), the virtio
// modules the kernel does not have built in, a static C helper, and our /init, packed into an
// initramfs. Everything is cached under one directory keyed by the package versions (and the
// content of what we add), so only the first run downloads and builds.
import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CACHE_DIR = process.env.VNETLINK_VM_CACHE ?? path.join('/var/tmp', 'vnetlink-vm');
/** The meta package whose versioned kernel package the guest runs. */
export const KERNEL_META = 'linux-image-cloud-amd64';
/** What the guest's NICs need, in the kernel's module names; their dependencies come from each .ko. */
const WANTED_MODULES = ['virtio_pci', 'virtio_net'];

const run = (cmd, args, cwd) =>
  execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 300_000 });

/** The candidate version apt would fetch, from `apt-cache policy`. */
export function candidate(pkg) {
  const m = /Candidate: (\S+)/.exec(run('apt-cache', ['policy', pkg]));
  if (!m || m[1] === '(none)') throw new Error(`${pkg}: apt knows no version of it (run apt-get update)`);
  return m[1];
}

/** The versioned kernel package a meta package depends on (`linux-image-6.1.0-NN-cloud-amd64`). */
export function kernelPackage(meta = KERNEL_META) {
  const out = run('apt-cache', ['show', '--no-all-versions', meta]);
  const m = /^Depends:.*?\b(linux-image-[0-9][^\s,]*)/m.exec(out);
  if (!m) throw new Error(`${meta}: no versioned linux-image dependency in apt-cache show`);
  return m[1];
}

/** Downloads a .deb into dir and unpacks it into dir/root; returns the root. */
export function unpack(pkg, dir) {
  fs.mkdirSync(dir, { recursive: true });
  fs.chmodSync(dir, 0o777);  // apt's _apt user writes the download
  run('apt-get', ['download', '-q', pkg], dir);
  const deb = fs.readdirSync(dir).find((f) => f.endsWith('.deb') && f.startsWith(pkg + '_'));
  if (!deb) throw new Error(`apt-get download ${pkg} left no .deb in ${dir}`);
  const root = path.join(dir, 'root');
  run('dpkg-deb', ['-x', path.join(dir, deb), root]);
  return root;
}

/** A module's dependencies, from the `depends=` string in its .modinfo section. */
export function moduleDepends(ko) {
  const tag = Buffer.from('\0depends=');
  const at = ko.indexOf(tag);
  if (at < 0) return [];
  const start = at + tag.length;
  const end = ko.indexOf(0, start);
  if (end < 0) throw new Error('a .ko whose depends= string never ends');
  return ko.subarray(start, end).toString('latin1').split(',').filter(Boolean);
}

/**
 * The .ko files the wanted modules need, dependencies first (the order insmod needs), skipping
 * any that modules.builtin says are built in.
 */
export function moduleOrder(modRoot, wanted = WANTED_MODULES) {
  const builtin = new Set(fs.readFileSync(path.join(modRoot, 'modules.builtin'), 'utf8').split('\n')
    .filter(Boolean).map((l) => path.basename(l).replace(/\.ko.*$/, '').replace(/-/g, '_')));
  const files = new Map();
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ko')) files.set(e.name.slice(0, -3).replace(/-/g, '_'), p);
    }
  };
  walk(path.join(modRoot, 'kernel'));
  const out = [];
  const seen = new Set();
  const visit = (name, depth) => {
    if (seen.has(name) || builtin.has(name)) return;
    if (depth > 32) throw new Error(`module dependencies of ${name} nest too deep`);
    const file = files.get(name);
    if (!file) throw new Error(`module ${name} is neither built in nor shipped by the kernel package`);
    seen.add(name);
    for (const dep of moduleDepends(fs.readFileSync(file))) visit(dep.replace(/-/g, '_'), depth + 1);
    out.push({ name, file });
  };
  for (const m of wanted) visit(m, 0);
  return out;
}

/** A newc cpio archive (what the kernel unpacks as an initramfs) of the given entries. */
/** @param {{ name: string, mode: number, data?: Buffer }[]} entries */
export function cpioNewc(entries) {
  const parts = [];
  let ino = 1;
  const pad4 = (n) => Buffer.alloc((4 - (n % 4)) % 4);
  const add = (name, mode, data) => {
    const hex = (n) => n.toString(16).padStart(8, '0');
    const nameBuf = Buffer.from(name + '\0');
    const hdr = '070701' + [ino++, mode, 0, 0, 1, 0, data.length, 0, 0, 0, 0, nameBuf.length, 0].map(hex).join('');
    parts.push(Buffer.from(hdr, 'latin1'), nameBuf, pad4(110 + nameBuf.length), data, pad4(data.length));
  };
  for (const e of entries) add(e.name, e.mode, e.data ?? Buffer.alloc(0));
  add('TRAILER!!!', 0, Buffer.alloc(0));
  return Buffer.concat(parts);
}

/** Builds (or finds in the cache) the pieces that depend only on the packages. */
function basePieces() {
  const kpkg = kernelPackage();
  const key = `${kpkg}_${candidate(kpkg)}+busybox-static_${candidate('busybox-static')}`.replace(/[^A-Za-z0-9._+-]/g, '_');
  const dir = path.join(CACHE_DIR, key);
  if (fs.existsSync(path.join(dir, 'done'))) return { dir, key };
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  // Built in a private temp dir, then renamed into place: two test files building at once
  // never see half a cache entry.
  const tmp = fs.mkdtempSync(path.join(CACHE_DIR, '.build-'));
  try {
    const kroot = unpack(kpkg, path.join(tmp, 'k'));
    const broot = unpack('busybox-static', path.join(tmp, 'bb'));
    const out = path.join(tmp, 'out');
    fs.mkdirSync(path.join(out, 'modules'), { recursive: true });
    const vmlinuz = fs.readdirSync(path.join(kroot, 'boot')).find((f) => f.startsWith('vmlinuz-'));
    if (!vmlinuz) throw new Error(`${kpkg} has no /boot/vmlinuz-*`);
    fs.copyFileSync(path.join(kroot, 'boot', vmlinuz), path.join(out, 'vmlinuz'));
    const [kver] = fs.readdirSync(path.join(kroot, 'lib/modules'));
    const mods = moduleOrder(path.join(kroot, 'lib/modules', kver));
    for (const m of mods) fs.copyFileSync(m.file, path.join(out, 'modules', m.name + '.ko'));
    fs.writeFileSync(path.join(out, 'modules/order'), mods.map((m) => m.name).join('\n') + '\n');
    fs.copyFileSync(path.join(broot, 'bin/busybox'), path.join(out, 'busybox'));
    fs.writeFileSync(path.join(out, 'done'), key + '\n');
    try {
      fs.renameSync(out, dir);
    } catch (e) {
      if (e.code !== 'ENOTEMPTY' && e.code !== 'EEXIST') throw e;  // another builder won
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return { dir, key };
}

/** Compiles examples/vm/vmhelper.c statically (cached by its source's hash). */
export function helperBinary() {
  const src = fs.readFileSync(path.join(here, 'vmhelper.c'));
  const hash = crypto.createHash('sha256').update(src).digest('hex').slice(0, 16);
  const bin = path.join(CACHE_DIR, `vmhelper-${hash}`);
  if (fs.existsSync(bin)) return bin;
  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const tmp = `${bin}.${process.pid}`;
  run('gcc', ['-static', '-O2', '-Wall', '-Werror', '-o', tmp, path.join(here, 'vmhelper.c')]);
  fs.renameSync(tmp, bin);
  return bin;
}

/** @type {{ kernel: string, initrd: string, key: string } | undefined} */
let cached;

/** The kernel and initramfs to boot, built on first use. */
export function guestImage() {
  if (cached) return cached;
  const { dir, key } = basePieces();
  const helper = fs.readFileSync(helperBinary());
  const init = fs.readFileSync(path.join(here, 'init.sh'));
  const order = fs.readFileSync(path.join(dir, 'modules/order'), 'utf8').split('\n').filter(Boolean);
  const entries = [
    ...['bin', 'dev', 'proc', 'sys', 'tmp', 'etc', 'modules', 'www'].map((d) => ({ name: d, mode: 0o40755 })),
    { name: 'bin/busybox', mode: 0o100755, data: fs.readFileSync(path.join(dir, 'busybox')) },
    { name: 'bin/sh', mode: 0o120777, data: Buffer.from('busybox') },
    { name: 'bin/vmhelper', mode: 0o100755, data: helper },
    { name: 'init', mode: 0o100755, data: init },
    { name: 'modules/order', mode: 0o100644, data: Buffer.from(order.join('\n') + '\n') },
    ...order.map((m) => ({ name: `modules/${m}.ko`, mode: 0o100644, data: fs.readFileSync(path.join(dir, 'modules', m + '.ko')) })),
  ];
  const archive = cpioNewc(entries);
  const hash = crypto.createHash('sha256').update(archive).digest('hex').slice(0, 16);
  const initrd = path.join(dir, `initrd-${hash}.cpio`);
  if (!fs.existsSync(initrd)) {
    const tmp = `${initrd}.${process.pid}`;
    fs.writeFileSync(tmp, archive);
    fs.renameSync(tmp, initrd);
  }
  cached = { kernel: path.join(dir, 'vmlinuz'), initrd, key };
  return cached;
}
