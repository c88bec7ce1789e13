// WireGuard configuration (`wg set` / `wg show`) over the kernel's generic netlink `wireguard`
// family, and the generic netlink family resolver itself. Keys cross this file as base64
// strings (as `wg` prints them) and go to the addon as 32-byte buffers; a key's value never
// appears in an error message.
import net from 'node:net';
import type { Handle } from './handle.js';
import * as v from './validate.js';

/** A generic netlink family as the kernel's controller describes it (`genl ctrl get name NAME`). */
export interface GenlFamily {
  name: string;
  /** The message type its requests carry. */
  id: number;
  version: number;
  hdrSize: number;
  maxAttr: number;
  /** Multicast groups by name, with their ids. */
  mcastGroups: Record<string, number>;
}

/** Generic netlink: family resolution (the requests of a family's operations use a per-handle cache). */
export class GenlOps {
  constructor(private readonly h: Handle) {}

  /**
   * Resolves a family by name, asking the kernel's controller each time: an id is the
   * kernel's to hand out when the module registers, and changes when it is reloaded. The
   * answer refreshes the handle's cache, which the family's operations (`wireguard.*`) use;
   * they resolve the name again once when the kernel answers a cached id as a stale one
   * (ENOENT or EOPNOTSUPP). A family the kernel lacks is a NetlinkError ENOENT naming it.
   * Equivalent to: `genl ctrl get name nlctrl`.
   *
   * @example
   * const { id, mcastGroups } = await nl.genl.family('nlctrl');
   */
  async family(name: string): Promise<GenlFamily> {
    const op = 'genl.family';
    return this.h._call(op, { name: familyName(op, name) });
  }

  /** @internal the CTRL_CMD_GETFAMILY request `family` sends (seq 0), for golden-byte tests. */
  async _encode(name: string): Promise<Buffer> {
    return Buffer.from(await this.h._call<Uint8Array>('genl.encode', { name: familyName('genl.encode', name) }));
  }

  /** @internal tests only: the handle's cache then holds `id` for `name`, as a module reload leaves it. */
  async _poisonCache(name: string, id: number): Promise<void> {
    await this.h._call('genl.testPoisonCache', { name: familyName('genl.testPoisonCache', name), id: v.uint('genl.testPoisonCache', 'id', id, 0, 0xffff) });
  }

  /** @internal decodes controller replies (bytes as the kernel sends them). */
  async _decode(bytes: Uint8Array): Promise<GenlFamily[]> {
    return this.h._call('genl.decode', { bytes: Buffer.from(bytes) });
  }
}

function familyName(op: string, name: unknown): string {
  const s = v.str(op, 'name', name, 15);
  if (!/^[\x21-\x7e]{1,15}$/.test(s)) throw v.rangeError(op, 'name', 'must be 1-15 printable characters (GENL_NAMSIZ)');
  return s;
}

/** One peer in `wireguard.set` (`wg set DEV peer KEY ...`). */
export interface WireguardPeerConfig {
  /** The peer's public key, base64 (44 characters, as `wg pubkey` prints it). */
  publicKey: string;
  /** A preshared key, base64; `null` removes the one set. */
  presharedKey?: string | null;
  /** `'203.0.113.2:51820'` or `'[2001:db8::2]:51820'`. */
  endpoint?: string;
  /** Prefixes this peer may send from and is routed to: `['10.0.0.2/32', 'fd00::/64']`. */
  allowedIps?: string[];
  /** Seconds between keepalives, 1–65535; 0 turns them off. */
  persistentKeepalive?: number;
  /** Remove this peer (it takes no other settings then). */
  remove?: boolean;
  /** Replace the peer's allowed IPs with `allowedIps` instead of adding to them. */
  replaceAllowedIps?: boolean;
}

/** The device part of `wireguard.set` (`wg set DEV ...`). Unset fields are left as they are. */
export interface WireguardConfig {
  /** The device's private key, base64; `null` removes it. Never printed in errors or traces. */
  privateKey?: string | null;
  /** UDP port, 0–65535 (0: the kernel picks one). */
  listenPort?: number;
  /** fwmark for the device's outgoing packets (0 clears it). */
  fwmark?: number;
  /** Remove every peer not in `peers` (as `wg setconf` does). */
  replacePeers?: boolean;
  peers?: WireguardPeerConfig[];
}

