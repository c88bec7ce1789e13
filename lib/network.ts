// The seed's NAT network (libvirt's "default"), built all-or-nothing from one call: bridge,
// IPv6 autoconf off, firewall, gateway address, up, IPv4 forwarding, dnsmasq — in libvirt's
// order, each step undone in reverse if a later one fails.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Handle } from './handle.js';
import type { Link } from './link.js';
import { NetlinkError, stateError } from './errors.js';
import { Dnsmasq, dnsmasqAddnHosts, dnsmasqConf, dnsmasqFiles, dnsmasqHostsFile, findDnsmasq, ourDnsmasqStart, procStart, stopPid, type DnsmasqConfig, type Lease } from './dnsmasq.js';
import { bandwidth as bandwidthArg, shapeOptions, type Bandwidth } from './bandwidth.js';
import { NftTransaction, masqueradeRules, nftExpr, replaceTable, type NftExpr } from './nft.js';
import * as v from './validate.js';
import { netnsId } from './netns.js';
import { binaryProblem, dnsmasqAlive, wantsDnsmasq, liveNetnsInodes, lockHeld, missingParts, pickTun, readState, stateDirs, statusOf, writeState, type ForwardState, type NetworkInfo, type NetworkState, type PortIdentity, type PortState } from './network-state.js';

export type { Lease } from './dnsmasq.js';
export type { NetworkInfo } from './network-state.js';

export interface NetworkDhcp {
  /**
   * First and last address handed out, inside the subnet (libvirt: `<range start='.2' end='.254'/>`).
   * Not given with `hostsOnly`.
   */
  start?: string;
  end?: string;
  /**
   * Only the fixed `hosts` get addresses, no pool (dnsmasq `dhcp-range=NET,static`; libvirt:
   * `<dhcp>` with only `<host>` elements).
   */
  hostsOnly?: boolean;
  /** Lease time in seconds (at least 120) or 'infinite'. Default: dnsmasq's (1 h). */
  leaseTime?: number | 'infinite';
  /** At most this many leases (`dhcp-lease-max`). Default: the size of the range. */
  leaseMax?: number;
  /**
   * Fixed addresses by MAC (libvirt `<host mac=... ip=... name=...>`), in dnsmasq's
   * `dhcp-hostsfile` (always written, readable by dnsmasq: it keeps running as root, like
   * libvirt's). A `name` is also answered by the network's DNS (with `dns.domain` appended).
   */
  hosts?: Array<{ mac: string; ip: string; name?: string }>;
  /**
   * Ping an address before offering it (dnsmasq's default, kept by libvirt); it costs about
   * 3 s on the first lease. `false` writes `no-ping`.
   */
  ping?: boolean;
}

/**
 * The network's DNS service (libvirt's `<dns>` and `<domain>` elements). Inside a network
 * namespace the host's /etc/resolv.conf usually points somewhere unreachable from it: give
 * `forwarders` to point the guests' lookups at a real server.
 */
export interface NetworkDns {
  /** Answer DNS on the gateway (default true; false writes `port=0`). libvirt: `<dns enable='no'/>`. */
  enable?: boolean;
  /**
   * Upstream servers (dnsmasq `server=ADDR` or `server=/DOMAIN/ADDR`; with any plain one,
   * `no-resolv`: resolv.conf is not read). `{ domain }` without `addr` answers that domain
   * only locally (`server=/DOMAIN/`). libvirt: `<forwarder addr='...' domain='...'/>`.
   */
  forwarders?: Array<{ addr?: string; domain?: string }>;
  /**
   * The guests' domain (dnsmasq `domain=`, `expand-hosts`): DHCP host names and `hosts` names
   * are answered as NAME.DOMAIN too. libvirt: `<domain name='...'/>`.
   */
  domain?: string;
  /** Never forward names in `domain` upstream (`local=/DOMAIN/`). libvirt: `<domain localOnly='yes'/>`. */
  localOnly?: boolean;
  /** Extra host records (dnsmasq `addn-hosts`). libvirt: `<host ip='...'><hostname>...</hostname></host>`. */
  hosts?: Array<{ ip: string; names: string[] }>;
}

/** One IPv6 subnet of a network: its gateway address, and optionally a DHCPv6 range. */
export interface NetworkIpv6 {
  /** e.g. 'fd00:122::1/64'. */
  address: string;
  /** Stateful DHCPv6 range (dnsmasq `dhcp-range=START,END,64`); without it, SLAAC only (`ra-only`). */
  dhcp?: { start: string; end: string };
}

export interface NetworkSpec {
  /** The network's name: letters, digits, '_' and '-', up to 32. Tags everything it creates. */
  name: string;
  /** The bridge to create, e.g. 'virbr0'. */
  bridge: string;
  /** The gateway address with the subnet's prefix, e.g. '192.168.122.1/24' (IPv4). */
  address: string;
  /**
   * IPv6 gateway address(es) with a /64 prefix, e.g. 'fd00:122::1/64' (libvirt: `<ip family='ipv6'
   * address='fd00:122::1' prefix='64'>`), making a dual-stack network: dnsmasq sends router
   * advertisements (`enable-ra`); guests configure themselves by SLAAC, or also take an address
   * from `dhcp` (stateful DHCPv6, libvirt's `<dhcp><range>` inside that `<ip>`). IPv6 is
   * routed (libvirt's default; the outside needs a route back) unless `nat.ipv6`. This sets
   * `net.ipv6.conf.all.forwarding=1` (restored after the last network): an uplink that takes
   * its own default route from RAs then needs accept_ra=2, as libvirt warns.
   */
  address6?: string | NetworkIpv6 | Array<string | NetworkIpv6>;
  /** The bridge's fixed MAC. Default: 52:54:00 plus three bytes derived from the name. */
  mac?: string;
  /** Spanning tree (default true, as the seed shows). */
  stp?: boolean;
  /** Forward delay in seconds (default 0, like libvirt; with STP the kernel makes it at least 2). */
  forwardDelay?: number;
  mtu?: number;
  /** DHCP from dnsmasq; omit or false for none. */
  dhcp?: NetworkDhcp | false;
  /**
   * DNS on the gateway from dnsmasq, as libvirt's (default: on). `false` is `dns: { enable: false }`
   * (dnsmasq `port=0`; libvirt `<dns enable='no'/>`). See {@link NetworkDns}.
   */
  dns?: boolean | NetworkDns;
  /**
   * Masquerade the subnet to the outside (default true), optionally only out of one
   * interface, with TCP/UDP source ports mapped into `ports` (default [1024, 65535]).
   * `false` makes an isolated network: guests reach each other and the host only.
   */
  nat?: boolean | {
    ports?: [number, number] | false; outInterface?: string;
    /** Masquerade the IPv6 subnets too (NAT66; libvirt `<nat ipv6='yes'/>`). Default false: routed. */
    ipv6?: boolean;
  };
  /**
   * libvirt's network `<bandwidth>` on the bridge: `inbound` caps what the bridge sends (to the
   * guests), `outbound` what it receives, in libvirt's units (see {@link Bandwidth}); applied
   * with `nl.tc.shape`, again on `restart`.
   */
  bandwidth?: Bandwidth;
  /** The dnsmasq binary. Default: the first `dnsmasq` in PATH, /usr/sbin, /sbin. */
  dnsmasq?: string;
  /** Where the conf, pid and lease files live. Default: /run/vnetlink/netns-DEV-INO/NAME. */
  stateDir?: string;
}

export interface PortForwardSpec {
  proto: 'tcp' | 'udp';
  /** The port on the host's side. */
  hostPort: number;
  /** The guest's address, inside the subnet. */
  guest: string;
  /** The guest's port (default: hostPort). */
  guestPort?: number;
  /**
   * Only for packets addressed to this host address (default: any address of the host's own,
   * `fib daddr type local`). Either way the forward works from the outside, from the host
   * itself (its output path) and from other guests (hairpin: their connection is
   * masqueraded to the gateway, so the reply comes back the same way).
   */
  hostAddress?: string;
  /**
   * Also from the host's own `127.0.0.1:hostPort` (like `ssh -p 2222 localhost`). This sets
   * `route_localnet=1` on the network's bridge only, so that loopback-sourced packets may leave
   * through it (they are masqueraded to the gateway). Default false.
   */
  localhost?: boolean;
}

/** A DNAT port forward into a guest; `remove()` takes it away again, with its conntrack entries. */
export interface PortForward extends Required<Omit<PortForwardSpec, 'hostAddress'>> {
  hostAddress?: string;
  /**
   * Deletes the rules, then the conntrack entries of connections already made. If only the
   * latter fails, it rejects with that error but the forward is gone all the same (its port
   * can be forwarded again); if deleting the rules fails, nothing changed and it can be retried.
   */
  remove(): Promise<void>;
}

/** The steps of `network.create`, in the order they run. */
export const NETWORK_STEPS = ['bridge', 'ipv6', 'firewall', 'address', 'up', 'forwarding', 'dnsmasq'] as const;
export type NetworkStep = (typeof NETWORK_STEPS)[number];

let failAfter: NetworkStep | undefined;
/** @internal Makes the next `network.create` fail right after `step` did its work (tests). */
export function _injectNetworkFault(step: NetworkStep | undefined): void {
  failAfter = step;
}

/**
 * @internal Leaves a network exactly as a crashed process would (bridge, table, running
 * dnsmasq, state directory), forgetting it in this process (tests).
 */
export function _simulateCrash(net: Network): void {
  net._abandon();
}

let pruneHook: ((dir: string) => Promise<void>) | undefined;
/** @internal Runs `fn` when a dead namespace's state is about to be pruned, before anything is removed (tests). */
export function _onPrune(fn: ((dir: string) => Promise<void>) | undefined): void {
  pruneHook = fn;
}

const TAG = 'vnetlink:network:';
const STATE_ROOT = '/run/vnetlink';
const live = new Map<string, Network>();
/** The namespace (nsfs dev-inode) each live network runs in: a name is unique per namespace, not per state dir. */
const liveNs = new WeakMap<Network, string>();
const nsKey = (id: { dev: number; ino: number }) => `${id.dev}-${id.ino}`;
const creating = new Set<string>();

type NormDhcp = NonNullable<DnsmasqConfig['dhcp']>;
type NormDns = DnsmasqConfig['dns'];

/** A DNS name (RFC 1123 labels), up to 253 bytes. */
function dnsName(op: string, field: string, x: unknown): string {
  const s = v.str(op, field, x, 253);
  if (!/^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(s))
    throw v.rangeError(op, field, `must be a DNS name: dot-separated labels of letters, digits and "-" (got ${JSON.stringify(s)})`);
  return s.toLowerCase();
}

function normDns(op: string, x: unknown, ipv4: (field: string, a: unknown) => string): NormDns {
  const out: NormDns = { enable: true, forwarders: [], localOnly: false, hosts: [] };
  if (x === undefined || x === true) return out;
  if (x === false) return { ...out, enable: false };
  const d = v.object(op, 'dns', x);
  v.knownKeys(op, 'dns', d, ['enable', 'forwarders', 'domain', 'localOnly', 'hosts']);
  if (d.enable !== undefined) out.enable = v.bool(op, 'dns.enable', d.enable);
  if (d.forwarders !== undefined) {
    if (!Array.isArray(d.forwarders) || d.forwarders.length > 64) throw v.typeError(op, 'dns.forwarders', 'must be an array of at most 64 { addr, domain }');
    out.forwarders = d.forwarders.map((f0, i) => {
      const f = `dns.forwarders[${i}]`;
      const fw = v.object(op, f, f0);
      v.knownKeys(op, f, fw, ['addr', 'domain']);
      const r: { addr?: string; domain?: string } = {};
      if (fw.addr !== undefined) r.addr = v.ip(op, `${f}.addr`, fw.addr).address;
      if (fw.domain !== undefined) r.domain = dnsName(op, `${f}.domain`, fw.domain);
      if (!r.addr && !r.domain) throw v.rangeError(op, f, 'needs an addr, a domain or both');
      return r;
    });
  }
  if (d.domain !== undefined) out.domain = dnsName(op, 'dns.domain', d.domain);
  if (d.localOnly !== undefined) out.localOnly = v.bool(op, 'dns.localOnly', d.localOnly);
  if (out.localOnly && !out.domain) throw v.rangeError(op, 'dns.localOnly', 'needs dns.domain');
  if (d.hosts !== undefined) {
    if (!Array.isArray(d.hosts) || d.hosts.length > 4096) throw v.typeError(op, 'dns.hosts', 'must be an array of at most 4096 { ip, names }');
    out.hosts = d.hosts.map((h0, i) => {
      const f = `dns.hosts[${i}]`;
      const hh = v.object(op, f, h0);
      v.knownKeys(op, f, hh, ['ip', 'names']);
      const ip = ipv4(`${f}.ip`, hh.ip);
      if (!Array.isArray(hh.names) || hh.names.length === 0 || hh.names.length > 64) throw v.typeError(op, `${f}.names`, 'must be an array of 1-64 names');
      return { ip, names: hh.names.map((nm, j) => dnsName(op, `${f}.names[${j}]`, nm)) };
    });
  }
  return out;
}

interface Norm {
  name: string; bridge: string; mac: string; stp: boolean; forwardDelay: number; mtu?: number;
  gateway: string; prefixLen: number; subnet: string; netmask: string;
  dhcp?: NormDhcp;
  dns: NormDns; nat: false | { ports: [number, number] | false; outInterface?: string; ipv6: boolean };
  v6: Array<{ address: string; prefixLen: number; subnet: string; dhcp?: { start: string; end: string } }>;
  dnsmasq?: string; stateDir?: string; bandwidth?: Bandwidth;
}

