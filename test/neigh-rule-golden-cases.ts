// Each iproute2 command of test/fixtures/neigh-golden.json and the vnetlink call that must send
// the same bytes (br0 is ifindex 3, vx0 4, vp0 5 in the namespace both run in).
import type { NeighSpec, FdbSpec } from '../lib/neigh.js';
import type { RuleSpec } from '../lib/rule.js';

type Case =
  | { ops: 'neigh'; cmd: 'add' | 'replace' | 'change' | 'del'; spec: NeighSpec }
  | { ops: 'fdb'; cmd: 'add' | 'append' | 'replace' | 'del'; spec: FdbSpec }
  | { ops: 'rule'; cmd: 'add' | 'del'; spec: RuleSpec };

export const neighGoldenCases: Record<string, Case> = {
  'ip neigh add 192.0.2.7 lladdr 52:54:00:00:00:07 dev br0 nud permanent': { ops: 'neigh', cmd: 'add', spec: { dev: 'br0', dst: '192.0.2.7', lladdr: '52:54:00:00:00:07', state: 'permanent' } },
  'ip neigh replace 2001:db8::7 lladdr 52:54:00:00:00:07 dev br0 nud reachable': { ops: 'neigh', cmd: 'replace', spec: { dev: 'br0', dst: '2001:db8::7', lladdr: '52:54:00:00:00:07', state: 'reachable' } },
  'ip neigh add 192.0.2.9 lladdr 52:54:00:00:00:09 dev br0 nud noarp': { ops: 'neigh', cmd: 'add', spec: { dev: 'br0', dst: '192.0.2.9', lladdr: '52:54:00:00:00:09', state: 'noarp' } },
  'ip neigh add proxy 192.0.2.10 dev br0': { ops: 'neigh', cmd: 'add', spec: { dev: 'br0', dst: '192.0.2.10', proxy: true } },
  'ip neigh del 192.0.2.7 dev br0': { ops: 'neigh', cmd: 'del', spec: { dev: 'br0', dst: '192.0.2.7' } },
  'bridge fdb append 00:00:00:00:00:00 dev vx0 dst 198.51.100.2': { ops: 'fdb', cmd: 'append', spec: { dev: 'vx0', mac: '00:00:00:00:00:00', dst: '198.51.100.2' } },
  'bridge fdb add 52:54:00:00:00:08 dev vx0 dst 198.51.100.3 self permanent': { ops: 'fdb', cmd: 'add', spec: { dev: 'vx0', mac: '52:54:00:00:00:08', dst: '198.51.100.3', self: true, state: 'permanent' } },
  'bridge fdb add 52:54:00:aa:bb:cc dev vp0 master static vlan 10': { ops: 'fdb', cmd: 'add', spec: { dev: 'vp0', mac: '52:54:00:aa:bb:cc', master: true, state: 'static', vlan: 10 } },
  'bridge fdb add 52:54:00:00:00:0a dev vx0 dst 198.51.100.4 port 4790 vni 100 self': { ops: 'fdb', cmd: 'add', spec: { dev: 'vx0', mac: '52:54:00:00:00:0a', dst: '198.51.100.4', port: 4790, vni: 100, self: true } },
  'bridge fdb del 00:00:00:00:00:00 dev vx0 dst 198.51.100.2': { ops: 'fdb', cmd: 'del', spec: { dev: 'vx0', mac: '00:00:00:00:00:00', dst: '198.51.100.2' } },
  'ip rule add priority 100 from 198.51.100.0/24 table 100': { ops: 'rule', cmd: 'add', spec: { priority: 100, from: '198.51.100.0/24', table: 100 } },
  'ip rule add priority 200 to 203.0.113.0/24 iif br0 fwmark 0x10/0xff table 200': { ops: 'rule', cmd: 'add', spec: { priority: 200, to: '203.0.113.0/24', iif: 'br0', fwmark: 0x10, fwmask: 0xff, table: 200 } },
  'ip -6 rule add priority 300 from 2001:db8::/32 oif vp0 table main suppress_prefixlength 0': { ops: 'rule', cmd: 'add', spec: { priority: 300, from: '2001:db8::/32', oif: 'vp0', table: 'main', suppressPrefixlen: 0 } },
  'ip rule add priority 400 l3mdev': { ops: 'rule', cmd: 'add', spec: { priority: 400, l3mdev: true } },
  'ip rule add priority 500 from 198.51.100.7/32 table 1000': { ops: 'rule', cmd: 'add', spec: { priority: 500, from: '198.51.100.7/32', table: 1000 } },
  'ip rule add priority 600 not from 203.0.113.0/24 prohibit': { ops: 'rule', cmd: 'add', spec: { priority: 600, not: true, from: '203.0.113.0/24', action: 'prohibit' } },
  'ip rule del priority 100': { ops: 'rule', cmd: 'del', spec: { priority: 100 } },
};