/** A peer as the kernel reports it (`wg show DEV`). */
export interface WireguardPeer {
  publicKey: string;
  hasPresharedKey: boolean;
  /** Only with `get(dev, { secrets: true })`. */
  presharedKey?: string;
  /** Where the peer was last seen or was configured: `'ip:port'` or `'[ip6]:port'`. */
  endpoint?: string;
  allowedIps: string[];
  /** Seconds; 0 is off. */
  persistentKeepalive: number;
  /** The last completed handshake, or null when there was none. */
  lastHandshake: Date | null;
  rxBytes: number;
  txBytes: number;
  protocolVersion: number;
}

/** A WireGuard device's state (`wg show DEV`). */
export interface WireguardDevice {
  name: string;
  index: number;
  /** Derived by the kernel from the private key; absent while none is set. */
  publicKey?: string;
  hasPrivateKey: boolean;
  /** Only with `get(dev, { secrets: true })`. */
  privateKey?: string;
  listenPort: number;
  fwmark: number;
  peers: WireguardPeer[];
}

const KEY_RE = /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/;

/** A base64 WireGuard key as 32 bytes. The message never repeats the value (it may be secret). */
function key(op: string, field: string, s: unknown): Buffer {
  if (typeof s !== 'string') throw v.typeError(op, field, `must be a base64 WireGuard key string (got ${s === null ? 'null' : typeof s})`);
  if (!KEY_RE.test(s)) {
    throw v.rangeError(op, field, `must be a base64 WireGuard key: 32 bytes, 44 characters ending in "=" (got ${s.length} characters${/^[A-Za-z0-9+/=]*$/.test(s) ? '' : ' with characters outside base64'})`);
  }
  return Buffer.from(s, 'base64');
}

const ZERO_KEY = Buffer.alloc(32);

interface NormEndpoint { family: v.Family; address: string; port: number }

function endpoint(op: string, field: string, s: unknown): NormEndpoint {
  if (typeof s !== 'string') throw v.typeError(op, field, `must be "ip:port" or "[ip6]:port" (got ${typeof s})`);
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:[\]]+):(\d{1,5})$/.exec(s);
  if (!m) throw v.rangeError(op, field, `must be "ip:port" or "[ip6]:port" (got ${JSON.stringify(s)})`);
  // A zone id passes net.isIPv6, but WGPEER_A_ENDPOINT as built here carries no scope: refused.
  if (m[1].includes('%')) throw v.rangeError(op, field, `must not carry a zone id (got ${JSON.stringify(s)})`);
  const bracketed = s.startsWith('[');
  const fam = net.isIPv4(m[1]) ? 'inet' : net.isIPv6(m[1]) ? 'inet6' : undefined;
  if (!fam || (fam === 'inet6') !== bracketed)
    throw v.rangeError(op, field, `${JSON.stringify(m[1])} is not ${bracketed ? 'an IPv6' : 'an IPv4'} address (IPv6 goes in brackets: "[2001:db8::1]:51820")`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw v.rangeError(op, field, `port must be 1–65535 (got ${port})`);
  return { family: fam, address: m[1], port };
}

function formatEndpoint(e: { family: string; address: string; port: number }): string {
  return e.family === 'inet6' ? `[${e.address}]:${e.port}` : `${e.address}:${e.port}`;
}

