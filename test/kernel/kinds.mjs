// Which link kinds this kernel has, and so which kind tests need the Debian-kernel guest. Plain JS:
// both the suite (test/helpers.ts's kindAvailable) and the guest runner (run.mjs, on the host
// before it boots anything) probe a kind the same way, with `ip` in a throwaway namespace.
import { execFileSync, spawnSync } from 'node:child_process';

/** The arguments `ip link add ... type KIND` needs to succeed at all. */
const KIND_ARGS = { vlan: ['id', '1'], vrf: ['table', '10'], vxlan: ['id', '1', 'dstport', '4789'], geneve: ['id', '1', 'remote', '198.51.100.9'] };
/** Kinds that sit on a lower device (a veth is made for them first). */
const LOWER_KINDS = new Set(['vlan', 'macvlan', 'macvtap', 'ipvlan', 'ipvtap']);
let seq = 0;

/**
 * Whether this kernel can create a link of `kind` (built in, or a module it loads on demand):
 * tries one with `ip` in a throwaway namespace, on a veth when the kind needs a lower device.
 * Synchronous (a few `ip` runs); throws only when `ip` itself cannot make a namespace or a veth.
 * @param {string} kind
 */
export function kindProbe(kind) {
  if (!/^[a-z0-9_]+$/.test(kind)) throw new Error(`kindProbe: ${JSON.stringify(kind)} is not a link kind`);
  const ns = `vt-vnlkind-${process.pid}-${++seq}`;
  execFileSync('ip', ['netns', 'add', ns], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  try {
    const ip = (...a) => spawnSync('ip', ['-n', ns, ...a], { stdio: 'ignore', timeout: 30_000 }).status === 0;
    const lower = LOWER_KINDS.has(kind) ? ['link', 'kp0'] : [];
    if (lower.length && !ip('link', 'add', 'kp0', 'type', 'veth', 'peer', 'name', 'kp1')) throw new Error('kindProbe: cannot make a veth');
    return ip('link', 'add', ...lower, 'name', 'kt0', 'type', kind, ...(KIND_ARGS[kind] ?? []));
  } finally {
    execFileSync('ip', ['netns', 'del', ns], { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 });
  }
}

/**
 * Why a kind test file needs the guest, or '' when this host already runs all of it. A file has
 * a branch for a kernel that lacks something exactly when it reads `inKernelGuest` (there, the
 * guest must have it); such a file needs the guest unless every probe it makes is a
 * `kindAvailable('KIND')` this host answers yes to. Any other probe (a kernel version, a
 * feature) sends it to the guest: better one needless guest file than a branch nowhere run.
 * @param {string} source  the test file's text
 * @param {(kind: string) => boolean} has  the host's answer for a kind (kindProbe)
 */
export function guestReason(source, has) {
  if (!/\binKernelGuest\b/.test(source)) return '';
  const other = [...source.matchAll(/\b(\w*(?:Available|AtLeast|Supported|kernelHas\w*))\s*\(/g)].map((m) => m[1]).filter((n) => n !== 'kindAvailable');
  if (other.length) return `it probes with ${[...new Set(other)].join(', ')}`;
  const calls = [...source.matchAll(/\bkindAvailable\s*\(([^)]*)\)/g)].map((m) => m[1].trim());
  if (!calls.length) return 'it reads inKernelGuest without a kindAvailable probe';
  const literal = calls.map((c) => /^'([a-z0-9_]+)'$/.exec(c)?.[1]);
  if (literal.some((k) => !k)) return 'a kindAvailable probe of a kind not written as a literal';
  const missing = [...new Set(/** @type {string[]} */ (literal))].filter((k) => !has(k));
  return missing.length ? `this kernel lacks ${missing.join(', ')}` : '';
}
