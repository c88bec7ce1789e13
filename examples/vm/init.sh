#!/bin/sh
# The guest's /init (busybox sh). It loads the virtio modules, brings eth0 up, and runs the
# scenario named on the kernel command line (vnl.scenario=...):
#   probe  prints "VNL probe=ok" and powers off (does this accelerator run a stock kernel?);
#   agent  prints "VNL ready mac=..." and then runs commands read from the serial console, one
#          per line ("ID CMD ARGS"), answering each with "VNL ID key=value" lines and a final
#          "VNL ID end rc=N"; "poweroff" ends it.
# Results are lines the host waits for by content; nothing here assumes the host's timing.
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
dmesg -n 1
stty -echo 2>/dev/null

say() { echo "VNL $*"; }
param() { for a in $(cat /proc/cmdline); do case "$a" in "vnl.$1="*) echo "${a#*=}";; esac; done; }
die() { say "error=$*"; poweroff -f; sleep 10; exit 1; }

for m in $(cat /modules/order); do insmod "/modules/$m.ko" || die "insmod-$m"; done

scenario=$(param scenario)
if [ "$scenario" = probe ]; then say probe=ok; poweroff -f; sleep 10; exit 0; fi

i=0
while [ ! -e /sys/class/net/eth0 ]; do
  i=$((i + 1)); [ $i -gt 200 ] && die "no-eth0"
  sleep 0.05
done
# IPv4 only: no router solicitations or MLD reports, so the NIC's counters move only with the
# scenario's own traffic.
for f in /proc/sys/net/ipv6/conf/*/disable_ipv6; do echo 1 > "$f"; done
ip link set lo up
ip link set eth0 up || die "eth0-up"

cat > /bin/dhcp-script <<'EOF'
#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}"
    echo "lease=$ip router=${router%% *} dns=${dns%% *}" > /tmp/lease ;;
esac
exit 0
EOF
chmod +x /bin/dhcp-script

sha() { sha256sum "$1" | cut -d' ' -f1; }

run() {
  id=$1; shift
  cmd=$1; shift
  case "$cmd" in
    dhcp)
      rm -f /tmp/lease
      udhcpc -i eth0 -n -q -f -t 10 -T 2 -s /bin/dhcp-script >/dev/null 2>&1 || return 1
      say "$id $(cat /tmp/lease)" ;;
    addr) ip addr add "$1" dev eth0 || return 1 ;;
    route) ip route replace default via "$1" || return 1 ;;
    ping) ping -c "${2:-2}" -w "${3:-10}" "$1" >/dev/null 2>&1; say "$id ping=$?" ;;
    nslookup)
      # The A record only; the answer's "Address:" lines come after "Name:" (the server's before).
      a=$(nslookup -type=a "$1" "$2" 2>&1 | sed -n '/^Name:/,$ s/^Address[^:]*: *//p' | head -n 1)
      say "$id resolved=${a:-none}" ;;
    get)
      rm -f /tmp/get
      wget -q -O /tmp/get "$1" || return 1
      say "$id sha=$(sha /tmp/get) bytes=$(wc -c < /tmp/get)" ;;
    post)
      # busybox wget sends a --post-file up to its first NUL byte: random bytes as base64 text.
      head -c "$2" /dev/urandom | base64 | head -c "$2" > /tmp/post
      say "$id sha=$(sha /tmp/post)"
      wget -q -O /tmp/reply --post-file /tmp/post "$1" || return 1
      say "$id reply=$(head -n 1 /tmp/reply)" ;;
    serve)
      mkdir -p /www
      head -c "$1" /dev/urandom > /www/blob
      httpd -p 80 -h /www || return 1
      say "$id sha=$(sha /www/blob)" ;;
    mac) say "$id mac=$(cat /sys/class/net/eth0/address)" ;;
    counters) say "$id rx_packets=$(cat /sys/class/net/eth0/statistics/rx_packets) tx_packets=$(cat /sys/class/net/eth0/statistics/tx_packets)" ;;
    channels) out=$(vmhelper channels eth0 "$1") || return 1; say "$id $out" ;;
    noxps) for f in /sys/class/net/eth0/queues/tx-*/xps_cpus; do echo 0 > "$f" || return 1; done ;;
    queues) say "$id rx=$(ls -d /sys/class/net/eth0/queues/rx-* | wc -l) tx=$(ls -d /sys/class/net/eth0/queues/tx-* | wc -l)" ;;
    stats) vmhelper stats eth0 | while read -r kv; do say "$id $kv"; done ;;
    poweroff) say "$id end rc=0"; poweroff -f; sleep 10; exit 0 ;;
    *) say "$id error=unknown-command-$cmd"; return 2 ;;
  esac
}

say "ready mac=$(cat /sys/class/net/eth0/address)"
while read -r id line; do
  [ -n "$id" ] || continue
  # shellcheck disable=SC2086 # the words of the command are its arguments
  run "$id" $line
  say "$id end rc=$?"
done
die "console-closed"
