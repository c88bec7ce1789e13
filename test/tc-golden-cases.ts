// Each iproute2 `tc` command of test/fixtures/tc-golden.json and the vnetlink call that must
// send the same bytes (lo is ifindex 1 and ifb0 ifindex 2 in the namespace both run in).
import type { QdiscSpec, ClassSpec, FilterSpec } from '../lib/tc.js';

type Case =
  | { object: 'qdisc'; cmd: 'add' | 'replace' | 'change' | 'del'; spec: QdiscSpec | Record<string, unknown> }
  | { object: 'class'; cmd: 'add' | 'replace' | 'change' | 'del'; spec: ClassSpec | Record<string, unknown> }
  | { object: 'filter'; cmd: 'add' | 'replace' | 'change' | 'del'; spec: FilterSpec | Record<string, unknown> };

const mirred = (o: Record<string, unknown>) => ({ kind: 'mirred', dev: 'ifb0', ...o }) as const;

export const goldenCases: Record<string, Case> = {
  'tc qdisc add dev lo root handle 1: htb default 10': { object: 'qdisc', cmd: 'add', spec: { kind: 'htb', parent: 'root', handle: '1:', defaultClass: '1:10' } },
  'tc qdisc add dev lo root handle 1: htb default 10 r2q 5': { object: 'qdisc', cmd: 'add', spec: { kind: 'htb', parent: 'root', handle: '1:', defaultClass: '10', r2q: 5 } },
  'tc qdisc replace dev lo root handle 1: htb default 1': { object: 'qdisc', cmd: 'replace', spec: { kind: 'htb', handle: '1:', defaultClass: 1 } },
  'tc qdisc add dev lo root handle 2: tbf rate 1mbit burst 32k latency 50ms': { object: 'qdisc', cmd: 'add', spec: { kind: 'tbf', handle: '2:', rate: '1mbit', burst: '32k', latency: '50ms' } },
  'tc qdisc add dev lo root tbf rate 1mbit burst 32k limit 10000': { object: 'qdisc', cmd: 'add', spec: { kind: 'tbf', rate: 125000, burst: 32768, limit: 10000 } },
  'tc qdisc add dev lo root tbf rate 1mbit burst 32k latency 50ms peakrate 2mbit mtu 1600': { object: 'qdisc', cmd: 'add', spec: { kind: 'tbf', rate: '1mbit', burst: '32k', latency: '50ms', peakrate: '2mbit', mtu: 1600 } },
  'tc qdisc add dev lo root tbf rate 10gbit burst 1m latency 10ms': { object: 'qdisc', cmd: 'add', spec: { kind: 'tbf', rate: '10gbit', burst: '1m', latency: '10ms' } },
  'tc qdisc add dev lo root netem delay 50ms': { object: 'qdisc', cmd: 'add', spec: { kind: 'netem', delay: '50ms' } },
  'tc qdisc add dev lo root netem delay 100ms 10ms loss 1% duplicate 2% reorder 25% rate 1mbit': { object: 'qdisc', cmd: 'add', spec: { kind: 'netem', delay: '100ms', jitter: '10ms', loss: '1%', duplicate: 0.02, reorder: '25%', rate: '1mbit' } },
  'tc qdisc add dev lo root netem limit 2000 delay 20ms loss 0.5%': { object: 'qdisc', cmd: 'add', spec: { kind: 'netem', limit: 2000, delay: 20000, loss: '0.5%' } },
  'tc qdisc add dev lo root fq_codel': { object: 'qdisc', cmd: 'add', spec: { kind: 'fq_codel' } },
  'tc qdisc add dev lo root fq_codel limit 1000 flows 512 target 5ms interval 100ms quantum 1514 ecn': { object: 'qdisc', cmd: 'add', spec: { kind: 'fq_codel', limit: 1000, flows: 512, target: '5ms', interval: '100ms', quantum: 1514, ecn: true } },
  'tc qdisc add dev lo clsact': { object: 'qdisc', cmd: 'add', spec: { kind: 'clsact' } },
  'tc qdisc add dev lo ingress': { object: 'qdisc', cmd: 'add', spec: { kind: 'ingress' } },
  'tc qdisc add dev lo parent 1:10 handle 10: tbf rate 5mbit burst 10k latency 20ms': { object: 'qdisc', cmd: 'add', spec: { kind: 'tbf', parent: '1:10', handle: '10:', rate: '5mbit', burst: '10k', latency: '20ms' } },
  'tc qdisc del dev lo root': { object: 'qdisc', cmd: 'del', spec: { parent: 'root' } },
  'tc qdisc del dev lo ingress': { object: 'qdisc', cmd: 'del', spec: { kind: 'ingress' } },
  'tc class add dev lo parent 1: classid 1:10 htb rate 100mbit': { object: 'class', cmd: 'add', spec: { kind: 'htb', parent: '1:', classid: '1:10', rate: '100mbit' } },
  'tc class add dev lo parent 1: classid 1:10 htb rate 100mbit ceil 200mbit burst 15k cburst 15k prio 1 quantum 1514': { object: 'class', cmd: 'add', spec: { kind: 'htb', parent: '1:', classid: '1:10', rate: '100mbit', ceil: '200mbit', burst: '15k', cburst: '15k', prio: 1, quantum: 1514 } },
  'tc class add dev lo parent 1:1 classid 1:20 htb rate 10gbit ceil 20gbit': { object: 'class', cmd: 'add', spec: { kind: 'htb', parent: '1:1', classid: '1:20', rate: '10gbit', ceil: '20gbit' } },
  'tc class change dev lo parent 1: classid 1:10 htb rate 50mbit': { object: 'class', cmd: 'change', spec: { kind: 'htb', parent: '1:', classid: '1:10', rate: '50mbit' } },
  'tc class replace dev lo parent 1: classid 1:10 htb rate 50mbit ceil 60mbit': { object: 'class', cmd: 'replace', spec: { kind: 'htb', parent: '1:', classid: '1:10', rate: '50mbit', ceil: '60mbit' } },
  'tc class del dev lo classid 1:10': { object: 'class', cmd: 'del', spec: { classid: '1:10' } },
  'tc filter add dev lo parent ffff: protocol all prio 1 u32 match u32 0 0 action mirred egress redirect dev ifb0': { object: 'filter', cmd: 'add', spec: { kind: 'u32', parent: 'ffff:', protocol: 'all', prio: 1, match: [{ u32: { value: 0, mask: 0, at: 0 } }], actions: [mirred({ egress: true, redirect: true })] } },
  'tc filter add dev lo parent 1: protocol ip prio 1 u32 match ip dst 192.168.122.0/24 flowid 1:10': { object: 'filter', cmd: 'add', spec: { kind: 'u32', parent: '1:', protocol: 'ip', prio: 1, match: [{ ip: { dst: '192.168.122.0/24' } }], flowid: '1:10' } },
  'tc filter add dev lo parent 1: protocol ip prio 2 u32 match ip protocol 6 0xff match ip dport 22 0xffff flowid 1:20': { object: 'filter', cmd: 'add', spec: { kind: 'u32', parent: '1:', protocol: 'ip', prio: 2, match: [{ ip: { protocol: 'tcp' } }, { ip: { dport: 22 } }], flowid: '1:20' } },
  'tc filter add dev lo parent 1: protocol ip prio 3 u32 match ip src 203.0.113.7/32 match ip sport 53 0xffff flowid 1:30': { object: 'filter', cmd: 'add', spec: { kind: 'u32', parent: '1:', protocol: 'ip', prio: 3, match: [{ ip: { src: '203.0.113.7/32', sport: 53 } }], flowid: '1:30' } },
  'tc filter add dev lo parent ffff: protocol all prio 1 u32 match u32 0 0 police rate 1mbit burst 100k drop flowid :1': { object: 'filter', cmd: 'add', spec: { kind: 'u32', parent: 'ffff:', protocol: 'all', prio: 1, match: [], police: { rate: '1mbit', burst: '100k', exceed: 'drop' }, flowid: ':1' } },
  'tc filter add dev lo parent ffff: protocol all prio 1 matchall action mirred egress mirror dev ifb0': { object: 'filter', cmd: 'add', spec: { kind: 'matchall', parent: 'ffff:', prio: 1, actions: [mirred({ mirror: true })] } },
  'tc filter add dev lo parent ffff: protocol ip prio 5 matchall action csum ip tcp udp': { object: 'filter', cmd: 'add', spec: { kind: 'matchall', parent: 'ffff:', protocol: 'ip', prio: 5, actions: [{ kind: 'csum', update: ['ip', 'tcp', 'udp'] }] } },
  'tc filter add dev lo parent ffff: protocol all prio 6 matchall action police rate 2mbit burst 64k conform-exceed drop': { object: 'filter', cmd: 'add', spec: { kind: 'matchall', parent: 'ffff:', prio: 6, actions: [{ kind: 'police', rate: '2mbit', burst: '64k', exceed: 'drop' }] } },
  'tc filter add dev lo ingress protocol all prio 1 u32 match u32 0 0 action mirred ingress redirect dev ifb0': { object: 'filter', cmd: 'add', spec: { kind: 'u32', parent: 'ingress', prio: 1, actions: [mirred({ ingress: true, redirect: true })] } },
  'tc filter add dev lo egress protocol ipv6 prio 2 matchall action mirred egress redirect dev ifb0': { object: 'filter', cmd: 'add', spec: { kind: 'matchall', parent: 'egress', protocol: 'ipv6', prio: 2, actions: [mirred({})] } },
  'tc filter del dev lo parent ffff: protocol all prio 1': { object: 'filter', cmd: 'del', spec: { parent: 'ffff:', protocol: 'all', prio: 1 } },
  'tc filter del dev lo parent 1:': { object: 'filter', cmd: 'del', spec: { parent: '1:' } },
};
