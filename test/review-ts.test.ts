// Regressions found reviewing the TypeScript side: a hang, valid values refused. Each test
// fails without its fix.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ovsdb, open, type Handle, type Netns } from '../lib/index.js';
import { JsonSplitter } from '../lib/ovsdb/json-stream.js';
import { Namespaces, nsExec, privilegedSkipReason } from './helpers.js';

const skip = privilegedSkipReason();

/** Fails (instead of hanging the test) when `p` does not settle in time. */
function settles<T>(p: Promise<T>, ms = 8000): Promise<T> {
  return Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`still pending after ${ms} ms`)), ms))]);
}

describe('ovsdb monitor', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-review-ts-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('two overlapping next() calls both get an event (the first waiter is not lost)', async () => {
    const p = path.join(dir, 'ovs.sock');
    let sendUpdate!: () => void;
    const conns = new Set<net.Socket>();
    const srv = net.createServer((c) => {
      conns.add(c);
      const sp = new JsonSplitter();
      c.on('error', () => undefined);
      c.on('data', (d) => {
        for (const m of sp.push(d) as { method?: string; params?: unknown[]; id?: unknown }[]) {
          if (m.method === 'list_dbs') c.write(JSON.stringify({ id: m.id, result: ['Open_vSwitch'], error: null }));
          else if (m.method === 'monitor') {
            c.write(JSON.stringify({ id: m.id, result: {}, error: null }));
            const id = m.params![1];
            sendUpdate = () => c.write(JSON.stringify({ method: 'update', id: null,
              params: [id, { Interface: { u1: { new: { name: 'p1' } }, u2: { new: { name: 'p2' } } } }] }));
          } else if (m.method !== undefined) c.write(JSON.stringify({ id: m.id, result: {}, error: null }));
        }
      });
    });
    await new Promise<void>((r) => srv.listen(p, r));
    try {
      const ovs = await Ovsdb.connect(p, { timeout: 5000 });
      const it = ovs.monitor();
      const first = it.next();
      const second = it.next();
      // Wait until the server has seen the monitor request, then send two inserts at once.
      for (let i = 0; i < 200 && !sendUpdate; i++) await new Promise((r) => setTimeout(r, 10));
      sendUpdate();
      const got = await settles(Promise.all([first, second]));
      expect(got.map((r) => r.value?.interface.name).sort()).toEqual(['p1', 'p2']);
      await it.return!();
      await ovs.close();
    } finally {
      for (const c of conns) c.destroy();
      srv.close();
    }
  });
});

describe.skipIf(skip)('neigh, network', () => {
  const nss = new Namespaces();
  let A: Netns;
  let a: Handle;

  beforeAll(async () => {
    A = await nss.create('rvts');
    a = await open({ netns: A });
    await a.link.add({ kind: 'bridge', name: 'd0', up: true });
  });
  afterAll(async () => {
    await a?.close();
    await nss.cleanup();
  });

  it('a neighbour may resolve to a multicast link-layer address, as ip neigh allows', async () => {
    await a.addr.add('d0', '198.51.100.1/24');
    await a.neigh.add({ dev: 'd0', dst: '198.51.100.9', lladdr: '01:00:5e:00:00:09' });
    const seen = JSON.parse(await nsExec(A, 'ip', ['-j', 'neigh', 'show', '198.51.100.9', 'dev', 'd0']));
    expect(seen).toEqual([expect.objectContaining({ dst: '198.51.100.9', lladdr: '01:00:5e:00:00:09' })]);
    // A malformed one is still refused, naming the field.
    await expect(a.neigh.add({ dev: 'd0', dst: '198.51.100.10', lladdr: '01:00:5e:00:00' })).rejects.toThrow(/lladdr/);
  });

  it('two forwardPort calls for the same port at once: one is refused and no rule is left without an owner', async () => {
    const n = await a.network.create({ name: 'rvpf', bridge: 'rvpf0', address: '192.168.122.1/24', stp: false, dhcp: false, dns: false });
    try {
      const spec = { proto: 'tcp' as const, hostPort: 2222, guest: '192.168.122.9', guestPort: 22 };
      const r = await Promise.allSettled([n.forwardPort(spec), n.forwardPort(spec)]);
      expect(r.map((x) => x.status).sort()).toEqual(['fulfilled', 'rejected']);
      expect((r.find((x) => x.status === 'rejected') as PromiseRejectedResult).reason).toMatchObject({ code: 'EEXIST' });
      const rules = () => nsExec(A, 'nft', ['list', 'table', 'ip', n.table]).then((t) => t.split('\n').filter((l) => l.includes('vnetlink:pf:')).length);
      expect(await rules()).toBe(3);
      await (r.find((x) => x.status === 'fulfilled') as PromiseFulfilledResult<{ remove(): Promise<void> }>).value.remove();
      expect(await rules()).toBe(0);
    } finally {
      await n.destroy();
    }
  });
});
