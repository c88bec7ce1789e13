// npm install: use the prebuild shipped in prebuilds/<platform>-<arch>/ when it loads here,
// otherwise build the addon with node-gyp (needs g++ with C++17, make and python3).
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const prebuild = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, 'vnetlink.node');

function loads(file) {
  try {
    require(file);
    return true;
  } catch (e) {
    console.error(`vnetlink: prebuild ${file} does not load here (${e.message}); building from source`);
    return false;
  }
}

if (fs.existsSync(prebuild) && loads(prebuild)) {
  console.log(`vnetlink: using prebuild ${path.relative(root, prebuild)}`);
  process.exit(0);
}
// npm hands its own node-gyp to lifecycle scripts (npm_config_node_gyp); a git checkout also
// has it as a devDependency.
let gyp = process.env.npm_config_node_gyp;
if (!gyp || !fs.existsSync(gyp)) {
  try { gyp = require.resolve('node-gyp/bin/node-gyp.js'); } catch { gyp = undefined; }
}
if (!gyp) {
  console.error('vnetlink: no prebuild fits this machine and node-gyp was not found; run `npm rebuild vnetlink` with npm (which brings node-gyp)');
  process.exit(1);
}
const missing = ['g++', 'make', 'python3'].filter((t) => spawnSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }).status !== 0);
if (missing.length) {
  console.error(`vnetlink: building the addon needs g++ (C++17), make and python3; missing: ${missing.join(', ')} ` +
    `(Debian: apt-get install --no-install-recommends ${missing.join(' ')})`);
  process.exit(1);
}
const r = spawnSync(process.execPath, [gyp, 'rebuild', '-j', 'max'], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
