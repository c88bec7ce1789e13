// npm run prebuild: prebuildify (N-API, stripped) and name the file vnetlink.node, the name
// the loader's try list looks for in prebuilds/<platform>-<arch>/.
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');

const root = path.resolve(__dirname, '..');
const bin = require.resolve('prebuildify/bin.js');
const r = spawnSync(process.execPath, [bin, '--napi', '--strip'], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
for (const f of fs.readdirSync(dir)) {
  if (f.endsWith('.node') && f !== 'vnetlink.node') fs.renameSync(path.join(dir, f), path.join(dir, 'vnetlink.node'));
}
console.log(`prebuild: ${path.relative(root, path.join(dir, 'vnetlink.node'))}`);
