#!/usr/bin/env node
// Captures the rtnetlink requests iproute2's `tc` sends, as golden bytes for vnetlink's tc
// encoder. Runs each command under strace in a throwaway namespace (lo = ifindex 1, ifb0 = 2),
// so the kernel need not have the kind: tc sends the request before the kernel refuses it.
// Usage (root, tc + strace installed): node test/golden/capture-tc.mjs > test/fixtures/tc-golden.json
import { execFileSync, spawnSync } from 'node:child_process';

const commands = [
  'qdisc add dev lo root handle 1: htb default 10',
  'qdisc add dev lo root handle 1: htb default 10 r2q 5',
  'qdisc replace dev lo root handle 1: htb default 1',
  'qdisc add dev lo root handle 2: tbf rate 1mbit burst 32k latency 50ms',
  'qdisc add dev lo root tbf rate 1mbit burst 32k limit 10000',
  'qdisc add dev lo root tbf rate 1mbit burst 32k latency 50ms peakrate 2mbit mtu 1600',
  'qdisc add dev lo root tbf rate 10gbit burst 1m latency 10ms',
  'qdisc add dev lo root netem delay 50ms',
  'qdisc add dev lo root netem delay 100ms 10ms loss 1% duplicate 2% reorder 25% rate 1mbit',
  'qdisc add dev lo root netem limit 2000 delay 20ms loss 0.5%',
  'qdisc add dev lo root fq_codel',
  'qdisc add dev lo root fq_codel limit 1000 flows 512 target 5ms interval 100ms quantum 1514 ecn',
  'qdisc add dev lo clsact',
  'qdisc add dev lo ingress',
  'qdisc add dev lo parent 1:10 handle 10: tbf rate 5mbit burst 10k latency 20ms',
  'qdisc del dev lo root',
  'qdisc del dev lo ingress',
  'class add dev lo parent 1: classid 1:10 htb rate 100mbit',
  'class add dev lo parent 1: classid 1:10 htb rate 100mbit ceil 200mbit burst 15k cburst 15k prio 1 quantum 1514',
  'class add dev lo parent 1:1 classid 1:20 htb rate 10gbit ceil 20gbit',
  'class change dev lo parent 1: classid 1:10 htb rate 50mbit',
  'class replace dev lo parent 1: classid 1:10 htb rate 50mbit ceil 60mbit',
  'class del dev lo classid 1:10',
  'filter add dev lo parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev ifb0',
  'filter add dev lo parent 1: protocol ip prio 1 u32 match ip dst 192.168.122.0/24 flowid 1:10',
  'filter add dev lo parent 1: protocol ip prio 2 u32 match ip protocol 6 0xff match ip dport 22 0xffff flowid 1:20',
  'filter add dev lo parent 1: protocol ip prio 3 u32 match ip src 203.0.113.7/32 match ip sport 53 0xffff flowid 1:30',
  'filter add dev lo parent ffff: protocol all prio 1 u32 match u32 0 0 police rate 1mbit burst 100k drop flowid :1',
  'filter add dev lo parent ffff: protocol all prio 1 matchall action mirred egress mirror dev ifb0',
  'filter add dev lo parent ffff: protocol ip prio 5 matchall action csum ip tcp udp',
  'filter add dev lo parent ffff: protocol all prio 6 matchall action police rate 2mbit burst 64k conform-exceed drop',
  'filter add dev lo ingress protocol all prio 1 u32 match u32 0 0 action mirred ingress redirect dev ifb0',
  'filter add dev lo egress protocol ipv6 prio 2 matchall action mirred egress redirect dev ifb0',
  'filter del dev lo parent ffff: protocol all prio 1',
  'filter del dev lo parent 1:',
];

const ns = `vnlgold${process.pid}`;
const sh = (...a) => execFileSync(a[0], a.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] });
sh('ip', 'netns', 'add', ns);
const out = {};
try {
  sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
  sh('ip', '-n', ns, 'link', 'add', 'ifb0', 'type', 'ifb');
  for (const c of commands) {
    const r = spawnSync('ip', ['netns', 'exec', ns, 'strace', '-f', '-qq', '-e', 'trace=sendmsg', '-e', 'write=all',
      '-s', '0', 'tc', ...c.split(' ')], { encoding: 'utf8' });
    const msgs = [];
    let cur = null;
    for (const line of r.stderr.split('\n')) {
      if (/^(\[pid +\d+\] )?sendmsg\(/.test(line)) { cur = []; msgs.push(cur); continue; }
      const m = /^ \| [0-9a-f]{5}  ((?:[0-9a-f]{2} {1,2})+)/.exec(line);
      if (m && cur) cur.push(...m[1].trim().split(/\s+/));
    }
    // The request that changes state: RTM_{NEW,DEL}{QDISC,TCLASS,TFILTER} = 36,37,40,41,44,45.
    const want = msgs.map((b) => Buffer.from(b.join(''), 'hex')).filter((b) => b.length >= 16 && [36, 37, 40, 41, 44, 45].includes(b.readUInt16LE(4)));
    if (want.length !== 1) throw new Error(`tc ${c}: expected one change request, saw ${want.length}\n${r.stderr}`);
    const b = want[0];
    b.fill(0, 8, 16); // seq and port id vary per run
    out[`tc ${c}`] = b.toString('hex');
  }
} finally {
  sh('ip', 'netns', 'del', ns);
}
process.stdout.write(JSON.stringify({ tool: sh('tc', '-V').toString().trim(), psched: sh('cat', '/proc/net/psched').toString().trim(), requests: out }, null, 1) + '\n');
