#!/usr/bin/env bash
# npm run test:asan [-- vitest args]: builds the addon with AddressSanitizer and UBSan (clang)
# into build-asan/ (build/Release, which the normal tests load, is left alone), then runs the
# whole vitest suite with it: VNETLINK_ADDON points lib/native.ts at it and the ASan runtime
# is preloaded into node (an uninstrumented executable cannot load it later).
# Each test worker then drops both variables (test/asan-setup.ts), so the processes tests start
# (ip, nft, dnsmasq, a child node) run uninstrumented with the normal addon: preloaded ASan
# makes some of them hang (dnsmasq). Leak checking is off (Node frees little at exit); the
# first ASan or UBSan report aborts the worker, which fails its test file.
set -euo pipefail
cd "$(dirname "$0")/.."
out=build-asan
rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
[ -f "$rt" ] || { echo "test:asan: $rt missing (Debian: apt-get install clang libclang-rt-14-dev)"; exit 1; }

# node-gyp always builds into ./build next to binding.gyp: give it its own directory whose
# binding.gyp and native/ are the real ones.
mkdir -p "$out"
cp binding.gyp "$out/binding.gyp"
ln -sfn ../native "$out/native"
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
if [ ! -f "$out/build/Release/vnetlink.node" ] || [ -n "$(find native binding.gyp -newer "$out/build/Release/vnetlink.node" -print -quit)" ]; then
  echo "test:asan: building the addon with ASan+UBSan into $out/"
  (cd "$out" && CC=clang CXX=clang++ CFLAGS="$san" CXXFLAGS="$san" LDFLAGS="-fsanitize=address,undefined" \
    npx --no-install node-gyp rebuild -j max >/dev/null)
fi
npx tsc -p tsconfig.json
export VNETLINK_ADDON="$PWD/$out/build/Release/vnetlink.node"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_odr_violation=0:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
LD_PRELOAD="$rt" npx vitest run "$@"
