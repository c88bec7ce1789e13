// `vnetlink nft list`: the ruleset as nft(8) prints it, decompiled from the expressions the
// kernel lists back (the forms vnetlink writes; anything else is shown as nft --debug=netlink
// would, in brackets, never dropped).
import type { NftChain, NftFamily, NftListedExpr, NftRule, NftTable } from '../nft.js';
import { UsageError, listOpt, parse, positionals, print, printJson, shown } from './args.js';
import { withHandle, type Command } from './ip.js';

const PRIO: Record<string, Record<number, string>> = {
  nat: { [-100]: 'dstnat', 100: 'srcnat' },
  filter: { [-300]: 'raw', [-150]: 'mangle', [-100]: 'dstnat', 0: 'filter', 50: 'security', 100: 'srcnat' },
};
const CT_STATE = [['invalid', 1], ['established', 2], ['related', 4], ['new', 8], ['untracked', 64]] as const;
const L4 = new Map([[1, 'icmp'], [6, 'tcp'], [17, 'udp'], [58, 'ipv6-icmp']]);

type Lhs = { what: string; kind: 'addr4' | 'addr6' | 'ifname' | 'l4proto' | 'nfproto' | 'port' | 'ctstate' | 'raw'; mask?: Buffer };

// The kernel's data can be shorter than its expression's kind needs (another tool wrote the
// rule, or a crafted reply): such a value is printed as hex, never read past its end.
const hexOf = (b: Buffer) => `0x${b.toString('hex')}`;
const u16 = (b: Buffer) => (b.length >= 2 ? String(b.readUInt16BE(0)) : hexOf(b));

function addr(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  if (b.length !== 16) return hexOf(b);
  const g: string[] = [];
  for (let i = 0; i + 1 < b.length; i += 2) g.push(b.readUInt16BE(i).toString(16));
  // RFC 5952: the longest run of two or more zero groups becomes '::'.
  let best = -1, len = 0;
  for (let i = 0; i < g.length;) {
    let j = i;
    while (j < g.length && g[j] === '0') j++;
    if (j - i > len && j - i > 1) { best = i; len = j - i; }
    i = j > i ? j : i + 1;
  }
  return best < 0 ? g.join(':') : `${g.slice(0, best).join(':')}::${g.slice(best + len).join(':')}`;
}
const prefixOf = (m: Buffer) => [...m].reduce((n, x) => n + x.toString(2).split('').filter((c) => c === '1').length, 0);

function value(l: Lhs, data: Buffer): string {
  switch (l.kind) {
    case 'addr4': case 'addr6': {
      const full = l.kind === 'addr4' ? 4 : 16;
      if (l.mask) return `${addr(data)}/${prefixOf(l.mask)}`;
      if (data.length < full) return `${addr(Buffer.concat([data, Buffer.alloc(full - data.length)]))}/${data.length * 8}`;
      return addr(data);
    }
    case 'ifname': { const z = data.indexOf(0); return JSON.stringify(data.subarray(0, z < 0 ? data.length : z).toString('utf8')); }
    case 'l4proto': return data.length ? L4.get(data[0]) ?? String(data[0]) : hexOf(data);
    case 'nfproto': return !data.length ? hexOf(data) : data[0] === 2 ? 'ipv4' : data[0] === 10 ? 'ipv6' : String(data[0]);
    case 'port': return u16(data);
    default: return hexOf(data);
  }
}

