// The seed's third mode: guest taps as ports of an Open vSwitch bridge, configured over OVSDB
// (RFC 7047) with no ovs-vsctl in the library. Real ovsdb-server and ovs-vswitchd run inside a
// test namespace (userspace datapath, no kernel module); ovs-vsctl and ovs-appctl check the result.
import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, Ovsdb, OvsdbError, type Handle, type Netns, type Tap } from '../lib/index.js';
import { JsonSplitter } from '../lib/ovsdb/json-stream.js';
import { map, mapOf, namedUuid, set, setOf, uuid } from '../lib/ovsdb/datum.js';
import { Namespaces, privilegedSkipReason, waitFor } from './helpers.js';
import { parseVsctlShow, rowCount, startOvs, startOvsWorld, stopOvsWorld, ovsSkipReason, type OvsDaemons, type OvsWorld } from './ovs-helpers.js';

const execFileP = promisify(execFile);

describe('ovsdb wire format', () => {
  it('splits concatenated JSON values at every chunk boundary, minding strings, escapes and UTF-8', () => {
    const values = [
      { id: 1, result: ['a}b', 'q"{[', 'back\\slash\\', 'ü€😀'], error: null },
      { method: 'echo', params: [], id: 'echo' },
      [{ '}': ']' }, '\\"', []],
    ];
    const bytes = Buffer.from(values.map((x) => JSON.stringify(x)).join('') + '\n', 'utf8');
    for (let cut = 0; cut <= bytes.length; cut++) {
      const s = new JsonSplitter();
      const got = [...s.push(bytes.subarray(0, cut)), ...s.push(bytes.subarray(cut))];
      expect(got).toEqual(values);
      expect(s.pending).toBe(false);
    }
    // One byte at a time.
    const s = new JsonSplitter();
    const got: unknown[] = [];
    for (const b of bytes) got.push(...s.push(Buffer.from([b])));
    expect(got).toEqual(values);
    expect(() => new JsonSplitter().push(Buffer.from('{"a":1} x'))).toThrow(/expected a JSON object/);
    expect(() => new JsonSplitter().push(Buffer.from('{"a":}'))).toThrow(/malformed/);
  });

  it('encodes sets, maps, uuids and named-uuids as ovs-vsctl add-port sends them', () => {
    // Bytes from `ovs-vsctl -vjsonrpc:dbg add-port br0 p0 -- set interface p0 external_ids:iface-id=abc`.
    expect(JSON.stringify({ ports: set([uuid('9088bb8d-7c33-4c68-9d55-76011d28ffe1'), namedUuid('row1')]) }))
      .toBe('{"ports":["set",[["uuid","9088bb8d-7c33-4c68-9d55-76011d28ffe1"],["named-uuid","row1"]]]}');
    expect(JSON.stringify(map({ 'iface-id': 'abc' }))).toBe('["map",[["iface-id","abc"]]]');
    expect(JSON.stringify(set([]))).toBe('["set",[]]');
    // Parsing is lenient: a one-element set may come bare.
    expect(setOf(['uuid', 'c2c951d1-b969-4e84-9ab8-6f48d7262443'])).toEqual(['c2c951d1-b969-4e84-9ab8-6f48d7262443']);
    expect(setOf(['set', [1, 2]])).toEqual([1, 2]);
    expect(setOf(65534)).toEqual([65534]);
    expect(mapOf(['map', [['vm-id', 'x']]])).toEqual({ 'vm-id': 'x' });
  });

  it('answers the server\'s echo, and a socket with no server (or none at all) is a clear error', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-ovsdb-fake-'));
    try {
      // A fake server: answers list_dbs, then sends an echo request split across two writes.
      const sockPath = path.join(dir, 'fake.sock');
      let echoReply: any;
      const gotEcho = new Promise<void>((resolve) => {
        const srv = net.createServer((c) => {
          const sp = new JsonSplitter();
          c.on('data', (d) => {
            for (const m of sp.push(d) as any[]) {
              if (m.method === 'list_dbs') {
                c.write(JSON.stringify({ id: m.id, result: ['Open_vSwitch'], error: null }));
                c.write('{"method":"echo","par');
                setTimeout(() => c.write('ams":["x"],"id":"echo"}'), 20);
              } else if (m.id === 'echo') { echoReply = m; resolve(); c.end(); srv.close(); }
            }
          });
        });
        srv.listen(sockPath);
      });
      await new Promise((r) => setTimeout(r, 50));
      const ovs = await Ovsdb.connect(sockPath);
      await gotEcho;
      expect(echoReply).toEqual({ result: ['x'], error: null, id: 'echo' });
      await ovs.close();

      const missing = path.join(dir, 'none.sock');
      await expect(Ovsdb.connect(missing)).rejects.toMatchObject({ name: 'OvsdbError', code: 'ENOENT', message: expect.stringContaining(missing) });
      // A socket file nobody listens on (bound, never listening): ECONNREFUSED.
      const dead = path.join(dir, 'dead.sock');
      const py = spawnSync('python3', ['-c', 'import socket,sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])', dead]);
      expect(py.status).toBe(0);
      const err = await Ovsdb.connect(dead).catch((e) => e);
      expect(err).toBeInstanceOf(OvsdbError);
      expect(err.code).toBe('ECONNREFUSED');
      expect(err.message).toMatch(/no ovsdb-server listens/);
      await expect(Ovsdb.connect(dead, { timeout: 0 })).rejects.toThrow(RangeError);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

const skip = privilegedSkipReason() ?? ovsSkipReason();

/** Reads frames from a non-blocking fd until `match` accepts one. */
async function readFrame(fd: number, match: (b: Buffer) => boolean, timeoutMs = 10_000): Promise<Buffer> {
  const buf = Buffer.alloc(70_000);
  const end = Date.now() + timeoutMs;
  for (;;) {
    for (;;) {
      let n: number;
      try { n = fs.readSync(fd, buf, 0, buf.length, null); } catch (e: any) { if (e.code === 'EAGAIN') break; throw e; }
      const f = Buffer.from(buf.subarray(0, n));
      if (match(f)) return f;
    }
    if (Date.now() > end) throw new Error('no matching frame arrived on the tap fd');
    await new Promise((r) => setTimeout(r, 10));
  }
}

const ETH_TEST = 0x88b5;  // IEEE "local experimental" ethertype: nothing else on the wire uses it
function frame(dst: string, src: string, payload: string): Buffer {
  const mac = (m: string) => Buffer.from(m.split(':').map((x) => parseInt(x, 16)));
  const type = Buffer.alloc(2);
  type.writeUInt16BE(ETH_TEST);
  return Buffer.concat([mac(dst), mac(src), type, Buffer.from(payload.padEnd(46, '.'))]);
}
const carries = (payload: string) => (b: Buffer) => b.length >= 14 && b.readUInt16BE(12) === ETH_TEST && b.subarray(14).toString().startsWith(payload);

describe.skipIf(skip)('Open vSwitch over OVSDB', () => {
  const nss = new Namespaces();
  let w: OvsWorld;
  let N: Netns;
  let nl: Handle;
  let ovsd: OvsDaemons;
  let ovs: Ovsdb;
  let taps: Tap[];

  beforeAll(async () => {
    w = await startOvsWorld(nss, 'ovs');
    ({ N, nl, ovsd, ovs, taps } = w);
  }, 30_000);
  afterAll(() => stopOvsWorld(w, nss));

  it('puts two vnetlink taps on ovsbr0; ovs-vsctl show agrees with the API; frames cross from one tap fd to the other', async () => {
    const br = await ovs.addBridge('ovsbr0', { datapathType: 'netdev', failMode: 'standalone', externalIds: { owner: 'vnetlink-test' } });
    expect(br).toMatchObject({ name: 'ovsbr0', datapathType: 'netdev', failMode: 'standalone', externalIds: { owner: 'vnetlink-test' } });
    expect(br.ports.map((p) => p.name)).toEqual(['ovsbr0']);

    const a = await nl.tap.create({ name: 'vnet%d', up: true });
    const b = await nl.tap.create({ name: 'vnet%d', up: true });
    taps.push(a, b);
    const macA = '52:54:00:aa:00:01', macB = '52:54:00:aa:00:02';
    const pa = await ovs.addPort('ovsbr0', a.name, {
      externalIds: { 'attached-mac': macA, 'iface-id': 'a7f3c1de-0001-4c5e-9d1b-0123456789ab', 'iface-status': 'active', 'vm-id': '11111111-2222-3333-4444-555555555555' },
    });
    const pb = await ovs.addPort('ovsbr0', b.name, { ofportRequest: 42, tag: 0 });
    // Resolved means applied: ovs-vswitchd has opened both and given them OpenFlow numbers.
    expect(pa.ofport).toBeGreaterThan(0);
    expect(pa.interfaces[0].error).toBeUndefined();
    expect(pb.ofport).toBe(42);
    expect(pa.interfaces[0].externalIds).toEqual({ 'attached-mac': macA, 'iface-id': 'a7f3c1de-0001-4c5e-9d1b-0123456789ab', 'iface-status': 'active', 'vm-id': '11111111-2222-3333-4444-555555555555' });

    // What OVS's own tool prints is exactly what the API says.
    const shown = parseVsctlShow(await ovsd.vsctl(['show']));
    const api = await ovs.show();
    expect(shown.uuid).toBe(api.uuid);
    const fromApi: typeof shown.bridges = {};
    for (const br2 of api.bridges) {
      fromApi[br2.name] = { ports: {} };
      if (br2.failMode) fromApi[br2.name].failMode = br2.failMode;
      if (br2.datapathType) fromApi[br2.name].datapathType = br2.datapathType;
      for (const p of br2.ports) {
        const sp: (typeof shown.bridges)[string]['ports'][string] = { interfaces: {} };
        if (p.tag !== undefined) sp.tag = p.tag;
        if (p.trunks.length) sp.trunks = p.trunks;
        for (const i of p.interfaces) {
          sp.interfaces[i.name] = {};
          if (i.type) sp.interfaces[i.name].type = i.type;
          if (i.error) sp.interfaces[i.name].error = i.error;
        }
        fromApi[br2.name].ports[p.name] = sp;
      }
    }
    expect(shown.bridges).toEqual(fromApi);
    expect(Object.keys(shown.bridges.ovsbr0.ports).sort()).toEqual([a.name, b.name, 'ovsbr0'].sort());
    expect(shown.bridges.ovsbr0.ports[b.name].tag).toBe(0);
    expect(await ovs.listPorts('ovsbr0')).toEqual((await ovsd.vsctl(['list-ports', 'ovsbr0'])).trim().split('\n'));
    expect(await ovs.listBridges()).toEqual(['ovsbr0']);
    expect((await ovsd.vsctl(['get', 'Interface', a.name, 'external_ids:vm-id'])).trim()).toBe('"11111111-2222-3333-4444-555555555555"');
    expect((await ovsd.vsctl(['get', 'Interface', b.name, 'ofport'])).trim()).toBe('42');

    // A broadcast frame written into tap A's fd comes out of tap B's fd ...
    await waitFor(async () => {
      fs.writeSync(a.fds[0], frame('ff:ff:ff:ff:ff:ff', macA, 'vnl-bcast'));
      return readFrame(b.fds[0], carries('vnl-bcast'), 300).then(() => true, () => false);
    }, 'a broadcast from tap A on tap B', 10_000);
    // ... and a unicast reply from B reaches A, which OVS has learned on A's port.
    fs.writeSync(b.fds[0], frame(macA, macB, 'vnl-reply'));
    const got = await readFrame(a.fds[0], carries('vnl-reply'));
    expect(got.subarray(0, 12).toString('hex')).toBe('525400aa0001525400aa0002');
    const fdb = (await execFileP('ip', ['netns', 'exec', N.name, 'ovs-appctl', `--target=${path.join(ovsd.dir, 'ovs-vswitchd.ctl')}`, 'fdb/show', 'ovsbr0'])).stdout;
    expect(fdb).toMatch(new RegExp(`^\\s*${pa.ofport}\\s+0\\s+${macA}`, 'm'));
    expect(fdb).toMatch(new RegExp(`^\\s*42\\s+0\\s+${macB}`, 'm'));
  }, 30_000);

  it('concurrent addPort calls from two clients all land (wait guards + retry)', async () => {
    await ovs.addBridge('ovsbr1', { datapathType: 'netdev' });
    await using other = await Ovsdb.connect(ovsd.sock);
    const names = Array.from({ length: 10 }, (_, i) => `cc${i}`);
    await Promise.all(names.map((n, i) => (i % 2 ? ovs : other).addPort('ovsbr1', n, { type: 'internal' })));
    expect(ovs.retries + other.retries).toBeGreaterThan(0);  // they did collide, and recovered
    const listed = (await ovsd.vsctl(['list-ports', 'ovsbr1'])).trim().split('\n').sort();
    expect(listed).toEqual([...names].sort());
    expect(await other.listPorts('ovsbr1')).toEqual([...names].sort());
    // Every one was applied: each interface has an OpenFlow number and no error.
    for (const n of names) expect(Number((await ovsd.vsctl(['get', 'Interface', n, 'ofport'])).trim())).toBeGreaterThan(0);
  }, 30_000);

  it('external_ids keys "__proto__" and "constructor" are written and read back like any other key', async () => {
    // JSON.parse makes "__proto__" an own key, as a caller's config file would.
    const ids = JSON.parse('{"__proto__":"p","constructor":"c","vm-id":"v"}');
    const br = await ovs.addBridge('ovsbrk', { datapathType: 'netdev', externalIds: ids });
    try {
      const got = (await ovsd.vsctl(['get', 'bridge', 'ovsbrk', 'external_ids'])).trim();
      expect(got).toMatch(/__proto__="?p"?/);
      expect(got).toMatch(/constructor="?c"?/);
      expect(got).toMatch(/"?vm-id"?="?v"?/);
      expect(Object.entries(br.externalIds).sort()).toEqual([['__proto__', 'p'], ['constructor', 'c'], ['vm-id', 'v']]);
      const p = await ovs.addPort('ovsbrk', 'pk0', { type: 'internal', externalIds: ids, portExternalIds: ids });
      expect(Object.entries(p.interfaces[0].externalIds).sort()).toEqual([['__proto__', 'p'], ['constructor', 'c'], ['vm-id', 'v']]);
      expect(Object.entries(p.externalIds).sort()).toEqual([['__proto__', 'p'], ['constructor', 'c'], ['vm-id', 'v']]);
      expect((await ovsd.vsctl(['get', 'interface', 'pk0', 'external_ids'])).trim()).toMatch(/__proto__="?p"?/);
    } finally {
      await ovs.delBridge('ovsbrk');
    }
  });

  it('removing ports and deleting bridges leaves no rows behind', async () => {
    await ovs.addBridge('ovsbr2', { datapathType: 'netdev' });
    await ovs.addPort('ovsbr2', 'rm0', { type: 'internal', trunks: [10, 20] });
    expect(parseVsctlShow(await ovsd.vsctl(['show'])).bridges.ovsbr2.ports.rm0.trunks).toEqual([10, 20]);
    const before = await rowCount(ovsd, 'Interface');
    await ovs.delPort('ovsbr2', 'rm0');
    expect(await rowCount(ovsd, 'Interface')).toBe(before - 1);
    expect((await ovsd.vsctl(['list-ports', 'ovsbr2'])).trim()).toBe('');
    await waitFor(() => spawnSync('ip', ['-n', N.name, 'link', 'show', 'rm0']).status !== 0, 'rm0 to disappear from the namespace');

    for (const t of taps.splice(0)) await ovs.delPort('ovsbr0', t.name).then(() => t.close());
    for (const b of ['ovsbr0', 'ovsbr1', 'ovsbr2']) await ovs.delBridge(b);
    expect(await ovs.listBridges()).toEqual([]);
    expect((await ovsd.vsctl(['list-br'])).trim()).toBe('');
    for (const table of ['Bridge', 'Port', 'Interface']) expect(await rowCount(ovsd, table)).toBe(0);
    await expect(ovs.delBridge('ovsbr0', { ifExists: true })).resolves.toBeUndefined();
    await expect(ovs.delPort(null, 'rm0', { ifExists: true })).resolves.toBeUndefined();
  }, 30_000);

  it('reports the Interface rows as they change, through monitor()', async () => {
    await ovs.addBridge('ovsbr3', { datapathType: 'netdev' });
    const it = ovs.monitor();
    const seen: string[] = [];
    const watch = (async () => {
      for await (const ev of it) {
        seen.push(`${ev.type}:${ev.interface.name}`);
        if (ev.interface.name === 'mon0' && ev.type === 'modify' && (ev.interface.ofport ?? 0) > 0) return ev.interface.ofport;
      }
      return undefined;
    })();
    await waitFor(() => seen.includes('initial:ovsbr3'), 'the initial rows');
    const p = await ovs.addPort('ovsbr3', 'mon0', { type: 'internal' });
    expect(await watch).toBe(p.ofport);
    expect(seen).toContain('insert:mon0');
    await ovs.delBridge('ovsbr3');
  }, 20_000);

  it('rejects bad input and refusals with clear errors, leaving nothing behind', async () => {
    await ovs.addBridge('ovsbr4', { datapathType: 'netdev' });
    await ovs.addPort('ovsbr4', 'dup0', { type: 'internal' });
    const rows = await rowCount(ovsd, 'Interface');

    await expect(ovs.addPort('nosuchbr', 'x0', { type: 'internal' })).rejects.toMatchObject({ name: 'OvsdbError', code: 'not-found', op: 'ovsdb.addPort', message: expect.stringContaining('nosuchbr') });
    await expect(ovs.addPort('ovsbr4', 'dup0', { type: 'internal' })).rejects.toMatchObject({ code: 'exists', message: expect.stringContaining('dup0 already exists on bridge ovsbr4') });
    await expect(ovs.addPort('ovsbr4', 'dup0', { type: 'internal', mayExist: true })).resolves.toMatchObject({ name: 'dup0', bridge: 'ovsbr4' });
    await expect(ovs.addBridge('ovsbr4')).rejects.toMatchObject({ code: 'exists' });
    await expect(ovs.delBridge('nosuchbr')).rejects.toMatchObject({ code: 'not-found' });
    await expect(ovs.delPort('ovsbr4', 'nope0')).rejects.toMatchObject({ code: 'not-found' });
    await expect(ovs.delPort('ovsbr4', 'ovsbr4')).rejects.toMatchObject({ code: 'local-port' });
    // A device that does not exist: ovs-vswitchd cannot open it, so the call fails and the port is gone again.
    const e = await ovs.addPort('ovsbr4', 'ghost0').catch((x) => x);
    expect(e).toBeInstanceOf(OvsdbError);
    expect(e.code).toBe('interface-error');
    expect(e.details).toMatch(/could not open network device ghost0/);
    // The database's own refusal is typed too (a raw transaction breaking the name index).
    const dbErr = await ovs.transact([
      { op: 'insert', table: 'Interface', 'uuid-name': 'i', row: { name: 'dup0', type: 'internal' } },
      { op: 'insert', table: 'Port', 'uuid-name': 'p', row: { name: 'dup0', interfaces: namedUuid('i') } },
      { op: 'mutate', table: 'Bridge', where: [['name', '==', 'ovsbr4']], mutations: [['ports', 'insert', set([namedUuid('p')])]] },
    ]).catch((x) => x);
    expect(dbErr).toMatchObject({ name: 'OvsdbError', code: 'constraint-violation', ovsdbError: 'constraint violation' });
    const refErr = await ovs.transact([
      { op: 'insert', table: 'Port', 'uuid-name': 'p', row: { name: 'ref0', interfaces: uuid('00000000-0000-0000-0000-00000000abcd') } },
      { op: 'mutate', table: 'Bridge', where: [['name', '==', 'ovsbr4']], mutations: [['ports', 'insert', set([namedUuid('p')])]] },
    ]).catch((x) => x);
    expect(refErr).toMatchObject({ code: 'referential-integrity-violation' });

    // Bad input never reaches the database.
    await expect(ovs.addPort('ovsbr4', 'a-name-that-is-too-long')).rejects.toThrow(RangeError);
    await expect(ovs.addPort('ovsbr4', 'x0', { tag: 4096 })).rejects.toThrow(/tag: must be between 0 and 4095/);
    await expect(ovs.addPort('ovsbr4', 'x0', { trunks: [1, 'a' as any] })).rejects.toThrow(TypeError);
    await expect(ovs.addPort('ovsbr4', 'x0', { externalIds: { k: 1 as any } })).rejects.toThrow(/externalIds\.k/);
    await expect(ovs.addPort('ovsbr4', 'x0', { bogus: 1 } as any)).rejects.toThrow(/bogus: unknown option/);
    await expect(ovs.addBridge('br/x')).rejects.toThrow(RangeError);
    await expect(ovs.addBridge('ok0', { failMode: 'open' as any })).rejects.toThrow(/failMode/);

    expect(await rowCount(ovsd, 'Interface')).toBe(rows);
    expect((await ovsd.vsctl(['list-ports', 'ovsbr4'])).trim()).toBe('dup0');
    await ovs.delBridge('ovsbr4');
    expect(await rowCount(ovsd, 'Interface')).toBe(0);
  }, 20_000);

  it('on an uninitialised database, a change ovs-vswitchd never applies times out with a clear error instead of hanging', async () => {
    const nsq = await nss.create('ovsq');
    const dbOnly = await startOvs(nsq, { vswitchd: false, init: false });
    for (const pid of dbOnly.pids) nss.track(pid);
    try {
      await using c = await Ovsdb.connect(dbOnly.sock, { timeout: 300 });
      const e = await c.addBridge('lonely0').catch((x) => x);
      expect(e).toMatchObject({ name: 'OvsdbError', code: 'ETIMEDOUT', message: expect.stringContaining('is ovs-vswitchd running') });
      // With wait: false (ovs-vsctl --no-wait) the same call returns once committed.
      await using nw = await Ovsdb.connect(dbOnly.sock, { wait: false });
      await nw.addBridge('lonely1');
      expect((await dbOnly.vsctl(['list-br'])).trim().split('\n')).toEqual(['lonely0', 'lonely1']);
      // Nobody ran `ovs-vsctl init`: the client created the one Open_vSwitch row itself.
      expect(await rowCount(dbOnly, 'Open_vSwitch')).toBe(1);
    } finally {
      await dbOnly.stop();
    }
  }, 20_000);

  it('closing the connection fails pending and later calls with code closed and ends monitors', async () => {
    const c = await Ovsdb.connect(ovsd.sock);
    const mon = c.monitor();
    const pending = c.listBridges();
    await c.close();
    await expect(pending).rejects.toMatchObject({ name: 'OvsdbError', code: 'closed' });
    await expect(c.listBridges()).rejects.toMatchObject({ code: 'closed' });
    // A monitor ends (it does not throw) when its own client closes the connection.
    const seen: unknown[] = [];
    for await (const ev of mon) seen.push(ev);
    expect(seen).toEqual([]);
  });
});
