// `vnetlink link|addr|route|neigh|bridge|tap|netns|monitor`: ip(8)'s and brctl(8)'s words over
// the library, one handle per command in the namespace `--netns` names.
import { open, type Handle } from '../handle.js';
import { Netns } from '../netns.js';
import { monitorGroups, type MonitorGroup } from '../monitor.js';
import { UsageError, intOpt, listOpt, parse, positionals, print, printJson, shown, terminalText, type Parsed } from './args.js';
import { addrLine, formatAddrs, formatBridges, formatLink, neighLine, routeLine } from './format.js';

export interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

/** Runs `fn` with a handle in `--netns` (or the caller's namespace), closed afterwards. */
export async function withHandle<T>(p: Parsed, fn: (h: Handle) => Promise<T>): Promise<T> {
  const netns = p.values.netns as string | undefined;
  const h = await open(netns === undefined ? {} : { netns });
  try {
    return await fn(h);
  } finally {
    await h.close();
  }
}

/** `sub` must be one of `subs`; a missing one is `dflt` (or a usage error). */
export function verb(argv: string[], subs: string[], usage: string, dflt?: string): [string, string[]] {
  const [s, ...rest] = argv;
  if (s === undefined || s.startsWith('-')) {
    if (dflt === undefined && !argv.includes('--help') && !argv.includes('-h')) throw new UsageError(`missing command (one of: ${subs.join(', ')})`, usage);
    return [dflt ?? 'help', argv];
  }
  if (!subs.includes(s)) throw new UsageError(`unknown command '${s}' (one of: ${subs.join(', ')})`, usage);
  return [s, rest];
}

export function help(p: Parsed, usage: string): boolean {
  if (p.values.help) print(usage);
  return !!p.values.help;
}

const num = (p: Parsed, k: string, usage: string) => intOpt(p, k, 0, 0xffffffff, usage);

// ---- link -----------------------------------------------------------------------------------

const linkUsage = `usage: vnetlink link list [--type KIND] [--master BR] [-d] [--netns NS] [--json]
       vnetlink link show NAME [-d]
       vnetlink link add NAME --type KIND [--peer NAME] [--link DEV] [--mode MODE] [--mtu N] [--mac MAC]
                         [--master BR] [--up] [--group N] [--alias TEXT] [--stp] [--forward-delay S]
                         [--vni N --remote ADDR --local ADDR --dst-port N]
       vnetlink link set NAME [up|down] [--up|--down] [--mtu N] [--mac MAC] [--master BR|--nomaster]
                         [--name NEW] [--group N] [--alias TEXT] [--to-netns NS]
       vnetlink link del NAME
Links, in ip-link's words (-d: details, as ip -d). Equivalent to: ip link ...`;

const linkOpts = {
  details: { type: 'boolean', short: 'd' }, type: { type: 'string' }, master: { type: 'string' },
  peer: { type: 'string' }, link: { type: 'string' }, mode: { type: 'string' }, mtu: { type: 'string' },
  mac: { type: 'string' }, up: { type: 'boolean' }, down: { type: 'boolean' }, group: { type: 'string' },
  alias: { type: 'string' }, stp: { type: 'boolean' }, 'forward-delay': { type: 'string' },
  vni: { type: 'string' }, remote: { type: 'string' }, local: { type: 'string' }, 'dst-port': { type: 'string' },
  nomaster: { type: 'boolean' }, name: { type: 'string' }, 'to-netns': { type: 'string' },
} as const;

