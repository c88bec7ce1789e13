#!/usr/bin/env node
// Captures the rtnetlink requests iproute2 sends (tc, ip, bridge), as golden bytes for
// vnetlink's encoders. Runs each command under strace in a throwaway namespace (lo = ifindex 1,
// ifb0 = 2, br0 = 3, vx0 = 4, vp1 = 5, vp0 = 6), so the kernel need not have the kind or accept the
// request: iproute2 sends it before the kernel answers.
// Usage (root; iproute2 + strace; wireguard-tools for genl): node test/golden/capture.mjs tc|neigh|link|flags|brvlan|route|genl > test/fixtures/SET-golden.json
// (`link` prints the request even for kinds this kernel lacks: the refusal comes after it.)
import { execFileSync, spawnSync } from 'node:child_process';

const tcCommands = [
  'tc qdisc add dev lo root handle 1: htb default 10',
  'tc qdisc add dev lo root handle 1: htb default 10 r2q 5',
  'tc qdisc replace dev lo root handle 1: htb default 1',
  'tc qdisc add dev lo root handle 2: tbf rate 1mbit burst 32k latency 50ms',
  'tc qdisc add dev lo root tbf rate 1mbit burst 32k limit 10000',
  'tc qdisc add dev lo root tbf rate 1mbit burst 32k latency 50ms peakrate 2mbit mtu 1600',
  'tc qdisc add dev lo root tbf rate 10gbit burst 1m latency 10ms',
  'tc qdisc add dev lo root netem delay 50ms',
  'tc qdisc add dev lo root netem delay 100ms 10ms loss 1% duplicate 2% reorder 25% rate 1mbit',
  'tc qdisc add dev lo root netem limit 2000 delay 20ms loss 0.5%',
  'tc qdisc add dev lo root fq_codel',
  'tc qdisc add dev lo root fq_codel limit 1000 flows 512 target 5ms interval 100ms quantum 1514 ecn',
  'tc qdisc add dev lo clsact',
  'tc qdisc add dev lo ingress',
  'tc qdisc add dev lo parent 1:10 handle 10: tbf rate 5mbit burst 10k latency 20ms',
  'tc qdisc del dev lo root',
  'tc qdisc del dev lo ingress',
  'tc class add dev lo parent 1: classid 1:10 htb rate 100mbit',
  'tc class add dev lo parent 1: classid 1:10 htb rate 100mbit ceil 200mbit burst 15k cburst 15k prio 1 quantum 1514',
  'tc class add dev lo parent 1:1 classid 1:20 htb rate 10gbit ceil 20gbit',
  'tc class change dev lo parent 1: classid 1:10 htb rate 50mbit',
  'tc class replace dev lo parent 1: classid 1:10 htb rate 50mbit ceil 60mbit',
  'tc class del dev lo classid 1:10',
  'tc filter add dev lo parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev ifb0',
  'tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip dst 192.168.122.0/24 flowid 1:10',
  'tc filter add dev lo parent 1: protocol ip prio 2 u32 match ip protocol 6 0xff match ip dport 22 0xffff flowid 1:20',
  'tc filter add dev lo parent 1: protocol ip prio 3 u32 match ip src 203.0.113.7/32 match ip sport 53 0xffff flowid 1:30',
  'tc filter add dev lo parent ffff: protocol all prio 1 u32 match u32 0 0 police rate 1mbit burst 100k drop flowid :1',
  'tc filter add dev lo parent ffff: protocol all prio 1 matchall action mirred egress mirror dev ifb0',
  'tc filter add dev lo parent ffff: protocol ip prio 5 matchall action csum ip tcp udp',
  'tc filter add dev lo parent ffff: protocol all prio 6 matchall action police rate 2mbit burst 64k conform-exceed drop',
  'tc filter add dev lo ingress protocol all prio 1 u32 match u32 0 0 action mirred ingress redirect dev ifb0',
  'tc filter add dev lo egress protocol ipv6 prio 2 matchall action mirred egress redirect dev ifb0',
  'tc filter del dev lo parent ffff: protocol all prio 1',
  'tc filter del dev lo parent 1:',
];

