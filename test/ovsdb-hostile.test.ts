// A hostile OVSDB server: a fake one on a unix socket in a temp dir, sending what a real server
// never would (deep arrays, wrong shapes, bad atoms, floods, silence). Whatever it sends, the
// client process survives, the call or monitor fails with OvsdbError('protocol') (or a timeout /
// AbortError), and the connection is closed.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Ovsdb, OvsdbError } from '../lib/index.js';
import { JsonSplitter } from '../lib/ovsdb/json-stream.js';
import { atom, mapOf, setOf } from '../lib/ovsdb/datum.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-ovsdb-hostile-'));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
let seq = 0;

type Msg = { method?: string; params?: any[]; id?: unknown };
interface Fake {
  path: string;
  /** Resolves when the client's connection ends (the client closed it). */
  clientGone: Promise<void>;
  close(): void;
}

/**
 * A fake ovsdb-server: answers list_dbs with Open_vSwitch, hands every other request to `on`
 * (which writes whatever it likes on the socket), and tells when the client hung up.
 */
async function fake(on: (m: Msg, c: net.Socket) => void): Promise<Fake> {
  const p = path.join(dir, `s${++seq}.sock`);
  let gone!: () => void;
  const clientGone = new Promise<void>((r) => { gone = r; });
  const conns = new Set<net.Socket>();
  const srv = net.createServer((c) => {
    conns.add(c);
    const sp = new JsonSplitter();
    c.on('error', () => undefined);
    c.on('close', () => { conns.delete(c); gone(); });
    c.on('data', (d) => {
      for (const m of sp.push(d) as Msg[]) {
        if (m.method === 'list_dbs') c.write(JSON.stringify({ id: m.id, result: ['Open_vSwitch'], error: null }));
        else if (m.method !== undefined) on(m, c);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(p, r));
  return { path: p, clientGone, close: () => { for (const c of conns) c.destroy(); srv.close(); } };
}

const reply = (c: net.Socket, id: unknown, result: unknown) => c.write(JSON.stringify({ id, result, error: null }));
/** A well-formed 4-select snapshot with one bridge, as the client's read sends it. */
const ROWS = [
  { rows: [{ _uuid: ['uuid', 'root'], bridges: ['uuid', 'b1'], next_cfg: 1, cur_cfg: 1 }] },
  { rows: [{ _uuid: ['uuid', 'b1'], name: 'br0', ports: ['set', []] }] },
  { rows: [] },
  { rows: [] },
];

/** Fails (instead of hanging the test until its timeout) when `p` does not settle in time. */
function settles<T>(p: Promise<T>, ms = 8000): Promise<T> {
  return Promise.race([p, new Promise<never>((_, rej) => setTimeout(() => rej(new Error(`still pending after ${ms} ms`)), ms))]);
}

/** The error a promise rejects with (or a marker when it resolves). */
const failure = (p: Promise<unknown>) => settles(p.then(() => new Error('resolved, expected a rejection'), (e) => e));

describe('a hostile OVSDB server', () => {
  it('a 200,000-deep error array fails the call with a protocol error and closes the connection (no RangeError)', async () => {
    const deep = '['.repeat(200_000) + ']'.repeat(200_000);
    const srv = await fake((m, c) => c.write(`{"id":${JSON.stringify(m.id)},"result":null,"error":${deep}}`));
    try {
      const ovs = await Ovsdb.connect(srv.path, { timeout: 5000 });
      const e = await failure(ovs.listBridges());
      expect(e).toBeInstanceOf(OvsdbError);
      expect(e).toMatchObject({ code: 'protocol', op: 'ovsdb.listBridges' });
      await settles(srv.clientGone);
      // Later calls fail at once: the connection is gone.
      expect(await failure(ovs.listBridges())).toMatchObject({ code: 'protocol' });
      await ovs.close();
    } finally { srv.close(); }
  });

  it('an error that is neither a string nor {error: string} is a protocol error, described without recursing', async () => {
    // 100 levels: under the splitter's depth cap, so the reply reaches the error handling itself.
    const srv = await fake((m, c) => c.write(`{"id":${JSON.stringify(m.id)},"result":null,"error":${'['.repeat(100)}1${']'.repeat(100)}}`));
    try {
      const ovs = await Ovsdb.connect(srv.path, { timeout: 5000 });
      const e = await failure(ovs.listBridges());
      expect(e).toMatchObject({ name: 'OvsdbError', code: 'protocol', message: expect.stringContaining('malformed error') });
      await settles(srv.clientGone);
    } finally { srv.close(); }
  });

  it('wrong-shaped transact replies are protocol errors, never a TypeError', async () => {
    const shapes: unknown[] = [
      [null, null, null, null],
      [{ rows: 5 }, {}, {}, {}],
      [{ rows: [null] }, { rows: [] }, { rows: [] }, { rows: [] }],
      [{ rows: [{ _uuid: 'root' }] }, { rows: [] }, { rows: [] }, { rows: [] }],
      [ROWS[0], { rows: [{ _uuid: ['uuid', 'b1'], name: 7 }] }, ROWS[2], ROWS[3]],
      [ROWS[0], { rows: [{ _uuid: ['uuid', 'b1'], name: 'br0', ports: ['set', 'x'] }] }, ROWS[2], ROWS[3]],
      [ROWS[0], { rows: [{ _uuid: ['uuid', 'b1'], name: 'br0', ports: ['set', [{}]] }] }, ROWS[2], ROWS[3]],
      [{ error: 7 }],
      'not an array',
      [5],
    ];
    for (const shape of shapes) {
      const srv = await fake((m, c) => reply(c, m.id, shape));
      try {
        const ovs = await Ovsdb.connect(srv.path, { timeout: 5000 });
        const e = await failure(ovs.listPorts('br0'));
        expect(e, JSON.stringify(shape)).toBeInstanceOf(OvsdbError);
        expect(e, JSON.stringify(shape)).toMatchObject({ code: 'protocol', op: 'ovsdb.listPorts' });
        await settles(srv.clientGone);
      } finally { srv.close(); }
    }
  });

  it('list_dbs answered with a non-array is a protocol error on connect', async () => {
    const p = path.join(dir, `s${++seq}.sock`);
    const srv = net.createServer((c) => c.on('data', () => c.write('{"id":1,"result":{"a":1},"error":null}')));
    await new Promise<void>((r) => srv.listen(p, r));
    try {
      expect(await failure(Ovsdb.connect(p, { timeout: 5000 }))).toMatchObject({ name: 'OvsdbError', code: 'protocol', op: 'ovsdb.connect' });
    } finally { srv.close(); }
  });

  for (const [what, update] of [
    ['a null row update', { Interface: { u: null } }],
    ['a bad atom', { Interface: { u: { new: { name: 'vnet0', ofport: { a: 1 } } } } }],
    ['a bad map pair', { Interface: { u: { new: { name: 'vnet0', external_ids: ['map', [['k']]] } } } }],
    ['a non-object table', { Interface: 'x' }],
    ['a deep bad atom', { Interface: { u: { new: { name: ['set', [JSON.parse('['.repeat(120) + ']'.repeat(120))]] } } } }],
  ] as const) {
    it(`${what} in a monitor notification fails the monitor with a protocol error (the process survives)`, async () => {
      const srv = await fake((m, c) => {
        if (m.method !== 'monitor') return;
        reply(c, m.id, {});
        c.write(JSON.stringify({ method: 'update', params: [m.params![1], update], id: null }));
      });
      try {
        const ovs = await Ovsdb.connect(srv.path, { timeout: 5000 });
        const it = ovs.monitor();
        const e = await failure(it.next());
        expect(e).toBeInstanceOf(OvsdbError);
        expect(e).toMatchObject({ code: 'protocol' });
        await settles(srv.clientGone);
        await ovs.close();
      } finally { srv.close(); }
    });
  }

  it('a malformed initial monitor reply fails the monitor (no unhandled rejection)', async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (r: unknown) => unhandled.push(r);
    process.on('unhandledRejection', onUnhandled);
    try {
      for (const initial of [{ Interface: { u: null } }, 'x', { Interface: { u: { new: { name: 'a', type: ['set', 5] } } } }]) {
        const srv = await fake((m, c) => { if (m.method === 'monitor') reply(c, m.id, initial); });
        try {
          const ovs = await Ovsdb.connect(srv.path, { timeout: 5000 });
          const e = await failure(ovs.monitor().next());
          expect(e, JSON.stringify(initial)).toMatchObject({ name: 'OvsdbError', code: 'protocol' });
          await settles(srv.clientGone);
        } finally { srv.close(); }
      }
      await new Promise((r) => setTimeout(r, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });

  it('an update with a wrong params shape closes the connection; a monitor is told', async () => {
    const srv = await fake((m, c) => {
      if (m.method !== 'monitor') return;
      reply(c, m.id, {});
      c.write('{"method":"update","params":"x","id":null}');
    });
    try {
      const ovs = await Ovsdb.connect(srv.path, { timeout: 5000 });
      expect(await failure(ovs.monitor().next())).toMatchObject({ code: 'protocol' });
      await settles(srv.clientGone);
    } finally { srv.close(); }
  });

  it('a server that sends monitor updates without end cannot grow the queue of a monitor nobody reads', async () => {
    let ready!: () => void;
    const flooded = new Promise<void>((r) => { ready = r; });
    const srv = await fake((m, c) => {
      if (m.method !== 'monitor') return;
      reply(c, m.id, {});
      // 70,000 row updates in batches of 1,000, more than the monitor holds.
      const rows: Record<string, unknown> = {};
      for (let i = 0; i < 1000; i++) rows[`u${i}`] = { new: { name: `p${i}` } };
      const batch = JSON.stringify({ method: 'update', params: [m.params![1], { Interface: rows }], id: null });
      for (let i = 0; i < 70; i++) c.write(batch);
      c.write(JSON.stringify({ id: 'done', method: 'echo', params: [] }), () => ready());
    });
    try {
      const ovs = await Ovsdb.connect(srv.path, { timeout: 5000 });
      const it = ovs.monitor();
      // 2.8 MB through a unix socket and a JSON parser: slow on a loaded machine, so a wide bound.
      await settles(flooded, 60_000);
      await new Promise((r) => setTimeout(r, 200));
      let n = 0;
      const drain = async () => { for (;;) { const r = await it.next(); if (r.done) return; n++; } };
      const err = await settles(drain().then(() => undefined, (e) => e), 60_000);
      expect(err).toMatchObject({ name: 'OvsdbError', code: 'overflow', op: 'ovsdb.monitor' });
      expect(n).toBeGreaterThan(60_000);
      expect(n).toBeLessThanOrEqual(66_536);
      // The connection itself is fine: the server did nothing wrong, the reader was slow.
      await ovs.close();
    } finally { srv.close(); }
  }, 150_000);

  it('a server silent after list_dbs: calls time out (the connection\'s timeout by default, or their own)', async () => {
    const srv = await fake(() => undefined);
    try {
      // Generous enough for a loaded machine to connect; then the same limit is every call's default.
      const ovs = await Ovsdb.connect(srv.path, { timeout: 3000 });
      expect(await failure(ovs.listBridges())).toMatchObject({ name: 'OvsdbError', code: 'ETIMEDOUT', op: 'ovsdb.listBridges', message: expect.stringContaining('3000 ms') });
      expect(await failure(ovs.show({ timeout: 100 }))).toMatchObject({ code: 'ETIMEDOUT', op: 'ovsdb.show', message: expect.stringContaining('100 ms') });
      // Writes queue one at a time: the second one's deadline holds while it waits behind the first.
      const a = ovs.addBridge('br0', { timeout: 2000 }), b = ovs.addBridge('br1', { timeout: 150 });
      expect(await failure(b)).toMatchObject({ code: 'ETIMEDOUT', op: 'ovsdb.addBridge' });
      expect(await failure(a)).toMatchObject({ code: 'ETIMEDOUT' });
      expect(await failure(ovs.transact([{ op: 'comment', comment: 'x' }], { timeout: 100 }))).toMatchObject({ code: 'ETIMEDOUT' });
      expect(await failure(ovs.monitor({ timeout: 100 }).next())).toMatchObject({ code: 'ETIMEDOUT', op: 'ovsdb.monitor' });
      await ovs.close();
    } finally { srv.close(); }
  });

  it('every call takes an AbortSignal and rejects with an AbortError when it aborts', async () => {
    const srv = await fake(() => undefined);
    try {
      const ovs = await Ovsdb.connect(srv.path, { timeout: 30_000 });
      const ac = new AbortController();
      const calls = [ovs.listBridges({ signal: ac.signal }), ovs.listPorts('br0', { signal: ac.signal }), ovs.show({ signal: ac.signal }),
        ovs.addBridge('br0', { signal: ac.signal }), ovs.delBridge('br0', { signal: ac.signal }),
        ovs.addPort('br0', 'p0', { signal: ac.signal }), ovs.delPort('br0', 'p0', { signal: ac.signal }),
        ovs.transact([], { signal: ac.signal }), ovs.monitor({ signal: ac.signal }).next()];
      await new Promise((r) => setTimeout(r, 50));
      ac.abort();
      for (const c of calls) expect(await failure(c)).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR' });
      // Already aborted: rejected without waiting.
      expect(await failure(ovs.listBridges({ signal: AbortSignal.abort() }))).toMatchObject({ name: 'AbortError' });
      expect(await failure(Ovsdb.connect(srv.path, { signal: AbortSignal.abort() }))).toMatchObject({ name: 'AbortError' });
      // Bad limits are the caller's error, named.
      await expect(ovs.listBridges({ timeout: -1 })).rejects.toThrow(/ovsdb.listBridges: timeout/);
      await expect(ovs.listBridges({ signal: 'x' as any })).rejects.toThrow(/ovsdb.listBridges: signal/);
      await expect(ovs.listBridges({ nope: 1 } as any)).rejects.toThrow(/ovsdb.listBridges: nope: unknown option/);
      await ovs.close();
    } finally { srv.close(); }
  });

  it('a server that floods echo requests and never reads is dropped (bounded write queue), not followed into the heap', async () => {
    const big = 'x'.repeat(256 << 10);
    let sent = 0;
    const srv = await fake(() => undefined);
    const p = path.join(dir, `s${++seq}.sock`);
    let gone!: () => void;
    const clientGone = new Promise<void>((r) => { gone = r; });
    const flood = net.createServer((c) => {
      c.on('error', () => undefined);
      c.on('close', () => gone());
      c.once('data', () => {
        c.write(JSON.stringify({ id: 1, result: ['Open_vSwitch'], error: null }));
        c.pause();   // never read again
        const pump = () => {
          while (!c.destroyed && c.write(`{"method":"echo","params":["${big}"],"id":${++sent}}`)) { /* fill */ }
          if (!c.destroyed) c.once('drain', pump);
        };
        pump();
      });
    });
    await new Promise<void>((r) => flood.listen(p, r));
    try {
      const before = process.memoryUsage().rss;
      const ovs = await Ovsdb.connect(p, { timeout: 60_000 });
      const e = await failure(ovs.listBridges(), 20_000);
      expect(e).toMatchObject({ name: 'OvsdbError', code: 'protocol', message: expect.stringContaining('not reading') });
      await settles(clientGone);
      // The client answered a bounded number of echoes before giving up (16 MiB queue cap).
      expect(sent).toBeGreaterThan(10);
      expect(process.memoryUsage().rss - before).toBeLessThan(512 << 20);
    } finally { flood.close(); srv.close(); }
  }, 30_000);
});

describe('decoding what a server sends', () => {
  it('the splitter refuses nesting past its cap with an OvsdbError, keeps refusing, and never overflows the stack', () => {
    const s = new JsonSplitter();
    let e: unknown;
    try { s.push(Buffer.from('['.repeat(200_000))); } catch (x) { e = x; }
    expect(e).toBeInstanceOf(OvsdbError);
    expect(e).toMatchObject({ code: 'protocol', message: expect.stringContaining('deeper than') });
    expect(() => s.push(Buffer.from('{}'))).toThrow(OvsdbError);
    // Just under the cap parses.
    expect(new JsonSplitter().push(Buffer.from('['.repeat(128) + ']'.repeat(128)))).toHaveLength(1);
    expect(() => new JsonSplitter(16).push(Buffer.from(`["${'a'.repeat(40)}"]`))).toThrow(/exceeds 16 bytes/);
  });

  it('atoms, sets and maps reject hostile values with OvsdbError (a deep value is described, not stringified)', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 200_000; i++) deep = [deep];
    for (const [i, bad] of [deep, {}, null, NaN, Infinity, ['uuid', 5], ['uuid'], [1, 2, 3]].entries()) {
      expect(() => atom(bad), `case ${i}`).toThrow(OvsdbError);
    }
    expect(() => setOf(['set', deep])).toThrow(OvsdbError);
    expect(() => setOf(['set', [deep]])).toThrow(OvsdbError);
    expect(() => mapOf(['map', [['k']]])).toThrow(OvsdbError);
    expect(() => mapOf(['map', [[deep, 'v']]])).toThrow(OvsdbError);
    expect(() => mapOf(['map', deep])).toThrow(OvsdbError);
    expect(atom(['uuid', 'u1'])).toBe('u1');
  });
});
