// veth: a table with no fields plus the native hook for its peer nest; iproute2's bytes.
// (Peers in other namespaces, up after creation: test/foundation.test.ts and others.)
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { Handle } from '../../lib/index.js';
import { Namespaces } from '../helpers.js';
import { expectGolden, goldenLayout } from './golden.js';

describe('veth link kind', () => {
  const nss = new Namespaces();
  let h: Handle;
  beforeAll(async () => { h = await goldenLayout(nss, 'kveth'); });
  afterAll(async () => {
    await h?.close();
    await nss.cleanup();
  });

  it('encodes the peer nest as iproute2 does', async () => {
    await expectGolden(h, 'veth', {
      'ip link add ve0 type veth peer name ve1 mtu 1400 address 52:54:00:00:00:02': { kind: 'veth', name: 've0', peer: { name: 've1', mtu: 1400, mac: '52:54:00:00:00:02' } },
    });
  });
});