const neighCommands = [
  'ip neigh add 192.0.2.7 lladdr 52:54:00:00:00:07 dev br0 nud permanent',
  'ip neigh replace 2001:db8::7 lladdr 52:54:00:00:00:07 dev br0 nud reachable',
  'ip neigh add 192.0.2.9 lladdr 52:54:00:00:00:09 dev br0 nud noarp',
  'ip neigh add proxy 192.0.2.10 dev br0',
  'ip neigh del 192.0.2.7 dev br0',
  'bridge fdb append 00:00:00:00:00:00 dev vx0 dst 198.51.100.2',
  'bridge fdb add 52:54:00:00:00:08 dev vx0 dst 198.51.100.3 self permanent',
  'bridge fdb add 52:54:00:aa:bb:cc dev vp0 master static vlan 10',
  'bridge fdb add 52:54:00:00:00:0a dev vx0 dst 198.51.100.4 port 4790 vni 100 self',
  'bridge fdb del 00:00:00:00:00:00 dev vx0 dst 198.51.100.2',
  'ip rule add priority 100 from 198.51.100.0/24 table 100',
  'ip rule add priority 200 to 203.0.113.0/24 iif br0 fwmark 0x10/0xff table 200',
  'ip -6 rule add priority 300 from 2001:db8::/32 oif vp0 table main suppress_prefixlength 0',
  'ip rule add priority 400 l3mdev',
  'ip rule add priority 500 from 198.51.100.7/32 table 1000',
  'ip rule add priority 600 not from 203.0.113.0/24 prohibit',
  'ip rule del priority 100',
];

// Each link command's label is the exact `ip` command; lower devices are vp0 (6) and br0 (3).
const linkCommands = [
  'ip link add dummy0 type dummy',
  'ip link add mtu 1400 address 52:54:00:00:00:01 txqueuelen 10 group 7 name dummy1 type dummy',
  'ip link add ifb1 type ifb',
  'ip link add vx1 type vxlan id 42 remote 198.51.100.2 local 198.51.100.1 dstport 4789',
  'ip link add vx2 type vxlan dev vp0 ttl 5 tos 3 srcport 1000 2000 proxy l2miss l3miss ageing 300 maxaddress 10 udpcsum id 7 local 198.51.100.1 group 239.1.1.1 nolearning dstport 4790',
  'ip link add vx3 type vxlan id 16777215 local 2001:db8::1 remote 2001:db8::2 dstport 4789',
  'ip link add br1 type bridge',
  'ip link add br2 type bridge stp_state 1 forward_delay 400 hello_time 100 max_age 1200 ageing_time 30000 priority 4096 vlan_filtering 1 vlan_protocol 802.1ad group_fwd_mask 8 vlan_default_pvid 10 mcast_snooping 0',
  'ip link add link vp0 name mv0 type macvlan mode bridge',
  'ip link add link vp0 name mvt0 type macvtap mode passthru nopromisc',
  'ip link add link vp0 name mv1 type macvlan macaddr set 52:54:00:aa:00:01 52:54:00:aa:00:02 mode source flag nodst',
  'ip link add ve0 type veth peer name ve1 mtu 1400 address 52:54:00:00:00:02',
  'ip link add link vp0 name vp0.10 type vlan id 10',
  'ip link add link vp0 name vp0.20 type vlan protocol 802.1ad id 20 reorder_hdr off gvrp on mvrp on loose_binding on',
  'ip link add vrf0 type vrf table 100',
  'ip link add link vp0 name ipv0 type ipvlan mode l3 private',
  'ip link add link vp0 name ipv1 type ipvlan mode l3s vepa',
  'ip link add link vp0 name ipv2 type ipvlan mode l2',
  'ip link add bond0 type bond',
  'ip link add bond1 type bond mode 802.3ad miimon 100 updelay 200 downdelay 200 xmit_hash_policy layer3+4 min_links 1 lacp_rate fast ad_select bandwidth ad_actor_sys_prio 100 ad_user_port_key 5 ad_actor_system 52:54:00:00:00:03 lacp_active on',
  'ip link add bond2 type bond mode active-backup active_slave vp0 miimon 50 use_carrier 1 arp_interval 0 arp_validate none arp_all_targets any primary vp0 primary_reselect better fail_over_mac active resend_igmp 2 num_grat_arp 2 all_slaves_active 1 peer_notify_delay 0 arp_missed_max 3',
  'ip link add bond3 type bond mode balance-tlb lp_interval 1 packets_per_slave 1 tlb_dynamic_lb 1',
  'ip link add wg0 type wireguard',
  'ip link add gnv0 type geneve id 42 remote 198.51.100.2',
  'ip link add gnv1 type geneve id 7 remote 2001:db8::2 ttl 5 tos 3 dstport 6082 df set udpcsum',
  'ip link add gt0 type gretap remote 198.51.100.2 local 198.51.100.1',
  'ip link add gre1 type gre remote 198.51.100.2 local 198.51.100.1 ttl 64 tos 3 ikey 5 okey 6 nopmtudisc dev vp0',
  'ip link add g6 type ip6gretap remote 2001:db8::2 local 2001:db8::1 key 9',
  'ip link add nk0 type netkit',
  'ip link add link vp0 name ipvt0 type ipvtap mode l2 bridge',
  'ip link add link vp0 name ipvt1 type ipvtap mode l3s private',
];

