// Regressions from the fourth review: an IPv6 zone id ("fe80::1%lo") passed the address checks
// and then failed in the addon as a fake kernel error (NetlinkError EINVAL) instead of naming the field.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NetlinkError, open, type Handle } from '../lib/index.js';
import { Namespaces, privilegedSkipReason } from './helpers.js';

const KEY = Buffer.alloc(32, 7).toString('base64');

describe.skipIf(privilegedSkipReason())('addresses with a zone id', () => {
  const nss = new Namespaces();
  let h: Handle;
  beforeAll(async () => { h = await open({ netns: await nss.create('rv4') }); });
  afterAll(async () => { await h?.close(); await nss.cleanup(); });

  it('are refused naming the field, before anything reaches the addon', async () => {
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => h.link.encode({ kind: 'vxlan', name: 'vx0', vni: 1, local: 'fe80::1%lo', remote: 'fe80::2' }), /local: .*zone id/],
      [() => h.wireguard.encode('wg0', { privateKey: KEY, peers: [{ publicKey: KEY, endpoint: '[fe80::1%lo]:51820' }] }, { familyId: 30 }), /endpoint: .*zone id/],
      [() => h.addr.add({ dev: 'lo', address: 'fe80::1%lo/64' } as any), /zone id|address/],
    ];
    for (const [call, msg] of cases) {
      const e = await call().then(() => undefined, (x) => x);
      expect(e, String(msg)).toBeInstanceOf(Error);
      expect(e, String(msg)).not.toBeInstanceOf(NetlinkError);
      expect(e.message).toMatch(msg);
    }
    // A plain IPv6 address still encodes.
    expect((await h.link.encode({ kind: 'vxlan', name: 'vx0', vni: 1, local: 'fe80::1', remote: 'fe80::2' })).length).toBeGreaterThan(40);
  });
});
