#!/usr/bin/env bash
# A packed tarball carries prebuilds/<platform>-<arch>/vnetlink.node and installs with
# --ignore-scripts (no compiler involved), pulls in only its few runtime dependencies, then loads
# and talks to the kernel from four consumers: ESM, CommonJS, TypeScript (nodenext) and a bundle.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
tmp=$(mktemp -d)
trap 'rm -rf "$tmp" "${PATH_NOCC:-}"' EXIT
pb="prebuilds/$(node -p 'process.platform+"-"+process.arch')"
# Pack from a copy of the checkout: the prebuild step (prebuildify) builds and cleans build/
# there, so this work tree's own build is never touched.
mkdir "$tmp/src"
git ls-files -z -co --exclude-standard | tar --null -T - -cf - | tar -xf - -C "$tmp/src"
ln -s "$repo/node_modules" "$tmp/src/node_modules"
tgz=$(cd "$tmp/src" && npm pack --silent --pack-destination "$tmp" | tail -n 1)
tar -tzf "$tmp/$tgz" > "$tmp/files"
for f in "$pb/vnetlink.node" LICENSE CHANGELOG.md README.md dist/index.d.ts; do
  grep -qx "package/$f" "$tmp/files" || { echo "pack-check: the tarball has no $f"; exit 1; }
done
# stripInternal: the handle's private channel to the addon is not part of the published types.
tar -xzf "$tmp/$tgz" -C "$tmp" package/dist
if grep -rl '_call' "$tmp/package/dist" --include='*.d.ts'; then echo "pack-check: _call is in the published .d.ts"; exit 1; fi

# No compiler on PATH and no install scripts: only the prebuild can make this work.
PATH_NOCC=$(mktemp -d); for t in node npm; do ln -s "$(command -v $t)" "$PATH_NOCC/$t"; done
consumer() {  # consumer DIR TYPE: an empty project with vnetlink installed from the tarball
  mkdir -p "$1"
  echo "{\"name\":\"app\",\"version\":\"1.0.0\",\"type\":\"$2\"}" > "$1/package.json"
  (cd "$1" && CC=false CXX=false PATH="$PATH_NOCC" npm install --ignore-scripts --no-audit --no-fund --omit=dev "$tmp/$tgz" >/dev/null)
  test ! -d "$1/node_modules/vnetlink/build" || { echo "pack-check: something was built"; exit 1; }
}
check_stderr() {  # a consumer must load without warnings
  if [ -s "$1" ]; then echo "pack-check: $2 printed on stderr:"; cat "$1"; exit 1; fi
}

# ESM
consumer "$tmp/esm" module
n=$(cd "$tmp/esm" && ls node_modules | grep -v '^\.' | wc -l)
# vnetlink, bindings (+ file-uri-to-path), node-addon-api, and saxes (+ xmlchars) for libvirt XML.
[ "$n" -le 6 ] || { echo "pack-check: a consumer got $n packages: $(ls "$tmp/esm/node_modules")"; exit 1; }
(cd "$tmp/esm" && PATH="$PATH_NOCC" node --input-type=module -e "
import { open } from 'vnetlink';
const nl = await open();
const lo = await nl.link.get('lo');
if (lo.kind !== 'loopback') throw new Error('unexpected ' + JSON.stringify(lo));
await nl.close();
console.log('pack-check: ESM consumer: tarball with prebuild installed with --ignore-scripts and works (lo index ' + lo.index + ', ' + $n + ' packages)');
" 2>"$tmp/err") || { cat "$tmp/err"; exit 1; }
check_stderr "$tmp/err" 'the ESM consumer'

# CommonJS: require() of the ES module build (Node >= 20.19).
consumer "$tmp/cjs" commonjs
(cd "$tmp/cjs" && PATH="$PATH_NOCC" node -e "
const { open, NetlinkError } = require('vnetlink');
(async () => {
  const nl = await open();
  try { await nl.link.get('vnetlink-none'.slice(0, 15)); throw new Error('no error'); }
  catch (e) { if (!(e instanceof NetlinkError) || e.code !== 'ENODEV') throw e; }
  await nl.close();
  console.log('pack-check: CommonJS consumer: require(\'vnetlink\') works');
})().catch((e) => { console.error(e); process.exit(1); });
" 2>"$tmp/err") || { cat "$tmp/err"; exit 1; }
check_stderr "$tmp/err" 'the CommonJS consumer'

# TypeScript, moduleResolution nodenext: the published types check under --strict.
consumer "$tmp/ts" module
cat > "$tmp/ts/tsconfig.json" <<EOF
{ "compilerOptions": { "module": "nodenext", "moduleResolution": "nodenext", "target": "es2022", "strict": true,
  "lib": ["es2022", "esnext.disposable"], "types": ["node"], "typeRoots": ["$repo/node_modules/@types"], "outDir": "out" },
  "files": ["app.ts"] }
EOF
cat > "$tmp/ts/app.ts" <<'EOF'
import { open, NetlinkError, type Link } from 'vnetlink';
const nl = await open();
const lo: Link = await nl.link.get('lo');
if (lo.kind !== 'loopback') throw new Error(`unexpected kind ${lo.kind}`);
const up: boolean = lo.up;
try { await nl.link.get('nope0'); } catch (e) { if (!(e instanceof NetlinkError) || e.code !== 'ENODEV') throw e; }
await nl.close();
console.log(`pack-check: TypeScript (nodenext) consumer type-checks and works (lo up: ${up})`);
EOF
(cd "$tmp/ts" && node "$repo/node_modules/typescript/bin/tsc" -p . && PATH="$PATH_NOCC" node out/app.js)

# A bundle (esbuild) with vnetlink kept external, as README says: the addon stays in node_modules.
mkdir -p "$tmp/esm/src"
echo "import { open } from 'vnetlink'; const nl = await open(); console.log('pack-check: bundled consumer (esbuild --external:vnetlink) works, lo index ' + (await nl.link.get('lo')).index); await nl.close();" > "$tmp/esm/src/main.js"
node -e "require('esbuild').buildSync({ entryPoints: [process.argv[1]], bundle: true, platform: 'node', format: 'esm',
  external: ['vnetlink'], outfile: process.argv[2], logLevel: 'warning' })" "$tmp/esm/src/main.js" "$tmp/esm/bundle.mjs"
(cd "$tmp/esm" && PATH="$PATH_NOCC" node bundle.mjs)

# A fresh clone's `npm install` leaves package-lock.json as committed.
mkdir -p "$tmp/clone" && cp package.json package-lock.json "$tmp/clone/"
(cd "$tmp/clone" && npm install --package-lock-only --ignore-scripts --no-audit --no-fund >/dev/null)
cmp -s package-lock.json "$tmp/clone/package-lock.json" || { echo "pack-check: npm install changes package-lock.json:"; diff package-lock.json "$tmp/clone/package-lock.json" | head -20; exit 1; }
echo 'pack-check: npm install leaves package-lock.json unchanged'

