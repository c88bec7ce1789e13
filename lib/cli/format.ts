// Human output in the words and layout of ip(8) and brctl(8), from the library's objects.
import type { Link } from '../link.js';
import type { Address } from '../addr.js';
import type { Route } from '../route.js';
import type { BridgeSummary } from '../bridge.js';
import type { Neighbour } from '../monitor.js';
import { shown, table } from './args.js';

/** `ip` writes the parent after '@': by name here, `ifN` when it lives in another namespace. */
function atName(l: Link): string {
  if (l.link) return `${shown(l.name)}@${shown(l.link)}`;
  if (l.linkIndex) return `${shown(l.name)}@if${l.linkIndex}`;
  return shown(l.name);
}

const linkType = (l: Link) => (l.kind === 'loopback' ? 'loopback' : l.kind === 'tun' && l.info.mode === 'tun' ? 'none' : 'ether');

/** The first line of `ip link show`, without the qdisc (rtnetlink's link dump does not carry it). */
export function linkHeader(l: Link): string {
  // ip derives NO-CARRIER (up, no carrier) instead of reading it from the kernel.
  const flags = l.up && !l.lowerUp && !l.flags.includes('NO-CARRIER') ? ['NO-CARRIER', ...l.flags] : l.flags;
  const parts = [`${l.index}: ${atName(l)}: <${flags.join(',')}> mtu ${l.mtu}`];
  if (l.master) parts.push(`master ${shown(l.master)}`);
  parts.push(`state ${l.operState.toUpperCase()}`, 'mode DEFAULT');
  parts.push(`group ${l.group === 0 ? 'default' : l.group}`);
  if (l.txqueuelen !== undefined) parts.push(`qlen ${l.txqueuelen}`);
  return parts.join(' ');
}

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
function kv(o: Record<string, any> | undefined, skip: string[] = []): string {
  if (!o) return '';
  return Object.entries(o).filter(([k, x]) => !skip.includes(k) && x !== undefined && typeof x !== 'object')
    .map(([k, x]) => `${kebab(k)} ${typeof x === 'boolean' ? (x ? 'on' : 'off') : shown(x)}`).join(' ');
}

/** `ip link show` (two lines per link, and with `details` the kind and port settings as `ip -d` adds them). */
export function formatLink(l: Link, details = false): string {
  const lines = [linkHeader(l)];
  // ip -d appends promiscuity and the MTU bounds to the link/ line and puts the kind, the
  // port settings and the queue counts on the next one.
  let second = `    link/${linkType(l)}${l.mac ? ` ${l.mac}` : ''}${l.broadcast ? ` brd ${l.broadcast}` : ''}${l.linkNetnsId !== undefined ? ` link-netnsid ${l.linkNetnsId}` : ''}`;
  if (details) second += ` promiscuity ${l.promiscuity ?? 0}${l.minMtu !== undefined ? ` minmtu ${l.minMtu}` : ''}${l.maxMtu !== undefined ? ` maxmtu ${l.maxMtu}` : ''}`;
  lines.push(second);
  if (details) {
    const d: string[] = [];
    if (!['ether', 'loopback'].includes(l.kind)) d.push(`${shown(l.kind)} ${kv(l.info)}`.trimEnd());
    if (l.port) d.push(`${shown(l.port.kind)}_slave ${kv(l.port, ['kind'])}`.trimEnd());
    d.push(`numtxqueues ${l.numTxQueues ?? 1} numrxqueues ${l.numRxQueues ?? 1}`);
    lines.push(`    ${d.join(' ')}`);
  }
  if (l.alias) lines.push(`    alias ${shown(l.alias)}`);
  return lines.join('\n');
}

/** One address line of `ip addr show`. */
export function addrLine(a: Address): string {
  const parts = [`${a.family} ${a.cidr}`];
  if (a.peer) parts[0] = `${a.family} ${a.address} peer ${a.peer}/${a.prefixLen}`;
  if (a.broadcast) parts.push(`brd ${a.broadcast}`);
  parts.push(`scope ${a.scope}`);
  for (const f of a.flags) if (f !== 'permanent') parts.push(f);
  if (a.family === 'inet') parts.push(shown(a.label ?? a.link ?? ''));
  return parts.join(' ').trimEnd();
}

/** `ip addr show`: each link's header, then its addresses indented. */
export function formatAddrs(links: Link[], addrs: Address[]): string {
  const out: string[] = [];
  for (const l of links) {
    const mine = addrs.filter((a) => a.index === l.index);
    out.push(formatLink(l));
    for (const a of mine) out.push(`    ${addrLine(a)}`);
  }
  return out.join('\n');
}

/** One line of `ip route show`: proto boot and scope global are implied, as ip leaves them out. */
export function routeLine(r: Route): string {
  const parts: string[] = [];
  if (r.type && r.type !== 'unicast') parts.push(r.type);
  parts.push(r.dst);
  if (r.via) parts.push(`via ${r.via}`);
  if (r.dev) parts.push(`dev ${shown(r.dev)}`);
  if (r.table !== 254 && r.table !== undefined) parts.push(`table ${r.table === 255 ? 'local' : r.table}`);
  if (r.protocol && r.protocol !== 'boot') parts.push(`proto ${r.protocol}`);
  if (r.scope && r.scope !== 'universe' && r.scope !== 'global') parts.push(`scope ${r.scope}`);
  if (r.src) parts.push(`src ${r.src}`);
  if (r.metric) parts.push(`metric ${r.metric}`);
  return parts.join(' ');
}

/** One line of `ip neigh show`. */
export function neighLine(n: Neighbour): string {
  const parts = [n.dst ?? '?'];
  if (n.dev) parts.push(`dev ${shown(n.dev)}`);
  if (n.lladdr) parts.push(`lladdr ${n.lladdr}`);
  if (n.router) parts.push('router');
  if (n.proxy) parts.push('proxy');
  parts.push(...n.state);
  return parts.join(' ');
}

/** brctl's table: one row per bridge with its first port, then a row per further port. */
export function formatBridges(bs: BridgeSummary[]): string {
  const rows: string[][] = [];
  for (const b of bs) {
    const ifs = b.interfaces;
    rows.push([shown(b.name), b.id, b.stp ? 'yes' : 'no', shown(ifs[0] ?? '')]);
    for (const i of ifs.slice(1)) rows.push(['', '', '', shown(i)]);
  }
  return table(['bridge name', 'bridge id', 'STP enabled', 'interfaces'], rows);
}
