// dummy: golden bytes everywhere; where the kernel has the driver, a dummy carries an address
// that answers locally, as `ip -d -j link` describes it; where it lacks it, a clear refusal.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type Netns } from '../../lib/index.js';
import { Namespaces, inKernelGuest, ipLinks, kindAvailable, nsRun } from '../helpers.js';
import { expectGolden, expectKindRefused, goldenLayout } from './golden.js';

describe('dummy link kind', () => {
  const nss = new Namespaces();
  let h: Handle;
  let ns: Netns;
  let nl: Handle;

  beforeAll(async () => {
    h = await goldenLayout(nss, 'kdummyg');
    ns = await nss.create('kdummy');
    nl = await open({ netns: ns });
  });
  afterAll(async () => {
    await h?.close();
    await nl?.close();
    await nss.cleanup();
  });

  it('encodes as iproute2 does', async () => {
    await expectGolden(h, 'dummy', {
      'ip link add dummy0 type dummy': { kind: 'dummy', name: 'dummy0' },
      'ip link add mtu 1400 address 52:54:00:00:00:01 txqueuelen 10 group 7 name dummy1 type dummy':
        { kind: 'dummy', name: 'dummy1', mtu: 1400, mac: '52:54:00:00:00:01', txqueuelen: 10, group: 7 },
    });
  });

  it('creates a dummy that ip shows and that carries a local address, or is refused clearly', async () => {
    const present = await kindAvailable('dummy');
    if (inKernelGuest) expect(present, 'the dummy driver in the guest kernel').toBe(true);
    const add = nl.link.add({ kind: 'dummy', name: 'dum0', mtu: 1400, up: true });
    if (present) {
      const l = await add;
      expect(l.kind).toBe('dummy');
      const [j] = await ipLinks(ns, 'dum0');
      expect(j.linkinfo.info_kind).toBe('dummy');
      expect(j.mtu).toBe(1400);
      await nl.addr.add('dum0', '198.51.100.10/32');
      await nl.link.set('lo', { up: true });
      const r = await nsRun(ns, 'ping', ['-c', '1', '-W', '5', '198.51.100.10']);
      expect(r.code, r.stdout + r.stderr).toBe(0);
      await expect(nl.link.set('dum0', { stp: true } as never)).rejects.toThrow(/stp: is not a setting of dummy links/);
    } else {
      await expectKindRefused(add, 'dummy', ns, ['lo']);
    }
  });
});