export const link: Command = {
  summary: 'list, show, add, change and delete links (ip link)',
  usage: linkUsage,
  async run(argv) {
    const [sub, rest] = verb(argv, ['list', 'show', 'add', 'set', 'del', 'delete'], linkUsage, 'list');
    const p = parse(rest, linkOpts, linkUsage);
    if (help(p, linkUsage)) return 0;
    const o = p.values;
    const u = linkUsage;
    return withHandle(p, async (h) => {
      switch (sub) {
        case 'list': {
          positionals(p, [], u);
          const filter: Record<string, string> = {};
          if (o.type) filter.kind = String(o.type);
          if (o.master) filter.master = String(o.master);
          const ls = await h.link.list(filter);
          if (o.json) printJson(ls);
          else print(ls.map((l) => formatLink(l, !!o.details)).join('\n'));
          return 0;
        }
        case 'show': {
          const [name] = positionals(p, ['NAME'], u);
          const l = await h.link.get(name);
          if (o.json) printJson(l);
          else print(formatLink(l, !!o.details));
          return 0;
        }
        case 'add': {
          const [name] = positionals(p, ['NAME'], u);
          if (!o.type) throw new UsageError('--type KIND is required (bridge, veth, macvlan, macvtap, vxlan, ...)', u);
          const spec: Record<string, unknown> = { kind: o.type, name };
          if (o.type === 'tap' || o.type === 'tun') throw new UsageError('taps are made with `vnetlink tap add NAME --persist`', u);
          const n = (k: string) => num(p, k, u);
          if (o.peer !== undefined) spec.peer = { name: o.peer };
          if (o.link !== undefined) spec.link = o.link;
          if (o.mode !== undefined) spec.mode = o.mode;
          if (o.mtu !== undefined) spec.mtu = n('mtu');
          if (o.mac !== undefined) spec.mac = o.mac;
          if (o.master !== undefined) spec.master = o.master;
          if (o.up) spec.up = true;
          if (o.group !== undefined) spec.group = n('group');
          if (o.alias !== undefined) spec.alias = o.alias;
          if (o.stp) spec.stp = true;
          if (o['forward-delay'] !== undefined) spec.forwardDelay = n('forward-delay');
          if (o.vni !== undefined) spec.vni = n('vni');
          if (o.remote !== undefined) spec.remote = o.remote;
          if (o.local !== undefined) spec.local = o.local;
          if (o['dst-port'] !== undefined) spec.dstPort = n('dst-port');
          const l = await h.link.add(spec as any);
          if (o.json) printJson(l);
          return 0;
        }
        case 'set': {
          const [name, ...words] = p.positionals;
          if (!name) throw new UsageError('missing NAME', u);
          const ch: Record<string, unknown> = {};
          for (const w of words) {
            if (w === 'up') ch.up = true;
            else if (w === 'down') ch.up = false;
            else throw new UsageError(`unexpected argument '${w}' (up or down)`, u);
          }
          if (o.up && o.down) throw new UsageError('--up and --down contradict each other', u);
          if (o.up) ch.up = true;
          if (o.down) ch.up = false;
          if (o.master !== undefined && o.nomaster) throw new UsageError('--master and --nomaster contradict each other', u);
          if (o.mtu !== undefined) ch.mtu = num(p, 'mtu', u);
          if (o.mac !== undefined) ch.mac = o.mac;
          if (o.master !== undefined) ch.master = o.master;
          if (o.nomaster) ch.master = null;
          if (o.name !== undefined) ch.name = o.name;
          if (o.group !== undefined) ch.group = num(p, 'group', u);
          if (o.alias !== undefined) ch.alias = o.alias;
          if (o['to-netns'] !== undefined) ch.netns = o['to-netns'];
          if (!Object.keys(ch).length) throw new UsageError('nothing to change', u);
          await h.link.set(name, ch);
          if (o.json) printJson(ch.netns === undefined ? await h.link.get(String(ch.name ?? name)) : {});
          return 0;
        }
        default: {
          const [name] = positionals(p, ['NAME'], u);
          await h.link.del(name);
          if (o.json) printJson({});
          return 0;
        }
      }
    });
  },
};

// ---- addr -----------------------------------------------------------------------------------

const addrUsage = `usage: vnetlink addr [list|show] [DEV] [--family inet|inet6] [--netns NS] [--json]
       vnetlink addr add CIDR dev DEV   (or --dev DEV) [--nodad]
       vnetlink addr del CIDR dev DEV
Addresses, as ip addr shows them. Equivalent to: ip addr ...`;

/** ip's `dev DEV` words after the positionals, or --dev. */
function devWord(p: Parsed, u: string): { args: string[]; dev?: string } {
  const args = [...p.positionals];
  let dev = p.values.dev as string | undefined;
  const i = args.indexOf('dev');
  if (i >= 0) {
    if (args[i + 1] === undefined) throw new UsageError("'dev' needs a device name", u);
    if (dev !== undefined) throw new UsageError("both 'dev' and --dev given", u);
    dev = args[i + 1];
    args.splice(i, 2);
  }
  return { args, dev };
}

