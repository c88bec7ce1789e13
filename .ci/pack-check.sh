#!/usr/bin/env bash
# A packed tarball carries prebuilds/<platform>-<arch>/vnetlink.node and installs with
# --ignore-scripts (no compiler involved), then loads and talks to the kernel.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
tgz=$(npm pack --silent --pack-destination "$tmp" | tail -n 1)
tar -tzf "$tmp/$tgz" | grep -q "package/prebuilds/$(node -p 'process.platform+"-"+process.arch')/vnetlink.node" \
  || { echo "pack-check: the tarball has no prebuild"; exit 1; }
mkdir -p "$tmp/app"
cd "$tmp/app"
echo '{"name":"app","version":"1.0.0","type":"module"}' > package.json
# No compiler on PATH and no install scripts: only the prebuild can make this work.
PATH_NOCC=$(mktemp -d); for t in node npm; do ln -s "$(command -v $t)" "$PATH_NOCC/$t"; done
CC=false CXX=false PATH="$PATH_NOCC" npm install --ignore-scripts --no-audit --no-fund --omit=dev "$tmp/$tgz" >/dev/null
test ! -d node_modules/vnetlink/build || { echo "pack-check: something was built"; exit 1; }
PATH="$PATH_NOCC" node --input-type=module -e "
import { open, NetlinkError } from 'vnetlink';
const nl = await open();
const lo = await nl.link.get('lo');
if (lo.kind !== 'loopback') throw new Error('unexpected ' + JSON.stringify(lo));
await nl.close();
console.log('pack-check: tarball with prebuild installed with --ignore-scripts and works (lo index ' + lo.index + ')');
"
rm -rf "$PATH_NOCC"
# The pack step built the prebuild in the work tree (and prebuildify cleaned build/): move
# it to build/Release so later local builds are never shadowed by it.
cd - >/dev/null
pb="prebuilds/$(node -p 'process.platform+"-"+process.arch')"
mkdir -p build/Release
cp "$pb/vnetlink.node" build/Release/vnetlink.node
rm -rf "$pb"