/** Checks and normalizes a `set` call for the addon. @internal */
export function normWireguardSet(op: string, dev: unknown, cfg: unknown): Record<string, unknown> {
  const out: Record<string, unknown> = { dev: v.ifname(op, 'dev', dev) };
  const c = v.object(op, 'config', cfg);
  v.knownKeys(op, '', c, ['privateKey', 'listenPort', 'fwmark', 'replacePeers', 'peers']);
  if (c.privateKey === null) out.privateKey = ZERO_KEY;
  else if (c.privateKey !== undefined) out.privateKey = key(op, 'privateKey', c.privateKey);
  if (c.listenPort !== undefined) out.listenPort = v.uint(op, 'listenPort', c.listenPort, 0, 65535);
  if (c.fwmark !== undefined) out.fwmark = v.uint(op, 'fwmark', c.fwmark);
  if (c.replacePeers !== undefined) out.replacePeers = v.bool(op, 'replacePeers', c.replacePeers);
  if (c.peers !== undefined) {
    if (!Array.isArray(c.peers)) throw v.typeError(op, 'peers', 'must be an array of peers');
    const seen = new Map<string, number>();
    out.peers = c.peers.map((pv, i) => {
      const f = `peers[${i}]`;
      const p = v.object(op, f, pv);
      v.knownKeys(op, f, p, ['publicKey', 'presharedKey', 'endpoint', 'allowedIps', 'persistentKeepalive', 'remove', 'replaceAllowedIps']);
      if (p.publicKey === undefined) throw v.typeError(op, `${f}.publicKey`, 'is required');
      const pk = key(op, `${f}.publicKey`, p.publicKey);
      const prev = seen.get(pk.toString('base64'));
      if (prev !== undefined) throw v.rangeError(op, `${f}.publicKey`, `is the same peer as peers[${prev}]: give each peer once`);
      seen.set(pk.toString('base64'), i);
      const np: Record<string, unknown> = { publicKey: pk };
      if (p.remove !== undefined) np.remove = v.bool(op, `${f}.remove`, p.remove);
      if (np.remove) {
        const other = Object.keys(p).find((k) => k !== 'publicKey' && k !== 'remove' && p[k] !== undefined);
        if (other) throw v.rangeError(op, `${f}.${other}`, 'a peer being removed takes no other settings');
        return np;
      }
      if (p.presharedKey === null) np.presharedKey = ZERO_KEY;
      else if (p.presharedKey !== undefined) np.presharedKey = key(op, `${f}.presharedKey`, p.presharedKey);
      if (p.endpoint !== undefined) np.endpoint = endpoint(op, `${f}.endpoint`, p.endpoint);
      if (p.persistentKeepalive !== undefined) np.persistentKeepalive = v.uint(op, `${f}.persistentKeepalive`, p.persistentKeepalive, 0, 65535);
      if (p.replaceAllowedIps !== undefined) np.replaceAllowedIps = v.bool(op, `${f}.replaceAllowedIps`, p.replaceAllowedIps);
      if (p.allowedIps !== undefined) {
        if (!Array.isArray(p.allowedIps)) throw v.typeError(op, `${f}.allowedIps`, 'must be an array like ["10.0.0.0/24"]');
        np.allowedIps = p.allowedIps.map((a, j) => v.cidr(op, `${f}.allowedIps[${j}]`, a));
      }
      return np;
    });
  }
  return out;
}

function b64(b: Uint8Array | undefined): string | undefined {
  return b === undefined ? undefined : Buffer.from(b).toString('base64');
}

function fromNativeDevice(d: any): WireguardDevice {
  const out: WireguardDevice = { name: d.name, index: d.index, hasPrivateKey: d.hasPrivateKey, listenPort: d.listenPort, fwmark: d.fwmark, peers: [] };
  if (d.publicKey) out.publicKey = b64(d.publicKey);
  if (d.privateKey) out.privateKey = b64(d.privateKey);
  out.peers = d.peers.map((p: any): WireguardPeer => {
    const peer: WireguardPeer = {
      publicKey: b64(p.publicKey)!, hasPresharedKey: p.hasPresharedKey,
      allowedIps: p.allowedIps.map((a: any) => `${a.address}/${a.prefixLen}`),
      persistentKeepalive: p.persistentKeepalive,
      lastHandshake: p.lastHandshakeSec || p.lastHandshakeNsec ? new Date(p.lastHandshakeSec * 1000 + Math.floor(p.lastHandshakeNsec / 1e6)) : null,
      rxBytes: p.rxBytes, txBytes: p.txBytes, protocolVersion: p.protocolVersion,
    };
    if (p.presharedKey) peer.presharedKey = b64(p.presharedKey);
    if (p.endpoint) peer.endpoint = formatEndpoint(p.endpoint);
    return peer;
  });
  return out;
}

