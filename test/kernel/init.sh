#!/bin/sh
# Stage 1, the initramfs's /init (busybox sh): loads the 9p transport and overlayfs, mounts the
# host's / (shared read-only over virtio-9p as "hostroot") under a tmpfs overlay, so the guest
# runs the host's node, iproute2 and checkout while every write stays in guest memory, and
# switches to it for stage 2. Every line for the host starts with "VNLK ".
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
dmesg -n 1

say() { echo "VNLK $*"; }
die() { say "error=$*"; say "rc=125"; echo o > /proc/sysrq-trigger; sleep 30; exit 1; }

say "stage1 kernel=$(uname -r)"
for m in $(cat /modules/order); do insmod "/modules/$m.ko" || die "insmod-$m"; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose hostroot /lower || die "mount-9p"
mount -t tmpfs -o mode=0755 rw /rw || die "mount-tmpfs"
mkdir -p /rw/upper /rw/work
mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work overlay /newroot || die "mount-overlay"
cp /stage2.sh /newroot/.vnl-stage2.sh || die "copy-stage2"
# Stage 2 powers off with it: the reboot syscall at once, nothing left to load from 9p.
mkdir -p /newroot/.vnl && cp /bin/busybox /newroot/.vnl/busybox || die "copy-busybox"
umount /proc /sys
umount /dev
exec switch_root /newroot /bin/sh /.vnl-stage2.sh
die "switch_root"
