// `vnetlink network ...`: virsh net-* words over durable networks. A network made here outlives
// the command (its state is on disk); every later command finds it again by name.
import fs from 'node:fs';
import { readLeases, dnsmasqFiles } from '../dnsmasq.js';
import { fromLibvirtXml } from '../libvirt-xml.js';
import type { NetworkSpec } from '../network.js';
import { readState } from '../network-state.js';
import type { Handle } from '../handle.js';
import { UsageError, intOpt, parse, positionals, print, printJson, shown, table, type Parsed } from './args.js';
import { withHandle, type Command } from './ip.js';

const usage = `usage: vnetlink network list [--netns NS] [--json]
       vnetlink network show NAME
       vnetlink network create NAME --bridge BR --address CIDR [--dhcp START,END] [--host MAC,IP[,NAME]]...
                               [--no-nat] [--no-dns] [--stp] [--forward-delay S] [--mtu N] [--mac MAC]
                               [--out-interface DEV] [--replace]
       vnetlink network create --xml FILE [--replace]          (libvirt <network> XML)
       vnetlink network destroy NAME
       vnetlink network leases NAME
       vnetlink network update NAME [--add-host MAC,IP[,NAME]]... [--del-host MAC]... [--range START,END]
       vnetlink network forward add NAME tcp|udp HOSTPORT GUEST[:PORT] [--host-address ADDR]
       vnetlink network forward rm NAME tcp|udp HOSTPORT [--host-address ADDR]
NAT networks that outlive the command (virsh net-list, net-start, net-destroy, net-dhcp-leases,
net-update). Their state lives under /run/vnetlink; any later command finds them by name.`;

const opts = {
  bridge: { type: 'string' }, address: { type: 'string' }, dhcp: { type: 'string' }, host: { type: 'string', multiple: true },
  'no-nat': { type: 'boolean' }, 'no-dns': { type: 'boolean' }, stp: { type: 'boolean' }, 'forward-delay': { type: 'string' },
  mtu: { type: 'string' }, mac: { type: 'string' }, 'out-interface': { type: 'string' }, replace: { type: 'boolean' },
  xml: { type: 'string' }, 'add-host': { type: 'string', multiple: true }, 'del-host': { type: 'string', multiple: true },
  range: { type: 'string' }, 'host-address': { type: 'string' },
} as const;

function pair(s: string, what: string): [string, string] {
  const p = s.split(',');
  if (p.length !== 2 || !p[0] || !p[1]) throw new UsageError(`${what} must be START,END (got ${JSON.stringify(s)})`, usage);
  return [p[0], p[1]];
}
function host(s: string): { mac: string; ip: string; name?: string } {
  const p = s.split(',');
  if (p.length < 2 || p.length > 3 || p.some((x) => !x)) throw new UsageError(`a host is MAC,IP[,NAME] (got ${JSON.stringify(s)})`, usage);
  return p.length === 3 ? { mac: p[0], ip: p[1], name: p[2] } : { mac: p[0], ip: p[1] };
}

function specFrom(p: Parsed, name: string | undefined): NetworkSpec {
  const o = p.values;
  if (o.xml !== undefined) {
    for (const k of ['bridge', 'address', 'dhcp', 'host', 'no-nat', 'no-dns', 'stp', 'forward-delay', 'mtu', 'mac', 'out-interface'])
      if (o[k] !== undefined) throw new UsageError(`--${k} cannot be combined with --xml (say it in the XML)`, usage);
    const spec = fromLibvirtXml(fs.readFileSync(String(o.xml)));
    if (name !== undefined && name !== spec.name) throw new UsageError(`NAME ${JSON.stringify(name)} differs from the XML's <name> ${JSON.stringify(spec.name)}`, usage);
    return spec;
  }
  if (name === undefined) throw new UsageError('missing NAME (or --xml FILE)', usage);
  if (o.bridge === undefined || o.address === undefined) throw new UsageError('--bridge and --address are required', usage);
  const s: Record<string, unknown> = { name, bridge: o.bridge, address: o.address };
  if (o.dhcp !== undefined) {
    const [start, end] = pair(String(o.dhcp), '--dhcp');
    s.dhcp = { start, end, ...(o.host ? { hosts: (o.host as string[]).map(host) } : {}) };
  } else if (o.host) throw new UsageError('--host needs --dhcp', usage);
  if (o['no-nat']) s.nat = false;
  else if (o['out-interface'] !== undefined) s.nat = { outInterface: o['out-interface'] };
  if (o['no-dns']) s.dns = false;
  if (o.stp) s.stp = true;
  else s.stp = false;
  const fd = intOpt(p, 'forward-delay', 0, 30, usage);
  if (fd !== undefined) s.forwardDelay = fd;
  const mtu = intOpt(p, 'mtu', 68, 65535, usage);
  if (mtu !== undefined) s.mtu = mtu;
  if (o.mac !== undefined) s.mac = o.mac;
  return s as unknown as NetworkSpec;
}