/** WireGuard device configuration: `wg set`, `wg show`. The link itself is `link.add({ kind: 'wireguard' })`. */
export class WireguardOps {
  constructor(private readonly h: Handle) {}

  /**
   * Configures a WireGuard device. Fields left out are left as they are; peers are added or
   * updated (with `replacePeers`, the device ends with exactly these). A configuration larger
   * than one request (thousands of allowed IPs) is sent in several, like `wg setconf`; if a
   * later one fails, the device is put back as it was. Equivalent to:
   * `wg set wg0 private-key FILE listen-port 51820 peer KEY endpoint 203.0.113.2:51820 allowed-ips 10.0.0.2/32`.
   *
   * @example
   * await nl.wireguard.set('wg0', { privateKey, listenPort: 51820,
   *   peers: [{ publicKey: peerKey, endpoint: '198.51.100.2:51820', allowedIps: ['10.0.0.2/32'] }] });
   */
  async set(dev: string, config: WireguardConfig): Promise<void> {
    const op = 'wireguard.set';
    await this.h._call(op, normWireguardSet(op, dev, config));
  }

  /**
   * A device's state as the kernel reports it: its public key (derived from the private
   * key), listen port, fwmark and peers with their endpoints, allowed IPs, last handshake and
   * byte counters. Keys are base64; the private and preshared keys only with `{ secrets: true }`.
   * Equivalent to: `wg show wg0` (`wg showconf wg0` with secrets).
   */
  async get(dev: string, opts: { secrets?: boolean } = {}): Promise<WireguardDevice> {
    const op = 'wireguard.get';
    v.knownKeys(op, 'options', v.object(op, 'options', opts), ['secrets']);
    const secrets = opts.secrets === undefined ? false : v.bool(op, 'secrets', opts.secrets);
    return fromNativeDevice(await this.h._call(op, { dev: v.ifname(op, 'dev', dev), secrets }));
  }

  /**
   * The requests `set` would send, without sending them (seq 0, port 0): for tests and for
   * inspecting what goes to the kernel. `familyId` is the `wireguard` family's id; when left
   * out it is resolved from the kernel (which then must have the family).
   */
  async encode(dev: string, config: WireguardConfig, opts: { familyId?: number } = {}): Promise<Buffer[]> {
    const op = 'wireguard.encode';
    v.knownKeys(op, 'options', v.object(op, 'options', opts), ['familyId']);
    const a = normWireguardSet(op, dev, config);
    if (opts.familyId !== undefined) a.familyId = v.uint(op, 'familyId', opts.familyId, 0x10, 0xffff);
    const msgs: Uint8Array[] = await this.h._call(op, a);
    return msgs.map((m) => Buffer.from(m));
  }

  /**
   * @internal tests only: runs `set`'s all-or-nothing logic against a fake kernel whose device
   * is `before` (GET_DEVICE reply bytes) and whose request number `failAt` fails with `errno`.
   * Returns every request sent (seq 0) and the errno `set` would have rethrown.
   */
  async _testSet(dev: string, config: WireguardConfig, t: { familyId: number; before: Uint8Array; failAt: number; errno: number }):
    Promise<{ sent: Buffer[]; errno?: number }> {
    const op = 'wireguard.testSet';
    const a = normWireguardSet(op, dev, config);
    const r = await this.h._call<{ sent: Uint8Array[]; errno?: number }>(op, { ...a, familyId: t.familyId, before: Buffer.from(t.before), failAt: t.failAt, errno: t.errno });
    return { sent: r.sent.map((m) => Buffer.from(m)), ...(r.errno !== undefined ? { errno: r.errno } : {}) };
  }

  /** @internal decodes WG_CMD_GET_DEVICE reply messages as `get` would (for codec tests). */
  async _decode(bytes: Uint8Array, opts: { secrets?: boolean } = {}): Promise<WireguardDevice> {
    return fromNativeDevice(await this.h._call('wireguard.decode', { bytes: Buffer.from(bytes), secrets: opts.secrets === true }));
  }
}
