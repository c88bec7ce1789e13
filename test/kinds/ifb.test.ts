// ifb: a table with no fields; iproute2's bytes. (Ingress shaping through ifb: test/tc.test.ts.)
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { Handle } from '../../lib/index.js';
import { Namespaces } from '../helpers.js';
import { expectGolden, goldenLayout } from './golden.js';

describe('ifb link kind', () => {
  const nss = new Namespaces();
  let h: Handle;
  beforeAll(async () => { h = await goldenLayout(nss, 'kifb'); });
  afterAll(async () => {
    await h?.close();
    await nss.cleanup();
  });

  it('encodes as iproute2 does', async () => {
    await expectGolden(h, 'ifb', { 'ip link add ifb1 type ifb': { kind: 'ifb', name: 'ifb1' } });
  });
});