/** One rule's statements in nft's syntax. */
export function ruleText(r: NftRule, family: NftFamily): string {
  const regs = new Map<number, Lhs | { data: Buffer }>();
  const out: string[] = [];
  const hex = (d: unknown) => Buffer.from(String(d), 'hex');
  for (const e of r.exprs as any[]) {
    switch (e.type) {
      case 'payload': {
        let l: Lhs | undefined;
        if (e.base === 'network' && (family === 'ip' || family === 'inet') && (e.offset === 12 || e.offset === 16) && e.len <= 4)
          l = { what: `ip ${e.offset === 12 ? 'saddr' : 'daddr'}`, kind: 'addr4' };
        else if (e.base === 'network' && family === 'ip6' && (e.offset === 8 || e.offset === 24) && e.len <= 16)
          l = { what: `ip6 ${e.offset === 8 ? 'saddr' : 'daddr'}`, kind: 'addr6' };
        else if (e.base === 'transport' && e.len === 2 && (e.offset === 0 || e.offset === 2))
          l = { what: `th ${e.offset === 0 ? 'sport' : 'dport'}`, kind: 'port' };
        regs.set(e.dreg ?? 1, l ?? { what: `@${shown(e.base)},${e.offset * 8},${e.len * 8}`, kind: 'raw' });
        break;
      }
      case 'meta': {
        const kinds: Record<string, Lhs['kind']> = { iifname: 'ifname', oifname: 'ifname', l4proto: 'l4proto', nfproto: 'nfproto' };
        regs.set(e.dreg ?? 1, { what: `meta ${shown(e.key)}`.replace(/^meta (iifname|oifname)$/, '$1'), kind: Object.hasOwn(kinds, e.key) ? kinds[e.key] : 'raw' });
        break;
      }
      case 'ct':
        regs.set(e.dreg ?? 1, { what: `ct ${shown(e.key)}`, kind: e.key === 'state' ? 'ctstate' : 'raw' });
        break;
      case 'bitwise': {
        const l = regs.get(e.sreg ?? 1);
        if (l && 'what' in l) regs.set(e.dreg ?? 1, { ...l, mask: hex(e.mask) });
        else out.push(`[ bitwise ]`);
        break;
      }
      case 'cmp': {
        const l = regs.get(e.sreg ?? 1);
        const data = hex(e.data);
        if (!l || !('what' in l)) { out.push(`[ cmp ${shown(e.op)} ${hexOf(data)} ]`); break; }
        if (l.kind === 'ctstate' && l.mask && e.op === 'neq' && data.every((x) => x === 0)) {
          if (l.mask.length < 4) { out.push(`ct state & ${hexOf(l.mask)} != ${hexOf(data)}`); break; }
          const bits = l.mask.readUInt32LE(0);
          out.push(`ct state ${CT_STATE.filter(([, b]) => bits & b).map(([n]) => n).join(',')}`);
          break;
        }
        const ops: Record<string, string> = { eq: '', neq: '!= ', lt: '< ', lte: '<= ', gt: '> ', gte: '>= ' };
        out.push(`${l.what} ${Object.hasOwn(ops, e.op) ? ops[e.op] : `${shown(e.op)} `}${value(l, data)}`);
        break;
      }
      case 'immediate':
        if (e.verdict) out.push(e.chain ? `${shown(e.verdict)} ${shown(e.chain)}` : shown(e.verdict));
        else regs.set(e.dreg, { data: hex(e.data) });
        break;
      case 'counter':
        out.push(`counter packets ${e.packets ?? 0} bytes ${e.bytes ?? 0}`);
        break;
      case 'masq': {
        const lo = regs.get(e.protoMin), hi = regs.get(e.protoMax ?? e.protoMin);
        const port = (x: any) => (x && 'data' in x ? u16(x.data) : undefined);
        let s = 'masquerade';
        if (e.protoMin !== undefined && port(lo) !== undefined) s += ` to :${port(lo)}${port(hi) !== port(lo) ? `-${port(hi)}` : ''}`;
        for (const f of e.flags ?? []) if (['random', 'fully-random', 'persistent'].includes(f)) s += ` ${f}`;
        out.push(s);
        break;
      }
      case 'nat': {
        const a = regs.get(e.addrMin), p = regs.get(e.protoMin);
        const av = a && 'data' in a ? addr(a.data) : '?';
        const pv = p && 'data' in p ? `:${u16(p.data)}` : '';
        out.push(`${shown(e.nat)} to ${e.family === 'ip6' ? `[${av}]` : av}${pv}`);
        break;
      }
      case 'reject':
        if ((e.with === 'icmp' && (e.code === 3 || e.code === undefined)) || (e.with === 'icmpx' && e.code === 1)) out.push('reject');
        else out.push(`reject with ${shown(e.with)}${e.code !== undefined ? ` ${shown(e.code)}` : ''}`);
        break;
      default:
        out.push(`[ ${shown(e.type)}${e.raw ? ` ${shown(e.raw)}` : ''} ]`);
    }
  }
  if (r.comment !== undefined) out.push(`comment ${JSON.stringify(r.comment)}`);
  return out.join(' ');
}