export const addr: Command = {
  summary: 'list, add and delete addresses (ip addr)',
  usage: addrUsage,
  async run(argv) {
    const [sub, rest] = verb(argv, ['list', 'show', 'add', 'del', 'delete'], addrUsage, 'list');
    const p = parse(rest, { dev: { type: 'string' }, family: { type: 'string' }, nodad: { type: 'boolean' } }, addrUsage);
    if (help(p, addrUsage)) return 0;
    const o = p.values;
    const fam = o.family === undefined ? undefined : listOpt(p, 'family', ['inet', 'inet6'] as const, addrUsage)![0];
    return withHandle(p, async (h) => {
      if (sub === 'list' || sub === 'show') {
        const { args, dev } = devWord(p, addrUsage);
        if (args.length > 1) throw new UsageError(`unexpected argument '${args[1]}'`, addrUsage);
        const name = dev ?? args[0];
        const as = await h.addr.list(name, fam ? { family: fam } : {});
        if (o.json) { printJson(as); return 0; }
        const links = name === undefined ? await h.link.list() : [await h.link.get(name)];
        print(formatAddrs(links, as));
        return 0;
      }
      const { args, dev } = devWord(p, addrUsage);
      if (args.length !== 1) throw new UsageError(args.length ? `unexpected argument '${args[1]}'` : 'missing CIDR', addrUsage);
      if (!dev) throw new UsageError('missing dev DEV', addrUsage);
      if (sub === 'add') await h.addr.add(dev, args[0], o.nodad ? { nodad: true } : {});
      else await h.addr.del(dev, args[0]);
      if (o.json) printJson({});
      return 0;
    });
  },
};

// ---- route ----------------------------------------------------------------------------------

const routeUsage = `usage: vnetlink route [list|show] [--family inet|inet6] [--table N|all] [--netns NS] [--json]
       vnetlink route add DST [via ADDR] [dev DEV] [metric N] [table N] [src ADDR]
       vnetlink route del DST [via ADDR] [dev DEV] [table N]
Routes, as ip route shows them (DST: a prefix or 'default'). Equivalent to: ip route ...`;

export const route: Command = {
  summary: 'list, add and delete routes (ip route)',
  usage: routeUsage,
  async run(argv) {
    const [sub, rest] = verb(argv, ['list', 'show', 'add', 'del', 'delete'], routeUsage, 'list');
    const p = parse(rest, { family: { type: 'string' }, table: { type: 'string' } }, routeUsage);
    if (help(p, routeUsage)) return 0;
    const o = p.values;
    const fam = o.family === undefined ? undefined : listOpt(p, 'family', ['inet', 'inet6'] as const, routeUsage)![0];
    return withHandle(p, async (h) => {
      if (sub === 'list' || sub === 'show') {
        positionals(p, [], routeUsage);
        const f: { family?: 'inet' | 'inet6'; table?: number | 'all' } = {};
        if (fam) f.family = fam;
        if (o.table !== undefined) f.table = o.table === 'all' ? 'all' : intOpt(p, 'table', 0, 0xffffffff, routeUsage);
        const rs = await h.route.list(f);
        if (o.json) printJson(rs);
        else print(rs.map(routeLine).join('\n'));
        return 0;
      }
      const [dst, ...words] = p.positionals;
      if (!dst) throw new UsageError('missing DST', routeUsage);
      const spec: Record<string, unknown> = { dst };
      if (fam) spec.family = fam;
      if (o.table !== undefined) spec.table = intOpt(p, 'table', 0, 0xffffffff, routeUsage);
      for (let i = 0; i < words.length; i += 2) {
        const [k, val] = [words[i], words[i + 1]];
        if (!['via', 'dev', 'metric', 'table', 'src'].includes(k)) throw new UsageError(`unexpected argument '${k}' (via, dev, metric, table, src)`, routeUsage);
        if (val === undefined) throw new UsageError(`'${k}' needs a value`, routeUsage);
        if (k === 'metric' || k === 'table') {
          if (!/^\d+$/.test(val)) throw new UsageError(`${k} must be a number (got '${val}')`, routeUsage);
          spec[k] = Number(val);
        } else spec[k] = val;
      }
      if (sub === 'add') await h.route.add(spec as any);
      else await h.route.del(spec as any);
      if (o.json) printJson({});
      return 0;
    });
  },
};

