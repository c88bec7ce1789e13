// macvlan/macvtap on one table: iproute2's bytes (mode, flags, a source-mode MAC list) and
// their decode. (Traffic, modes, fds: test/macvtap.test.ts.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Handle } from '../../lib/index.js';
import { Namespaces } from '../helpers.js';
import { expectGolden, goldenLayout, linkGolden } from './golden.js';

const mv1 = 'ip link add link vp0 name mv1 type macvlan macaddr set 52:54:00:aa:00:01 52:54:00:aa:00:02 mode source flag nodst';

describe('macvlan and macvtap link kinds', () => {
  const nss = new Namespaces();
  let h: Handle;
  beforeAll(async () => { h = await goldenLayout(nss, 'kmacvlan'); });
  afterAll(async () => {
    await h?.close();
    await nss.cleanup();
  });

  it('encodes as iproute2 does', async () => {
    await expectGolden(h, 'macvlan', {
      'ip link add link vp0 name mv0 type macvlan mode bridge': { kind: 'macvlan', name: 'mv0', link: 'vp0', mode: 'bridge' },
      [mv1]: { kind: 'macvlan', name: 'mv1', link: 'vp0', mode: 'source', flags: ['nodst'], macs: ['52:54:00:aa:00:01', '52:54:00:aa:00:02'] },
    });
    await expectGolden(h, 'macvtap', {
      'ip link add link vp0 name mvt0 type macvtap mode passthru nopromisc': { kind: 'macvtap', name: 'mvt0', link: 'vp0', mode: 'passthru', flags: ['noPromisc'] },
    });
  });

  it('decodes mode, flags and the MAC list, and the lower device as the link', async () => {
    const l = await h.link.decode(Buffer.from(linkGolden.requests[mv1], 'hex'));
    expect(l.kind).toBe('macvlan');
    expect(l.kind === 'macvlan' && l.info).toEqual({ mode: 'source', flags: ['nodst'], macs: ['52:54:00:aa:00:01', '52:54:00:aa:00:02'] });
    expect(l.link).toBe('vp0');
    expect(l.linkIndex).toBe(6);
  });
});