async function find(h: Handle, name: string) {
  const n = (await h.network.list()).find((x) => x.name === name);
  if (!n) throw Object.assign(new Error(`network: no network ${JSON.stringify(name)} in this namespace`), { code: 'ENOENT' });
  return n;
}

const proto = (s: string | undefined) => {
  if (s !== 'tcp' && s !== 'udp') throw new UsageError(`protocol must be tcp or udp (got ${JSON.stringify(s)})`, usage);
  return s;
};
const port = (s: string | undefined, what: string) => {
  if (s === undefined || !/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 65535) throw new UsageError(`${what} must be a port 1-65535 (got ${JSON.stringify(s)})`, usage);
  return Number(s);
};

export const network: Command = {
  summary: 'NAT networks that outlive the command (virsh net-*), libvirt XML in',
  usage,
  async run(argv) {
    const subs = ['list', 'show', 'create', 'destroy', 'leases', 'update', 'forward'];
    const [sub, ...rest0] = argv;
    if (sub === undefined || sub === '-h' || sub === '--help') {
      if (sub === undefined) throw new UsageError(`missing command (one of: ${subs.join(', ')})`, usage);
      print(usage);
      return 0;
    }
    if (!subs.includes(sub)) throw new UsageError(`unknown command '${sub}' (one of: ${subs.join(', ')})`, usage);
    let fsub: string | undefined;
    let rest = rest0;
    if (sub === 'forward') {
      fsub = rest0[0];
      if (fsub !== 'add' && fsub !== 'rm') throw new UsageError(`network forward takes add or rm (got ${JSON.stringify(fsub)})`, usage);
      rest = rest0.slice(1);
    }
    const p = parse(rest, opts, usage);
    if (p.values.help) { print(usage); return 0; }
    const o = p.values;
    return withHandle(p, async (h) => {
      switch (sub) {
        case 'list': {
          positionals(p, [], usage);
          const ns = await h.network.list();
          if (o.json) { printJson(ns); return 0; }
          print(table(['Name', 'State', 'Bridge', 'Address', 'Owner', 'Missing'],
            ns.map((n) => [shown(n.name), n.status, shown(n.bridge), shown(n.address ?? '-'), n.owner === undefined ? '-' : String(n.owner), n.missing.join(',') || '-'])));
          return 0;
        }
        case 'show': {
          const [name] = positionals(p, ['NAME'], usage);
          const n = await find(h, name);
          const st = readState(n.stateDir);
          const out = { ...n, spec: st?.spec };
          if (o.json) { printJson(out); return 0; }
          const rows: string[][] = [['Name:', shown(n.name)], ['State:', n.status + (n.missing.length ? ` (missing: ${n.missing.join(', ')})` : '')], ['Bridge:', shown(n.bridge)],
            ['Address:', shown(n.address ?? '-')], ['Table:', `ip ${shown(n.table)}`], ['dnsmasq:', n.dnsmasqPid ? `pid ${n.dnsmasqPid}` : '-'],
            ['Owner:', n.owner === undefined ? '-' : `pid ${n.owner}`], ['State dir:', shown(n.stateDir)],
            ...n.forwards.map((f) => ['Forward:', `${f.proto} ${shown(f.hostAddress ?? '*')}:${f.hostPort} -> ${shown(f.guest)}:${f.guestPort}`])];
          print(table(undefined, rows));
          return 0;
        }
        case 'create': {
          const [name] = positionals(p, ['NAME'], usage, 1);
          const spec = specFrom(p, name);
          const net = await h.network.create(spec, o.replace ? { replace: true } : {});
          const out = { name: net.name, bridge: net.bridge, address: net.address, stateDir: net.stateDir, dnsmasqPid: net.dnsmasqPid };
          if (o.json) printJson(out);
          else print(`Network ${shown(net.name)} started`);
          return 0;
        }
        case 'destroy': {
          const [name] = positionals(p, ['NAME'], usage);
          await (await h.network.get(name)).destroy();
          if (o.json) printJson({ name });
          else print(`Network ${name} destroyed`);
          return 0;
        }
        case 'leases': {
          const [name] = positionals(p, ['NAME'], usage);
          // Read-only: the lease file, without taking the network over.
          const n = await find(h, name);
          const ls = readLeases(dnsmasqFiles(n.stateDir).leases);
          if (o.json) { printJson(ls); return 0; }
          print(table(['Expiry Time', 'MAC address', 'IP address', 'Hostname', 'Client ID'],
            ls.map((l) => [l.expires ? l.expires.toISOString().replace('T', ' ').slice(0, 19) : 'never', shown(l.mac), shown(l.ip), shown(l.hostname ?? '-'), shown(l.clientId ?? '-')])));
          return 0;
        }
        case 'update': {
          const [name] = positionals(p, ['NAME'], usage);
          if (o['add-host'] === undefined && o['del-host'] === undefined && o.range === undefined) throw new UsageError('nothing to change (--add-host, --del-host, --range)', usage);
          const net = await h.network.get(name);
          const st = readState(net.stateDir);
          const dhcp: { hosts?: Array<{ mac: string; ip: string; name?: string }>; start?: string; end?: string } = {};
          if (o['add-host'] !== undefined || o['del-host'] !== undefined) {
            const del = new Set(((o['del-host'] ?? []) as string[]).map((m) => m.toLowerCase()));
            const hosts = ((st?.spec?.dhcp?.hosts ?? []) as Array<{ mac: string; ip: string; name?: string }>).filter((x) => !del.has(x.mac.toLowerCase()));
            dhcp.hosts = [...hosts, ...((o['add-host'] ?? []) as string[]).map(host)];
          }
          if (o.range !== undefined) [dhcp.start, dhcp.end] = pair(String(o.range), '--range');
          await net.update({ dhcp });
          if (o.json) printJson({ name, dnsmasqPid: net.dnsmasqPid });
          else print(`Network ${name} updated`);
          return 0;
        }
        default: {
          const [name, pr, hp, guest] = p.positionals;
          if (name === undefined) throw new UsageError('missing NAME', usage);
          const ha = o['host-address'] as string | undefined;
          const net = await h.network.get(name);
          if (fsub === 'add') {
            if (p.positionals.length !== 4) throw new UsageError('forward add takes NAME tcp|udp HOSTPORT GUEST[:PORT]', usage);
            const [g, gp] = String(guest).split(':');
            const f = await net.forwardPort({ proto: proto(pr), hostPort: port(hp, 'HOSTPORT'), guest: g, ...(gp !== undefined ? { guestPort: port(gp, 'guest PORT') } : {}), ...(ha ? { hostAddress: ha } : {}) });
            if (o.json) printJson({ proto: f.proto, hostPort: f.hostPort, guest: f.guest, guestPort: f.guestPort, ...(f.hostAddress ? { hostAddress: f.hostAddress } : {}) });
            return 0;
          }
          if (p.positionals.length !== 3) throw new UsageError('forward rm takes NAME tcp|udp HOSTPORT', usage);
          await net.update({ forwards: { remove: [{ proto: proto(pr), hostPort: port(hp, 'HOSTPORT'), ...(ha ? { hostAddress: ha } : {}) }] } });
          if (o.json) printJson({});
          return 0;
        }
      }
    });
  },
};
