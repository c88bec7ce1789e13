// Generic netlink family resolution and the WireGuard configuration codec. The family lookup
// is compared with the bytes `wg` itself sends (captured here: test/fixtures/genl-golden.json)
// and with `genl ctrl get` against this kernel. This kernel has no wireguard family, so
// `wg set` never gets past the lookup: the SET_DEVICE bytes are compared with expectations
// written by hand from include/uapi/linux/wireguard.h (below, attribute by attribute), and
// the behaviour (handshake, ping, `wg show`) is proven in test/kinds/wireguard.test.ts where
// the kernel has the module.
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkError, open, type Handle, type Netns } from '../lib/index.js';
import { Namespaces, nsExec, privilegedSkipReason } from './helpers.js';

const skip = privilegedSkipReason();
const golden = JSON.parse(fs.readFileSync(new URL('./fixtures/genl-golden.json', import.meta.url), 'utf8')) as { tool: string; requests: Record<string, string> };

// Fixed keys: any 32 bytes are a valid Curve25519 private key (the kernel clamps it).
const K = (byte: number) => Buffer.alloc(32, byte).toString('base64');
const PRIV = K(0x11), PEER = K(0x22), PSK = K(0x33), PEER2 = K(0x44);
const FAM = 0x15; // an arbitrary family id for encoding without a kernel

// Hand-assembled from the uapi header: each line is one attribute, lengths written out.
const hx = (...parts: string[]) => Buffer.from(parts.join('').replace(/\s+/g, ''), 'hex');
const key = (byte: number) => Buffer.alloc(32, byte).toString('hex');
const nlhdr = (len: number) => {
  const b = Buffer.alloc(16);
  b.writeUInt32LE(len, 0); b.writeUInt16LE(FAM, 4); b.writeUInt16LE(0x0005, 6); // NLM_F_REQUEST|NLM_F_ACK
  return b.toString('hex');
};
const expected: Record<string, Buffer> = {
  // wg set wg0 private-key K11 listen-port 51820 fwmark 0x10 peer K22 preshared-key K33
  //   endpoint 198.51.100.2:51820 persistent-keepalive 25 allowed-ips 10.0.0.0/24,fd00::/64
  full: hx(nlhdr(260),
    '01 01 00 00',                              // genlmsghdr: WG_CMD_SET_DEVICE, WG_GENL_VERSION 1
    '08 00 02 00', '77 67 30 00',               // WGDEVICE_A_IFNAME "wg0\0"
    '24 00 03 00', key(0x11),                   // WGDEVICE_A_PRIVATE_KEY (32 bytes)
    '06 00 06 00', '6c ca 00 00',               // WGDEVICE_A_LISTEN_PORT u16 51820 (host order), padded
    '08 00 07 00', '10 00 00 00',               // WGDEVICE_A_FWMARK u32 0x10
    'b4 00 08 80',                              // WGDEVICE_A_PEERS | NLA_F_NESTED, 180 bytes
    'b0 00 00 80',                              //   peer 0 | NLA_F_NESTED, 176 bytes
    '24 00 01 00', key(0x22),                   //     WGPEER_A_PUBLIC_KEY
    '24 00 02 00', key(0x33),                   //     WGPEER_A_PRESHARED_KEY
    '14 00 04 00', '02 00 ca 6c c6 33 64 02 00 00 00 00 00 00 00 00', // WGPEER_A_ENDPOINT sockaddr_in: AF_INET, port 51820 (network order), 198.51.100.2, zero
    '06 00 05 00', '19 00 00 00',               //     WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL u16 25
    '48 00 09 80',                              //     WGPEER_A_ALLOWEDIPS | NLA_F_NESTED, 72 bytes
    '1c 00 00 80',                              //       entry, 28 bytes
    '06 00 01 00', '02 00 00 00',               //         WGALLOWEDIP_A_FAMILY AF_INET
    '08 00 02 00', '0a 00 00 00',               //         WGALLOWEDIP_A_IPADDR 10.0.0.0
    '05 00 03 00', '18 00 00 00',               //         WGALLOWEDIP_A_CIDR_MASK 24
    '28 00 00 80',                              //       entry, 40 bytes
    '06 00 01 00', '0a 00 00 00',               //         WGALLOWEDIP_A_FAMILY AF_INET6
    '14 00 02 00', 'fd 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00', // WGALLOWEDIP_A_IPADDR fd00::
    '05 00 03 00', '40 00 00 00'),              //         WGALLOWEDIP_A_CIDR_MASK 64
  // wg set wg0 peer K22 remove  (plus replace-peers as wg setconf sends it: WGDEVICE_F_REPLACE_PEERS)
  remove: hx(nlhdr(88),
    '01 01 00 00',
    '08 00 02 00', '77 67 30 00',               // WGDEVICE_A_IFNAME
    '08 00 05 00', '01 00 00 00',               // WGDEVICE_A_FLAGS WGDEVICE_F_REPLACE_PEERS
    '34 00 08 80',                              // WGDEVICE_A_PEERS, 52 bytes
    '30 00 00 80',                              //   peer, 48 bytes
    '24 00 01 00', key(0x22),                   //     WGPEER_A_PUBLIC_KEY
    '08 00 03 00', '01 00 00 00'),              //     WGPEER_A_FLAGS WGPEER_F_REMOVE_ME
  // wg set wg0 peer K44 endpoint [2001:db8::2]:51820 allowed-ips ::/0  (replace-allowed-ips: WGPEER_F_REPLACE_ALLOWEDIPS)
  ipv6: hx(nlhdr(156),
    '01 01 00 00',
    '08 00 02 00', '77 67 30 00',
    '80 00 08 80',                              // WGDEVICE_A_PEERS, 128 bytes
    '7c 00 00 80',                              //   peer, 124 bytes
    '24 00 01 00', key(0x44),                   //     WGPEER_A_PUBLIC_KEY
    '08 00 03 00', '02 00 00 00',               //     WGPEER_A_FLAGS WGPEER_F_REPLACE_ALLOWEDIPS
    '20 00 04 00', '0a 00 ca 6c 00 00 00 00 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 02 00 00 00 00', // sockaddr_in6: AF_INET6, port, flowinfo 0, 2001:db8::2, scope 0
    '2c 00 09 80',                              //     WGPEER_A_ALLOWEDIPS, 44 bytes
    '28 00 00 80',                              //       entry, 40 bytes
    '06 00 01 00', '0a 00 00 00',
    '14 00 02 00', '00'.repeat(16),
    '05 00 03 00', '00 00 00 00'),              //         /0
};