// ---- neigh ----------------------------------------------------------------------------------

const neighUsage = `usage: vnetlink neigh [list|show] [--netns NS] [--json]
Neighbour entries, as ip neigh shows them. Equivalent to: ip neigh show`;

export const neigh: Command = {
  summary: 'list neighbour entries (ip neigh)',
  usage: neighUsage,
  async run(argv) {
    const [, rest] = verb(argv, ['list', 'show'], neighUsage, 'list');
    const p = parse(rest, {}, neighUsage);
    if (help(p, neighUsage)) return 0;
    positionals(p, [], neighUsage);
    return withHandle(p, async (h) => {
      const ns = await h.neigh.list();
      if (p.values.json) printJson(ns);
      else print(ns.map(neighLine).join('\n'));
      return 0;
    });
  },
};

// ---- bridge ---------------------------------------------------------------------------------

const bridgeUsage = `usage: vnetlink bridge show [BRIDGE] [--netns NS] [--json]
Bridges with their id, STP and ports, as brctl show prints them.`;

export const bridge: Command = {
  summary: "bridges and their ports (brctl show)",
  usage: bridgeUsage,
  async run(argv) {
    const [, rest] = verb(argv, ['show', 'list'], bridgeUsage, 'show');
    const p = parse(rest, {}, bridgeUsage);
    if (help(p, bridgeUsage)) return 0;
    const [name] = positionals(p, ['BRIDGE'], bridgeUsage, 1);
    return withHandle(p, async (h) => {
      const bs = await h.bridge.show(name);
      if (p.values.json) printJson(bs);
      else print(formatBridges(bs));
      return 0;
    });
  },
};

// ---- tap ------------------------------------------------------------------------------------

const tapUsage = `usage: vnetlink tap add NAME --persist [--queues N] [--vnet-hdr] [--owner UID] [--group GID]
                        [--mode tap|tun] [--master BR] [--up] [--mtu N] [--mac MAC] [--netns NS] [--json]
       vnetlink tap del NAME
A persistent tun/tap device for a VMM or jailer to attach to later (Firecracker, cloud-hypervisor).
Equivalent to: ip tuntap add NAME mode tap [multi_queue] [vnet_hdr] [user UID]`;

export const tap: Command = {
  summary: 'persistent tun/tap devices (ip tuntap)',
  usage: tapUsage,
  async run(argv) {
    const [sub, rest] = verb(argv, ['add', 'del', 'delete'], tapUsage);
    const p = parse(rest, {
      persist: { type: 'boolean' }, queues: { type: 'string' }, 'vnet-hdr': { type: 'boolean' }, owner: { type: 'string' },
      group: { type: 'string' }, mode: { type: 'string' }, master: { type: 'string' }, up: { type: 'boolean' },
      mtu: { type: 'string' }, mac: { type: 'string' },
    }, tapUsage);
    if (help(p, tapUsage)) return 0;
    const o = p.values;
    const [name] = positionals(p, ['NAME'], tapUsage);
    if (sub === 'add') {
      // The CLI's fds close when it exits: only a persistent tap outlives it.
      if (!o.persist) throw new UsageError('tap add needs --persist (a tap made here would vanish when vnetlink exits)', tapUsage);
      const spec: Record<string, unknown> = { name, persist: true };
      const q = intOpt(p, 'queues', 1, 256, tapUsage);
      if (q !== undefined) { spec.queues = q; if (q > 1) spec.multiQueue = true; }
      if (o['vnet-hdr']) spec.vnetHdr = true;
      if (o.owner !== undefined) spec.uid = intOpt(p, 'owner', 0, 0xfffffffe, tapUsage);
      if (o.group !== undefined) spec.gid = intOpt(p, 'group', 0, 0xfffffffe, tapUsage);
      if (o.mode !== undefined) spec.mode = o.mode;
      if (o.master !== undefined) spec.master = o.master;
      if (o.up) spec.up = true;
      if (o.mtu !== undefined) spec.mtu = intOpt(p, 'mtu', 68, 65535, tapUsage);
      if (o.mac !== undefined) spec.mac = o.mac;
      return withHandle(p, async (h) => {
        const t = await h.tap.create(spec as any);
        const out = { name: t.name, index: t.index, queues: t.fds.length, persist: true };
        await t.close();
        if (o.json) printJson(out);
        else print(shown(t.name));
        return 0;
      });
    }
    return withHandle(p, async (h) => {
      const l = await h.link.get(name);
      if (l.kind !== 'tun') throw new UsageError(`${name} is a ${l.kind}, not a tun/tap device (use vnetlink link del)`, tapUsage);
      await h.link.del(l.index);
      if (o.json) printJson({});
      return 0;
    });
  },
};

