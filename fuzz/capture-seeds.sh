#!/usr/bin/env bash
# Captures real kernel replies as seed inputs for the fuzz harnesses: makes a throwaway
# namespace, builds links (veth, bridge with a port, macvlan, vxlan, tap), IPv4/IPv6
# addresses (one with a peer), routes, neighbours, tc qdiscs/classes/filters with actions and
# an nftables table with NAT and filter rules, dumps everything over raw netlink sockets inside
# it, writes each reply message to fuzz/corpus/HARNESS/NAME-NN.bin, and deletes the namespace.
# Needs root, iproute2, tc and nft. Run again only to refresh the committed seeds.
# Run again only to refresh the committed seeds.
set -euo pipefail
cd "$(dirname "$0")/.."
ns="vt-seeds-$$"
trap 'ip netns del "$ns" 2>/dev/null || true' EXIT
ip netns add "$ns"
nsx() { ip netns exec "$ns" "$@"; }

nsx ip link set lo up
nsx ip link add v0 type veth peer name v1
nsx ip link add br0 type bridge stp_state 0 forward_delay 4
nsx ip link set v1 master br0
nsx ip link add mv0 link v0 type macvlan mode bridge
nsx ip link add vx0 type vxlan id 42 remote 198.51.100.2 local 198.51.100.1 dstport 4789
nsx ip tuntap add dev tap0 mode tap multi_queue
nsx ip link set v0 up
nsx ip link set br0 up
nsx ip addr add 198.51.100.1/24 dev v0
nsx ip addr add 198.51.100.9 peer 198.51.100.10/32 dev v0
nsx ip addr add 2001:db8::1/64 dev v0 nodad
nsx ip addr add 192.168.122.1/24 broadcast 192.168.122.255 label br0:nat dev br0
nsx ip route add 203.0.113.0/24 via 198.51.100.2 dev v0 metric 50
nsx ip route add 203.0.113.128/25 dev v0 table 100
nsx ip -6 route add 2001:db8:1::/64 via 2001:db8::2 dev v0
nsx ip neigh add 198.51.100.2 lladdr 52:54:00:00:00:02 dev v0 nud permanent
nsx ip neigh add 2001:db8::2 lladdr 52:54:00:00:00:03 dev v0 nud stale
# Traffic control: htb with classes, tbf, clsact and ingress, u32 filters with actions.
nsx ip link add v2 type veth peer name v3
nsx tc qdisc add dev v0 root handle 1: htb default 10
nsx tc class add dev v0 parent 1: classid 1:10 htb rate 10mbit ceil 20mbit burst 15k
nsx tc class add dev v0 parent 1: classid 1:20 htb rate 1mbit
nsx tc filter add dev v0 parent 1: protocol ip prio 1 u32 match ip dst 203.0.113.0/24 flowid 1:20
nsx tc qdisc add dev v2 root tbf rate 1mbit burst 32kbit latency 400ms
nsx tc qdisc add dev v2 clsact
nsx tc filter add dev v2 ingress protocol all prio 2 u32 match u32 0 0 action mirred egress redirect dev v3
nsx tc qdisc add dev v3 ingress
nsx tc filter add dev v3 parent ffff: protocol ip prio 3 u32 match ip protocol 17 0xff action mirred egress mirror dev v2
nsx nft -f - <<'EOF'
table ip seeds {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 counter masquerade comment "masq the network"
  }
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    tcp dport 8080 dnat to 192.168.122.10:80
  }
  chain filter_fwd {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "br0" oifname "v0" accept
    meta l4proto udp reject with icmp type port-unreachable
    ip daddr & 255.255.0.0 == 192.168.0.0 jump extra
  }
  chain extra {
    counter return
  }
}
EOF

nsx /usr/bin/python3 - <<'PY'
import os, socket, struct, sys
SOL_NETLINK, NETLINK_EXT_ACK, NETLINK_CAP_ACK = 270, 11, 10
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE, NLM_F_DUMP = 1, 4, 0x200, 0x400, 0x300

def sock(proto):
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, proto)
    s.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
    s.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
    s.bind((0, 0))
    return s

def msgs(data):
    off = 0
    while off + 16 <= len(data):
        ln, ty = struct.unpack_from("=IH", data, off)
        if ln < 16 or off + ln > len(data): break
        yield ty, data[off:off + ln]
        off += (ln + 3) & ~3

def talk(s, ty, flags, body, seq):
    s.send(struct.pack("=IHHII", 16 + len(body), ty, flags, seq, 0) + body)
    got = []
    while True:
        data = s.recv(1 << 20)
        end = False
        for t, m in msgs(data):
            got.append((t, m))
            if t in (2, 3): end = True
        if end or not (flags & NLM_F_DUMP) and got: return got