// Link flags and sizes on every link, at creation (a dummy: this kernel need not have it) and
// on the live vp0 (6); each label is the exact `ip` command.
const flagCommands = [
  'ip link add promisc on allmulticast on multicast off arp off name dummy2 type dummy',
  'ip link add gso_max_size 32768 gso_max_segs 100 gro_max_size 32768 name dummy3 type dummy',
  'ip link set dev vp0 promisc on',
  'ip link set dev vp0 promisc off',
  'ip link set dev vp0 allmulticast on',
  'ip link set dev vp0 allmulticast off',
  'ip link set dev vp0 multicast off',
  'ip link set dev vp0 arp off',
  'ip link set dev vp0 arp on',
  'ip link set dev vp0 up promisc on allmulticast on multicast on arp on',
  'ip link set dev vp0 carrier off',
  'ip link set dev vp0 carrier on',
  'ip link set dev vp0 gso_max_size 32768',
  'ip link set dev vp0 gso_max_segs 100',
  'ip link set dev vp0 gro_max_size 65536',
  'ip link set dev vp0 mtu 1400 txqueuelen 500 gso_max_size 16384 gso_max_segs 64 gro_max_size 16384',
];

// Bridge per-port VLANs (vp0 = 6 is a port of br0 = 3), and VLAN filtering on the bridge
// (this kernel refuses both: the requests are captured before its answer).
const brvlanCommands = [
  'bridge vlan add dev vp0 vid 10 pvid untagged',
  'bridge vlan add dev vp0 vid 20-30',
  'bridge vlan add dev vp0 vid 40-50 untagged',
  'bridge vlan add dev vp0 vid 60 master',
  'bridge vlan add dev br0 vid 10 pvid untagged self',
  'bridge vlan del dev vp0 vid 10',
  'bridge vlan del dev vp0 vid 20-30',
  'ip link set dev br0 type bridge vlan_filtering 1',
];

// Generic netlink: what `wg` sends before any WireGuard request, the family lookup (this
// kernel has no wireguard family, so wg stops after the controller's ENOENT).
const genlCommands = [
  'wg set wg0 listen-port 51820',
];

// Routes and addresses (vp0 = 6, br0 = 3); each label is the exact command.
const routeCommands = [
  'ip route add 203.0.113.0/24 via 198.51.100.2 dev vp0',
  'ip route add 203.0.113.0/24 nexthop via 198.51.100.2 dev vp0 weight 1 nexthop via 198.51.100.3 dev br0 weight 3',
  'ip route add 203.0.113.0/24 via 198.51.100.2 dev vp0 onlink',
  'ip route add 203.0.113.0/24 dev vp0 src 198.51.100.1 metric 10 table 100 proto static scope link',
  'ip route add 203.0.113.0/24 via 198.51.100.2 table 1000 proto 42',
  'ip route add blackhole 203.0.113.0/24',
  'ip route add unreachable 203.0.113.0/24 table 100',
  'ip route add prohibit 203.0.113.0/24 metric 5',
  'ip route add local 198.51.100.9 dev vp0',
  'ip route replace 203.0.113.0/24 via 198.51.100.2 dev vp0',
  'ip -6 route add 2001:db8:1::/64 via 2001:db8::2 dev vp0 mtu 1400 advmss 1300 hoplimit 10',
  'ip -6 route add 2001:db8:2::/64 nexthop via 2001:db8::2 dev vp0 weight 2 nexthop via 2001:db8::3 dev vp0 weight 5',
  'ip -6 route add blackhole 2001:db8:3::/64',
  'ip route del 203.0.113.0/24',
  'ip route del blackhole 203.0.113.0/24 table 100',
  'ip -6 route del 2001:db8:1::/64',
  'ip route del local 198.51.100.9',
  'ip addr add 198.51.100.1/24 dev vp0 valid_lft 300 preferred_lft 100',
  'ip -6 addr add 2001:db8::1/64 dev vp0 valid_lft 600 preferred_lft 0 nodad',
  'ip addr replace 198.51.100.1/24 dev vp0 valid_lft forever preferred_lft forever',
];

