#!/bin/sh
# Stage 2, in the host's root under the guest's overlay (the host's /bin/sh). The runner puts
# KVER, MODDIR, PROJECT, NODE, FILES, CI_VALUE, KIND_MODULES and TIMEOUT above this line.
# It mounts the usual pseudo filesystems, puts the guest kernel's modules where the host's kmod
# looks (/lib/modules/KVER, which the kernel's own module autoloading also uses), loads the kind
# modules, runs vitest on FILES with VNETLINK_KERNEL_GUEST=1, prints "VNLK rc=N" and powers off.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH
say() { echo "VNLK $*"; }
off() { /.vnl/busybox poweroff -f; echo o > /proc/sysrq-trigger; exec /.vnl/busybox sleep 30; }
die() { say "error=$*"; say "rc=125"; off; }

# The checkout may live under /tmp or /run (a CI clone often does), which get fresh tmpfs mounts
# below: hold it at a fixed place first, and bind it back at its own path if those hid it.
mkdir -p /.vnl/project && mount --bind "$PROJECT" /.vnl/project || die "bind-project"
mount -t proc proc /proc || die "mount-proc"
mount -t sysfs sysfs /sys || die "mount-sys"
mount -t devtmpfs devtmpfs /dev || die "mount-dev"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts || die "mount-devpts"
mount -t tmpfs tmpfs /dev/shm || die "mount-shm"
mount -t tmpfs -o mode=0755 tmpfs /run || die "mount-run"
mount -t tmpfs -o mode=1777 tmpfs /tmp || die "mount-tmp"
if [ ! -e "$PROJECT/package.json" ]; then
  mkdir -p "$PROJECT" && mount --bind /.vnl/project "$PROJECT" || die "rebind-project"
fi
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mount -t bpf bpf /sys/fs/bpf 2>/dev/null
mkdir -p "/lib/modules/$KVER" && mount --bind "$MODDIR" "/lib/modules/$KVER" || die "mount-modules"
say "stage2 kernel=$(uname -r)"

# The tunnel modules (ip_gre, ip6_gre, ...) add fallback devices (gre0, gretap0, ...) to every new
# namespace unless told not to; the tests' namespaces must start with only lo, as on the host.
sysctl -q -w net.core.fb_tunnels_only_for_init_net=2 || die "sysctl-fb-tunnels"
# One modprobe for all (each start of kmod over 9p is slow under TCG); /sys/module says which loaded.
# shellcheck disable=SC2086 # a list of module names
modprobe -a -q $KIND_MODULES 2>/dev/null
loaded= builtin= missing=
for m in $KIND_MODULES; do
  if [ -d "/sys/module/$m" ]; then loaded="$loaded,$m"
  elif grep -q "/$m\.ko\$" "/lib/modules/$KVER/modules.builtin"; then builtin="$builtin,$m"
  else missing="$missing,$m"; fi
done
say "modules loaded=${loaded#,} builtin=${builtin#,} missing=${missing#,}"

ip link set lo up
hostname vnl-kernel-guest
cd "$PROJECT" || die "cd-project"
# A pipe, not the console: vitest prints plain lines instead of redrawing a terminal.
# shellcheck disable=SC2086 # FILES is a list of paths without spaces (the runner checks)
{ HOME=/root CI="$CI_VALUE" VNETLINK_KERNEL_GUEST=1 NO_COLOR=1 timeout -k 10 "$TIMEOUT" \
    "$NODE" node_modules/vitest/vitest.mjs run --config test/kernel/vitest.config.mjs $FILES; \
  echo $? > /run/vnl-rc; } 2>&1 | cat
say "rc=$(cat /run/vnl-rc 2>/dev/null || echo 126)"
off