function chainHead(c: NftChain): string | undefined {
  if (!c.hook) return undefined;
  const p = c.priority ?? 0;
  const type = c.type ?? 'filter';
  const names = Object.hasOwn(PRIO, type) ? PRIO[type] : {};
  const prio = Object.hasOwn(names, p) ? names[p] : String(p);
  return `type ${shown(type)} hook ${shown(c.hook)} priority ${prio}; policy ${shown(c.policy ?? 'accept')};`;
}

/** `nft list ruleset` for the given tables, chains and rules. */
export function rulesetText(tables: NftTable[], chains: NftChain[], rules: NftRule[], handles = false): string {
  const out: string[] = [];
  const h = (n: number) => (handles ? ` # handle ${n}` : '');
  for (const t of tables) {
    out.push(`table ${shown(t.family)} ${shown(t.name)} {${h(t.handle)}`);
    if (t.flags.includes('dormant')) out.push('\tflags dormant');
    const cs = chains.filter((c) => c.family === t.family && c.table === t.name);
    cs.forEach((c, i) => {
      out.push(`\tchain ${shown(c.name)} {${h(c.handle)}`);
      const head = chainHead(c);
      if (head) out.push(`\t\t${head}`);
      for (const r of rules.filter((r) => r.family === t.family && r.table === t.name && r.chain === c.name)) out.push(`\t\t${ruleText(r, t.family)}${h(r.handle)}`);
      out.push('\t}');
      if (i < cs.length - 1) out.push('');
    });
    out.push('}');
  }
  return out.join('\n');
}

const nftUsage = `usage: vnetlink nft list [--family ip|ip6|inet|arp|bridge|netdev] [--table NAME] [-a] [--netns NS] [--json]
The nftables ruleset (or one family or table) in nft's syntax; -a adds the handles.
Equivalent to: nft [-a] list ruleset | nft list table FAMILY NAME`;

const families = ['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev'] as const;

export const nft: Command = {
  summary: 'list nftables tables, chains and rules (nft list)',
  usage: nftUsage,
  async run(argv) {
    const [sub, ...rest] = argv;
    if (sub !== 'list' && sub !== undefined && !sub.startsWith('-')) throw new UsageError(`unknown command '${sub}' (list)`, nftUsage);
    const p = parse(sub === 'list' ? rest : argv, { family: { type: 'string' }, table: { type: 'string' }, handles: { type: 'boolean', short: 'a' } }, nftUsage);
    if (p.values.help) { print(nftUsage); return 0; }
    if (sub === undefined) throw new UsageError('missing command (list)', nftUsage);
    positionals(p, [], nftUsage);
    const fam = listOpt(p, 'family', families, nftUsage)?.[0];
    const tname = p.values.table as string | undefined;
    if (tname !== undefined && !fam) throw new UsageError('--table needs --family', nftUsage);
    return withHandle(p, async (h) => {
      let tables = await h.nft.listTables(fam);
      if (tname !== undefined) {
        tables = tables.filter((t) => t.name === tname);
        if (!tables.length) throw Object.assign(new Error(`nft.list: no table ${fam} ${tname}`), { code: 'ENOENT' });
      }
      const chains: NftChain[] = [];
      const rules: NftRule[] = [];
      for (const t of tables) {
        chains.push(...(await h.nft.listChains(t.family, t.name)));
        rules.push(...(await h.nft.listRules(t.family, t.name)));
      }
      if (p.values.json) printJson({ tables, chains, rules });
      else print(rulesetText(tables, chains, rules, !!p.values.handles));
      return 0;
    });
  },
};
