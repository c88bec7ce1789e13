// npm install: use the prebuild shipped in prebuilds/<platform>-<arch>/ when it loads here,
// otherwise build the addon with node-gyp (needs a C++17 compiler and Python).
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
const gyp = require.resolve('node-gyp/bin/node-gyp.js');
const r = spawnSync(process.execPath, [gyp, 'rebuild', '-j', 'max'], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
