// wireguard: the link's golden bytes everywhere; where the kernel has the module, two hosts
// complete a handshake and ping over the tunnel, and `wg show` agrees with nl.wireguard.get
// (the public key the kernel derived, the peer, its handshake and counters). NODE_DEBUG traces
// of the real exchange never carry the private key. Where the kernel lacks it, a clear refusal.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkError, type Handle } from '../../lib/index.js';
import { Namespaces, hasTool, inKernelGuest, ipLinks, kindAvailable, nsExec, nsRun, waitFor } from '../helpers.js';
import { expectGolden, goldenLayout } from './golden.js';
import { expectRefused, twoHosts, type Hosts } from './tunnel-helpers.js';

const genkey = () => spawnSync('wg', ['genkey'], { encoding: 'utf8' }).stdout.trim();
const pubkey = (k: string) => spawnSync('wg', ['pubkey'], { input: k, encoding: 'utf8' }).stdout.trim();

describe('wireguard link kind', () => {
  const nss = new Namespaces();
  let h: Handle;
  let hosts: Hosts;

  beforeAll(async () => {
    h = await goldenLayout(nss, 'kwgg');
    hosts = await twoHosts(nss, 'kwg');
  });
  afterAll(async () => {
    await h?.close();
    await hosts?.a.close();
    await hosts?.b.close();
    await nss.cleanup();
  });

  it('encodes as iproute2 does', async () => {
    await expectGolden(h, 'wireguard', { 'ip link add wg0 type wireguard': { kind: 'wireguard', name: 'wg0' } });
  });

  it('two hosts handshake and ping over the tunnel, and wg show agrees; or the kernel refuses clearly', async () => {
    const present = await kindAvailable('wireguard');
    if (inKernelGuest) expect(present, 'the wireguard module in the guest kernel').toBe(true);
    const { A, a } = hosts;
    if (!present) {
      await expectRefused(A, a.link.add({ kind: 'wireguard', name: 'wg0' }), 'wireguard', ['lo', 'u0']);
    } else {
      await handshakeAndPing(hosts);
    }
  });
});

async function handshakeAndPing({ A, a, b }: Hosts): Promise<void> {
    hasTool('wg');
    const [ka, kb] = [genkey(), genkey()];
    const [pa, pb] = [pubkey(ka), pubkey(kb)];
    expect(pa).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    await a.link.add({ kind: 'wireguard', name: 'wg0' });
    await b.link.add({ kind: 'wireguard', name: 'wg0' });
    expect((await ipLinks(A, 'wg0'))[0].linkinfo.info_kind).toBe('wireguard');
    await a.wireguard.set('wg0', { privateKey: ka, listenPort: 51820, peers: [{ publicKey: pb, endpoint: '198.51.100.2:51820', allowedIps: ['198.51.100.130/32'] }] });
    await b.wireguard.set('wg0', { privateKey: kb, listenPort: 51820, peers: [{ publicKey: pa, endpoint: '198.51.100.1:51820', allowedIps: ['198.51.100.129/32'], persistentKeepalive: 25 }] });
    await a.addr.add('wg0', '198.51.100.129/25');
    await b.addr.add('wg0', '198.51.100.130/25');
    await a.link.set('wg0', { up: true });
    await b.link.set('wg0', { up: true });
    // The first packets start the handshake: ping until one answer comes back.
    await waitFor(async () => (await nsRun(A, 'ping', ['-c', '1', '-W', '2', '198.51.100.130'])).code === 0, 'a ping over the tunnel', 60_000, 200);

    const dev = await a.wireguard.get('wg0');
    expect(dev).toMatchObject({ name: 'wg0', publicKey: pa, hasPrivateKey: true, listenPort: 51820, fwmark: 0 });
    expect(dev.privateKey).toBeUndefined();
    expect(dev.peers).toHaveLength(1);
    const p = dev.peers[0];
    expect(p).toMatchObject({ publicKey: pb, hasPresharedKey: false, endpoint: '198.51.100.2:51820', allowedIps: ['198.51.100.130/32'], persistentKeepalive: 0 });
    expect(p.lastHandshake).toBeInstanceOf(Date);
    expect(p.rxBytes).toBeGreaterThan(0);
    expect(p.txBytes).toBeGreaterThan(0);
    expect((await b.wireguard.get('wg0')).peers[0].persistentKeepalive).toBe(25);
    // wg show wg0 dump: the device line, then one line per peer (tab-separated).
    const [devLine, peerLine, ...rest] = (await nsExec(A, 'wg', ['show', 'wg0', 'dump'])).trim().split('\n').map((l) => l.split('\t'));
    expect(rest).toEqual([]);
    expect(devLine).toEqual([ka, pa, '51820', 'off']);
    expect(peerLine.slice(0, 4)).toEqual([pb, '(none)', '198.51.100.2:51820', '198.51.100.130/32']);
    expect(Number(peerLine[4])).toBe(Math.floor(p.lastHandshake!.getTime() / 1000));
    expect(Number(peerLine[5])).toBeGreaterThanOrEqual(p.rxBytes);
    expect((await a.wireguard.get('wg0', { secrets: true })).privateKey).toBe(ka);

    // A trace of the real exchange names the family and hides the keys both ways.
    const url = new URL('../../dist/index.js', import.meta.url).href;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', `
      import { open } from ${JSON.stringify(url)};
      const nl = await open({ netns: ${JSON.stringify(A.name)} });
      await nl.wireguard.set('wg0', { privateKey: ${JSON.stringify(ka)} });
      await nl.wireguard.get('wg0');
      await nl.close();`], { encoding: 'utf8', env: { ...process.env, NODE_DEBUG: 'vnetlink' } });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/> GENL\(wireguard\) flags=REQUEST,ACK .* 3=<secret, 32 bytes>/);
    expect(r.stderr).toMatch(/< GENL\(wireguard\) .* 3=<secret, 32 bytes>/);
    const raw = Buffer.from(ka, 'base64');
    for (const form of [ka, raw.toString('hex'), raw.subarray(0, 8).toString('hex')]) expect(r.stderr).not.toContain(form);

    // Peers go as wg set ... remove and wg setconf would take them.
    await a.wireguard.set('wg0', { peers: [{ publicKey: pb, remove: true }] });
    expect((await nsExec(A, 'wg', ['show', 'wg0', 'peers'])).trim()).toBe('');
    await a.wireguard.set('wg0', { peers: [{ publicKey: pb, allowedIps: ['198.51.100.130/32'] }] });
    await a.wireguard.set('wg0', { replacePeers: true, peers: [] });
    expect((await nsExec(A, 'wg', ['show', 'wg0', 'peers'])).trim()).toBe('');
    // A device that is not a WireGuard one is the kernel's EOPNOTSUPP.
    const e = await a.wireguard.set('u0', { listenPort: 1 }).catch((x) => x);
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e.code).toBe('EOPNOTSUPP');
}