// ---- netns ----------------------------------------------------------------------------------

const netnsUsage = `usage: vnetlink netns list [--json]
       vnetlink netns add NAME
       vnetlink netns del NAME
Named network namespaces under /run/netns. Equivalent to: ip netns ...`;

export const netns: Command = {
  summary: 'named network namespaces (ip netns)',
  usage: netnsUsage,
  async run(argv) {
    const [sub, rest] = verb(argv, ['list', 'add', 'del', 'delete'], netnsUsage, 'list');
    const p = parse(rest, {}, netnsUsage);
    if (help(p, netnsUsage)) return 0;
    if (p.values.netns !== undefined) throw new UsageError('netns commands work on /run/netns itself; --netns does not apply', netnsUsage);
    if (sub === 'list') {
      positionals(p, [], netnsUsage);
      const names = (await Netns.list()).sort();
      if (p.values.json) printJson(names);
      else print(names.map(shown).join('\n'));
      return 0;
    }
    const [name] = positionals(p, ['NAME'], netnsUsage);
    if (sub === 'add') await Netns.create(name);
    else await Netns.delete(name);
    if (p.values.json) printJson({ name });
    return 0;
  },
};

// ---- monitor --------------------------------------------------------------------------------

const monitorUsage = `usage: vnetlink monitor [--groups link,addr,route,neigh] [--family inet|inet6] [--existing] [--count N]
                        [--netns NS] [--json]
Prints rtnetlink events as they happen (--json: one JSON object per line) until interrupted,
or after N events. Equivalent to: ip monitor link address route neigh`;

function eventLine(ev: any): string {
  const del = ev.type.startsWith('del') ? 'Deleted ' : '';
  switch (ev.type) {
    case 'newlink': case 'dellink': return `[LINK]${del ? ' Deleted' : ''} ${formatLink(ev.link)}`;
    case 'newaddr': case 'deladdr': return `[ADDR]${del ? ' Deleted' : ''} ${ev.addr.index}: ${shown(ev.addr.link ?? '?')}    ${addrLine(ev.addr)}`;
    case 'newroute': case 'delroute': return `[ROUTE]${del ? ' Deleted' : ''} ${routeLine(ev.route)}`;
    case 'newneigh': case 'delneigh': return `[NEIGH]${del ? ' Deleted' : ''} ${neighLine(ev.neigh)}`;
    case 'synced': return '[SYNCED]';
    case 'resync': return `[RESYNC] ${shown(ev.message)}`;
    default: return `[${String(ev.type).toUpperCase()}]`;
  }
}

export const monitor: Command = {
  summary: 'watch link, address, route and neighbour events (ip monitor)',
  usage: monitorUsage,
  async run(argv) {
    const p = parse(argv, { groups: { type: 'string' }, family: { type: 'string' }, existing: { type: 'boolean' }, count: { type: 'string' } }, monitorUsage);
    if (help(p, monitorUsage)) return 0;
    positionals(p, [], monitorUsage);
    const groups = listOpt(p, 'groups', monitorGroups, monitorUsage) as MonitorGroup[] | undefined;
    const fam = p.values.family === undefined ? undefined : listOpt(p, 'family', ['inet', 'inet6'] as const, monitorUsage)![0];
    const count = intOpt(p, 'count', 1, 1e9, monitorUsage);
    return withHandle(p, async (h) => {
      const m = h.monitor({ ...(groups ? { groups } : {}), ...(fam ? { family: fam } : {}), ...(p.values.existing ? { listExisting: true } : {}) });
      const stop = () => void m.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      let n = 0;
      try {
        for await (const ev of m) {
          process.stdout.write((p.values.json ? JSON.stringify(ev) : terminalText(eventLine(ev))) + '\n');
          if (count !== undefined && ++n >= count) break;
        }
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        await m.close();
      }
      return 0;
    });
  },
};