function normV6(op: string, x0: unknown): Norm['v6'] {
  const list = Array.isArray(x0) ? x0 : [x0];
  if (list.length === 0 || list.length > 16) throw v.rangeError(op, 'address6', 'must be 1-16 IPv6 addresses');
  const out = list.map((x, i) => {
    const f = Array.isArray(x0) ? `address6[${i}]` : 'address6';
    const o = typeof x === 'string' ? { address: x } : v.object(op, f, x);
    if (typeof x !== 'string') v.knownKeys(op, f, o, ['address', 'dhcp']);
    const af = typeof x === 'string' ? f : `${f}.address`;
    const c6 = v.cidr(op, af, o.address);
    if (c6.family !== 'inet6') throw v.rangeError(op, af, 'must be an IPv6 address such as "fd00:122::1/64"');
    // SLAAC and dnsmasq's RA need a /64 (libvirt requires it for DHCPv6 too).
    if (c6.address.includes('.')) throw v.rangeError(op, af, 'must be written without an embedded IPv4 address');
    if (c6.prefixLen !== 64) throw v.rangeError(op, af, `prefix length must be 64 (got /${c6.prefixLen})`);
    const b = ip6Bytes(c6.address);
    if (b[0] === 0xff) throw v.rangeError(op, af, 'must not be multicast');
    if (b[0] === 0xfe && (b[1] & 0xc0) === 0x80) throw v.rangeError(op, af, 'must not be link-local');
    if (b.subarray(8).every((y) => y === 0)) throw v.rangeError(op, af, `${c6.address} is the subnet's anycast address, not a usable gateway`);
    const netAddr = ip6Str(Buffer.concat([b.subarray(0, 8), Buffer.alloc(8)]));
    const r: Norm['v6'][number] = { address: c6.address, prefixLen: 64, subnet: `${netAddr}/64` };
    if (o.dhcp !== undefined) {
      const d = v.object(op, `${f}.dhcp`, o.dhcp);
      v.knownKeys(op, `${f}.dhcp`, d, ['start', 'end']);
      const in6 = (ff: string, a: unknown) => {
        const y = v.ip(op, ff, a);
        if (y.family !== 'inet6' || !ip6Bytes(y.address).subarray(0, 8).equals(b.subarray(0, 8))) throw v.rangeError(op, ff, `must be an address in ${netAddr}/64`);
        return y.address;
      };
      const st = in6(`${f}.dhcp.start`, d.start), en = in6(`${f}.dhcp.end`, d.end);
      if (Buffer.compare(ip6Bytes(st), ip6Bytes(en)) > 0) throw v.rangeError(op, `${f}.dhcp`, `start ${st} is after end ${en}`);
      r.dhcp = { start: st, end: en };
    }
    return r;
  });
  for (let i = 0; i < out.length; i++)
    for (let j = 0; j < i; j++)
      if (out[i].subnet === out[j].subnet) throw v.rangeError(op, 'address6', `two addresses in ${out[i].subnet}`);
  return out;
}

function ip6Bytes(a: string): Buffer {
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const hh = head ? head.split(':') : [];
  const tt = tail ? tail.split(':') : [];
  const groups = tail === undefined ? hh : [...hh, ...Array(8 - hh.length - tt.length).fill('0'), ...tt];
  const b = Buffer.alloc(16);
  groups.forEach((g, i) => b.writeUInt16BE(parseInt(g, 16) || 0, i * 2));
  return b;
}

/** 16 bytes as compressed text (the longest run of zero groups as "::"), as `ip` prints it. */
function ip6Str(b: Buffer): string {
  const g = Array.from({ length: 8 }, (_, i) => b.readUInt16BE(i * 2));
  let best = -1, len = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > len && j - i > 1) { best = i; len = j - i; }
    i = j;
  }
  const hex = g.map((x) => x.toString(16));
  return best < 0 ? hex.join(':') : `${hex.slice(0, best).join(':')}::${hex.slice(best + len).join(':')}`;
}

const ip4 = (s: string) => s.split('.').reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0);
const str4 = (n: number) => [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
const mask4 = (len: number) => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);

function normalize(op: string, spec: unknown): Norm {
  const s = v.object(op, 'spec', spec);
  v.knownKeys(op, '', s, ['name', 'bridge', 'address', 'address6', 'mac', 'stp', 'forwardDelay', 'mtu', 'dhcp', 'dns', 'nat', 'dnsmasq', 'stateDir', 'bandwidth']);
  const name = v.str(op, 'name', s.name, 32);
  if (!/^[A-Za-z0-9_-]+$/.test(name)) throw v.rangeError(op, 'name', `must be 1-32 letters, digits, "_" or "-" (got ${JSON.stringify(name)})`);
  const bridge = netIfname(op, 'bridge', s.bridge);
  const c = v.cidr(op, 'address', s.address);
  if (c.family !== 'inet') throw v.rangeError(op, 'address', 'must be an IPv4 gateway address (IPv6 networks are not supported yet)');
  if (c.prefixLen < 8 || c.prefixLen > 30) throw v.rangeError(op, 'address', `prefix length must be 8-30 for a network with guests (got /${c.prefixLen})`);
  const m = mask4(c.prefixLen), gw = ip4(c.address), net = (gw & m) >>> 0, bcast = (net | ~m) >>> 0;
  if (gw === net) throw v.rangeError(op, 'address', `${c.address} is the subnet's network address, not a usable gateway`);
  if (gw === bcast) throw v.rangeError(op, 'address', `${c.address} is the subnet's broadcast address, not a usable gateway`);
  const out: Norm = {
    name, bridge, gateway: c.address, prefixLen: c.prefixLen, subnet: `${str4(net)}/${c.prefixLen}`, netmask: str4(m),
    mac: s.mac === undefined ? defaultMac(name) : v.mac(op, 'mac', s.mac),
    stp: s.stp === undefined ? true : v.bool(op, 'stp', s.stp),
    forwardDelay: s.forwardDelay === undefined ? 0 : v.num(op, 'forwardDelay', s.forwardDelay, 0, 30),
    dns: normDns(op, s.dns, (f, a) => { const x = v.ip(op, f, a); if (x.family !== 'inet') throw v.rangeError(op, f, 'must be an IPv4 address'); return x.address; }),
    nat: { ports: [1024, 65535], ipv6: false },
    v6: [],
  };
  if (s.mtu !== undefined) out.mtu = v.uint(op, 'mtu', s.mtu, 68, 65535);
  const bw = bandwidthArg(op, 'bandwidth', s.bandwidth);
  if (bw) out.bandwidth = bw;
  const inSubnet = (field: string, a: unknown): number => {
    const x = v.ip(op, field, a);
    if (x.family !== 'inet') throw v.rangeError(op, field, 'must be an IPv4 address');
    const n = ip4(x.address);
    if (((n & m) >>> 0) !== net) throw v.rangeError(op, field, `${x.address} is outside the subnet ${out.subnet}`);
    if (n === net || n === bcast) throw v.rangeError(op, field, `${x.address} is the subnet's ${n === net ? 'network' : 'broadcast'} address`);
    return n;
  };
  if (s.dhcp !== undefined && s.dhcp !== false) {
    const d = v.object(op, 'dhcp', s.dhcp);
    v.knownKeys(op, 'dhcp', d, ['start', 'end', 'hostsOnly', 'leaseTime', 'leaseMax', 'hosts', 'ping']);
    const hostsOnly = d.hostsOnly === undefined ? false : v.bool(op, 'dhcp.hostsOnly', d.hostsOnly);
    let dh: NormDhcp;
    if (hostsOnly) {
      if (d.start !== undefined || d.end !== undefined) throw v.rangeError(op, 'dhcp.hostsOnly', 'takes no start/end: only the fixed hosts get addresses');
      dh = { static: str4(net), leaseMax: 0, ping: true, hosts: [] };
    } else {
      const a = inSubnet('dhcp.start', d.start), b = inSubnet('dhcp.end', d.end);
      if (a > b) throw v.rangeError(op, 'dhcp', `start ${str4(a)} is after end ${str4(b)}`);
      if (gw >= a && gw <= b) throw v.rangeError(op, 'dhcp', `the range ${str4(a)}-${str4(b)} includes the gateway ${c.address}`);
      dh = { start: str4(a), end: str4(b), leaseMax: b - a + 1, ping: true, hosts: [] };
    }
    if (d.leaseTime !== undefined) dh.leaseTime = d.leaseTime === 'infinite' ? 'infinite' : v.uint(op, 'dhcp.leaseTime', d.leaseTime, 120, 0x7fffffff);
    if (d.leaseMax !== undefined) dh.leaseMax = v.uint(op, 'dhcp.leaseMax', d.leaseMax, 1, 1 << 24);
    if (d.ping !== undefined) dh.ping = v.bool(op, 'dhcp.ping', d.ping);
    if (d.hosts !== undefined) {
      if (!Array.isArray(d.hosts)) throw v.typeError(op, 'dhcp.hosts', 'must be an array');
      dh.hosts = d.hosts.map((h0, i) => {
        const f = `dhcp.hosts[${i}]`;
        const hh = v.object(op, f, h0);
        v.knownKeys(op, f, hh, ['mac', 'ip', 'name']);
        const n = inSubnet(`${f}.ip`, hh.ip);
        if (n === gw) throw v.rangeError(op, `${f}.ip`, 'is the gateway address');
        const host: { mac: string; ip: string; name?: string } = { mac: v.mac(op, `${f}.mac`, hh.mac), ip: str4(n) };
        if (hh.name !== undefined) {
          const nm = v.str(op, `${f}.name`, hh.name, 63);
          if (!/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?$/.test(nm)) throw v.rangeError(op, `${f}.name`, `must be a host name (letters, digits, "-") (got ${JSON.stringify(nm)})`);
          // In a dhcp-host line dnsmasq reads these words as "do not serve this MAC" and as a
          // lease time (digits with an s/m/h/d/w unit), never as the name.
          if (/^(ignore|infinite|\d+[smhdw]?)$/i.test(nm)) throw v.rangeError(op, `${f}.name`, `${JSON.stringify(nm)} is a keyword or a lease time to dnsmasq, not a host name`);
          host.name = nm;
        }
        return host;
      });
    }
    if (hostsOnly && d.leaseMax === undefined) dh.leaseMax = Math.max(dh.hosts.length, 1);
    out.dhcp = dh;
  }
  if (s.nat !== undefined) {
    if (s.nat === false) out.nat = false;
    else if (s.nat !== true) {
      const n = v.object(op, 'nat', s.nat);
      v.knownKeys(op, 'nat', n, ['ports', 'outInterface', 'ipv6']);
      let ports: [number, number] | false = [1024, 65535];
      if (n.ports === false) ports = false;
      else if (n.ports !== undefined) {
        if (!Array.isArray(n.ports) || n.ports.length !== 2) throw v.typeError(op, 'nat.ports', 'must be [min, max] or false');
        const lo = v.uint(op, 'nat.ports[0]', n.ports[0], 1, 65535), hi = v.uint(op, 'nat.ports[1]', n.ports[1], 1, 65535);
        if (lo > hi) throw v.rangeError(op, 'nat.ports', `min ${lo} is above max ${hi}`);
        ports = [lo, hi];
      }
      out.nat = { ports, ipv6: n.ipv6 === undefined ? false : v.bool(op, 'nat.ipv6', n.ipv6) };
      if (n.outInterface !== undefined) out.nat.outInterface = netIfname(op, 'nat.outInterface', n.outInterface);
    }
  }
  if (s.address6 !== undefined) out.v6 = normV6(op, s.address6);
  if (s.dnsmasq !== undefined) out.dnsmasq = v.str(op, 'dnsmasq', s.dnsmasq, 4096);
  if (s.stateDir !== undefined) out.stateDir = stateDirArg(op, s.stateDir);
  return out;
}

/**
 * An interface name the network writes into dnsmasq's `interface=`, sysctl paths and nft
 * rules: the kernel takes almost any byte, but "," makes an interface list for dnsmasq, "*"
 * a wildcard for dnsmasq and nft, a quote ends nft's string. Letters, digits, "_", "-" and
 * "." are read literally by all three (a "." is escaped in dotted sysctl keys).
 */
function netIfname(op: string, field: string, x: unknown): string {
  const name = v.ifname(op, field, x);
  if (!/^[A-Za-z0-9_.-]+$/.test(name))
    throw v.rangeError(op, field, `must be letters, digits, "_", "-" or "." (dnsmasq, sysctl paths and nft read other characters specially; got ${JSON.stringify(name)})`);
  return name;
}

/**
 * A caller's state directory. It reaches file system calls and dnsmasq's conf (as the
 * pid/lease/hosts paths), so it must be a plain absolute path: no control characters, no
 * "." or ".." components (a `/..` once made destroy delete other networks' directories), only
 * characters that nothing downstream reads specially.
 */
function stateDirArg(op: string, x: unknown): string {
  const d = v.str(op, 'stateDir', x, 3072);
  if (/[\x00-\x1f\x7f-\x9f]/.test(d)) throw v.rangeError(op, 'stateDir', `must not contain control characters (got ${JSON.stringify(d)})`);
  if (!path.isAbsolute(d)) throw v.rangeError(op, 'stateDir', `must be an absolute path (got ${JSON.stringify(d)})`);
  if (d.split('/').some((c) => c === '..' || c === '.')) throw v.rangeError(op, 'stateDir', `must not have "." or ".." components (got ${JSON.stringify(d)})`);
  if (path.resolve(d) !== d || d === '/') throw v.rangeError(op, 'stateDir', `must be a normalized absolute path below "/" (got ${JSON.stringify(d)}; normalized: ${JSON.stringify(path.resolve(d))})`);
  // dnsmasq's conf reads whitespace, quotes, "\\", "#" and "," specially; a shell or a log reader
  // other characters still: a state directory needs none of them.
  if (!/^[A-Za-z0-9/._-]+$/.test(d)) throw v.rangeError(op, 'stateDir', `may only hold letters, digits and "/", ".", "_", "-" (dnsmasq's conf reads others such as whitespace, quotes, "\\", "#" and "," specially; got ${JSON.stringify(d)})`);
  return d;
}

function dnsmasqConfig(n: Norm, dir: string): DnsmasqConfig {
  return { iface: n.bridge, netmask: n.netmask, dhcp: n.dhcp, dns: n.dns, dir, isolated: n.nat === false, ...(n.mtu ? { mtu: n.mtu } : {}),
    v6: n.v6.map((x) => ({ subnet: x.subnet.split('/')[0], ...(x.dhcp ? { dhcp: x.dhcp } : {}) })) };
}