def save(harness, name, blobs):
    d = f"fuzz/corpus/{harness}"
    os.makedirs(d, exist_ok=True)
    for i, b in enumerate(blobs):
        with open(f"{d}/{name}-{i:02d}.bin", "wb") as f: f.write(b)

def attr(t, v): return struct.pack("=HH", 4 + len(v), t) + v + b"\0" * (-len(v) % 4)

r = sock(0)  # NETLINK_ROUTE
seq = 1
for name, ty, hdr in [("link", 18, struct.pack("=BxHiII", 0, 0, 0, 0, 0)), ("addr", 22, struct.pack("=BBBBI", 0, 0, 0, 0, 0)),
                      ("route", 26, struct.pack("=BBBBBBBBI", 0, 0, 0, 0, 0, 0, 0, 0, 0)), ("neigh", 30, struct.pack("=BxxxiHBB", 0, 0, 0, 0, 0))]:
    seq += 1
    got = talk(r, ty, NLM_F_REQUEST | NLM_F_DUMP, hdr, seq)
    save("rtnl_fuzz", name, [m for t, m in got if t != 3])
    save("rtnl_fuzz", name + "-done", [m for t, m in got if t == 3])
# Errors with extended-ack text: a link that exists (EEXIST), a bad kind (EOPNOTSUPP + text).
acks = []
for body in [struct.pack("=BxHiII", 0, 0, 0, 0, 0) + attr(3, b"v0\0") + attr(18, attr(1, b"veth\0")),
             struct.pack("=BxHiII", 0, 0, 0, 0, 0) + attr(3, b"zz\0") + attr(18, attr(1, b"nosuchkind\0")),
             struct.pack("=BxHiII", 0, 0, 0, 0, 0) + attr(3, b"zz\0") + attr(4, b"\0\0")]:
    seq += 1
    acks += [m for t, m in talk(r, 16, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body, seq)]
seq += 1  # a plain ack (error 0): lo set up again
acks += [m for t, m in talk(r, 16, NLM_F_REQUEST | NLM_F_ACK, struct.pack("=BxHiII", 0, 0, 1, 1, 1), seq) if t == 2]
save("ack_fuzz", "ack", acks)
save("rtnl_fuzz", "ack", acks)

# tc: qdiscs of every device, then the classes and the filters of each (by ifindex and parent).
tcmsg = lambda ifi, parent: struct.pack("=BxxxiIII", 0, ifi, 0, parent, 0)
seq += 1
qd = [m for t, m in talk(r, 38, NLM_F_REQUEST | NLM_F_DUMP, tcmsg(0, 0), seq) if t == 36]
save("tc_fuzz", "qdisc", qd)
cls, flt = [], []
for q in qd:
    ifi, handle = struct.unpack_from("=iI", q, 20)
    for parent in {handle, 0xfffffff2, 0xfffffff3, 0xffff0000}:
        seq += 1
        flt += [m for t, m in talk(r, 46, NLM_F_REQUEST | NLM_F_DUMP, tcmsg(ifi, parent), seq) if t == 44]
    seq += 1
    cls += [m for t, m in talk(r, 42, NLM_F_REQUEST | NLM_F_DUMP, tcmsg(ifi, 0), seq) if t == 40]
save("tc_fuzz", "class", cls)
save("tc_fuzz", "filter", flt)

n = sock(12)  # NETLINK_NETFILTER
for name, sub in [("table", 1), ("chain", 4), ("rule", 7)]:
    seq += 1
    got = talk(n, (10 << 8) | sub, NLM_F_REQUEST | NLM_F_DUMP, struct.pack("=BBH", 2, 0, 0), seq)
    save("nft_fuzz", name, [m for t, m in got if t not in (2, 3)])
PY
# Link kinds this kernel may lack, for the table-driven kind codec: the RTM_NEWLINK requests of
# the golden fixture (captured from iproute2, see test/golden/capture.mjs) have the layout of
# the kernel's replies (ifinfomsg, IFLA_LINKINFO with IFLA_INFO_KIND and IFLA_INFO_DATA).
node - <<'JS'
const fs = require('node:fs');
const { requests } = JSON.parse(fs.readFileSync('test/fixtures/link-golden.json', 'utf8'));
const want = /type (vlan|bond|geneve|gre|ip6gretap|vrf|ipvlan|ipvtap|netkit|bridge|vxlan|macvlan|wireguard) /;
let n = 0;
for (const [cmd, hex] of Object.entries(requests)) {
  const m = want.exec(cmd + ' ');
  if (!m) continue;
  fs.writeFileSync(`fuzz/corpus/rtnl_fuzz/kind-${m[1]}-${String(n++).padStart(2, '0')}.bin`, Buffer.from(hex, 'hex'));
}
JS
echo "seeds: $(ls fuzz/corpus/*/ | grep -c bin) files in fuzz/corpus/ ($(du -sh fuzz/corpus | cut -f1))"
