// Loads the addon: the prebuild shipped in the package first, then a local build.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import path from 'node:path';
import util from 'node:util';

const require = createRequire(import.meta.url);
const bindings = require('bindings') as (opts: Record<string, unknown>) => unknown;

/** The package root: dist/.. (or lib/.. when run from sources). @internal */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** @internal */
export interface NativeHandle {
  call(op: string, args?: object): Promise<any>;
  close(): Promise<void>;
  pending(): number;
}

/** @internal */
export interface NativeAddon {
  Handle: new (spec?: { netnsPath?: string; netnsFd?: number }) => NativeHandle;
  ops: string[];
  [k: string]: any;
}

// Where the addon may be, in order (bindings' `try` list): the prebuild, then node-gyp's output.
const tryList = [
  ['module_root', 'prebuilds', 'platformArch', 'bindings'],
  ['module_root', 'build', 'Release', 'bindings'],
];

/**
 * Loads vnetlink.node from `root`. When it cannot, the error lists the files it tried (and why
 * each failed) and how to build the addon for this machine. @internal
 */
export function loadNative(root: string): NativeAddon {
  const platformArch = `${process.platform}-${process.arch}`;
  try {
    return bindings({ bindings: 'vnetlink.node', module_root: root, platformArch, try: tryList }) as NativeAddon;
  } catch (e) {
    const tried = tryList.map((parts) => {
      const file = path.join(...parts.map((p) => (p === 'module_root' ? root : p === 'platformArch' ? platformArch : p === 'bindings' ? 'vnetlink.node' : p)));
      return `  ${file}: ${fs.existsSync(file) ? 'exists but did not load' : 'not found'}`;
    });
    const first = e instanceof Error ? e.message.split('\n')[0] : String(e);
    const reason = first.startsWith('Could not locate the bindings file') ? 'no addon file found' : first;
    const err = new Error(
      `vnetlink: cannot load its native addon (${reason}).\nTried:\n${tried.join('\n')}\n` +
      `The package ships a prebuild for linux-x64 (glibc) only. To build the addon for this machine (${platformArch}), ` +
      `allow vnetlink's install scripts and run \`npm rebuild vnetlink\` (from a git checkout: \`npm run build:native\`); ` +
      'building needs g++ (C++17), make and python3.',
      { cause: e });
    (err as { code?: string }).code = 'ERR_VNETLINK_ADDON';
    throw err;
  }
}

/**
 * The addon. VNETLINK_ADDON names another build of it to load instead (the sanitizer build:
 * `npm run test:asan` points it at build-asan/). @internal
 */
export const native: NativeAddon = (process.env.VNETLINK_ADDON
  ? require(path.resolve(process.env.VNETLINK_ADDON))
  : loadNative(packageRoot)) as NativeAddon;

/**
 * NODE_DEBUG=vnetlink: each call (op, arguments, outcome) from here, and each netlink message
 * sent and received (type, flags, seq, attributes, errno, extended ack) from the addon, on
 * stderr. Off by default: then it costs a boolean test per call and an atomic load per datagram.
 * @internal
 */
export const trace = util.debuglog('vnetlink');
if (trace.enabled) native.setTrace(true);
