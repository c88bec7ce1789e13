#!/usr/bin/env bash
# Every issue-18 measurement in one go, for a quiet machine:
#   sudo bash bench/issue18.sh OUTDIR
# Runs, in order: device creation per kind with every tool (bench create), the stall-tail pair
# (bench create without and with settling), the sandbox slot (bench slot), and the forwarder
# with 2 and with 4 guests (bench/forward.mjs). Each step's raw output goes to OUTDIR/NN-name.log;
# OUTDIR/summary.txt gets one line per step with its start and end time (UTC), /proc/loadavg at
# both, the exit status, and the command. Took 690 s on the 2-vCPU VM (kernel 6.18) at load 0.7–2.2 (2026-12-01).
# Needs root, a build (npm run build), and what the tools need (cc, iproute2, nft, pyroute2,
# iperf3, vde_switch: a missing tool is reported as skipped in its log, not fatal).
set -uo pipefail
out=${1:?usage: bench/issue18.sh OUTDIR}
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "issue18.sh: needs root (CAP_NET_ADMIN, namespaces)" >&2; exit 2; }
[ -f dist/index.js ] && [ -f bin/vnetlink.js ] || { echo "issue18.sh: build first (npm run build)" >&2; exit 2; }
mkdir -p "$out"
sum="$out/summary.txt"
{
  echo "issue18.sh $(date -u +%FT%TZ)"
  echo "host: $(nproc) cpus, $(uname -r), node $(node --version), git $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
} > "$sum"
t0=$(date +%s)
n=0
step() {  # step NAME TIMEOUT_S CMD...
  local name=$1 limit=$2; shift 2
  n=$((n + 1))
  local log
  log=$(printf '%s/%02d-%s.log' "$out" "$n" "$name")
  local start load0 end load1 rc
  start=$(date -u +%T); load0=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "== $name: $*" | tee -a /dev/stderr > "$log"
  timeout --signal=TERM --kill-after=30 "$limit" "$@" >> "$log" 2>&1
  rc=$?
  end=$(date -u +%T); load1=$(cut -d' ' -f1-3 /proc/loadavg)
  printf '%-16s %s-%s UTC  load %s -> %s  rc=%s  %s\n' "$name" "$start" "$end" "$load0" "$load1" "$rc" "$*" >> "$sum"
}
vnl=(node bin/vnetlink.js)
step create 420 "${vnl[@]}" bench create --kind veth,bridge,tap --count 500 --batch --repeat 3 --del-sample 20 \
  --tools api,api-noecho,addmany,addmany-noecho,c,ip-batch,pyroute2
step tail-nosettle 180 "${vnl[@]}" bench create --kind veth,bridge --count 500 --repeat 3 --del-sample 20 --tools api,c --no-settle
step tail-settled 180 "${vnl[@]}" bench create --kind veth,bridge --count 500 --repeat 3 --del-sample 20 --tools api,c
step slot 480 "${vnl[@]}" bench slot --count 200 --repeat 3
step forward2 240 node bench/forward.mjs --rounds 5 --secs 2
step forward4 180 node bench/forward.mjs --quad --rounds 3 --secs 2
echo "total: $(( $(date +%s) - t0 )) s" >> "$sum"
cat "$sum"