// RTM_{NEW,DEL}{QDISC,TCLASS,TFILTER} = 36,37,40,41,44,45; RTM_{NEW,DEL}NEIGH 28,29; RTM_{NEW,DEL}RULE 32,33.
const sets = {
  tc: { commands: tcCommands, types: [36, 37, 40, 41, 44, 45], version: ['tc', '-V'] },
  neigh: { commands: neighCommands, types: [28, 29, 32, 33], version: ['ip', '-V'] },
  // RTM_NEWLINK = 16
  link: { commands: linkCommands, types: [16], version: ['ip', '-V'] },
  flags: { commands: flagCommands, types: [16], version: ['ip', '-V'] },
  // RTM_NEWLINK 16, RTM_DELLINK 17, RTM_SETLINK 19 (AF_BRIDGE for `bridge vlan`)
  brvlan: { commands: brvlanCommands, types: [16, 17, 19], version: ['bridge', '-V'] },
  // RTM_{NEW,DEL}ADDR = 20, 21; RTM_{NEW,DEL}ROUTE = 24, 25
  route: { commands: routeCommands, types: [20, 21, 24, 25], version: ['ip', '-V'] },
  // GENL_ID_CTRL = 16; wg sends with sendto.
  genl: { commands: genlCommands, types: [16], version: ['wg', '--version'], syscalls: 'sendmsg,sendto' },
};
const set = sets[process.argv[2]];
if (!set) { console.error(`usage: capture.mjs ${Object.keys(sets).join('|')}`); process.exit(2); }

const ns = `vnlgold${process.pid}`;
const sh = (...a) => execFileSync(a[0], a.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
sh('ip', 'netns', 'add', ns);
const out = {};
try {
  const ipn = (...a) => sh('ip', '-n', ns, ...a);
  ipn('link', 'set', 'lo', 'up');
  ipn('link', 'add', 'dev', 'ifb0', 'type', 'ifb');
  ipn('link', 'add', 'dev', 'br0', 'type', 'bridge');
  ipn('link', 'add', 'dev', 'vx0', 'type', 'vxlan', 'id', '42', 'dstport', '4789', 'nolearning');
  ipn('link', 'add', 'dev', 'vp0', 'type', 'veth', 'peer', 'name', 'vp1');
  ipn('link', 'set', 'vp0', 'master', 'br0');
  for (const c of set.commands) {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'strace', '-f', '-qq', '-e', `trace=${set.syscalls ?? 'sendmsg'}`, '-e', 'write=all',
      '-s', '0', ...c.split(' ')], { encoding: 'utf8' });
    const msgs = [];
    let cur = null;
    for (const line of r.stderr.split('\n')) {
      if (/^(\[pid +\d+\] )?send(msg|to)\(/.test(line)) { cur = []; msgs.push(cur); continue; }
      const m = /^ \| [0-9a-f]{5}  ((?:[0-9a-f]{2} {1,2})+)/.exec(line);
      if (m && cur) cur.push(...m[1].trim().split(/\s+/));
    }
    // The one request that changes state (other sendmsgs are lookups such as RTM_GETLINK).
    const want = msgs.map((b) => Buffer.from(b.join(''), 'hex')).filter((b) => b.length >= 16 && set.types.includes(b.readUInt16LE(4)));
    if (want.length !== 1) throw new Error(`${c}: expected one change request, saw ${want.length}\n${r.stderr}`);
    const b = want[0];
    b.fill(0, 8, 16); // seq and port id vary per run
    out[c] = b.toString('hex');
  }
} finally {
  sh('ip', 'netns', 'del', ns);
}
process.stdout.write(JSON.stringify({ tool: sh(...set.version).toString().trim(), psched: sh('cat', '/proc/net/psched').toString().trim(), requests: out }, null, 1) + '\n');