describe('wireguard codec (no root needed)', () => {
  let nl: Handle;
  beforeAll(async () => { nl = await open(); });
  afterAll(async () => { await nl?.close(); });

  it(`resolves families with the request ${golden.tool} sends (CTRL_CMD_GETFAMILY by name)`, async () => {
    const label = 'wg set wg0 listen-port 51820';
    const b = await nl.genl._encode('wireguard');
    b.fill(0, 8, 16);
    expect(b.toString('hex')).toBe(golden.requests[label]);
  });

  it('encodes a device with a peer exactly as derived from the uapi header', async () => {
    const [m, ...rest] = await nl.wireguard.encode('wg0', {
      privateKey: PRIV, listenPort: 51820, fwmark: 0x10,
      peers: [{ publicKey: PEER, presharedKey: PSK, endpoint: '198.51.100.2:51820', persistentKeepalive: 25, allowedIps: ['10.0.0.0/24', 'fd00::/64'] }],
    }, { familyId: FAM });
    expect(rest).toEqual([]);
    expect(m.toString('hex')).toBe(expected.full.toString('hex'));
  });

  it('encodes peer removal with replacePeers, and an IPv6 endpoint with replaceAllowedIps', async () => {
    const [rm] = await nl.wireguard.encode('wg0', { replacePeers: true, peers: [{ publicKey: PEER, remove: true }] }, { familyId: FAM });
    expect(rm.toString('hex')).toBe(expected.remove.toString('hex'));
    const [v6] = await nl.wireguard.encode('wg0', { peers: [{ publicKey: PEER2, endpoint: '[2001:db8::2]:51820', allowedIps: ['::/0'], replaceAllowedIps: true }] }, { familyId: FAM });
    expect(v6.toString('hex')).toBe(expected.ipv6.toString('hex'));
  });

  it('set is all or nothing: when any request fails (the only one too: the kernel applies it step by step), the device read before is put back', async () => {
    // The device before: a key, a port, a fwmark and one peer with an endpoint and two prefixes.
    const before = await nl.wireguard.encode('wg0', { privateKey: PRIV, listenPort: 51000, fwmark: 7,
      peers: [{ publicKey: PEER, presharedKey: PSK, endpoint: '198.51.100.2:51820', allowedIps: ['10.0.0.2/32', '10.1.0.0/16'], persistentKeepalive: 25 }] }, { familyId: FAM });
    const want = await nl.wireguard._decode(Buffer.concat(before), { secrets: true });
    const change = { privateKey: K(0x55), listenPort: 52000, replacePeers: true, peers: [{ publicKey: PEER2, allowedIps: ['10.9.0.0/24'] }] };
    const one = await nl.wireguard.encode('wg0', change, { familyId: FAM });
    expect(one).toHaveLength(1);
    // The one request fails (say the kernel set the key, then could not add the peer: ENOMEM).
    const r = await nl.wireguard._testSet('wg0', change, { familyId: FAM, before: Buffer.concat(before), failAt: 0, errno: 12 });
    expect(r.errno).toBe(12);
    expect(r.sent[0].toString('hex')).toBe(one[0].toString('hex'));
    const restore = r.sent.slice(1);
    expect(restore.length).toBeGreaterThanOrEqual(1);
    // Read back, the restoring requests describe exactly the device before, replacing its peers
    // (and each peer's prefixes) so nothing of the failed change stays.
    const back = await nl.wireguard._decode(Buffer.concat(restore), { secrets: true });
    expect(back).toEqual(want);
    expect(restore[0].includes(Buffer.from('0800050001000000', 'hex'))).toBe(true);   // WGDEVICE_A_FLAGS REPLACE_PEERS
    // A configuration cut in several requests: the second failing restores the same way.
    const many = Array.from({ length: 3000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
    const big = { replacePeers: true, peers: [{ publicKey: PEER2, allowedIps: many }] };
    const parts = await nl.wireguard.encode('wg0', big, { familyId: FAM });
    expect(parts.length).toBeGreaterThan(1);
    const r2 = await nl.wireguard._testSet('wg0', big, { familyId: FAM, before: Buffer.concat(before), failAt: 1, errno: 7 });
    expect(r2.errno).toBe(7);
    expect(r2.sent.slice(0, 2).map((b) => b.toString('hex'))).toEqual(parts.slice(0, 2).map((b) => b.toString('hex')));
    expect(await nl.wireguard._decode(Buffer.concat(r2.sent.slice(2)), { secrets: true })).toEqual(want);
    // Nothing fails: the requests as encoded, nothing more.
    const ok = await nl.wireguard._testSet('wg0', change, { familyId: FAM, before: Buffer.concat(before), failAt: 99, errno: 12 });
    expect(ok.errno).toBeUndefined();
    expect(ok.sent.map((b) => b.toString('hex'))).toEqual(one.map((b) => b.toString('hex')));
  });

  it('splits a configuration too large for one request; the later ones carry only the name and the rest of the peers', async () => {
    const many = Array.from({ length: 3000 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
    const msgs = await nl.wireguard.encode('wg0', {
      privateKey: PRIV, listenPort: 1, replacePeers: true,
      peers: [{ publicKey: PEER, allowedIps: many, replaceAllowedIps: true }, { publicKey: PEER2, allowedIps: ['fd00::/64'] }],
    }, { familyId: FAM });
    expect(msgs.length).toBeGreaterThan(1);
    for (const m of msgs) {
      expect(m.readUInt32LE(0)).toBe(m.length);
      expect(m.length).toBeLessThanOrEqual(32 * 1024);
    }
    const dec = await Promise.all(msgs.map((m) => nl.wireguard._decode(m, { secrets: true })));
    // Only the first carries the device settings (the private key, the port, REPLACE_PEERS).
    expect(dec[0].privateKey).toBe(PRIV);
    expect(dec[0].listenPort).toBe(1);
    expect(msgs[0].includes(Buffer.from('0800050001000000', 'hex'))).toBe(true);
    for (const d of dec.slice(1)) { expect(d.privateKey).toBeUndefined(); expect(d.listenPort).toBe(0); }
    for (const m of msgs.slice(1)) expect(m.includes(Buffer.from('0800050001000000', 'hex'))).toBe(false);
    // Read back as one stream, the peers and every allowed IP are there, in order.
    const all = await nl.wireguard._decode(Buffer.concat(msgs));
    expect(all.peers.map((p) => p.publicKey)).toEqual([PEER, PEER2]);
    expect(all.peers[0].allowedIps).toEqual(many);
    expect(all.peers[1].allowedIps).toEqual(['fd00::/64']);
    // REPLACE_ALLOWEDIPS (flags 2) goes with the peer's first part only.
    const flagAttr = Buffer.from('0800030002000000', 'hex');
    expect(msgs.filter((m) => m.includes(flagAttr)).length).toBe(1);
  });

  const getHdr = (len: number) => { const b = Buffer.alloc(16); b.writeUInt32LE(len, 0); b.writeUInt16LE(FAM, 4); b.writeUInt16LE(0x0002, 6); return b.toString('hex'); }; // NLM_F_MULTI
  const dump = [
    hx(getHdr(284), '00 01 00 00',              // genlmsghdr: cmd 0 (GET_DEVICE), version 1
      '08 00 01 00', '07 00 00 00',             // WGDEVICE_A_IFINDEX 7
      '08 00 02 00', '77 67 30 00',             // WGDEVICE_A_IFNAME "wg0"
      '24 00 03 00', key(0x11),                 // WGDEVICE_A_PRIVATE_KEY (sent to CAP_NET_ADMIN)
      '24 00 04 00', key(0x55),                 // WGDEVICE_A_PUBLIC_KEY
      '06 00 06 00', '6c ca 00 00',             // WGDEVICE_A_LISTEN_PORT 51820
      '08 00 07 00', '00 00 00 00',             // WGDEVICE_A_FWMARK 0
      'a0 00 08 80',                            // WGDEVICE_A_PEERS, 160 bytes
      '9c 00 00 80',                            //   peer, 156 bytes
      '24 00 01 00', key(0x22),                 //     WGPEER_A_PUBLIC_KEY
      '24 00 02 00', '00'.repeat(32),           //     WGPEER_A_PRESHARED_KEY all zeros: none
      '14 00 04 00', '02 00 ca 6c c6 33 64 02 00 00 00 00 00 00 00 00', // WGPEER_A_ENDPOINT 198.51.100.2:51820
      '06 00 05 00', '19 00 00 00',             //     WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL 25
      '14 00 06 00', '00 f1 53 65 00 00 00 00', '00 65 cd 1d 00 00 00 00', // LAST_HANDSHAKE_TIME {1700000000 s, 500000000 ns}
      '0c 00 07 00', 'e8 03 00 00 00 00 00 00', //     WGPEER_A_RX_BYTES 1000
      '0c 00 08 00', 'd0 07 00 00 00 00 00 00', //     WGPEER_A_TX_BYTES 2000
      '08 00 0a 00', '01 00 00 00'),            //     WGPEER_A_PROTOCOL_VERSION 1
    // The kernel ran out of room: the same peer again, with only its key and allowed IPs.
    hx(getHdr(104), '00 01 00 00',
      '08 00 02 00', '77 67 30 00',
      '4c 00 08 80',                            // WGDEVICE_A_PEERS, 76 bytes
      '48 00 00 80',                            //   peer, 72 bytes
      '24 00 01 00', key(0x22),
      '20 00 09 80',                            //     WGPEER_A_ALLOWEDIPS, 32 bytes
      '1c 00 00 80', '06 00 01 00 02 00 00 00', '08 00 02 00 0a 00 00 00', '05 00 03 00 18 00 00 00'),
  ];

  it('decodes a GET_DEVICE dump, coalescing a peer the kernel continued in the next message', async () => {
    const d = await nl.wireguard._decode(Buffer.concat(dump));
    expect(d).toMatchObject({ name: 'wg0', index: 7, publicKey: K(0x55), hasPrivateKey: true, listenPort: 51820, fwmark: 0 });
    expect(d.privateKey).toBeUndefined();
    expect(d.peers).toEqual([{
      publicKey: PEER, hasPresharedKey: false, endpoint: '198.51.100.2:51820', allowedIps: ['10.0.0.0/24'],
      persistentKeepalive: 25, lastHandshake: new Date(1_700_000_000_500), rxBytes: 1000, txBytes: 2000, protocolVersion: 1,
    }]);
    expect((await nl.wireguard._decode(Buffer.concat(dump), { secrets: true })).privateKey).toBe(PRIV);
  });

  it('survives corrupted replies: every mutation decodes or fails with an error, never a crash', async () => {
    let seed = 0x2545f491;
    const rnd = () => { seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5; return (seed >>> 0) / 2 ** 32; };
    const base = Buffer.concat(dump);
    let decoded = 0, refused = 0;
    for (let i = 0; i < 300; i++) {
      const b = Buffer.from(base);
      for (let j = 0; j < 1 + Math.floor(rnd() * 4); j++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
      try { await nl.wireguard._decode(b); decoded++; } catch (e) { expect(e).toBeInstanceOf(Error); refused++; }
    }
    expect(decoded + refused).toBe(300);
  });

  it('refuses bad input naming the field, never echoing a key', async () => {
    const secret = PRIV.slice(0, 43) + '!';
    const e = await nl.wireguard.set('wg0', { privateKey: secret }).catch((x) => x);
    expect(e).toBeInstanceOf(RangeError);
    expect(e.message).toMatch(/^wireguard\.set: privateKey: must be a base64 WireGuard key/);
    expect(e.message).not.toContain(secret);
    expect(e.message).not.toContain(PRIV.slice(0, 20));
    await expect(nl.wireguard.set('wg0', { privateKey: Buffer.alloc(31).toString('base64') })).rejects.toThrow(/privateKey: must be a base64 WireGuard key: 32 bytes/);
    await expect(nl.wireguard.set('wg0', { peers: [{ publicKey: PEER, presharedKey: 'short' }] })).rejects.toThrow(/peers\[0\]\.presharedKey: must be/);
    await expect(nl.wireguard.set('wg0', { peers: [{ allowedIps: [] } as any] })).rejects.toThrow(/peers\[0\]\.publicKey: is required/);
    await expect(nl.wireguard.set('wg0', { peers: [{ publicKey: PEER, endpoint: '2001:db8::1:51820' }] })).rejects.toThrow(/peers\[0\]\.endpoint: must be "ip:port" or "\[ip6\]:port"/);
    await expect(nl.wireguard.set('wg0', { peers: [{ publicKey: PEER, endpoint: '[198.51.100.1]:51820' }] })).rejects.toThrow(/is not an IPv6 address/);
    await expect(nl.wireguard.set('wg0', { peers: [{ publicKey: PEER, endpoint: '198.51.100.1:0' }] })).rejects.toThrow(/port must be 1–65535/);
    await expect(nl.wireguard.set('wg0', { peers: [{ publicKey: PEER, allowedIps: ['10.0.0.0/33'] }] })).rejects.toThrow(/peers\[0\]\.allowedIps\[0\]: prefix length/);
    await expect(nl.wireguard.set('wg0', { peers: [{ publicKey: PEER, remove: true, allowedIps: ['10.0.0.0/8'] }] })).rejects.toThrow(/peers\[0\]\.allowedIps: a peer being removed takes no other settings/);
    await expect(nl.wireguard.set('wg0', { peers: [{ publicKey: PEER }, { publicKey: PEER }] })).rejects.toThrow(/peers\[1\]\.publicKey: is the same peer as peers\[0\]/);
    await expect(nl.wireguard.set('wg0', { listenPort: 70000 })).rejects.toThrow(/listenPort: must be between 0 and 65535/);
    await expect(nl.wireguard.set('wg0', { privatekey: PRIV } as any)).rejects.toThrow(/privatekey: unknown option/);
    await expect(nl.wireguard.set('bad/name', {})).rejects.toThrow(/dev: must not contain/);
  });
});

describe.skipIf(skip)('generic netlink against this kernel', () => {
  const nss = new Namespaces();
  let N: Netns;
  let nl: Handle;
  beforeAll(async () => { N = await nss.create('genl'); nl = await open({ netns: N }); });
  afterAll(async () => { await nl?.close(); await nss.cleanup(); });

  it('resolves the controller family as `genl ctrl get name nlctrl` shows it', async () => {
    const f = await nl.genl.family('nlctrl');
    const out = await nsExec(N, 'genl', ['ctrl', 'get', 'name', 'nlctrl']);
    const id = /ID: (0x[0-9a-f]+)/.exec(out)!, ver = /Version: (0x[0-9a-f]+)/.exec(out)!, max = /max attribs: (\d+)/.exec(out)!;
    expect(f).toMatchObject({ name: 'nlctrl', id: Number(id[1]), version: Number(ver[1]), maxAttr: Number(max[1]) });
    const groups = [...out.matchAll(/ID-(0x[0-9a-f]+) +name: (\S+)/g)].map((m) => [m[2], Number(m[1])]);
    expect(groups.length).toBeGreaterThan(0);
    expect(Object.entries(f.mcastGroups)).toEqual(groups);
    // Cached per handle: the same answer again, without a second lookup changing it.
    expect(await nl.genl.family('nlctrl')).toEqual(f);
  });

  it('names a family the kernel lacks; wireguard.set refuses clearly when the kernel has no wireguard', async () => {
    const e = await nl.genl.family('vnlnosuchfam').catch((x) => x);
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e).toMatchObject({ code: 'ENOENT', op: 'genl.family' });
    expect(e.message).toContain('no generic netlink family "vnlnosuchfam"');
    const haveWg = await nl.genl.family('wireguard').then(() => true, () => false);
    const w = await nl.wireguard.set('lo', { listenPort: 51820 }).catch((x) => x);
    expect(w).toBeInstanceOf(NetlinkError);
    expect(w.op).toBe('wireguard.set');
    // With the module, the kernel refuses a device that is not a WireGuard one.
    if (haveWg) expect(w.code).toBe('EOPNOTSUPP');
    else { expect(w.code).toBe('ENOENT'); expect(w.message).toContain('"wireguard"'); }
  });

  it('NODE_DEBUG=vnetlink never prints a private key', () => {
    const url = new URL('../dist/index.js', import.meta.url).href;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
      import { open } from ${JSON.stringify(url)};
      const nl = await open({ netns: ${JSON.stringify(N.name)} });
      await nl.wireguard.set('lo', { privateKey: ${JSON.stringify(PRIV)}, peers: [{ publicKey: ${JSON.stringify(PEER)}, presharedKey: ${JSON.stringify(PSK)} }] }).catch((e) => console.log(e.code));
      await nl.close();`], { encoding: 'utf8', env: { ...process.env, NODE_DEBUG: 'vnetlink' } });
    expect(r.stderr).toMatch(/call wireguard\.set .*"privateKey":"<secret>"/);
    expect(r.stderr).toMatch(/"presharedKey":"<secret>"/);
    expect(r.stderr).toMatch(/> GENL_CTRL flags=REQUEST,ACK .*genl\{cmd=3 version=1\} attrs: 2="wireguard"/);
    for (const k of [PRIV, PSK]) {
      const raw = Buffer.from(k, 'base64');
      for (const form of [k, raw.toString('hex'), raw.subarray(0, 8).toString('hex'), JSON.stringify([...raw.subarray(0, 4)]).slice(1, -1)])
        expect(r.stderr).not.toContain(form);
    }
  });
});
