// Events: what `ip monitor` shows, decoded into the objects list/get return, read on the
// monitor's own thread while the handle stays free; never a silent gap.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle, type MonitorEvent, type Netns, type Link } from '../lib/index.js';
import { Namespaces, ipLinks, nsExec, privilegedSkipReason, threadCount, waitFor } from './helpers.js';

const skip = privilegedSkipReason();

describe.skipIf(skip)('monitor', () => {
  const nss = new Namespaces();
  let A: Netns, B: Netns;
  let a: Handle, b: Handle;

  beforeAll(async () => {
    A = await nss.create('ma');
    B = await nss.create('mb');
    a = await open({ netns: A.name });
    b = await open({ netns: B.name });
    // libuv starts its pool threads on first use: start them now so thread counts below only
    // see the monitors' own threads.
    await (await import('node:fs/promises')).readFile('/proc/self/stat');
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await nss.cleanup();
  });

  it('500 veth pairs created and deleted give exactly 1000 newlink and 1000 dellink, in order; another namespace sees none', async () => {
    const threadsBefore = threadCount();
    const mon = a.monitor({ groups: ['link'] });
    const other = b.monitor({ groups: ['link', 'addr', 'route', 'neigh'] });
    const evs: MonitorEvent[] = [];
    const otherEvs: MonitorEvent[] = [];
    mon.on('event', (e) => evs.push(e));
    other.on('event', (e) => otherEvs.push(e));
    await Promise.all([mon.ready, other.ready]);
    expect(threadCount()).toBe(threadsBefore + 2);  // one reader thread each

    const N = 500;
    const names: string[] = [];
    const specs = [];
    for (let i = 0; i < N; i++) {
      specs.push({ kind: 'veth' as const, name: `m${i}a`, group: 42, peer: { name: `m${i}b`, group: 42 } });
      names.push(`m${i}a`, `m${i}b`);
    }
    // Half one by one, half pipelined.
    for (const s of specs.slice(0, N / 2)) await a.link.add(s);
    const rs = await a.link.addMany(specs.slice(N / 2));
    expect(rs.every((r) => r.status === 'fulfilled')).toBe(true);
    // Ten pairs deleted one by one, the rest by group in one kernel call.
    for (let i = 0; i < 10; i++) await a.link.del(`m${i}a`);
    await a.link.delGroup(42);
    expect((await ipLinks(A)).filter((l) => /^m\d+[ab]$/.test(l.ifname))).toEqual([]);

    const ours = (e: MonitorEvent) => (e.type === 'newlink' || e.type === 'dellink') && /^m\d+[ab]$/.test(e.link.name);
    await waitFor(() => evs.filter((e) => e.type === 'dellink' && ours(e)).length >= 2 * N, 'all dellink events');
    await new Promise((r) => setTimeout(r, 100));  // anything extra would show up now
    const news = evs.filter((e) => e.type === 'newlink' && ours(e)) as { link: Link }[];
    const dels = evs.filter((e) => e.type === 'dellink' && ours(e)) as { link: Link }[];
    expect(evs.some((e) => e.type === 'resync')).toBe(false);
    expect(news.length).toBe(2 * N);
    expect(dels.length).toBe(2 * N);
    // Creation order: pair by pair (the kernel registers the peer first).
    expect(news.map((e) => e.link.name.slice(0, -1))).toEqual(names.map((n) => n.slice(0, -1)));
    expect(new Set(news.map((e) => e.link.name))).toEqual(new Set(names));
    expect(new Set(dels.map((e) => e.link.name))).toEqual(new Set(names));
    // The first twenty dellinks are the ten pairs deleted one by one, in that order.
    expect(dels.slice(0, 20).map((e) => e.link.name.slice(0, -1))).toEqual(names.slice(0, 20).map((n) => n.slice(0, -1)));
    // Each link's newlink comes before its dellink, and carries what list() returns.
    const at = new Map(evs.map((e, i) => [e, i] as const));
    const firstNew = new Map<string, number>();
    for (const e of news as any[]) if (!firstNew.has(e.link.name)) firstNew.set(e.link.name, at.get(e)!);
    for (const e of dels as any[]) expect(at.get(e)!).toBeGreaterThan(firstNew.get(e.link.name)!);
    expect(news[0].link.kind).toBe('veth');
    expect(news[0].link.group).toBe(42);
    expect(otherEvs).toEqual([]);

    await mon.close();
    await other.close();
    expect(threadCount()).toBe(threadsBefore);
  });

  it('decodes addresses, routes and neighbours with link names from this namespace, and starts from existing state', async () => {
    // Index numbers repeat across namespaces (eth0 is often 2 outside): names must come from
    // the monitor's own map, never from if_indextoname on the reader thread.
    await a.link.add({ kind: 'veth', name: 'd0', peer: { name: 'd1' }, up: true });
    await a.link.set('d1', { up: true });
    const mon = a.monitor({ groups: ['link', 'addr', 'route', 'neigh'], listExisting: true });
    const it = mon[Symbol.asyncIterator]();
    const seen: MonitorEvent[] = [];
    const until = async (pred: (e: MonitorEvent) => boolean, what: string) => {
      const t = setTimeout(() => void mon.close(), 10_000);
      try {
        for (;;) {
          const r = await it.next();
          if (r.done) throw new Error(`monitor ended before ${what}`);
          seen.push(r.value);
          if (pred(r.value)) return r.value;
        }
      } finally { clearTimeout(t); }
    };
    const ex = await until((e) => e.type === 'newlink' && e.link.name === 'd0', 'existing d0');
    expect((ex as any).existing).toBe(true);
    await until((e) => e.type === 'synced', 'synced');
    await mon.ready;

    await a.addr.add('d0', '198.51.100.1/24');
    const na = await until((e) => e.type === 'newaddr' && e.addr.address === '198.51.100.1', 'newaddr');
    expect((na as any).addr).toMatchObject({ link: 'd0', family: 'inet', prefixLen: 24, cidr: '198.51.100.1/24' });
    await a.route.add({ dst: '203.0.113.0/24', via: '198.51.100.2', metric: 5 });
    const nr = await until((e) => e.type === 'newroute' && e.route.dst === '203.0.113.0/24', 'newroute');
    expect((nr as any).route).toMatchObject({ dev: 'd0', via: '198.51.100.2', metric: 5, family: 'inet' });
    await a.addr.add('d0', 'fd00:7::1/64', { nodad: true });
    await until((e) => e.type === 'newaddr' && e.addr.address === 'fd00:7::1', 'newaddr v6');
    await nsExec(A, 'ip', ['neigh', 'add', '198.51.100.9', 'lladdr', '02:00:00:00:00:09', 'dev', 'd0', 'nud', 'permanent']);
    const nn = await until((e) => e.type === 'newneigh' && e.neigh.dst === '198.51.100.9', 'newneigh');
    expect((nn as any).neigh).toMatchObject({ dev: 'd0', lladdr: '02:00:00:00:00:09', state: ['PERMANENT'] });
    await a.route.del({ dst: '203.0.113.0/24' });
    await until((e) => e.type === 'delroute' && e.route.dst === '203.0.113.0/24', 'delroute');
    await a.link.del('d0');
    await until((e) => e.type === 'dellink' && e.link.name === 'd1', 'dellink');
    // Closing ends the iteration.
    await mon.close();
    expect(await it.next()).toEqual({ value: undefined, done: true });
  });

  it('overflows a tiny receive buffer into a resync with the correct state, never a silent gap', async () => {
    const mon = a.monitor({ groups: ['link'], rcvbuf: 1024 });
    const state = new Map<string, Link>();
    let resyncs = 0;
    mon.on('event', (e: MonitorEvent) => {
      if (e.type === 'resync') {
        resyncs++;
        expect(e.reason).toBe('ENOBUFS');
        state.clear();
        for (const l of e.links!) state.set(l.name, l);
      } else if (e.type === 'newlink') state.set(e.link.name, e.link);
      else if (e.type === 'dellink') state.delete(e.link.name);
    });
    await mon.ready;
    expect(mon.rcvbuf).toBeLessThan(8192);
    // A burst: 300 pairs in flight at once, then half of them deleted by group.
    const specs = [];
    for (let i = 0; i < 300; i++) specs.push({ kind: 'veth' as const, name: `o${i}a`, group: i % 2 ? 43 : 44, peer: { name: `o${i}b`, group: i % 2 ? 43 : 44 } });
    const rs = await a.link.addMany(specs, { concurrency: 256, echo: false });
    expect(rs.every((r) => r.status === 'fulfilled')).toBe(true);
    await a.link.delGroup(43);
    // A last, single change marks the end: once the monitor's state has it (by an event or a
    // resync), everything before it was handled.
    await a.link.add({ kind: 'veth', name: 'zlast', peer: { name: 'zlast1' } });
    await waitFor(() => state.has('zlast') && state.has('zlast1'), 'the final link in the monitor state');
    expect(resyncs).toBeGreaterThan(0);
    const truth = (await ipLinks(A)).map((l) => l.ifname).sort();
    expect([...state.keys()].sort()).toEqual(truth);
    await mon.close();
    await a.link.delGroup(44);
    await a.link.del('zlast');
  });

  it('closing the handle closes its monitors and ends their iteration; a closed handle makes none', async () => {
    const h = await open({ netns: A.name });
    const mon = h.monitor({ groups: ['link'] });
    const seen: string[] = [];
    const loop = (async () => { for await (const ev of mon) seen.push(ev.type); return 'ended'; })();
    await mon.ready;
    await a.link.add({ kind: 'bridge', name: 'hcbr0' });
    await waitFor(async () => seen.includes('newlink'), 'newlink before close');
    await h.close();
    expect(mon.closed).toBe(true);
    expect(await loop).toBe('ended');
    expect(() => h.monitor()).toThrow(/handle: is closed/);
    await a.link.del('hcbr0');
  });

  it('an unref\'d monitor lets its process exit; a ref\'d one keeps it running', () => {
    const dist = new URL('../dist/index.js', import.meta.url).href;
    // An unref'd timer fires only while something else keeps the process running: it tells
    // (with no race against a kill deadline on a loaded machine) whether the monitor does.
    const child = (unref: boolean) => spawnSync(process.execPath, ['--input-type=module', '-e', `
      import { open } from ${JSON.stringify(dist)};
      const h = await open({ netns: ${JSON.stringify(A.name)} });
      const mon = h.monitor({ groups: ['link'] });
      ${unref ? 'mon.unref();' : ''}
      await mon.ready;
      console.log('watching');
      setTimeout(() => { console.log('still running'); process.exit(3); }, 3000).unref();`], { encoding: 'utf8', timeout: 25_000 });
    const free = child(true);
    expect(free.stderr).toBe('');
    expect(free.stdout).toBe('watching\n');
    expect(free.status).toBe(0);
    // Control: without unref the monitor keeps the process running until the timer ends it.
    const held = child(false);
    expect(held.stdout).toBe('watching\nstill running\n');
    expect(held.status).toBe(3);
  });

  it('rejects bad options naming the field, before any syscall', () => {
    expect(() => a.monitor({ groups: ['links' as any] })).toThrow(/groups\[0\]/);
    expect(() => a.monitor({ groups: [] })).toThrow(/groups/);
    expect(() => a.monitor({ rcvbuf: -1 })).toThrow(/rcvbuf/);
    expect(() => a.monitor({ family: 'ipx' as any })).toThrow(/family/);
    expect(() => a.monitor({ nope: 1 } as any)).toThrow(/nope/);
  });
});