/** libvirt's 52:54:00 prefix and three bytes from the name, so a re-created network keeps its MAC. */
function defaultMac(name: string): string {
  const h = crypto.createHash('sha256').update(`vnetlink network ${name}`).digest();
  return ['52', '54', '00', ...[...h.subarray(0, 3)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

function overlaps(a: string, b: string): boolean {
  const [an, al] = a.split('/'), [bn, bl] = b.split('/');
  const len = Math.min(Number(al), Number(bl));
  return ((ip4(an) & mask4(len)) >>> 0) === ((ip4(bn) & mask4(len)) >>> 0);
}

/** `ct status dnat`: the connection was destination-NATed (IPS_DST_NAT, bit 5; host-endian). */
function ctDnat(): NftExpr[] {
  const bit = Buffer.alloc(4); bit.writeUInt32LE(0x20);
  return [{ type: 'ct', key: 'status', dreg: 1 }, { type: 'bitwise', len: 4, mask: bit, xor: Buffer.alloc(4), sreg: 1, dreg: 1 },
    { type: 'cmp', op: 'neq', data: Buffer.alloc(4), sreg: 1 }];
}

/** `fib daddr type local`: addressed to one of this host's own addresses. */
function daddrLocal(): NftExpr[] {
  const local = Buffer.alloc(4); local.writeUInt32LE(2 /* RTN_LOCAL */);
  return [{ type: 'fib', result: 'type', flags: ['daddr'], dreg: 1 }, { type: 'cmp', op: 'eq', data: local, sreg: 1 }];
}

/** The firewall table of a network: masquerade, libvirt's forward guards, port forwards. */
function firewall(tx: NftTransaction, n: Norm, table: string): NftTransaction {
  const { match, stmt } = nftExpr;
  const T = { family: 'ip' as const, table };
  replaceTable(tx, 'ip', table);
  tx.addChain({ ...T, name: 'prerouting', type: 'nat', hook: 'prerouting', priority: 'dstnat' });
  tx.addChain({ ...T, name: 'forward', type: 'filter', hook: 'forward', priority: 'filter', policy: 'accept' });
  // Port forwards for the host's own connections (its output path) and their hairpin masquerade:
  // a forwarded connection that leaves through the bridge from a guest (or from 127.0.0.1) gets
  // the gateway as its source, so the guest's reply comes back through the host's conntrack.
  tx.addChain({ ...T, name: 'output', type: 'nat', hook: 'output', priority: 'dstnat' });
  tx.addChain({ ...T, name: 'hairpin', type: 'nat', hook: 'postrouting', priority: 'srcnat' });
  for (const src of [n.subnet, '127.0.0.0/8'])
    tx.addRule({ ...T, chain: 'hairpin', exprs: [...match.oifname(n.bridge), ...ctDnat(), ...match.addr('ip', 'saddr', src), stmt.counter(), ...stmt.masquerade()] });
  const fwd = (exprs: NftExpr[]) => tx.addRule({ ...T, chain: 'forward', exprs });
  // Guests talk to each other across the bridge.
  fwd([...match.iifname(n.bridge), ...match.oifname(n.bridge), stmt.counter(), stmt.accept()]);
  if (n.nat) {
    // In only as replies to what guests started; out only from the subnet.
    fwd([...match.addr('ip', 'daddr', n.subnet), ...match.oifname(n.bridge), ...match.ctState(['established', 'related']), stmt.counter(), stmt.accept()]);
    fwd([...match.addr('ip', 'saddr', n.subnet), ...match.iifname(n.bridge), stmt.counter(), stmt.accept()]);
  }
  // Everything else to or from the bridge is refused.
  fwd([...match.oifname(n.bridge), stmt.counter(), stmt.reject('ip')]);
  fwd([...match.iifname(n.bridge), stmt.counter(), stmt.reject('ip')]);
  if (n.nat) {
    tx.addChain({ ...T, name: 'nat', type: 'nat', hook: 'postrouting', priority: 'srcnat' });
    const m = { table, family: 'ip' as const, subnet: { address: n.subnet.split('/')[0], prefixLen: n.prefixLen, family: 'inet' as const }, ports: n.nat.ports, outInterface: n.nat.outInterface, chain: 'nat', priority: 100 };
    for (const r of masqueradeRules(m)) tx.addRule(r);
  }
  if (n.v6.length) firewall6(tx, n, table);
  return tx;
}

/**
 * The ip6 table of a dual-stack network, libvirt's IPv6 rules: guests to each other; routed
 * (the default) both ways to and from the subnets; with NAT66 in only as replies, out
 * masqueraded; isolated, nothing out.
 */
function firewall6(tx: NftTransaction, n: Norm, table: string): void {
  const { match, stmt } = nftExpr;
  const T = { family: 'ip6' as const, table };
  replaceTable(tx, 'ip6', table);
  tx.addChain({ ...T, name: 'forward', type: 'filter', hook: 'forward', priority: 'filter', policy: 'accept' });
  const fwd = (exprs: NftExpr[]) => tx.addRule({ ...T, chain: 'forward', exprs });
  fwd([...match.iifname(n.bridge), ...match.oifname(n.bridge), stmt.counter(), stmt.accept()]);
  if (n.nat) {
    for (const x of n.v6) {
      fwd([...match.addr('ip6', 'daddr', x.subnet), ...match.oifname(n.bridge), ...(n.nat.ipv6 ? match.ctState(['established', 'related']) : []), stmt.counter(), stmt.accept()]);
      fwd([...match.addr('ip6', 'saddr', x.subnet), ...match.iifname(n.bridge), stmt.counter(), stmt.accept()]);
    }
  }
  fwd([...match.oifname(n.bridge), stmt.counter(), stmt.reject('ip6')]);
  fwd([...match.iifname(n.bridge), stmt.counter(), stmt.reject('ip6')]);
  if (n.nat && n.nat.ipv6) {
    tx.addChain({ ...T, name: 'nat', type: 'nat', hook: 'postrouting', priority: 'srcnat' });
    for (const x of n.v6)
      tx.addRule({ ...T, chain: 'nat', exprs: [...match.addr('ip6', 'saddr', x.subnet), ...match.addr('ip6', 'daddr', x.subnet, 'neq'),
        ...(n.nat.outInterface ? match.oifname(n.nat.outInterface) : []), stmt.counter(), ...stmt.masquerade()] });
  }
}

/** What the state file records (see network-state.ts); written after every change. */
type Meta = NetworkState;

/** Written into every state directory we create: a directory without it is not ours. */
const MARKER = 'vnetlink-network';
/** flock(2)ed by the process that owns the network, for as long as it runs (or is being removed). */
const LOCK = 'network.lock';
const ownFiles = (dir: string) => [path.join(dir, 'network.json'), ...Object.values(dnsmasqFiles(dir))];


/** State recorded in another network namespace than the one whose cookie is `cookie`. */
function foreignState(s: { netnsCookie?: unknown }, cookie: string | undefined): boolean {
  return s.netnsCookie !== undefined && cookie !== undefined && s.netnsCookie !== cookie;
}

const isDefaultDir = (dir: string) => path.dirname(path.dirname(dir)) === STATE_ROOT && path.basename(path.dirname(dir)).startsWith('netns-');

/** Why `dir` is not a state directory we made for `name`, or undefined when it is. */
function notOurs(dir: string, name: string): string | undefined {
  let st: fs.Stats;
  try { st = fs.lstatSync(dir); } catch (e: any) { return e?.code === 'ENOENT' ? 'is gone' : `cannot be read (${e?.code})`; }
  if (st.isSymbolicLink()) return 'is a symbolic link';
  if (!st.isDirectory()) return 'is not a directory';
  if (st.uid !== process.geteuid!()) return `is owned by uid ${st.uid}, not by us`;
  if (st.mode & 0o022) return `is writable by others (mode ${(st.mode & 0o777).toString(8)})`;
  let marker: string;
  try {
    const m = path.join(dir, MARKER);
    if (!fs.lstatSync(m).isFile()) return `holds a ${MARKER} that is not a file`;
    marker = fs.readFileSync(m, 'utf8');
  } catch { return `was not created by vnetlink (no ${MARKER} file in it)`; }
  if (marker !== `${name}\n`) return `belongs to the network ${JSON.stringify(marker.trim())}`;
  return undefined;
}

/**
 * Makes the state directory (0700, with our marker), or checks that an existing one is ours:
 * a directory we did not create (a caller's, a symlink, someone else's) is refused, so its
 * files are never overwritten or deleted. The parent of a caller's `stateDir` must exist and
 * be a real path (no symlinks); the default parents under /run/vnetlink are made here.
 */
function ensureStateDir(op: string, dir: string, name: string): void {
  const parent = path.dirname(dir);
  if (isDefaultDir(dir)) {
    for (const d of [STATE_ROOT, parent]) {
      try { fs.mkdirSync(d, { mode: 0o700 }); } catch (e: any) { if (e?.code !== 'EEXIST') throw e; }
    }
  }
  let real: string;
  try { real = fs.realpathSync(parent); } catch { throw v.rangeError(op, 'stateDir', `the parent directory ${JSON.stringify(parent)} does not exist`); }
  if (real !== parent) throw v.rangeError(op, 'stateDir', `the parent directory ${JSON.stringify(parent)} must be a real path (it resolves to ${JSON.stringify(real)})`);
  // Every file of the network is reached by its path, as root: a directory on the way that
  // another user owns, or may rename entries in, lets that user swap the state directory for a
  // symlink after these checks, and root would then write (or unlink) in the directory it
  // points to. So each ancestor is ours (or root's), and writable by others only when sticky
  // (/tmp: there only an entry's owner may rename it, and the entry below is checked as ours).
  const me = process.geteuid?.() ?? 0;
  for (let d = parent; ; d = path.dirname(d)) {
    const st = fs.lstatSync(d);
    if (st.uid !== 0 && st.uid !== me) throw v.rangeError(op, 'stateDir', `${JSON.stringify(d)} belongs to uid ${st.uid}: every directory above a state directory must be root's (or this process's)`);
    if ((st.mode & 0o022) !== 0 && (st.mode & 0o1000) === 0) throw v.rangeError(op, 'stateDir', `${JSON.stringify(d)} is writable by other users (mode ${(st.mode & 0o7777).toString(8)}) and not sticky: another user could swap the state directory`);
    if (d === path.dirname(d)) break;
  }
  try {
    fs.mkdirSync(dir, { mode: 0o700 });
    fs.writeFileSync(path.join(dir, MARKER), `${name}\n`, { mode: 0o600, flag: 'wx' });
    return;
  } catch (e: any) {
    if (e?.code !== 'EEXIST') throw e;
  }
  const why = notOurs(dir, name);
  if (why) throw v.rangeError(op, 'stateDir', `${JSON.stringify(dir)} ${why}; vnetlink only uses a directory it created itself`);
}

/**
 * Removes the files we wrote into a state directory, then the directory (and the default
 * per-namespace and root directories) only if that left them empty. Never recursive: what
 * else is there stays. The lock file goes last, while its lock is still held.
 */
function removeStateDir(dir: string, name: string): void {
  if (notOurs(dir, name)) return;
  for (const f of [...ownFiles(dir), path.join(dir, LOCK), path.join(dir, MARKER)]) {
    try { fs.unlinkSync(f); } catch { /* not there */ }
  }
  try { fs.rmdirSync(dir); } catch { return; }  // not empty, or gone
  if (!isDefaultDir(dir)) return;
  for (const d of [path.dirname(dir), STATE_ROOT]) {
    try { fs.rmdirSync(d); } catch { return; }  // not empty (another network) or gone
  }
}

/**
 * Removes the state directory of a network that cannot run any more (its namespace is gone),
 * holding its lock (taken without waiting) until the files are gone: a process that takes the
 * lock first owns the directory, and one that comes after finds nothing left to lose. Under
 * the lock the state is read again and `dead` must still hold for it. True when removed.
 */
async function pruneDead(h: Handle, op: string, dir: string, name: string, dead: (s: Meta) => boolean): Promise<boolean> {
  let fd: number;
  try {
    fd = (await h._call<{ fd: number }>(op, { path: path.join(dir, LOCK) }, 'fs.flock')).fd;
  } catch { return false; }  // held (EAGAIN: someone owns it), or gone
  try {
    const st = readState(dir);
    if (!st || st.name !== name || notOurs(dir, name) || !dead(st)) return false;
    await pruneHook?.(dir);
    removeStateDir(dir, name);
    return true;
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Prunes the default state directories (`/run/vnetlink/netns-DEV-INO`) of namespaces that no
 * longer exist: no thread, fd or bind mount holds a namespace with that inode. Only what we
 * made is touched: a directory of our layout (ours, not writable by others, a real directory),
 * and in it each network directory with our marker, removed file by file under its lock (see
 * pruneDead), so a network whose owner still runs (holding the lock) stays; the namespace's
 * directory goes only once that left it empty. Nothing when every process cannot be seen.
 */
async function pruneDeadNamespaces(h: Handle, op: string, own: { dev: number; ino: number }): Promise<void> {
  let names: string[];
  try { names = fs.readdirSync(STATE_ROOT); } catch { return; }
  const candidates = names.filter((n) => {
    const m = /^netns-([0-9]{1,20})-([0-9]{1,20})$/.exec(n);
    // The nsfs device is one for the whole boot: another one is no directory we know how to judge.
    return !!m && m[1] === String(own.dev) && m[2] !== String(own.ino);
  });
  // Scanning every process is costly: only done when some directory could be pruned at all
  // (one whose networks all have live owners, holding their locks, cannot).
  let any = false;
  for (const n of candidates) {
    const dirs = stateDirs(path.join(STATE_ROOT, n));
    if (!dirs.length) any = true;
    for (const d of dirs) if (!any && !(await lockHeld(h, d))) any = true;
    if (any) break;
  }
  if (!any) return;
  const alive = await liveNetnsInodes();
  if (!alive) return;
  for (const n of candidates) {
    if (alive.has(n.split('-')[2])) continue;
    const nsDir = path.join(STATE_ROOT, n);
    let st: fs.Stats;
    try { st = fs.lstatSync(nsDir); } catch { continue; }
    if (!st.isDirectory() || st.uid !== process.geteuid!() || st.mode & 0o022) continue;
    for (const dir of stateDirs(nsDir)) {
      const s0 = readState(dir);
      const name = path.basename(dir);
      if (!s0 || s0.name !== name || notOurs(dir, name)) continue;
      // Under the lock the state must be the one read here: a namespace that got this inode
      // meanwhile and made a network of this name wrote its own (another cookie) first.
      const seen = JSON.stringify(s0);
      await pruneDead(h, op, dir, name, (s) => JSON.stringify(s) === seen);
    }
    // Empty now (or already): the namespace's directory goes; anything else in it keeps it.
    try { fs.rmdirSync(nsDir); } catch { /* not empty, or gone */ }
  }
  try { fs.rmdirSync(STATE_ROOT); } catch { /* another namespace's networks */ }
}

/**
 * The network's owner lock: an flock on `dir/network.lock`, held by an fd this process owns
 * until destroy (or exit: the kernel drops it with the fd). A held lock means the network is
 * live in another process, never leftovers.
 */
async function lockStateDir(h: Handle, op: string, dir: string, name: string): Promise<number> {
  for (let i = 0; ; i++) {
    let fd: number;
    try {
      ensureStateDir(op, dir, name);
    } catch (e: any) {
      // Another network's destroy may be removing the (then empty) default parent: again.
      if (e?.code === 'ENOENT' && i < 5) continue;
      throw e;
    }
    try {
      fd = (await h._call<{ fd: number }>(op, { path: path.join(dir, LOCK) }, 'fs.flock')).fd;
    } catch (e: any) {
      if (e?.code === 'EAGAIN' || e?.code === 'EWOULDBLOCK')
        throw stateError(op, 'EBUSY', `network ${JSON.stringify(name)} is owned by another process (its lock ${path.join(dir, LOCK)} is held)`);
      // The previous owner removed the directory between our check and the open: again.
      if (e?.code === 'ENOENT' && i < 5) continue;
      throw e;
    }
    // An owner that was removing the directory may have taken the marker with it: we hold the
    // lock now, and the directory was ours a moment ago, so it is ours again.
    try { fs.writeFileSync(path.join(dir, MARKER), `${name}\n`, { mode: 0o600, flag: 'wx' }); } catch { /* still there */ }
    const why = notOurs(dir, name);
    if (!why) return fd;
    fs.closeSync(fd);
    throw v.rangeError(op, 'stateDir', `${JSON.stringify(dir)} ${why}`);
  }
}

/** The caller's spec behind a normalized one: the state records it, adoption normalizes it again. */
const inputs = new WeakMap<Norm, Record<string, any>>();

/** How many parts a running network has (bridge, table, and dnsmasq when it serves DHCP or DNS). */
const expectedParts = (s: Meta) => (wantsDnsmasq(s.spec) ? 3 : 2);
const owner = () => ({ pid: process.pid, start: procStart(process.pid) });

/** Keeps the state's dnsmasq pid and start time current (the watcher restarts it with a new pid). */
function trackDnsmasq(d: Dnsmasq, meta: Meta, dir: string, binary: string): void {
  d.onStart = (pid, start) => {
    meta.dnsmasq = { pid, start: start ?? '', conf: d.files.conf, binary };
    try { writeState(dir, meta); } catch { /* the directory went with a destroy */ }
  };
}

/** Errors refusing before anything was touched: the state directory is left as it was. */
const untouched = new WeakSet<object>();

/**
 * Refuses (EBUSY) when a network of this name runs in this process, in this namespace, from
 * another state directory: its tagged bridge and `vnetlink_NAME` table would be taken.
 */
function liveElsewhere(op: string, name: string, here: string): void {
  for (const [d, net] of live) {
    if (net.name === name && liveNs.get(net) === here) throw stateError(op, 'EBUSY', `network ${JSON.stringify(name)} already runs in this namespace from the state directory ${d} (destroy it first)`);
  }
  if (namesBusy.has(`${here}/${name}`)) throw stateError(op, 'EBUSY', `network ${JSON.stringify(name)} is being created or adopted in this namespace from another state directory`);
}

/** (namespace, name) pairs a create or get of this process is working on, whatever the directory. */
const namesBusy = new Set<string>();

/** Networks: libvirt's NAT network, natively. */
export class NetworkOps {
  constructor(private readonly h: Handle) {}

  async #stateDir(n: { name: string; stateDir?: string }): Promise<string> {
    if (n.stateDir) return n.stateDir;
    const id = await netnsId(this.h);
    return path.join(STATE_ROOT, `netns-${id.dev}-${id.ino}`, n.name);
  }

  /** This namespace's cookie (see netnsId), or undefined on kernels without SO_NETNS_COOKIE. */
  async #cookie(): Promise<string | undefined> {
    return (await netnsId(this.h)).cookie;
  }

  /**
   * Creates the seed's NAT network, all or nothing, in libvirt's order: bridge (fixed MAC,
   * STP, forward delay) → IPv6 RA/autoconf off on it → firewall (masquerade plus forward
   * guards, in table `vnetlink_NAME`) → gateway address → up → `net.ipv4.ip_forward=1` →
   * dnsmasq. If a step fails, every earlier one is undone. Leftovers of an earlier run that
   * crashed (tagged bridge, table, daemon, none of it running any more) are cleaned first; a
   * network of this name that still runs — even if the process that made it is gone — is
   * EEXIST (re-adopt it with `get`), unless `{ replace: true }` asks to rebuild it.
   *
   * Equivalent to: `virsh net-start default`.
   *
   * @example
   * const net = await nl.network.create({ name: 'default', bridge: 'virbr0', stp: true,
   *   address: '192.168.122.1/24', dhcp: { start: '192.168.122.2', end: '192.168.122.254' } });
   * await net.attach('vnet0');
   */
  async create(spec: NetworkSpec, opts: { replace?: boolean } = {}): Promise<Network> {
    const op = 'network.create';
    const n = normalize(op, spec);
    inputs.set(n, JSON.parse(JSON.stringify(spec)));
    v.knownKeys(op, 'options', v.object(op, 'options', opts), ['replace']);
    const replace = opts.replace === undefined ? false : v.bool(op, 'replace', opts.replace);
    let binary: string | undefined;
    if (n.dhcp || n.dns.enable || n.v6.length) {
      binary = findDnsmasq(n.dnsmasq);
      if (!binary) throw v.rangeError(op, 'dnsmasq', n.dnsmasq ? `${JSON.stringify(n.dnsmasq)} is not an executable file` : 'dnsmasq was not found in PATH, /usr/sbin or /sbin (install dnsmasq-base)');
      // The binary is recorded and run again by get/restart/update: one rule for all of them.
      const why = binaryProblem(binary);
      if (why) throw v.rangeError(op, 'dnsmasq', `will not be run as root: ${why}`);
    }
    const dir = await this.#stateDir(n);
    // dnsmasq's files are built (and every value checked against its syntax) before anything exists.
    if (binary) {
      dnsmasqConf(dnsmasqConfig(n, dir));
      if (n.dhcp) dnsmasqHostsFile(n.dhcp.hosts);
      dnsmasqAddnHosts(n.dns.hosts);
    }
    // Before the check: no await may come between it and creating.add (two concurrent creates).
    const here = nsKey(await netnsId(this.h));
    if (live.has(dir) || creating.has(dir)) throw stateError(op, 'EEXIST', `network ${JSON.stringify(n.name)} already runs in this namespace (destroy it first)`);
    liveElsewhere(op, n.name, here);
    creating.add(dir);
    const busyKey = `${here}/${n.name}`;
    namesBusy.add(busyKey);
    try {
      // The owner lock first: while another process holds it, its network is live, not leftovers.
      const lock = await lockStateDir(this.h, op, dir, n.name);
      // A network of this name that still runs (no process owns it: it outlived its creator)
      // is never torn down silently: only `replace` rebuilds it; leftovers are cleaned.
      const cookie = await this.#cookie().catch((e) => { fs.closeSync(lock); throw e; });
      const old = readState(dir);
      if (old && !replace && !foreignState(old, cookie)) {
        const missing = await missingParts(this.h, old, TAG).catch((e) => { fs.closeSync(lock); throw e; });
        if (statusOf(missing, false, expectedParts(old)) !== 'leftover') {
          fs.closeSync(lock);
          throw stateError(op, 'EEXIST', `network ${JSON.stringify(n.name)} is already ${missing.length ? 'defined and partly running' : 'running'} in this namespace (nl.network.get() it, or create with { replace: true })`);
        }
      }
      let net: Network;
      try {
        net = await this.#create(op, n, dir, binary, lock, cookie);
      } catch (e) {
        // A refusal made before anything was touched leaves the directory as it was: it may
        // be the state of a network still running (its dnsmasq's pid and conf are in it).
        if (!(old && untouched.has(e as object))) removeStateDir(dir, n.name);
        fs.closeSync(lock);
        throw e;
      }
      // The guests' ports the earlier network had shaped (replace, or a crashed run) get their
      // bandwidth back (not those of a dead namespace's state); if that fails the new network
      // goes again (destroy releases its lock).
      if (old?.ports?.length && !foreignState(old, cookie)) {
        try {
          await net._reattach(old.ports);
        } catch (e) {
          await net.destroy().catch(() => {});
          throw e;
        }
      }
      live.set(dir, net);
      liveNs.set(net, nsKey(await netnsId(this.h)));
      return net;
    } finally {
      creating.delete(dir);
      namesBusy.delete(busyKey);
    }
  }

  async #create(op: string, n: Norm, dir: string, binary: string | undefined, lock: number, cookie: string | undefined): Promise<Network> {
    const table = `vnetlink_${n.name}`;

    // Leftovers of ours from a crashed run go first; then the namespace must be free for us.
    const left = await this.#cleanup(n.name, dir, table, false, cookie, op);
    const carried = left.ipForwardBefore, carried6 = left.ip6ForwardBefore;
    const existing = await this.h.link.get(n.bridge).catch((e) => { if (e?.code === 'ENODEV') return undefined; throw e; });
    if (existing) throw v.rangeError(op, 'bridge', `${JSON.stringify(n.bridge)} already exists (a ${existing.kind}${existing.alias ? ` tagged ${JSON.stringify(existing.alias)}` : ''}) and is not this network's`);
    for (const a of await this.h.addr.list(undefined, { family: 'inet' })) {
      if (overlaps(a.cidr, n.subnet)) throw v.rangeError(op, 'address', `subnet ${n.subnet} overlaps ${a.cidr} on ${a.link ?? `ifindex ${a.index}`}`);
    }
    for (const r of await this.h.route.list()) {
      if (r.family === 'inet' && r.dst !== 'default' && r.table === 254 && overlaps(r.dst.includes('/') ? r.dst : `${r.dst}/32`, n.subnet))
        throw v.rangeError(op, 'address', `subnet ${n.subnet} overlaps the route to ${r.dst}${r.dev ? ` on ${r.dev}` : ''}`);
    }

    const undo: Array<() => Promise<unknown>> = [];
    const meta: Meta = { name: n.name, bridge: n.bridge, table, spec: inputs.get(n), addresses: [`${n.gateway}/${n.prefixLen}`], forwards: [], owner: owner(),
      ...(cookie !== undefined ? { netnsCookie: cookie } : {}) };
    let dnsmasq: Dnsmasq | undefined;
    const done = (step: NetworkStep) => {
      if (failAfter === step) {
        failAfter = undefined;
        throw new NetlinkError(op, 5 /* EIO */, `injected failure after step ${step}`);
      }
    };
    const ignore = (...codes: string[]) => (e: any) => { if (!codes.includes(e?.code)) throw e; };
    try {
      const saveMeta = () => writeState(dir, meta);
      saveMeta();

      // 1. The bridge, tagged with our alias so a crashed run's bridge can be recognized.
      //    Undone only once it is ours: a failed add (EEXIST: someone made that name meanwhile)
      //    created nothing, and the link by that name belongs to someone else.
      const bridge = await this.h.link.add({ kind: 'bridge', name: n.bridge, mac: n.mac, stp: n.stp, forwardDelay: n.forwardDelay, alias: TAG + n.name, ...(n.mtu ? { mtu: n.mtu } : {}) });
      undo.push(() => this.h.link.del((bridge as Link).index ?? n.bridge).catch(ignore('ENODEV')));
      meta.bridgeIndex = (bridge as Link).index;
      saveMeta();
      done('bridge');

      // 2. No router advertisements or autoconf on the guests' side, and no IPv6 at all on the
      //    bridge of an IPv4-only network (libvirt's disable_ipv6=1: no link-local address a
      //    guest could reach the host by). The device's sysctls go away with the bridge, so
      //    deleting the bridge undoes this. The slash spelling keeps a "." in the name literal.
      for (const k of n.v6.length ? ['accept_ra', 'autoconf'] : ['accept_ra', 'autoconf', 'disable_ipv6'])
        await this.h.sysctl.set(`net/ipv6/conf/${n.bridge}/${k}`, k === 'disable_ipv6' ? '1' : '0').catch(ignore('ENOENT'));
      done('ipv6');

      // 3. The firewall, one atomic batch.
      undo.push(() => this.h.nft.delTable('ip', table, { ifExists: true }));
      if (n.v6.length) undo.push(() => this.h.nft.delTable('ip6', table, { ifExists: true }));
      await firewall(new NftTransaction(this.h, op), n, table).commit();
      done('firewall');

      // 4. The gateway address.
      const cidr = `${n.gateway}/${n.prefixLen}`;
      undo.push(() => this.h.addr.del(n.bridge, cidr).catch(ignore('ENODEV', 'EADDRNOTAVAIL')));
      await this.h.addr.add(n.bridge, cidr, { broadcast: true });
      // No DAD wait: the bridge is new and ours, and dnsmasq's RA needs the address now.
      for (const x of n.v6) await this.h.addr.add(n.bridge, `${x.address}/64`, { nodad: true });
      done('address');

      // 5. Up.
      undo.push(() => this.h.link.set(n.bridge, { up: false }).catch(ignore('ENODEV')));
      await this.h.link.set(n.bridge, { up: true });
      // The network's own <bandwidth>, on the bridge (its ifb, if any, is undone with it).
      if (n.bandwidth) {
        undo.push(() => this.h.tc.unshape(n.bridge).catch(ignore('ENODEV')));
        await this.h.tc.shape(n.bridge, shapeOptions(n.bandwidth));
      }
      done('up');

      // 6. IPv4 forwarding (remembering what it was, for a crash-free undo later).
      if (n.nat) {
        // A sibling network may have turned it on: then what it found is the true original.
        const before = carried ?? siblingForwarding(dir, 'ipForwardBefore', cookie) ?? (await this.h.sysctl.get('net.ipv4.ip_forward'));
        if (before !== '1') {
          undo.push(() => this.h.sysctl.set('net.ipv4.ip_forward', before));
          await this.h.sysctl.set('net.ipv4.ip_forward', '1');
        }
        meta.ipForwardBefore = before;
        saveMeta();
      }
      // IPv6 forwarding for the routed (or NAT66) subnets, remembered the same way.
      if (n.nat && n.v6.length) {
        const before6 = carried6 ?? siblingForwarding(dir, 'ip6ForwardBefore', cookie) ?? (await this.h.sysctl.get('net.ipv6.conf.all.forwarding'));
        if (before6 !== '1') {
          undo.push(() => this.h.sysctl.set('net.ipv6.conf.all.forwarding', before6));
          await this.h.sysctl.set('net.ipv6.conf.all.forwarding', '1');
        }
        meta.ip6ForwardBefore = before6;
        saveMeta();
      }
      done('forwarding');

      // 7. dnsmasq, inside this namespace.
      if (binary) {
        dnsmasq = new Dnsmasq(this.h, binary, dnsmasqConfig(n, dir));
        undo.push(() => dnsmasq!.stop());
        trackDnsmasq(dnsmasq, meta, dir, binary);
        await dnsmasq.start();
      }
      done('dnsmasq');
    } catch (e) {
      for (const u of undo.reverse()) {
        try { await u(); } catch { /* keep undoing the rest; the first error is what matters */ }
      }
      throw e;
    }
    const net = new Network(this.h, n, table, dir, dnsmasq, meta, lock);
    net.firewallConflicts = await forwardDropChains(this.h, table).catch(() => []);
    return net;
  }

  /**
   * Every network of this namespace (from the state directories under /run/vnetlink), with
   * its status: `active`, `degraded` (with what is `missing`) or `leftover` (nothing of it
   * runs and no process owns it). Equivalent to: `virsh net-list --all`.
   */
  async list(opts: { stateDir?: string } = {}): Promise<NetworkInfo[]> {
    const op = 'network.list';
    v.knownKeys(op, 'options', v.object(op, 'options', opts), ['stateDir']);
    // A caller's stateDir is one network's directory (as in create and get).
    const dirs = opts.stateDir !== undefined ? [stateDirArg(op, opts.stateDir)] : stateDirs(path.dirname(await this.#stateDir({ name: 'x' })));
    const cookie = await this.#cookie();
    // Whatever namespaces that are gone left behind is pruned on the way.
    if (opts.stateDir === undefined) await pruneDeadNamespaces(this.h, op, await netnsId(this.h)).catch(() => {});
    const out: NetworkInfo[] = [];
    for (const dir of dirs) {
      const st = readState(dir);
      if (!st || notOurs(dir, st.name) || path.basename(dir) !== st.name) continue;
      if (foreignState(st, cookie)) {
        // Left by a namespace that is gone (this one has its inode now): not one of ours.
        // Nothing of it can run any more, so a default directory of it is pruned.
        if (isDefaultDir(dir)) await pruneDead(this.h, op, dir, st.name, (s) => foreignState(s, cookie));
        continue;
      }
      const missing = await missingParts(this.h, st, TAG);
      const owned = live.has(dir) || (await lockHeld(this.h, dir));
      const info: NetworkInfo = { name: st.name, bridge: st.bridge, table: st.table, stateDir: dir,
        status: statusOf(missing, owned, expectedParts(st)), missing, forwards: st.forwards ?? [] };
      if (st.addresses?.[0]) info.address = st.addresses[0];
      if (owned && st.owner) info.owner = st.owner.pid;
      if (st.dnsmasq && dnsmasqAlive(st.dnsmasq)) info.dnsmasqPid = st.dnsmasq.pid;
      out.push(info);
    }
    return out;
  }

  /**
   * Re-adopts a network that runs in this namespace, made by this or another (perhaps exited)
   * process: the returned Network leases, attaches, forwards ports (its existing forwards
   * included: see `forwards()`), updates, restarts and destroys as the original did, and
   * watches dnsmasq from now on. What it finds must be ours: the bridge by its alias tag, the
   * table by name, dnsmasq by pid *and* start time *and* conf path. Fails with ENOENT when no
   * such network is recorded, EBUSY while another live process owns it.
   * Equivalent to: `virsh net-info default` (and keeping the handle).
   */
  async get(name: string, opts: { stateDir?: string } = {}): Promise<Network> {
    const op = 'network.get';
    const nm = v.str(op, 'name', name, 32);
    if (!/^[A-Za-z0-9_-]+$/.test(nm)) throw v.rangeError(op, 'name', `must be 1-32 letters, digits, "_" or "-" (got ${JSON.stringify(nm)})`);
    v.knownKeys(op, 'options', v.object(op, 'options', opts), ['stateDir']);
    const dir = await this.#stateDir({ name: nm, stateDir: opts.stateDir === undefined ? undefined : stateDirArg(op, opts.stateDir) });
    const mine = live.get(dir);
    if (mine) return mine;
    const st0 = readState(dir, op);
    if (!st0?.spec || st0.name !== nm || notOurs(dir, nm)) throw stateError(op, 'ENOENT', `no network ${JSON.stringify(nm)} is recorded in this namespace`);
    const cookie = await this.#cookie();
    if (foreignState(st0, cookie)) throw stateError(op, 'ENOENT', `no network ${JSON.stringify(nm)} is recorded in this namespace (${path.join(dir, 'network.json')} was written in another network namespace, netns cookie ${st0.netnsCookie}; this one's is ${cookie})`);
    const here = nsKey(await netnsId(this.h));
    if (creating.has(dir)) throw stateError(op, 'EBUSY', `network ${JSON.stringify(nm)} is being created`);
    // The same name live from another directory: adopting this one would take its table.
    liveElsewhere(op, nm, here);
    creating.add(dir);
    const busyKey = `${here}/${nm}`;
    namesBusy.add(busyKey);
    let lock = -1;
    let dnsmasq: Dnsmasq | undefined;
    let started = false;
    try {
      lock = await lockStateDir(this.h, op, dir, nm);
      // Read again under the lock: the previous owner may have changed it last moment.
      const st = readState(dir, op);
      if (!st?.spec || foreignState(st, cookie)) throw stateError(op, 'ENOENT', `network ${JSON.stringify(nm)} was destroyed meanwhile`);
      // The state file is bytes on disk: its spec is validated again like any input.
      const n = normalize(op, st.spec);
      inputs.set(n, st.spec);
      const table = `vnetlink_${nm}`;
      if (n.name !== nm || st.table !== table || st.bridge !== n.bridge) throw v.rangeError(op, 'state', `${path.join(dir, 'network.json')} does not describe network ${JSON.stringify(nm)}`);
      const br = await this.h.link.get(n.bridge).catch((e) => { if (e?.code === 'ENODEV') return undefined; throw e; });
      if (br && (br.kind !== 'bridge' || br.alias !== TAG + nm)) throw v.rangeError(op, 'bridge', `${JSON.stringify(n.bridge)} exists but is not this network's (${br.kind}${br.alias ? ` tagged ${JSON.stringify(br.alias)}` : ', untagged'})`);
      // Another bridge tagged with this name, which this state does not record, is the network
      // of that name running from another directory (another process's): its table is the one
      // this network would adopt, so it is not this state's to take.
      for (const l of await this.h.link.list({ kind: 'bridge' })) {
        if (l.alias !== TAG + nm || l.index === br?.index || l.index === st.bridgeIndex) continue;
        throw stateError(op, 'EBUSY', `a network ${JSON.stringify(nm)} already runs in this namespace with the bridge ${JSON.stringify(l.name)}, which ${path.join(dir, 'network.json')} does not record (it runs from another stateDir)`);
      }
      const meta: Meta = { ...st, owner: owner(), ...(cookie !== undefined ? { netnsCookie: cookie } : {}) };
      if (br) meta.bridgeIndex = br.index;
      if (n.dhcp || n.dns.enable || n.v6.length) {
        const binary = findDnsmasq(n.dnsmasq);
        if (!binary) throw v.rangeError(op, 'dnsmasq', 'dnsmasq was not found in PATH, /usr/sbin or /sbin (install dnsmasq-base)');
        // The spec's dnsmasq path is bytes from the state file too: the rule for a recorded binary.
        const why = binaryProblem(binary);
        if (why) throw v.rangeError(op, 'dnsmasq', `${path.join(dir, 'network.json')} names a dnsmasq that will not be run: ${why}`);
        dnsmasq = new Dnsmasq(this.h, binary, dnsmasqConfig(n, dir));
        trackDnsmasq(dnsmasq, meta, dir, binary);
        // Only the very process we started, still running our conf, is taken over; else one is started.
        if (st.dnsmasq && st.dnsmasq.conf === dnsmasq.files.conf && dnsmasqAlive(st.dnsmasq)) dnsmasq.adopt(st.dnsmasq.pid, st.dnsmasq.start);
        else if (br) { started = true; await dnsmasq.start(); }
        else delete meta.dnsmasq;
      }
      writeState(dir, meta);
      const net = new Network(this.h, n, table, dir, dnsmasq, meta, lock);
      await net._adoptForwards();
      live.set(dir, net);
      liveNs.set(net, nsKey(await netnsId(this.h)));
      return net;
    } catch (e) {
      // Nothing of this call may outlive it: a watcher left running would restart (and stop the
      // strays of) a network this process does not own. A daemon this call started goes; an
      // adopted one is left running as it was found.
      if (dnsmasq) {
        if (started) await dnsmasq.stop().catch(() => { dnsmasq!.abandon(); });
        else dnsmasq.abandon();
      }
      if (lock >= 0) fs.closeSync(lock);
      throw e;
    } finally {
      creating.delete(dir);
      namesBusy.delete(busyKey);
    }
  }

  /**
   * Removes what a network of this name left behind in this namespace (after a crash): its
   * dnsmasq (by the pid file, only if it runs our conf), its tagged bridge, its table and its
   * state directory. Returns true when something of it was there and was removed.
   */
  async cleanup(name: string, opts: { stateDir?: string } = {}): Promise<boolean> {
    const op = 'network.cleanup';
    const nm = v.str(op, 'name', name, 32);
    if (!/^[A-Za-z0-9_-]+$/.test(nm)) throw v.rangeError(op, 'name', `must be 1-32 letters, digits, "_" or "-" (got ${JSON.stringify(nm)})`);
    v.knownKeys(op, 'options', v.object(op, 'options', opts), ['stateDir']);
    const dir = await this.#stateDir({ name: nm, stateDir: opts.stateDir === undefined ? undefined : stateDirArg(op, opts.stateDir) });
    if (live.has(dir) || creating.has(dir)) throw stateError(op, 'EBUSY', `network ${JSON.stringify(nm)} is running in this process; destroy() it instead`);
    // The same name running here from another state directory: its tagged bridge and its
    // table are what a cleanup would delete, and they are not leftovers.
    liveElsewhere(op, nm, nsKey(await netnsId(this.h)));
    // Always under the owner lock, the directory made for it if need be: a process creating
    // this network right now holds it, and its new bridge and table are not leftovers. Only a
    // caller's directory whose parent is missing needs none: no network can be made there.
    const cookie = await this.#cookie();
    if (!isDefaultDir(dir) && !fs.existsSync(path.dirname(dir))) return (await this.#cleanup(nm, dir, `vnetlink_${nm}`, true, cookie)).removed;
    const lock = await lockStateDir(this.h, op, dir, nm);
    try {
      const r = await this.#cleanup(nm, dir, `vnetlink_${nm}`, true, cookie);
      removeStateDir(dir, nm);
      return r.removed;
    } finally {
      fs.closeSync(lock);
    }
  }

  /**
   * `removed`: whether anything of ours was there (a dnsmasq, the bridge, the table, our state
   * files); `ipForwardBefore`: the ip_forward value remembered by a crashed run, if any.
   *
   * With `recordedOnly` (the op name: `create`'s implicit cleanup), a tagged bridge or table
   * this directory's state does not record is refused with EBUSY before anything goes: it may
   * be the live network of that name made with another `stateDir` (whose lock is not ours to
   * see). An explicit `cleanup(name)` removes them: the caller asked for it by name.
   */
  async #cleanup(name: string, dir: string, table: string, restoreForwarding: boolean, cookie: string | undefined, recordedOnly?: string): Promise<{ removed: boolean; ipForwardBefore?: string; ip6ForwardBefore?: string }> {
    let meta: Meta | undefined;
    try { meta = JSON.parse(fs.readFileSync(path.join(dir, 'network.json'), 'utf8')); } catch { /* none */ }
    // State written in another namespace (gone; this one got its inode) describes nothing
    // here: neither its forwarding values nor its dnsmasq pid are this namespace's.
    const foreign = !!meta && foreignState(meta, cookie);
    if (foreign) meta = undefined;
    const tagged = (await this.h.link.list({ kind: 'bridge' })).filter((l) => l.alias === TAG + name);
    const tables = (await this.h.nft.listTables()).filter((t) => t.name === table && (t.family === 'ip' || t.family === 'ip6'));
    if (recordedOnly) {
      // A crash between the bridge's creation and the state write that records its index
      // leaves the name recorded alone (and states older than bridgeIndex have only the name).
      const recorded = (l: Link) => !!meta && (meta.bridgeIndex !== undefined ? meta.bridgeIndex === l.index : meta.bridge === l.name);
      const stranger = tagged.find((l) => !recorded(l));
      if (stranger || (tables.length && !meta)) {
        const what = stranger ? `its bridge ${JSON.stringify(stranger.name)} (tagged ${JSON.stringify(TAG + name)})` : `its firewall table ${table}`;
        const e = stateError(recordedOnly, 'EBUSY', `a network ${JSON.stringify(name)} already has ${what} in this namespace, not recorded in the state directory ${dir}: ` +
          `it runs from another stateDir (destroy it there) or is a leftover (nl.network.cleanup(${JSON.stringify(name)}) removes it)`);
        untouched.add(e);
        throw e;
      }
    }
    const files = dnsmasqFiles(dir);
    // The directory alone is no evidence (a caller's stateDir may hold other things): our files are.
    let removed = ownFiles(dir).some((f) => fs.existsSync(f));
    let pid = 0;
    try { pid = foreign ? 0 : Number(fs.readFileSync(files.pid, 'utf8').trim()); } catch { /* no pid file */ }
    // stopPid's ETIMEDOUT (a dnsmasq that outlived SIGKILL) propagates: going on would delete the
    // pid and conf files of a daemon still alive, and the next create would start a second one.
    // The start time checked with it goes to stopPid: no signal if the pid changed hands meanwhile.
    const dStart = pid > 0 ? ourDnsmasqStart(pid, files.conf) : undefined;
    // A daemon that outlived SIGKILL still runs from these files: create keeps them (untouched).
    if (dStart !== undefined) { await stopPid(pid, dStart).catch((e) => { untouched.add(e); throw e; }); removed = true; }
    for (const l of tagged) {
      // An ifb the network's <bandwidth> made outlives the bridge: it goes first.
      await this.h.tc.unshape(l.name).catch(() => false);
      await this.h.link.del(l.name).catch((e) => { if (e?.code !== 'ENODEV') throw e; });
      removed = true;
    }
    for (const t of tables) {
      await this.h.nft.delTable(t.family, table, { ifExists: true });
      removed = true;
    }
    // Our files only; the directory, its marker and the lock stay with the caller, who holds it.
    for (const f of ownFiles(dir)) { try { fs.unlinkSync(f); } catch { /* not there */ } }
    const before = meta?.ipForwardBefore, before6 = meta?.ip6ForwardBefore;
    if (restoreForwarding && ((before !== undefined && before !== '1') || (before6 !== undefined && before6 !== '1')) && !(await otherNetworks(this.h, name))) {
      if (before !== undefined && before !== '1') await this.h.sysctl.set('net.ipv4.ip_forward', before);
      if (before6 !== undefined && before6 !== '1') await this.h.sysctl.set('net.ipv6.conf.all.forwarding', before6);
    }
    return { removed, ...(before !== undefined ? { ipForwardBefore: before } : {}), ...(before6 !== undefined ? { ip6ForwardBefore: before6 } : {}) };
  }
}

/** The ip_forward value another network in the same namespace (same parent state dir) found. */
function siblingForwarding(dir: string, key: 'ipForwardBefore' | 'ip6ForwardBefore', cookie: string | undefined): string | undefined {
  const parent = path.dirname(dir);
  let names: string[] = [];
  try { names = fs.readdirSync(parent); } catch { return undefined; }
  for (const n of names) {
    if (path.join(parent, n) === dir) continue;
    try {
      const m = JSON.parse(fs.readFileSync(path.join(parent, n, 'network.json'), 'utf8')) as Meta;
      if (m[key] !== undefined && !foreignState(m, cookie)) return m[key];
    } catch { /* not a network */ }
  }
  return undefined;
}

/**
 * Another table's base chain on the forward hook whose policy is drop (Docker's, firewalld's,
 * NixOS's): packets our forward chain accepts are still dropped there unless it accepts them
 * too — the most common reason guests lose connectivity.
 */
export interface FirewallConflict { family: string; table: string; chain: string; priority?: number }

async function forwardDropChains(h: Handle, ours: string): Promise<FirewallConflict[]> {
  const out: FirewallConflict[] = [];
  for (const c of await h.nft.listChains()) {
    if (c.hook !== 'forward' || c.policy !== 'drop' || !['ip', 'ip6', 'inet'].includes(c.family)) continue;
    if (c.table === ours) continue;
    out.push({ family: c.family, table: c.table, chain: c.name, ...(c.priority !== undefined ? { priority: c.priority } : {}) });
  }
  return out;
}

interface CtTuple { proto?: number; src?: Uint8Array; dst?: Uint8Array; sport?: number; dport?: number }
interface CtEntry { orig?: CtTuple; reply?: CtTuple; id?: number; zone?: number }

/**
 * Deletes the conntrack entries of one port forward's connections (native ctnetlink: a dump,
 * then IPCTNL_MSG_CT_DELETE by original tuple and id): original destination port hostPort
 * (and address, when given), reply from the guest's port.
 */
async function deleteConntrack(h: Handle, f: { proto: 'tcp' | 'udp'; hostPort: number; hostAddress?: string; guest: string; guestPort: number }): Promise<number> {
  const op = 'network.forwardPort.remove';
  const AF_INET = 2;
  const pnum = f.proto === 'tcp' ? 6 : 17;
  const ip = (b?: Uint8Array) => (b && b.length === 4 ? [...b].join('.') : '');
  const entries = await h._call<CtEntry[]>(op, { family: AF_INET }, 'ct.list');
  const mine = entries.filter((e) => e.orig?.proto === pnum && e.orig.dport === f.hostPort && (!f.hostAddress || ip(e.orig.dst) === f.hostAddress) &&
    ip(e.reply?.src) === f.guest && e.reply?.sport === f.guestPort);
  if (!mine.length) return 0;
  const tuples = mine.map((e) => ({ ...e.orig, ...(e.id !== undefined ? { id: e.id } : {}) }));
  return (await h._call<{ deleted: number }>(op, { family: AF_INET, tuples }, 'ct.delete')).deleted;
}

async function otherNetworks(h: Handle, name: string): Promise<boolean> {
  return (await h.link.list({ kind: 'bridge' })).some((l) => l.alias?.startsWith(TAG) && l.alias !== TAG + name);
}

/** What a port is now, in the terms the state records (see PortIdentity). */
function portIdentity(l: Link): PortIdentity {
  const id: PortIdentity = { index: l.index, kind: l.kind };
  if (l.kind === 'tun') id.tun = pickTun((l.info ?? {}) as Record<string, unknown>);
  return id;
}
const sameIdentity = (a: PortIdentity, b: PortIdentity) =>
  a.index === b.index && a.kind === b.kind && JSON.stringify(a.tun ?? null) === JSON.stringify(b.tun ?? null);
const describeIdentity = (id: PortIdentity) =>
  `ifindex ${id.index} (${id.kind}${id.tun ? ` ${JSON.stringify(id.tun)}` : ''})`;

/**
 * A recorded port that `restart` or `create(..., { replace: true })` did not attach again, and why:
 * - `gone`: no link has that name any more;
 * - `replaced`: the link of that name is not the one attached (another ifindex, kind, or tap
 *   mode/persistence/owner): it is left alone and forgotten;
 * - `moved`: it is on another master now (another network took it): left alone and forgotten;
 * - `unverified`: the state recorded only its name (written before identities were recorded,
 *   or by hand): it cannot be told from another link of that name, so it is left alone and forgotten;
 * - `invalid`: the recorded name or bandwidth does not pass validation;
 * - `failed`: it is the port we recorded, but attaching or shaping it failed (`error`); it stays
 *   recorded, so the next restart tries again.
 */
export interface PortProblem {
  port: string;
  reason: 'gone' | 'replaced' | 'moved' | 'unverified' | 'invalid' | 'failed';
  message: string;
  error?: unknown;
}

/** `pending`: recorded, but its rules are not in the table (a restart failed before re-adding it). */
interface ForwardEntry { handles: Array<{ chain: string; handle: number }>; removing?: Promise<void>; spec: ForwardState; pending?: boolean }
const forwardKey = (f: { proto: string; hostAddress?: string; hostPort: number }) => `${f.proto}:${f.hostAddress ?? '*'}:${f.hostPort}`;

/** A running NAT network made by `nl.network.create` (or re-adopted by `nl.network.get`). */
export class Network {
  readonly name: string;
  readonly bridge: string;
  /** Gateway address with prefix, e.g. '192.168.122.1/24'. */
  readonly address: string;
  readonly gateway: string;
  /** The subnet, e.g. '192.168.122.0/24'. */
  readonly subnet: string;
  /** IPv6 gateway addresses with prefix (e.g. ['fd00:122::1/64']); empty for an IPv4-only network. */
  readonly address6: readonly string[];
  readonly mac: string;
  /** The nftables table holding this network's rules (family ip). */
  readonly table: string;
  readonly stateDir: string;
  #h: Handle;
  #n: Norm;
  #dnsmasq: Dnsmasq | undefined;
  #meta: Meta;
  #forwards = new Map<string, ForwardEntry>();
  /** Ports attached with a bandwidth (recorded in the state as `ports`). */
  #ports = new Map<string, Bandwidth>();
  /** What each of those ports was when it was attached (absent for one an older state recorded by name only). */
  #portIds = new Map<string, PortIdentity>();
  #destroyed: Promise<void> | undefined;
  /** The fd holding the owner lock (see lockStateDir), -1 once released. */
  #lock: number;

  #unlock(): void {
    if (this.#lock < 0) return;
    try { fs.closeSync(this.#lock); } catch { /* already closed */ }
    this.#lock = -1;
  }

  /** @internal use `nl.network.create()` */
  constructor(h: Handle, n: Norm, table: string, dir: string, dnsmasq: Dnsmasq | undefined, meta: Meta, lock: number) {
    this.#h = h; this.#n = n; this.#dnsmasq = dnsmasq; this.#meta = meta; this.#lock = lock;
    this.name = n.name; this.bridge = n.bridge; this.gateway = n.gateway;
    this.address = `${n.gateway}/${n.prefixLen}`; this.subnet = n.subnet; this.mac = n.mac;
    this.address6 = Object.freeze(n.v6.map((x) => `${x.address}/64`));
    this.table = table; this.stateDir = dir;
    for (const ps of meta.ports ?? []) {
      try {
        const bw = bandwidthArg('network.state', 'bandwidth', ps.bandwidth);
        if (!bw) continue;
        const name = v.ifname('network.state', 'port', ps.name);
        this.#ports.set(name, bw);
        if (ps.index !== undefined && ps.kind !== undefined) this.#portIds.set(name, { index: ps.index, kind: ps.kind, ...(ps.tun ? { tun: ps.tun } : {}) });
      } catch { /* not a port we recorded: ignored */ }
    }
  }

  /** @internal see _simulateCrash */
  _abandon(): void {
    this.#dnsmasq?.abandon();
    this.#unlock();  // a dead process's fds close, and its lock with them
    this.#destroyed = Promise.resolve();
    live.delete(this.stateDir);
  }

  /**
   * Other tables' forward-hook base chains with policy drop, found when the network was
   * created (see {@link FirewallConflict}): while one is listed, guests' forwarded traffic is
   * dropped there unless that firewall accepts it. Empty when there are none.
   */
  firewallConflicts: FirewallConflict[] = [];

  /**
   * The recorded ports the last `restart()` (or the `create(..., { replace: true })` that made
   * this network) did not attach again, each with its reason (see {@link PortProblem}); empty
   * when every one was taken back.
   */
  portProblems: PortProblem[] = [];

  /** The running dnsmasq's pid (it changes when the watcher restarts it). */
  get dnsmasqPid(): number | undefined { return this.#dnsmasq?.pid; }
  /** How many times dnsmasq was restarted after it died. */
  get dnsmasqRestarts(): number { return this.#dnsmasq?.restarts ?? 0; }

  #alive(op: string): void {
    if (this.#destroyed) throw v.typeError(op, 'network', `${JSON.stringify(this.name)} was destroyed`);
  }

  /**
   * Puts a guest's port (a tap such as 'vnet0') on the bridge and brings it up. With
   * `wait`, resolves once the port forwards (STP takes ~2× forward delay, at least 4 s).
   * With `bandwidth` (libvirt's `<bandwidth>` of the guest's `<interface>`: `inbound` to the
   * guest, `outbound` from it), the tap is shaped with `nl.tc.shape` and the network records
   * it, so `restart` and `create(..., { replace: true })` apply it again; `detach` and
   * `destroy` unshape it. Attaching again without `bandwidth` removes it.
   * Equivalent to: `ip link set vnet0 master virbr0 up` (+ `virsh domiftune`).
   *
   * @example
   * await net.attach('vnet0', { bandwidth: { inbound: { average: 6250 }, outbound: { average: 3750, burst: 64 } } });
   */
  async attach(port: string, opts: { wait?: boolean; timeoutMs?: number; bandwidth?: Bandwidth } = {}): Promise<Link> {
    const op = 'network.attach';
    this.#alive(op);
    const p = v.ifname(op, 'port', port);
    v.knownKeys(op, 'options', v.object(op, 'options', opts), ['wait', 'timeoutMs', 'bandwidth']);
    const bw = bandwidthArg(op, 'bandwidth', opts.bandwidth);
    const t = opts.timeoutMs === undefined ? 35_000 : v.uint(op, 'timeoutMs', opts.timeoutMs, 0, 600_000);
    if (p === this.bridge) throw v.rangeError(op, 'port', 'is the bridge itself');
    const before = await this.#h.link.get(p);
    await this.#h.link.set(p, { master: this.bridge, up: true });
    const recorded = this.#ports.has(p);
    try {
      if (bw) await this.#h.tc.shape(p, shapeOptions(bw));
      else if (recorded) await this.#h.tc.unshape(p);
    } catch (e) {
      // All or nothing: a port that was not on the bridge before goes back where it was (its
      // old master, or none), down if it was; one that was gets the bandwidth it had back.
      const back: { master?: string | null; up?: boolean } = {};
      if (before.master !== this.bridge) back.master = before.master ?? null;
      if (!before.up) back.up = false;
      if (back.master !== undefined || back.up !== undefined) await this.#h.link.set(p, back).catch(() => {});
      if (before.master === this.bridge && recorded) await this.#h.tc.shape(p, shapeOptions(this.#ports.get(p)!)).catch(() => {});
      throw e;
    }
    if (bw) {
      this.#ports.set(p, bw);
      this.#portIds.set(p, portIdentity(before));
    } else {
      this.#ports.delete(p);
      this.#portIds.delete(p);
    }
    if (bw || recorded) this.#save();
    if (opts.wait) await this.#h.bridge.waitPort(p, 'forwarding', t);
    return this.#h.link.get(p);
  }

  /**
   * Takes a port off the bridge, and removes the shaping `attach` gave it. A port that is on
   * another master now (another network took it) is left alone, its shaping too (that is the
   * other network's); this network just forgets it.
   * Equivalent to: `ip link set vnet0 nomaster`.
   */
  async detach(port: string): Promise<void> {
    const op = 'network.detach';
    this.#alive(op);
    const p = v.ifname(op, 'port', port);
    const l = await this.#h.link.get(p);
    if (l.master === this.bridge) await this.#h.link.set(p, { master: null });
    if (this.#ports.has(p)) {
      if (this.#shapedByUs(l)) await this.#h.tc.unshape(p);
      this.#ports.delete(p);
      this.#portIds.delete(p);
      this.#save();
    }
  }

  /**
   * Whether the shaping on a recorded port is still ours to remove: it is on our bridge, or on
   * no master and still the very link we shaped. On another master it is another network's.
   */
  #shapedByUs(l: Link): boolean {
    if (l.master === this.bridge) return true;
    const id = this.#portIds.get(l.name);
    return l.master === undefined && !!id && sameIdentity(id, portIdentity(l));
  }

  /** The ports attached with a bandwidth, and that bandwidth (libvirt's units). */
  bandwidths(): Array<{ port: string; bandwidth: Bandwidth }> {
    return [...this.#ports].map(([port, bandwidth]) => ({ port, bandwidth: structuredClone(bandwidth) }));
  }

  /**
   * @internal Attaches and shapes again the recorded ports (the bridge was rebuilt), one at a
   * time: only a link whose name, ifindex and kind (and a tap's mode, persistence and owner)
   * are still what was recorded, and which is on no other master. Whatever is not taken back
   * is reported (and kept in `portProblems`) instead of failing the whole restart or replace.
   */
  async _reattach(ports: PortState[]): Promise<PortProblem[]> {
    const problems: PortProblem[] = [];
    for (const ps of ports) {
      let bw: Bandwidth | undefined;
      let name: string;
      try {
        name = v.ifname('network.state', 'port', ps.name);
        bw = bandwidthArg('network.state', 'bandwidth', ps.bandwidth);
      } catch (e: any) {
        problems.push({ port: String(ps.name).slice(0, 64), reason: 'invalid', message: String(e?.message ?? e), error: e });
        continue;
      }
      if (!bw) continue;
      const drop = (reason: PortProblem['reason'], message: string) => {
        problems.push({ port: name, reason, message: `${name} ${message}` });
        this.#ports.delete(name);
        this.#portIds.delete(name);
      };
      const rec: PortIdentity | undefined = ps.index !== undefined && ps.kind !== undefined ? { index: ps.index, kind: ps.kind, ...(ps.tun ? { tun: ps.tun } : {}) } : undefined;
      if (!rec) { drop('unverified', 'was recorded by name only (no ifindex and kind): it cannot be told from another link of that name, so it is not attached again'); continue; }
      let l: Link;
      try {
        l = await this.#h.link.get(name);
      } catch (e: any) {
        if (e?.code === 'ENODEV') drop('gone', 'no longer exists');
        else problems.push({ port: name, reason: 'failed', message: `${name}: ${e?.message ?? e}`, error: e });
        continue;
      }
      const now = portIdentity(l);
      if (!sameIdentity(rec, now)) { drop('replaced', `is ${describeIdentity(now)}, not the ${describeIdentity(rec)} that was attached: left alone`); continue; }
      if (l.master !== undefined && l.master !== this.bridge) { drop('moved', `is on ${l.master} now: left alone`); continue; }
      try {
        await this.attach(name, { bandwidth: bw });
      } catch (e: any) {
        // Still the port we recorded: kept, so the next restart tries again.
        this.#ports.set(name, bw);
        this.#portIds.set(name, rec);
        problems.push({ port: name, reason: 'failed', message: `${name}: ${e?.message ?? e}`, error: e });
      }
    }
    this.portProblems = problems;
    this.#save();
    return problems;
  }

  /** The current DHCP leases, from dnsmasq's lease file. Equivalent to: `virsh net-dhcp-leases`. */
  async leases(): Promise<Lease[]> {
    this.#alive('network.leases');
    return this.#dnsmasq ? this.#dnsmasq.leases() : [];
  }

  /**
   * Forwards a port of the host into a guest (DNAT), and lets that traffic through the
   * forward guards. Packets coming from the bridge itself are not redirected.
   *
   * Equivalent to: `nft add rule ip vnetlink_default prerouting iifname != "virbr0" tcp dport 8080 dnat to 192.168.122.50:80`
   * plus an accept in the forward chain.
   *
   * @example
   * const pf = await net.forwardPort({ proto: 'tcp', hostPort: 8080, guest: '192.168.122.50', guestPort: 80 });
   * await pf.remove();
   */
  async forwardPort(spec: PortForwardSpec): Promise<PortForward> {
    const op = 'network.forwardPort';
    this.#alive(op);
    const s = v.object(op, 'spec', spec);
    v.knownKeys(op, '', s, ['proto', 'hostPort', 'guest', 'guestPort', 'hostAddress', 'localhost']);
    const proto = v.oneOf(op, 'proto', s.proto, ['tcp', 'udp'] as const);
    const hostPort = v.uint(op, 'hostPort', s.hostPort, 1, 65535);
    const guestPort = s.guestPort === undefined ? hostPort : v.uint(op, 'guestPort', s.guestPort, 1, 65535);
    const g = v.ip(op, 'guest', s.guest);
    if (g.family !== 'inet' || !overlaps(`${g.address}/32`, this.subnet)) throw v.rangeError(op, 'guest', `${g.address} is not in the network's subnet ${this.subnet}`);
    if (g.address === this.gateway) throw v.rangeError(op, 'guest', 'is the gateway, not a guest');
    let hostAddress: string | undefined;
    if (s.hostAddress !== undefined) {
      const ha = v.ip(op, 'hostAddress', s.hostAddress);
      if (ha.family !== 'inet') throw v.rangeError(op, 'hostAddress', 'must be an IPv4 address');
      hostAddress = ha.address;
    }
    const localhost = s.localhost === undefined ? false : v.bool(op, 'localhost', s.localhost);
    if (localhost && hostAddress) throw v.rangeError(op, 'localhost', 'forwards 127.0.0.1, which a hostAddress excludes: give one or the other');
    const key = forwardKey({ proto, hostAddress, hostPort });
    if (this.#forwards.has(key)) throw stateError(op, 'EEXIST', `${proto} port ${hostPort} is already forwarded`);
    // Reserved before the first await: a concurrent call for the same port is refused above
    // instead of adding a second set of rules that no remove() would ever delete.
    const entry: ForwardEntry = { handles: [], spec: { proto, hostPort, guest: g.address, guestPort, ...(hostAddress ? { hostAddress } : {}), ...(localhost ? { localhost } : {}) } };
    this.#forwards.set(key, entry);
    const release = (e: unknown): never => { if (this.#forwards.get(key) === entry) this.#forwards.delete(key); throw e; };
    const { match, stmt } = nftExpr;
    const T = { family: 'ip' as const, table: this.table };
    const comment = `vnetlink:pf:${key}`;
    // Loopback-sourced packets may leave through the bridge only with route_localnet there;
    // what it was before the first such forward is remembered, and put back after the last.
    if (localhost) await this.#localnetOn().catch(async (e) => { await this.#localnetRestore(entry).catch(() => {}); release(e); });
    const toHost = hostAddress ? match.addr('ip', 'daddr', hostAddress) : daddrLocal();
    const dnat = [...match.l4proto(proto), ...match.dport(hostPort), stmt.counter(), ...stmt.dnat('ip', g.address, guestPort)];
    const created = await new NftTransaction(this.#h, op)
      // From the outside and from guests (hairpin), to the host's address(es).
      .addRule({ ...T, chain: 'prerouting', comment, exprs: [...toHost, ...dnat] })
      // From the host itself; 127.0.0.1 only when asked.
      .addRule({ ...T, chain: 'output', comment, exprs: [...toHost, ...(localhost || hostAddress ? [] : match.addr('ip', 'daddr', '127.0.0.0/8', 'neq')), ...dnat] })
      // Ahead of the guards' reject: new connections to this guest port may come in.
      .addRule({ ...T, chain: 'forward', comment, insert: true, exprs: [
        ...match.oifname(this.bridge), ...match.addr('ip', 'daddr', `${g.address}/32`),
        ...match.l4proto(proto), ...match.dport(guestPort), stmt.counter(), stmt.accept()] })
      .commit({ echo: true }).catch(async (e) => { if (localhost) await this.#localnetRestore(entry).catch(() => {}); return release(e); });
    entry.handles = created.filter((c) => c.kind === 'rule').map((c) => ({ chain: c.chain!, handle: c.handle }));
    this.#save();
    return this.#forwardObject(key, entry);
  }

  /** route_localnet=1 on the bridge, remembering the value found before the first localhost forward. */
  async #localnetOn(): Promise<void> {
    const key = `net/ipv4/conf/${this.bridge}/route_localnet`;
    if (this.#meta.routeLocalnetBefore === undefined) {
      this.#meta.routeLocalnetBefore = (await this.#h.sysctl.get(key)).trim();
      this.#save();
    }
    await this.#h.sysctl.set(key, '1');
  }

  /** Once no localhost forward but `except` is left: route_localnet back to what it was. */
  async #localnetRestore(except: ForwardEntry): Promise<void> {
    const before = this.#meta.routeLocalnetBefore;
    if (before === undefined || [...this.#forwards.values()].some((e) => e !== except && e.spec.localhost)) return;
    // The value comes from a state file: only 0 or 1 is written back (anything else was never ours).
    if (before !== '1') {
      await this.#h.sysctl.set(`net/ipv4/conf/${this.bridge}/route_localnet`, '0').catch((e) => { if (e?.code !== 'ENOENT') throw e; });
    }
    delete this.#meta.routeLocalnetBefore;
    this.#save();
  }

  /** The PortForward handed out for a forward entry (new or re-adopted). */
  #forwardObject(key: string, entry: ForwardEntry): PortForward {
    const T = { family: 'ip' as const, table: this.table };
    const { proto, hostPort, guest, guestPort, hostAddress } = entry.spec;
    const out: PortForward = {
      proto, hostPort, guest, guestPort, localhost: !!entry.spec.localhost,
      remove: async () => {
        // Only this forward's own entry (not a later one for the same port), and forgotten only
        // once its rules are gone: after a failed commit remove() can be tried again.
        if (this.#forwards.get(key) !== entry || this.#destroyed) return;
        if (entry.pending) { this.#forwards.delete(key); this.#save(); return; }  // no rules to delete
        entry.removing ??= (async () => {
          const tx = new NftTransaction(this.#h, 'network.forwardPort.remove');
          for (const x of entry.handles) tx.delRule({ ...T, chain: x.chain, handle: x.handle });
          try {
            await tx.commit();
          } catch (e) {
            entry.removing = undefined;
            throw e;
          }
          // The rules are gone, so the forward is: its port is free again and the state says
          // so, whatever happens below (a retry would only find its rule handles missing).
          let failure: unknown;
          if (entry.spec.localhost) await this.#localnetRestore(entry).catch((e) => { failure = e; });
          if (this.#forwards.get(key) === entry) { this.#forwards.delete(key); this.#save(); }
          // Connections already made keep their mapping in conntrack: end them too.
          await deleteConntrack(this.#h, { proto, hostPort, hostAddress, guest, guestPort }).catch((e) => { failure ??= e; });
          if (failure !== undefined) throw failure;
        })();
        await entry.removing;
      },
    };
    if (hostAddress) out.hostAddress = hostAddress;
    return out;
  }

  /** The port forwards in place, those made by an earlier owner included; each removable. */
  forwards(): PortForward[] {
    return [...this.#forwards].map(([k, e]) => this.#forwardObject(k, e));
  }

  /** Writes the state file (after every change); a destroyed network has none. */
  #save(): void {
    if (this.#destroyed) return;
    // A forward still being added (reserved, no rules yet) is not recorded.
    this.#meta.forwards = [...this.#forwards.values()].filter((e) => e.handles.length || e.pending).map((e) => e.spec);
    this.#meta.ports = [...this.#ports].map(([name, bandwidth]) => ({ name, bandwidth, ...this.#portIds.get(name) }));
    writeState(this.stateDir, this.#meta);
  }

  /**
   * @internal Takes over the forwards recorded in the state: their rules are found in the
   * table by their comment; a forward whose rules are missing (table rebuilt) is added again.
   */
  async _adoptForwards(): Promise<void> {
    const want = this.#meta.forwards ?? [];
    if (!want.length) return;
    const table = (await this.#h.nft.listTables('ip')).some((t) => t.name === this.table);
    const rules = table ? await this.#h.nft.listRules('ip', this.table) : [];
    // Every recorded forward is registered first (those without rules as pending), so no
    // state written on the way (each forwardPort saves) can drop one that comes later.
    const missing: ForwardState[] = [];
    for (const f of want) {
      const key = forwardKey(f);
      const handles = rules.filter((r) => r.comment === `vnetlink:pf:${key}`).map((r) => ({ chain: r.chain, handle: r.handle }));
      if (handles.length) this.#forwards.set(key, { handles, spec: f });
      else { this.#forwards.set(key, { handles: [], spec: f, pending: true }); missing.push(f); }
    }
    // Without the table (a firewall reload flushed it) they all wait for restart(), which
    // rebuilds it. With it, each missing one is added again; one the kernel refuses (its
    // bridge gone, say) stays pending; a record that is no valid forward fails the adoption.
    if (table) {
      for (const f of missing) {
        const key = forwardKey(f);
        const entry = this.#forwards.get(key)!;
        this.#forwards.delete(key);
        try {
          await this.forwardPort(f);
        } catch (e) {
          if (e instanceof TypeError || e instanceof RangeError) { this.#forwards.set(key, entry); throw e; }
          this.#forwards.set(key, entry);
        }
      }
    }
    this.#save();
  }

  /**
   * Rebuilds what is missing or broken while keeping the guests' ports: the bridge (its
   * ports are put back), the firewall table (replaced atomically, forwards re-added), and
   * dnsmasq (restarted). Equivalent to: `virsh net-destroy` + `virsh net-start`, minus the outage.
   * Resolves with the recorded ports it did not attach again, each with its reason (see
   * {@link PortProblem}; also kept in `portProblems`): one port that cannot be taken back
   * never fails the restart.
   */
  async restart(): Promise<PortProblem[]> {
    const op = 'network.restart';
    this.#alive(op);
    const n = this.#n;
    const br = await this.#h.link.get(n.bridge).catch((e) => { if (e?.code === 'ENODEV') return undefined; throw e; });
    if (br && br.alias !== TAG + n.name) throw v.rangeError(op, 'bridge', `${JSON.stringify(n.bridge)} exists but is not this network's`);
    if (!br) {
      // The old index goes from the state first (a crash before the new one is recorded then
      // falls back to the bridge's name), and the new one is recorded at once: neither window
      // leaves an index on disk that makes this network's own bridge a stranger to create.
      delete this.#meta.bridgeIndex;
      this.#save();
      const l = await this.#h.link.add({ kind: 'bridge', name: n.bridge, mac: n.mac, stp: n.stp, forwardDelay: n.forwardDelay, alias: TAG + n.name, ...(n.mtu ? { mtu: n.mtu } : {}) });
      this.#meta.bridgeIndex = (l as Link).index;
      this.#save();
      // As create does: no RA/autoconf, and no IPv6 at all on an IPv4-only network's bridge.
      for (const k of n.v6.length ? ['accept_ra', 'autoconf'] : ['accept_ra', 'autoconf', 'disable_ipv6'])
        await this.#h.sysctl.set(`net/ipv6/conf/${n.bridge}/${k}`, k === 'disable_ipv6' ? '1' : '0').catch(() => {});
    }
    const cidr = `${n.gateway}/${n.prefixLen}`;
    if (!(await this.#h.addr.list(n.bridge, { family: 'inet' })).some((a) => a.cidr === cidr)) await this.#h.addr.add(n.bridge, cidr, { broadcast: true });
    // The IPv6 gateway addresses too: dnsmasq's RA and the ip6 table's guests need them.
    const have6 = (await this.#h.addr.list(n.bridge, { family: 'inet6' })).map((a) => a.cidr);
    for (const x of n.v6) {
      if (!have6.includes(`${x.address}/64`)) await this.#h.addr.add(n.bridge, `${x.address}/64`, { nodad: true }).catch((e) => { if (e?.code !== 'EEXIST') throw e; });
    }
    await this.#h.link.set(n.bridge, { up: true });
    if (n.bandwidth) await this.#h.tc.shape(n.bridge, shapeOptions(n.bandwidth));
    await firewall(new NftTransaction(this.#h, op), n, this.table).commit();
    const fwd = [...this.#forwards.values()].map((e) => e.spec);
    this.#forwards.clear();
    for (let i = 0; i < fwd.length; i++) {
      try {
        await this.forwardPort(fwd[i]);
      } catch (e) {
        // The table was replaced, so the rest have no rules now; they stay recorded (pending)
        // for the next restart() or get() to add, instead of dropping out of the state.
        for (const f of fwd.slice(i)) if (!this.#forwards.has(forwardKey(f))) this.#forwards.set(forwardKey(f), { handles: [], spec: f, pending: true });
        this.#save();
        throw e;
      }
    }
    const problems = await this._reattach([...this.#ports].map(([name, bandwidth]) => ({ name, bandwidth, ...this.#portIds.get(name) })));
    if (this.#dnsmasq) {
      await this.#dnsmasq.stop();
      const d = new Dnsmasq(this.#h, this.#meta.dnsmasq?.binary ?? findDnsmasq(n.dnsmasq)!, dnsmasqConfig(n, this.stateDir));
      trackDnsmasq(d, this.#meta, this.stateDir, this.#meta.dnsmasq?.binary ?? findDnsmasq(n.dnsmasq)!);
      this.#dnsmasq = d;
      await d.start();
    }
    this.#save();
    return problems;
  }

  /**
   * Changes a live network without touching the guests, as `virsh net-update` does: fixed DHCP
   * hosts (`dhcp.hosts`, the whole new list) are rewritten and dnsmasq re-reads them on SIGHUP
   * (same pid); a new DHCP range (`dhcp.start`/`dhcp.end`) restarts dnsmasq only; port forwards
   * are added (`forwards.add`) and removed (`forwards.remove`, by proto, hostPort, hostAddress).
   *
   * @example
   * await net.update({ dhcp: { hosts: [{ mac: '52:54:00:00:00:07', ip: '192.168.122.7', name: 'db' }] } });
   */
  async update(changes: { dhcp?: { hosts?: NetworkDhcp['hosts']; start?: string; end?: string }; dns?: { hosts?: Array<{ ip: string; names: string[] }> }; forwards?: { add?: PortForwardSpec[]; remove?: Array<Pick<PortForwardSpec, 'proto' | 'hostPort' | 'hostAddress'>> } }): Promise<void> {
    const op = 'network.update';
    this.#alive(op);
    const c = v.object(op, 'changes', changes);
    v.knownKeys(op, '', c, ['dhcp', 'dns', 'forwards']);
    const input = { ...(this.#meta.spec ?? {}) };
    let newNorm: Norm | undefined;
    let rangeChanged = false, hostsChanged = false;
    if (c.dhcp !== undefined) {
      const d = v.object(op, 'dhcp', c.dhcp);
      v.knownKeys(op, 'dhcp', d, ['hosts', 'start', 'end']);
      if (!this.#n.dhcp || !this.#dnsmasq) throw v.rangeError(op, 'dhcp', 'the network has no DHCP server to update');
      input.dhcp = { ...input.dhcp, ...(d.hosts !== undefined ? { hosts: d.hosts } : {}), ...(d.start !== undefined ? { start: d.start } : {}), ...(d.end !== undefined ? { end: d.end } : {}) };
      // leaseMax followed the old range unless the caller set it.
      if ((d.start !== undefined || d.end !== undefined) && this.#meta.spec?.dhcp?.leaseMax === undefined) delete input.dhcp.leaseMax;
      newNorm = normalize(op, input);
      rangeChanged = newNorm.dhcp!.start !== this.#n.dhcp.start || newNorm.dhcp!.end !== this.#n.dhcp.end;
      hostsChanged = d.hosts !== undefined;
      if (hostsChanged) dnsmasqHostsFile(newNorm.dhcp!.hosts);
    }
    let dnsHostsChanged = false;
    if (c.dns !== undefined) {
      const d = v.object(op, 'dns', c.dns);
      v.knownKeys(op, 'dns', d, ['hosts']);
      if (!this.#n.dns.enable || !this.#dnsmasq) throw v.rangeError(op, 'dns', 'the network answers no DNS to update');
      const cur = input.dns === undefined || input.dns === true ? {} : input.dns;
      if (d.hosts !== undefined) { input.dns = { ...cur, hosts: d.hosts }; dnsHostsChanged = true; }
      newNorm = normalize(op, input);
      if (newNorm.dhcp && this.#n.dhcp) rangeChanged ||= newNorm.dhcp.start !== this.#n.dhcp.start || newNorm.dhcp.end !== this.#n.dhcp.end;
    }
    let adds: PortForwardSpec[] = [], removes: Array<Record<string, unknown>> = [];
    if (c.forwards !== undefined) {
      const f = v.object(op, 'forwards', c.forwards);
      v.knownKeys(op, 'forwards', f, ['add', 'remove']);
      if (f.add !== undefined && !Array.isArray(f.add)) throw v.typeError(op, 'forwards.add', 'must be an array');
      if (f.remove !== undefined && !Array.isArray(f.remove)) throw v.typeError(op, 'forwards.remove', 'must be an array');
      adds = (f.add ?? []) as PortForwardSpec[];
      removes = ((f.remove ?? []) as unknown[]).map((r, i) => {
        const o = v.object(op, `forwards.remove[${i}]`, r);
        v.knownKeys(op, `forwards.remove[${i}]`, o, ['proto', 'hostPort', 'hostAddress', 'guest', 'guestPort']);
        const key = forwardKey({ proto: v.oneOf(op, `forwards.remove[${i}].proto`, o.proto, ['tcp', 'udp'] as const), hostPort: v.uint(op, `forwards.remove[${i}].hostPort`, o.hostPort, 1, 65535), hostAddress: o.hostAddress as string | undefined });
        if (!this.#forwards.has(key)) throw v.rangeError(op, `forwards.remove[${i}]`, `no forward ${key} on this network`);
        return { key };
      });
    }
    if (newNorm) {
      const cfg = dnsmasqConfig(newNorm, this.stateDir);
      dnsmasqConf(cfg);
      const was = { n: this.#n, spec: this.#meta.spec };
      this.#meta.spec = input;
      inputs.set(newNorm, input);
      this.#n = newNorm;
      const binary = this.#meta.dnsmasq?.binary ?? findDnsmasq(newNorm.dnsmasq)!;
      const start = async (c: DnsmasqConfig) => {
        const d = new Dnsmasq(this.#h, binary, c);
        trackDnsmasq(d, this.#meta, this.stateDir, binary);
        this.#dnsmasq = d;
        await d.start();
      };
      let stopped = false;
      try {
        if (rangeChanged) {
          // A new range is a new conf: dnsmasq alone restarts; bridge, firewall and guests stay.
          await this.#dnsmasq!.stop();
          stopped = true;
          await start(cfg);
        } else {
          if (hostsChanged) this.#dnsmasq!.setHosts(newNorm.dhcp!.hosts);
          if (dnsHostsChanged) this.#dnsmasq!.setDnsHosts(newNorm.dns.hosts);
          if (hostsChanged || dnsHostsChanged) await this.#dnsmasq!.settled();
        }
      } catch (e) {
        // Whatever failed, the network records what it had; a new range whose dnsmasq could not
        // start gets the old range back, with a dnsmasq serving it.
        this.#n = was.n;
        this.#meta.spec = was.spec;
        if (stopped) await start(dnsmasqConfig(was.n, this.stateDir)).catch(() => { /* the first error is the one to report */ });
        throw e;
      } finally {
        this.#save();
      }
    }
    for (const r of removes) {
      // Looked up again: a concurrent remove() may have taken it during an await above.
      const entry = this.#forwards.get(String(r.key));
      if (entry) await this.#forwardObject(String(r.key), entry).remove();
    }
    // The forwards this call added go again if a later one fails: all of them or none.
    const added: PortForward[] = [];
    try {
      for (const a of adds) added.push(await this.forwardPort(a));
    } catch (e) {
      for (const f of added.reverse()) await f.remove().catch(() => {});
      throw e;
    }
  }

  /**
   * Removes everything the network created and nothing else: dnsmasq (by pid), its table,
   * its bridge (with the address), its state directory; and IPv4 forwarding goes back to
   * what it was when no other vnetlink network remains here. Safe to call twice.
   * Equivalent to: `virsh net-destroy default`.
   */
  destroy(): Promise<void> {
    if (!this.#destroyed) this.#destroyed = this.#destroy();
    return this.#destroyed;
  }

  async #destroy(): Promise<void> {
    const errors: unknown[] = [];
    const step = async (fn: () => Promise<unknown>) => { try { await fn(); } catch (e) { errors.push(e); } };
    const gone = (e: any) => { if (e?.code !== 'ENODEV' && e?.code !== 'ENOENT') throw e; };
    // dnsmasq takes ~10-20 ms to exit and the bridge an RCU wait to go: do both at once
    // (bind-dynamic dnsmasq does not mind its interface leaving first).
    let daemonLives = false;
    await Promise.all([
      step(async () => this.#dnsmasq?.stop().catch((e) => { daemonLives = true; throw e; })),
      (async () => {
        await step(() => this.#h.nft.delTable('ip', this.table).catch(gone));
        if (this.#n.v6.length) await step(() => this.#h.nft.delTable('ip6', this.table).catch(gone));
        // Shaping the network gave its guests' taps (and the bridge's ifb) goes with it.
        // Shaping of a port another network took since is that network's: left alone.
        for (const p of this.#ports.keys()) {
          await step(async () => {
            const l = await this.#h.link.get(p).catch((e) => { gone(e); return undefined; });
            if (l && this.#shapedByUs(l)) await this.#h.tc.unshape(p).catch(gone);
          });
        }
        if (this.#n.bandwidth) await step(() => this.#h.tc.unshape(this.bridge).catch(gone));
        // Only our bridge: a link of that name someone made since (ours deleted underneath)
        // is theirs. By index, so the one checked is the one deleted.
        await step(async () => {
          const l = await this.#h.link.get(this.bridge).catch((e) => { gone(e); return undefined; });
          const ours = this.#meta.bridgeIndex !== undefined ? l?.index === this.#meta.bridgeIndex : l?.alias === TAG + this.name;
          if (l && l.kind === 'bridge' && ours) await this.#h.link.del(l.index).catch(gone);
        });
      })(),
    ]);
    const before = this.#meta.ipForwardBefore, before6 = this.#meta.ip6ForwardBefore;
    if ((before !== undefined && before !== '1') || (before6 !== undefined && before6 !== '1'))
      await step(async () => {
        if (await otherNetworks(this.#h, this.name)) return;
        if (before !== undefined && before !== '1') await this.#h.sysctl.set('net.ipv4.ip_forward', before);
        if (before6 !== undefined && before6 !== '1') await this.#h.sysctl.set('net.ipv6.conf.all.forwarding', before6);
      });
    // A dnsmasq that outlived its SIGKILL still runs from these files: its pid and conf stay, so
    // a later cleanup() can still find and stop it (as #cleanup itself refuses to go on).
    if (!daemonLives) await step(async () => removeStateDir(this.stateDir, this.name));
    this.#unlock();
    live.delete(this.stateDir);
    if (errors.length) throw errors[0];
  }
}
