// Loads the addon: the prebuild shipped in the package first, then a local build.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const require = createRequire(import.meta.url);
const bindings = require('bindings') as (opts: Record<string, unknown>) => unknown;

/** The package root: dist/.. (or lib/.. when run from sources). */
export const packageRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface NativeHandle {
  call(op: string, args?: object): Promise<any>;
  close(): Promise<void>;
  pending(): number;
}

export interface NativeAddon {
  Handle: new (spec?: { netnsPath?: string; netnsFd?: number }) => NativeHandle;
  ops: string[];
  [k: string]: any;
}

// VNETLINK_ADDON names another build of the addon to load instead (the sanitizer build:
// `npm run test:asan` points it at build-asan/).
export const native: NativeAddon = (process.env.VNETLINK_ADDON
  ? require(path.resolve(process.env.VNETLINK_ADDON))
  : bindings({
      bindings: 'vnetlink.node',
      module_root: packageRoot,
      platformArch: `${process.platform}-${process.arch}`,
      try: [
        ['module_root', 'prebuilds', 'platformArch', 'bindings'],
        ['module_root', 'build', 'Release', 'bindings'],
      ],
    })) as NativeAddon;
