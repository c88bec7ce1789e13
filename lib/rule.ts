// Policy routing rules: what `ip rule` does.
import type { Handle } from './handle.js';
import * as v from './validate.js';

const AF = { inet: 2, inet6: 10 } as const;
const tables: Record<string, number> = { default: 253, main: 254, local: 255 };
const actions = { table: 1, goto: 2, nop: 3, blackhole: 6, unreachable: 7, prohibit: 8 } as const;
export type RuleAction = keyof typeof actions;

/**
 * A rule. Give `table` (the usual action) or another `action`.
 *
 * @example
 * await nl.rule.add({ priority: 100, from: '198.51.100.0/24', table: 100 });   // ip rule add priority 100 from 198.51.100.0/24 table 100
 */
export interface RuleSpec {
  /** The rule's preference (`priority`/`pref`); the kernel picks one when unset. */
  priority?: number;
  /** Source prefix (`from`). */
  from?: string;
  /** Destination prefix (`to`). */
  to?: string;
  /** Incoming device (`iif`). */
  iif?: string;
  /** Outgoing device (`oif`). */
  oif?: string;
  fwmark?: number;
  /** Mask for `fwmark` (`fwmark 0x10/0xff`). */
  fwmask?: number;
  tos?: number;
  /** The routing table to look up: a number, or 'main', 'local', 'default'. */
  table?: number | 'main' | 'local' | 'default';
  /** What the rule does when it is not a table lookup. */
  action?: RuleAction;
  /** The priority to jump to, with `action: 'goto'`. */
  goto?: number;
  /** Ignore lookups whose route's prefix is this long or shorter (`suppress_prefixlength`). */
  suppressPrefixlen?: number;
  /** Look up the table of the l3mdev (VRF) the packet came from or goes to. */
  l3mdev?: boolean;
  /** The rule's originator (`protocol`), a number (e.g. 4 = static). */
  protocol?: number;
  /** Invert the selector (`not`). */
  not?: boolean;
  /** Default: from the addresses given, else 'inet'. */
  family?: 'inet' | 'inet6';
}

/** A rule as `ip -j rule show` describes it. */
export interface Rule {
  family: 'inet' | 'inet6';
  priority: number;
  from: string;
  to?: string;
  iif?: string;
  oif?: string;
  fwmark?: number;
  fwmask?: number;
  tos?: number;
  table?: number;
  action: RuleAction | 'other';
  goto?: number;
  suppressPrefixlen?: number;
  l3mdev?: true;
  protocol?: number;
  not?: true;
}

const keys = ['priority', 'from', 'to', 'iif', 'oif', 'fwmark', 'fwmask', 'tos', 'table', 'action', 'goto', 'suppressPrefixlen', 'l3mdev', 'protocol', 'not', 'family'];

function ruleArgs(op: string, cmd: 'add' | 'del', s: RuleSpec): Record<string, unknown> {
  v.object(op, 'rule', s);
  v.knownKeys(op, 'rule', s as unknown as Record<string, unknown>, keys);
  let family = s.family === undefined ? undefined : v.oneOf(op, 'family', s.family, ['inet', 'inet6'] as const);
  const a: Record<string, unknown> = { cmd };
  for (const [k, dk] of [['from', 'src'], ['to', 'dst']] as const) {
    if (s[k] === undefined) continue;
    const c = v.cidr(op, k, s[k], false);
    if (family && c.family !== family) throw v.rangeError(op, k, `${s[k]} is not ${family}`);
    family = c.family;
    a[dk] = c.address;
    a[`${dk}Len`] = c.prefixLen;
  }
  a.family = AF[family ?? 'inet'];
  if (s.priority !== undefined) a.priority = v.uint(op, 'priority', s.priority);
  if (s.iif !== undefined) a.iif = v.ifname(op, 'iif', s.iif);
  if (s.oif !== undefined) a.oif = v.ifname(op, 'oif', s.oif);
  if (s.fwmark !== undefined) a.fwmark = v.uint(op, 'fwmark', s.fwmark);
  if (s.fwmask !== undefined) {
    if (s.fwmark === undefined) throw v.typeError(op, 'fwmask', 'needs fwmark');
    a.fwmask = v.uint(op, 'fwmask', s.fwmask);
  }
  if (s.tos !== undefined) a.tos = v.uint(op, 'tos', s.tos, 0, 255);
  if (s.table !== undefined) {
    a.table = typeof s.table === 'string' ? tables[v.oneOf(op, 'table', s.table, ['main', 'local', 'default'] as const)] : v.uint(op, 'table', s.table, 1);
  }
  const action = s.action === undefined ? undefined : v.oneOf(op, 'action', s.action, Object.keys(actions) as RuleAction[]);
  if (action !== undefined) a.action = actions[action];
  if (action === 'goto') {
    if (s.goto === undefined) throw v.typeError(op, 'goto', "is required with action 'goto'");
    a.goto = v.uint(op, 'goto', s.goto);
  } else if (s.goto !== undefined) throw v.rangeError(op, 'goto', "goes with action 'goto'");
  if (cmd === 'add' && (action === undefined || action === 'table') && s.table === undefined && !s.l3mdev)
    throw v.typeError(op, 'table', 'a rule needs a table to look up (or an action, or l3mdev)');
  if (action !== undefined && action !== 'table' && s.table !== undefined) throw v.rangeError(op, 'table', `does not go with action '${action}'`);
  if (s.suppressPrefixlen !== undefined) a.suppressPrefixlen = v.uint(op, 'suppressPrefixlen', s.suppressPrefixlen, 0, 128);
  if (s.l3mdev !== undefined) a.l3mdev = v.bool(op, 'l3mdev', s.l3mdev);
  if (s.protocol !== undefined) a.protocol = v.uint(op, 'protocol', s.protocol, 0, 255);
  if (s.not !== undefined) a.invert = v.bool(op, 'not', s.not);
  return a;
}

/** Policy routing rules: what `ip rule` does. */
export class RuleOps {
  constructor(private readonly h: Handle) {}

  /** Equivalent to: `ip rule add priority 100 from 198.51.100.0/24 table 100`. */
  async add(s: RuleSpec): Promise<void> {
    await this.h._call('rule.add', { ...ruleArgs('rule.add', 'add', s), op: 'rule.add' }, 'rule.modify');
  }
  /** Deletes the first rule matching what is given. Equivalent to: `ip rule del priority 100`. */
  async del(s: RuleSpec): Promise<void> {
    await this.h._call('rule.del', { ...ruleArgs('rule.del', 'del', s), op: 'rule.del' }, 'rule.modify');
  }
  /** Rules of both families (or one). Equivalent to: `ip -j rule show` / `ip -j -6 rule show`. */
  async list(filter: { family?: 'inet' | 'inet6' } = {}): Promise<Rule[]> {
    const op = 'rule.list';
    v.knownKeys(op, 'filter', v.object(op, 'filter', filter), ['family']);
    const a: Record<string, unknown> = {};
    if (filter.family !== undefined) a.family = AF[v.oneOf(op, 'filter.family', filter.family, ['inet', 'inet6'] as const)];
    return this.h._call(op, a);
  }
  /** The request `add`/`del` would send, as bytes. */
  async encode(cmd: 'add' | 'del', s: RuleSpec): Promise<Buffer> {
    return Buffer.from(await this.h._call<Uint8Array>('rule.encode', ruleArgs('rule.encode', v.oneOf('rule.encode', 'cmd', cmd, ['add', 'del'] as const), s)));
  }
}
