// `vnetlink tc|fdb|rule`: tc(8)'s, bridge-fdb(8)'s and ip-rule(8)'s show commands over the
// library, text in those tools' shapes and --json as the library returns it.
import { UsageError, parse, positionals, print, printJson, shown, table } from './args.js';
import { help, verb, withHandle, type Command } from './ip.js';
import type { Qdisc, TcFilter } from '../tc.js';

const tcUsage = `usage: vnetlink tc qdisc show [DEV] [--netns NS] [--json]
       vnetlink tc class show DEV
       vnetlink tc filter show DEV [--parent HANDLE]
Queueing disciplines, classes and filters as tc -s shows them. Equivalent to: tc -s qdisc|class|filter show ...`;

// tc's rate words: bytes/s as Mbit with at most three decimals ("100Mbit", "0.125Mbit").
const rate = (b: unknown) => (typeof b === 'number' ? `${Number((b * 8 / 1e6).toFixed(3))}Mbit` : '');
const stats = (q: Qdisc) => `sent ${q.stats.bytes ?? 0} bytes ${q.stats.packets ?? 0} pkt (dropped ${q.stats.drops ?? 0}, overlimits ${q.stats.overlimits ?? 0})`;

function qdiscLine(q: Qdisc): string {
  const where = q.parent === 'root' ? 'root' : `parent ${q.parent}`;
  const opts: string[] = [];
  for (const k of ['r2q', 'default', 'limit', 'delay', 'jitter', 'loss', 'flows', 'target', 'interval']) if (q[k] !== undefined) opts.push(`${k} ${q[k]}`);
  if (q.rate !== undefined) opts.push(`rate ${rate(q.rate)}`);
  if (q.burst !== undefined) opts.push(`burst ${q.burst}b`);
  return [`qdisc ${shown(q.kind)} ${q.handle} dev ${shown(q.dev ?? q.ifindex)} ${where}`, ...opts].join(' ') + `\n ${stats(q)}`;
}

function filterLine(f: TcFilter): string {
  const head = `filter parent ${f.parent} protocol ${f.protocol} pref ${f.prio} ${shown(f.kind)} handle ${f.handle}`;
  const parts = [head];
  if (f.flowid) parts.push(`flowid ${f.flowid}`);
  for (const k of f.match ?? []) parts.push(`\n  match ${k.val.toString(16).padStart(8, '0')}/${k.mask.toString(16).padStart(8, '0')} at ${k.off}`);
  for (const a of f.actions ?? []) parts.push(`\n  action ${shown(a.kind)}${a.kind === 'mirred' ? ` (${a.direction} ${a.op} to device ${shown(a.dev ?? a.ifindex)}) ${a.control}` : ''}`);
  return parts.join(' ');
}

export const tc: Command = {
  summary: 'qdiscs, classes and filters (tc -s ... show)',
  usage: tcUsage,
  async run(argv) {
    const [obj, rest0] = verb(argv, ['qdisc', 'class', 'filter'], tcUsage);
    if (obj === 'help') { print(tcUsage); return 0; }
    const [, rest] = verb(rest0, ['show', 'list'], tcUsage, 'show');
    const p = parse(rest, { parent: { type: 'string' } }, tcUsage);
    if (help(p, tcUsage)) return 0;
    const [dev] = positionals(p, ['DEV'], tcUsage, obj === 'qdisc' ? 1 : 0);
    if (p.values.parent !== undefined && obj !== 'filter') throw new UsageError('--parent goes with tc filter show', tcUsage);
    return withHandle(p, async (h) => {
      if (obj === 'qdisc') {
        const qs = await h.tc.qdisc.list(dev);
        if (p.values.json) printJson(qs); else print(qs.map(qdiscLine).join('\n'));
      } else if (obj === 'class') {
        const cs = await h.tc.class.list(dev);
        if (p.values.json) printJson(cs);
        else print(cs.map((c) => `class ${shown(c.kind)} ${c.handle} ${c.parent === 'root' ? 'root' : `parent ${c.parent}`} prio ${c.prio ?? 0} rate ${rate(c.rate)} ceil ${rate(c.ceil)} burst ${c.burst}b cburst ${c.cburst}b\n ${stats(c)}`).join('\n'));
      } else {
        const fs = await h.tc.filter.list(dev, p.values.parent === undefined ? {} : { parent: String(p.values.parent) });
        if (p.values.json) printJson(fs); else print(fs.map(filterLine).join('\n'));
      }
      return 0;
    });
  },
};

const fdbUsage = `usage: vnetlink fdb show [--dev DEV] [--br BRIDGE] [--netns NS] [--json]
Forwarding database entries as bridge fdb show prints them. Equivalent to: bridge fdb show ...`;

export const fdb: Command = {
  summary: 'forwarding database entries (bridge fdb show)',
  usage: fdbUsage,
  async run(argv) {
    const [, rest] = verb(argv, ['show', 'list'], fdbUsage, 'show');
    const p = parse(rest, { dev: { type: 'string' }, br: { type: 'string' } }, fdbUsage);
    if (help(p, fdbUsage)) return 0;
    positionals(p, [], fdbUsage);
    return withHandle(p, async (h) => {
      const es = await h.fdb.list({ dev: p.values.dev as string | undefined, master: p.values.br as string | undefined });
      if (p.values.json) printJson(es);
      else print(es.map((e) => [e.mac, `dev ${shown(e.dev ?? e.index)}`, e.dst ? `dst ${e.dst}` : '', e.vlan ? `vlan ${e.vlan}` : '', e.master ? `master ${shown(e.master)}` : '', ...e.flags, e.state].filter(Boolean).join(' ')).join('\n'));
      return 0;
    });
  },
};

const ruleUsage = `usage: vnetlink rule show [--family inet|inet6] [--netns NS] [--json]
Policy routing rules as ip rule show prints them. Equivalent to: ip [-6] rule show`;

export const rule: Command = {
  summary: 'policy routing rules (ip rule show)',
  usage: ruleUsage,
  async run(argv) {
    const [, rest] = verb(argv, ['show', 'list'], ruleUsage, 'show');
    const p = parse(rest, { family: { type: 'string' } }, ruleUsage);
    if (help(p, ruleUsage)) return 0;
    positionals(p, [], ruleUsage);
    const family = p.values.family as string | undefined;
    if (family !== undefined && family !== 'inet' && family !== 'inet6') throw new UsageError(`--family must be inet or inet6 (got ${JSON.stringify(family)})`, ruleUsage);
    return withHandle(p, async (h) => {
      const rs = await h.rule.list(family === undefined ? {} : { family: family as 'inet' | 'inet6' });
      if (p.values.json) { printJson(rs); return 0; }
      const names: Record<number, string> = { 253: 'default', 254: 'main', 255: 'local' };
      print(table(undefined, rs.map((r) => [`${r.priority}:`, [r.not ? 'not' : '', `from ${r.from}`, r.to ? `to ${r.to}` : '', r.iif ? `iif ${shown(r.iif)}` : '', r.oif ? `oif ${shown(r.oif)}` : '',
        r.fwmark !== undefined ? `fwmark 0x${r.fwmark.toString(16)}${r.fwmask !== undefined ? `/0x${r.fwmask.toString(16)}` : ''}` : '',
        r.action === 'table' ? `lookup ${r.table === undefined ? 'unspec' : names[r.table] ?? r.table}` : r.action,
        r.suppressPrefixlen !== undefined ? `suppress_prefixlength ${r.suppressPrefixlen}` : '', r.l3mdev ? 'lookup [l3mdev-table]' : ''].filter(Boolean).join(' ')]), [0]));
      return 0;
    });
  },
};
