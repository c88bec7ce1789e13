// Hostile and careless callers: every string that reaches a file, a sysctl path, an nft rule, an
// interface name, a namespace path or an OVSDB row is checked before any syscall. Each case is
// rejected with a TypeError/RangeError naming the field, and afterwards the test namespace has
// exactly the links, rules and namespaces it had (`ip -j link`, `nft list ruleset`, /run/netns),
// and no file was written where a hostile path pointed.
// (network.create, dnsmasq and stateDir cases live in hostile-network.test.ts.)
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Netns, Ovsdb, open, nftExpr, type Handle } from '../lib/index.js';
import { JsonSplitter } from '../lib/ovsdb/json-stream.js';
import { Namespaces, hasTool, ipLinks, nsExec, privilegedSkipReason } from './helpers.js';

const skip = privilegedSkipReason() ?? (hasTool('nft') ? undefined : 'needs the nft CLI (apt-get install nftables)');
const { match, stmt } = nftExpr;
const pid = process.pid;
/** Where a traversal would land if a hostile path were taken as given: none of these may appear. */
const EVIL = [`/run/vt-evil-${pid}`, `/tmp/vt-evil-${pid}`, `/run/netns/vt-evil-${pid}`];

/** Strings that are not interface names (the kernel's rules: 1–15 bytes, no "/", ":", whitespace, not "." or ".."). */
const BAD_IFNAMES: unknown[] = ['', 'x'.repeat(16), 'é'.repeat(8), 'a/b', 'a b', 'a\nb', 'a\tb', '.', '..', 'a:b', 'a\0b',
  `../vt-evil-${pid}`.slice(0, 15), 5, null, {}, ['a']];
/** Strings that are not namespace names, some pointing at a traversal. */
const BAD_NETNS: unknown[] = [`../vt-evil-${pid}`, `../../tmp/vt-evil-${pid}`, 'a/b', '', '.', '..', 'a\nb', 'a b', 'a\x01b', 'a\x7fb',
  'x'.repeat(256), `/run/netns/../../tmp/vt-evil-${pid}`, '/run/netns/./x', '/run//netns/x', `/run/netns/x\n`, -1, 1.5, 99_999];

type Case = { what: string; run: () => unknown; field: string };

describe.skipIf(skip)('hostile input through the public API', () => {
  const nss = new Namespaces();
  let ns: Netns;
  let nl: Handle;
  let before: { links: string[]; ruleset: string; netns: string[] };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-hostile-'));
  let ovsPath: string;
  let ovsSrv: net.Server;
  const ovsWrites: unknown[] = [];

  beforeAll(async () => {
    ns = await nss.create('hostile');
    nl = await open({ netns: ns });
    await nl.link.add({ kind: 'bridge', name: 'hbr0' });
    // A fake OVSDB server that records every transact: hostile names must never reach it.
    ovsPath = path.join(dir, 'db.sock');
    ovsSrv = net.createServer((c) => {
      const sp = new JsonSplitter();
      c.on('error', () => undefined);
      c.on('data', (d) => {
        for (const m of sp.push(d) as any[]) {
          if (m.method === 'list_dbs') c.write(JSON.stringify({ id: m.id, result: ['Open_vSwitch'], error: null }));
          else if (m.method === 'transact') ovsWrites.push(m);
        }
      });
    });
    await new Promise<void>((r) => ovsSrv.listen(ovsPath, r));
    before = await state();
  });

  afterAll(async () => {
    await nl?.close();
    ovsSrv?.close();
    await nss.cleanup();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  async function state() {
    return {
      links: (await ipLinks(ns)).map((l) => l.ifname).sort(),
      ruleset: await nsExec(ns, 'nft', ['list', 'ruleset']),
      netns: (await Netns.list()).filter((n) => n.includes(String(pid)) || n.includes('evil')).sort(),
    };
  }

  const cases: Case[] = [];
  const add = (what: string, field: string, run: () => unknown) => cases.push({ what, field, run });

  // ---- interface names (reach the kernel and, through bridges, sysctl paths and nft rules)
  for (const n of BAD_IFNAMES) {
    add(`link.add name ${JSON.stringify(n)}`, 'link.add: name', () => nl.link.add({ kind: 'bridge', name: n as string }));
    add(`tap.create name ${JSON.stringify(n)}`, 'tap.create: name', () => nl.tap.create({ name: n as string }));
  }
  for (const n of ['vnet%d%d', 'vnet%s', '%d'.repeat(8)]) add(`tap.create pattern ${n}`, 'tap.create: name', () => nl.tap.create({ name: n }));
  for (const n of ['a/b', 'x'.repeat(16), '..']) {
    add(`macvtap.open ${n}`, 'macvtap.open: name', () => nl.macvtap.open(n));
    add(`link.set ${n}`, 'link.set: name', () => nl.link.set(n, { up: true }));
    add(`link.set rename to ${n}`, 'link.set: name', () => nl.link.set('hbr0', { name: n }));
    add(`link.add master ${n}`, 'link.add: master', () => nl.link.add({ kind: 'bridge', name: 'hbr1', master: n }));
    add(`veth peer ${n}`, 'link.add: peer.name', () => nl.link.add({ kind: 'veth', name: 'hv0', peer: { name: n } }));
    add(`bridge.setPort ${n}`, 'bridge.setPort: port', () => nl.bridge.setPort(n, { hairpin: true }));
    add(`addr.add link ${n}`, 'addr.add: link', () => nl.addr.add(n, '198.51.100.1/24'));
    add(`route.add dev ${n}`, 'route.add: dev', () => nl.route.add({ dst: '198.51.100.0/24', dev: n }));
    add(`vxlan link ${n}`, 'link.add: link', () => nl.link.add({ kind: 'vxlan', name: 'hvx0', vni: 1, link: n }));
  }
  add('link.add kind', 'link.add: kind', () => nl.link.add({ kind: 'nope' } as any));
  for (const m of ['zz', '01:00:5e:00:00:01', '00:00:00:00:00:00', '52:54:00:82:32:7e\n', '52-54-00-82-32-7e', 5])
    add(`mac ${JSON.stringify(m)}`, 'link.add: mac', () => nl.link.add({ kind: 'bridge', name: 'hbr1', mac: m as string }));
  for (const m of [-1, 2 ** 32, 1.5, '1500', Number.NaN]) add(`mtu ${m}`, 'link.add: mtu', () => nl.link.add({ kind: 'bridge', name: 'hbr1', mtu: m as number }));
  for (const [k, val] of [['vni', 2 ** 24], ['remote', 'x'], ['remote', '203.0.113.2\n'], ['dstPort', 70_000]] as const)
    add(`vxlan ${k} ${JSON.stringify(val)}`, `link.add: ${k}`, () => nl.link.add({ kind: 'vxlan', name: 'hvx0', vni: 1, [k]: val } as any));

  // ---- namespaces (names become /run/netns/NAME; paths are opened)
  for (const n of BAD_NETNS) {
    add(`Netns.create ${JSON.stringify(n)}`, 'netns.create: name', () => Netns.create(n as string));
    add(`open netns ${JSON.stringify(n)}`, 'open: netns', () => open({ netns: n as string }));
    add(`link.set netns ${JSON.stringify(n)}`, 'link.set: netns', () => nl.link.set('hbr0', { netns: n as string }));
  }
  add('veth peer netns traversal', 'link.add: peer.netns', () => nl.link.add({ kind: 'veth', name: 'hv0', peer: { name: 'hv1', netns: `../vt-evil-${pid}` } }));
  add('Netns.delete ..', 'netns.delete: name', () => Netns.delete('..'));
  add('Netns.from a/b', 'netns.from: name', () => Netns.from('a/b'));

  // ---- addresses and routes
  for (const a of ['198.51.100.1/33', '198.51.100.1', 'x/24', '198.51.100.1/24\n', ' 198.51.100.1/24', '198.51.100.1/2 4', '::1/129', '198.51.100.1/-1', 5])
    add(`addr ${JSON.stringify(a)}`, 'addr.add: address', () => nl.addr.add('hbr0', a as string));
  for (const l of ['hbr0:\n', 'hbr0:a b', 'other:1', 'hbr0:\x01', 'hbr0:' + 'x'.repeat(12)])
    add(`addr label ${JSON.stringify(l)}`, 'addr.add: label', () => nl.addr.add('hbr0', '198.51.100.1/24', { label: l }));
  add('addr broadcast', 'addr.add: broadcast', () => nl.addr.add('hbr0', '198.51.100.1/24', { broadcast: 'x' }));
  for (const [k, val] of [['dst', 'x'], ['dst', '198.51.100.0/33'], ['via', 'x'], ['via', '198.51.100.1\n'], ['metric', -1], ['table', 0], ['src', 'x']] as const)
    add(`route ${k} ${JSON.stringify(val)}`, `route.add: ${k}`, () => nl.route.add({ dst: '203.0.113.0/24', dev: 'hbr0', [k]: val } as any));

  // ---- sysctl keys (they become /proc/sys paths) and values
  for (const k of ['kernel.hostname', `net.ipv4.ip_forward/../../../../tmp/vt-evil-${pid}`, 'net/../kernel/hostname', 'net.ipv4.ip_forward\n',
    'net.ipv4..ip_forward', '/proc/sys/net/ipv4/ip_forward', 'net.ipv4.ip forward', 'net//ipv4', '', 'net.', 5, null]) {
    add(`sysctl.set ${JSON.stringify(k)}`, 'sysctl.set: key', () => nl.sysctl.set(k as string, '1'));
    add(`sysctl.get ${JSON.stringify(k)}`, 'sysctl.get: key', () => nl.sysctl.get(k as string));
  }
  for (const val of ['1\0', Number.NaN, Infinity, {}, 'x'.repeat(5000)])
    add(`sysctl value ${typeof val}`, 'sysctl.set: value', () => nl.sysctl.set('net.ipv4.ip_forward', val as string));

  // ---- nft: table/chain names and comments end up in `nft list ruleset`, which `nft -f` reads back
  const tx = () => nl.nft.transaction();
  for (const n of ['a b', 'a"b', 'a;b', '', '1abc', 'x'.repeat(300), 'a\nb', 'a}b', 5]) {
    add(`nft table ${JSON.stringify(n)}`, 'nft.commit: cmds[0].name', () => tx().addTable({ family: 'ip', name: n as string }).commit());
    add(`nft chain ${JSON.stringify(n)}`, 'nft.commit: cmds[1].name', () => tx().addTable({ family: 'ip', name: 't' }).addChain({ family: 'ip', table: 't', name: n as string }).commit());
  }
  const withRule = (r: Record<string, unknown>) => () => tx().addTable({ family: 'ip', name: 'ht' }).addChain({ family: 'ip', table: 'ht', name: 'c' })
    .addRule({ family: 'ip', table: 'ht', chain: 'c', exprs: [stmt.counter()], ...r } as any).commit();
  for (const c of ['a"; drop; #', 'a\\b', 'a\nb', 'a\rb', 'a\x7fb', 'a\x1bb', 'a\tb', 'x'.repeat(128), '\0', 5])
    add(`nft comment ${JSON.stringify(c)}`, 'nft.commit: cmds[2].comment', withRule({ comment: c }));
  add('nft family', 'nft.commit: cmds[0].family', () => tx().addTable({ family: 'ipx' as any, name: 't' }).commit());
  add('nft hook', 'nft.commit: cmds[1].hook', () => tx().addTable({ family: 'ip', name: 't' }).addChain({ family: 'ip', table: 't', name: 'c', hook: 'bad' as any }).commit());
  add('nft priority', 'nft.commit: cmds[1].priority', () => tx().addTable({ family: 'ip', name: 't' }).addChain({ family: 'ip', table: 't', name: 'c', hook: 'input', priority: 'srcnatx' as any }).commit());
  add('nft empty exprs', 'nft.commit: cmds[2].exprs', withRule({ exprs: [] }));
  add('nft unknown expr', 'nft.commit: cmds[2].exprs[0].type', withRule({ exprs: [{ type: 'bogus' }] }));
  add('nft bad data', 'nft.commit: cmds[2].exprs[0].data', withRule({ exprs: [{ type: 'cmp', op: 'eq', data: 'zz' }] }));
  add('nft jump chain', 'nft.commit: cmds[2].exprs[0].chain', withRule({ exprs: [{ type: 'immediate', verdict: 'jump', chain: 'a b' }] }));

  // ---- nft builders: each checks its arguments like the rest of the API
  add('dnat ip with an IPv6 address', 'nftExpr.stmt.dnat: address', () => stmt.dnat('ip', '2001:db8::1', 80));
  add('dnat ip6 with an IPv4 address', 'nftExpr.stmt.dnat: address', () => stmt.dnat('ip6', '192.0.2.1'));
  add('dnat not an address', 'nftExpr.stmt.dnat: address', () => stmt.dnat('ip', '192.0.2.1; drop'));
  add('dnat port 70000', 'nftExpr.stmt.dnat: port', () => stmt.dnat('ip', '192.0.2.1', 70_000));
  add('dnat port 0', 'nftExpr.stmt.dnat: port', () => stmt.dnat('ip', '192.0.2.1', 0));
  add('dnat family inet', 'nftExpr.stmt.dnat: family', () => stmt.dnat('inet' as any, '192.0.2.1'));
  add('ctState typo', 'nftExpr.match.ctState: states[0]', () => match.ctState(['establishd' as any]));
  add('ctState empty', 'nftExpr.match.ctState: states', () => match.ctState([]));
  add('iifname 16 bytes', 'nftExpr.match.iifname: name', () => match.iifname('x'.repeat(16)));
  add('oifname a/b', 'nftExpr.match.oifname: name', () => match.oifname('a/b'));
  add('iifname op', 'nftExpr.match.iifname: op', () => match.iifname('hbr0', 'lt' as any));
  add('dport 70000', 'nftExpr.match.dport: port', () => match.dport(70_000));
  add('sport -1', 'nftExpr.match.sport: port', () => match.sport(-1));
  add('masquerade ports [0, 65535]', 'nftExpr.stmt.masquerade: ports[0]', () => stmt.masquerade({ ports: [0, 65535] }));
  add('masquerade ports [1, 70000]', 'nftExpr.stmt.masquerade: ports[1]', () => stmt.masquerade({ ports: [1, 70_000] }));
  add('masquerade ports reversed', 'nftExpr.stmt.masquerade: ports', () => stmt.masquerade({ ports: [2000, 1000] }));
  add('masquerade random', 'nftExpr.stmt.masquerade: random', () => stmt.masquerade({ random: 'yes' as any }));
  add('masquerade unknown option', 'nftExpr.stmt.masquerade: options.bogus', () => stmt.masquerade({ bogus: 1 } as any));
  add('jump chain', 'nftExpr.stmt.jump: chain', () => stmt.jump('a"b'));
  add('reject family', 'nftExpr.stmt.reject: family', () => stmt.reject('x' as any));
  add('addr family inet', 'nftExpr.match.addr: family', () => match.addr('inet' as any, 'saddr', '198.51.100.0/24'));
  add('addr field', 'nftExpr.match.addr: field', () => match.addr('ip', 'xaddr' as any, '198.51.100.0/24'));
  add('addr ip with IPv6', 'nftExpr.match.addr: cidr', () => match.addr('ip', 'saddr', '2001:db8::/32'));
  add('addr op', 'nftExpr.match.addr: op', () => match.addr('ip', 'saddr', '198.51.100.0/24', 'lt' as any));
  add('l4proto', 'nftExpr.match.l4proto: proto', () => match.l4proto('sctpx' as any));
  add('nfproto', 'nftExpr.match.nfproto: proto', () => match.nfproto('ipv5' as any));
  for (const [k, val, field] of [['subnet', '192.168.122.1/24'], ['subnet', 'x'], ['table', 'a b'], ['chain', 'a"b'], ['outInterface', 'x'.repeat(16)],
    ['ports', [0, 1], 'ports[0]'], ['ports', [1]], ['family', 'ip6', 'subnet'], ['family', 'bridge'], ['priority', 'x']] as const)
    add(`nft.masquerade ${k} ${JSON.stringify(val)}`, `nft.masquerade: ${field ?? k}`, () => nl.nft.masquerade({ subnet: '192.168.122.0/24', [k]: val } as any));

  // ---- OVSDB names and values (rows of the switch's database); nothing may reach the server
  const ovs = (fn: (o: Ovsdb) => Promise<unknown>) => async () => {
    const o = await Ovsdb.connect(ovsPath, { timeout: 5000 });
    try { return await fn(o); } finally { await o.close(); }
  };
  for (const n of ['a b', 'a/b', 'x'.repeat(16), '..', 'a\nb', 5]) {
    add(`ovs addBridge ${JSON.stringify(n)}`, 'ovsdb.addBridge: name', ovs((o) => o.addBridge(n as string)));
    add(`ovs addPort iface ${JSON.stringify(n)}`, 'ovsdb.addPort: iface', ovs((o) => o.addPort('br0', n as string)));
  }
  add('ovs addPort bridge', 'ovsdb.addPort: bridge', ovs((o) => o.addPort('a/b', 'p0')));
  add('ovs delPort', 'ovsdb.delPort: port', ovs((o) => o.delPort(null, '..')));
  add('ovs delBridge', 'ovsdb.delBridge: name', ovs((o) => o.delBridge('a\nb')));
  add('ovs listPorts', 'ovsdb.listPorts: bridge', ovs((o) => o.listPorts('a/b')));
  add('ovs datapathType', 'ovsdb.addBridge: datapathType', ovs((o) => o.addBridge('br0', { datapathType: 'a;b' })));
  add('ovs failMode', 'ovsdb.addBridge: failMode', ovs((o) => o.addBridge('br0', { failMode: 'x' as any })));
  add('ovs externalIds empty key', 'ovsdb.addBridge: externalIds', ovs((o) => o.addBridge('br0', { externalIds: { '': 'x' } })));
  add('ovs externalIds NUL', 'ovsdb.addBridge: externalIds.k', ovs((o) => o.addBridge('br0', { externalIds: { k: 'a\0b' } })));
  add('ovs externalIds non-string', 'ovsdb.addPort: externalIds.k', ovs((o) => o.addPort('br0', 'p0', { externalIds: { k: 5 as any } })));
  add('ovs type', 'ovsdb.addPort: type', ovs((o) => o.addPort('br0', 'p0', { type: 'a b' })));
  add('ovs tag', 'ovsdb.addPort: tag', ovs((o) => o.addPort('br0', 'p0', { tag: 4096 })));
  add('ovs trunks', 'ovsdb.addPort: trunks[0]', ovs((o) => o.addPort('br0', 'p0', { trunks: [-1] })));
  add('ovs ofportRequest', 'ovsdb.addPort: ofportRequest', ovs((o) => o.addPort('br0', 'p0', { ofportRequest: 0 })));
  add('ovs vlanMode', 'ovsdb.addPort: vlanMode', ovs((o) => o.addPort('br0', 'p0', { vlanMode: 'x' as any })));
  add('ovs transact', 'ovsdb.transact: operations', ovs((o) => o.transact('x' as any)));
  add('ovs connect path', 'ovsdb.connect: path', () => Ovsdb.connect(''));
  add('ovs connect signal', 'ovsdb.connect: signal', () => Ovsdb.connect(ovsPath, { signal: {} as any }));

  it(`has at least 100 cases (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(100);
  });

  it('rejects every case with a TypeError/RangeError naming the field, before anything is created or written', async () => {
    const wrong: string[] = [];
    for (const c of cases) {
      let err: unknown;
      try { await c.run(); } catch (e) { err = e; }
      const ok = (err instanceof TypeError || err instanceof RangeError) && (err as Error).message.startsWith(`${c.field}:`);
      if (!ok) wrong.push(`${c.what}: expected "${c.field}: ...", got ${err === undefined ? 'success' : `${(err as Error)?.name}: ${(err as Error)?.message}`}`);
    }
    expect(wrong).toEqual([]);
    // Nothing was created: the namespace's links and rules, and the namespaces, are as before.
    expect(await state()).toEqual(before);
    for (const p of EVIL) expect(fs.existsSync(p), p).toBe(false);
    expect(ovsWrites).toEqual([]);
  }, 120_000);
});

describe.skipIf(skip)('nft rule comments survive `nft list ruleset | nft -f -`', () => {
  const nss = new Namespaces();
  let ns: Netns;
  let nl: Handle;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-hostile-nft-'));
  beforeAll(async () => { ns = await nss.create('hnft'); nl = await open({ netns: ns }); });
  afterAll(async () => { await nl?.close(); await nss.cleanup(); fs.rmSync(dir, { recursive: true, force: true }); });

  it('a comment with every character nft allows inside quotes round-trips; one that would end the quotes is refused', async () => {
    const tx = nl.nft.transaction().addTable({ family: 'ip', name: 'vnl_rt' }).addChain({ family: 'ip', table: 'vnl_rt', name: 'c' });
    const comments = ["it's a; #{}[] $x @y ~ test é", 'vnetlink pf 8080', "semi;colon#hash'quote", 'x'.repeat(127)];
    for (const comment of comments) tx.addRule({ family: 'ip', table: 'vnl_rt', chain: 'c', exprs: [...match.l4proto('tcp'), ...match.dport(8080), stmt.accept()], comment });
    await tx.commit();
    const listed = await nsExec(ns, 'nft', ['list', 'ruleset']);
    const rulesBefore = (await nl.nft.listRules('ip', 'vnl_rt')).map((r) => r.comment);
    expect(rulesBefore).toEqual(comments);
    // The listing is valid nft input that restores exactly the same rules, and nothing more.
    const file = path.join(dir, 'ruleset.nft');
    fs.writeFileSync(file, listed);
    await nsExec(ns, 'nft', ['flush', 'ruleset']);
    expect(await nsExec(ns, 'nft', ['list', 'ruleset'])).toBe('');
    await nsExec(ns, 'nft', ['-f', file]);
    expect(await nsExec(ns, 'nft', ['list', 'ruleset'])).toBe(listed);
    expect((await nl.nft.listRules('ip', 'vnl_rt')).map((r) => r.comment)).toEqual(comments);

    // `a"; drop; #` would close the quotes in the listing and restore as an extra drop rule.
    for (const comment of ['a"; drop; #', 'a\\"; drop; #', 'line\nbreak']) {
      expect(() => nl.nft.transaction().addRule({ family: 'ip', table: 'vnl_rt', chain: 'c', exprs: [stmt.accept()], comment }))
        .toThrow(/nft.commit: cmds\[0\].comment: must not contain quotes, backslashes or control characters/);
    }
    expect(await nsExec(ns, 'nft', ['list', 'ruleset'])).toBe(listed);
  });

  it('the builders build what they say: a dnat to an IPv4 address loads 4 bytes; an IPv6 one in an ip rule is refused', async () => {
    expect(() => stmt.dnat('ip', '2001:db8::1', 80)).toThrow(/nftExpr.stmt.dnat: address: 2001:db8::1 is not an IPv4 address/);
    expect(() => match.ctState(['establishd' as any])).toThrow(/nftExpr.match.ctState: states\[0\]: must be one of/);
    expect(() => match.iifname('averyveryverylongname')).toThrow(/nftExpr.match.iifname: name: must be at most 15 bytes/);
    expect(() => match.dport(65536)).toThrow(/nftExpr.match.dport: port: must be between 0 and 65535/);
    expect(() => stmt.dnat('ip', '192.0.2.1', 65536)).toThrow(/nftExpr.stmt.dnat: port: must be between 1 and 65535/);
    expect(() => stmt.masquerade({ ports: [1024, 65536] })).toThrow(/nftExpr.stmt.masquerade: ports\[1\]/);
    // What still builds, builds right: nft agrees on the listing.
    await nl.nft.transaction().addTable({ family: 'ip', name: 'b' })
      .addChain({ family: 'ip', table: 'b', name: 'pre', type: 'nat', hook: 'prerouting', priority: 'dstnat' })
      .addRule({ family: 'ip', table: 'b', chain: 'pre', exprs: [...match.iifname('hostile0'), ...match.ctState(['new', 'established']), ...match.l4proto('tcp'), ...match.dport(8080), ...stmt.dnat('ip', '192.168.122.50', 80)] })
      .commit();
    const out = await nsExec(ns, 'nft', ['list', 'chain', 'ip', 'b', 'pre']);
    expect(out).toContain('iifname "hostile0" ct state established,new tcp dport 8080 dnat to 192.168.122.50:80');
  });
});

describe.skipIf(skip)('tap and macvtap fds are owned: read-only, and close() closes only what is still ours', () => {
  const nss = new Namespaces();
  let ns: Netns;
  let nl: Handle;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-hostile-fd-'));
  const held: number[] = [];
  beforeAll(async () => { ns = await nss.create('hfd'); nl = await open({ netns: ns }); });
  afterAll(async () => {
    for (const fd of held.splice(0)) { try { fs.closeSync(fd); } catch { /* closed */ } }
    await nl?.close(); await nss.cleanup(); fs.rmSync(dir, { recursive: true, force: true });
  });

  /** Opens files until one gets fd number `n` (the kernel hands out the lowest free number); keeps the others open. */
  function takeNumber(n: number, file = path.join(dir, 'mine')): number {
    for (let i = 0; i < 4096; i++) {
      const fd = fs.openSync(file, 'a+');
      held.push(fd);
      if (fd === n) return fd;
      if (fd > n) break;
    }
    throw new Error(`fd number ${n} was not free to take`);
  }
  const links = async () => (await ipLinks(ns)).map((l) => l.ifname);

  it('fds cannot be changed from outside', async () => {
    const tap = await nl.tap.create({ name: 'hro0', queues: 2 });
    try {
      const fds = [...tap.fds];
      expect(() => (tap.fds as number[]).push(0)).toThrow(TypeError);
      expect(() => { (tap.fds as number[])[0] = 0; }).toThrow(TypeError);
      expect(() => { (tap as any).fds = [0]; }).toThrow(TypeError);
      expect(tap.fds).toEqual(fds);
      await tap.addQueues(1);
      expect(tap.fds).toHaveLength(3);
      expect(() => (tap.fds as number[]).pop()).toThrow(TypeError);
    } finally { await tap.close(); }
    expect(await links()).not.toContain('hro0');
  });

  it('a number closed behind the tap\'s back and reused by a file is not closed by tap.close(); the tap\'s own fds are', async () => {
    const tap = await nl.tap.create({ name: 'hfd0', queues: 2 });
    const [a, b] = tap.fds;
    fs.closeSync(a);                      // a careless caller closes one queue itself
    const mine = takeNumber(a);           // and the number now names one of its files
    fs.writeSync(mine, 'before ');
    await tap.close();
    fs.writeSync(mine, 'after');          // still open: tap.close() left it alone
    expect(fs.readFileSync(path.join(dir, 'mine'), 'utf8')).toContain('before after');
    expect(() => fs.fstatSync(b)).toThrow();   // (nothing reuses b in between: the test opens nothing)
    expect(await links()).not.toContain('hfd0');   // its last own fd closed: the tap is gone
  });

  it('a second close() of a closed tap leaves a reused number alone', async () => {
    const tap = await nl.tap.create({ name: 'hfd1' });
    const [a] = tap.fds;
    await tap.close();
    const mine = takeNumber(a, path.join(dir, 'second'));
    await tap.close();
    expect(fs.writeSync(mine, 'still open')).toBe(10);
  });

  it('a number reused by another tap is not closed by the first tap\'s close()', async () => {
    const first = await nl.tap.create({ name: 'hfda' });
    const [n] = first.fds;
    fs.closeSync(n);   // the tap hfda disappears with its only fd
    // Make n the lowest free number again, so the next tap's queue gets it.
    const ph = takeNumber(n, '/dev/null');
    fs.closeSync(ph);
    held.splice(held.indexOf(ph), 1);
    const second = await nl.tap.create({ name: 'hfdb' });
    try {
      expect(second.fds[0]).toBe(n);
      await first.close();
      expect(await links()).toContain('hfdb');
      expect(() => fs.fstatSync(n)).not.toThrow();
    } finally { await second.close(); }
    expect(await links()).not.toContain('hfdb');
  });

  it('macvtap queues: read-only fds, and close() leaves a reused number alone', async () => {
    await nl.link.add({ kind: 'veth', name: 'hmv0', peer: { name: 'hmv1' } });
    await nl.link.add({ kind: 'macvtap', name: 'hmvt0', link: 'hmv0', mode: 'bridge' });
    const q = await nl.macvtap.open('hmvt0', { queues: 2 });
    expect(() => (q.fds as number[]).push(0)).toThrow(TypeError);
    expect(() => { (q as any).fds = [0]; }).toThrow(TypeError);
    const [a, b] = q.fds;
    fs.closeSync(a);
    const mine = takeNumber(a, path.join(dir, 'mv'));
    await q.close();
    expect(fs.writeSync(mine, 'mv')).toBe(2);
    expect(() => fs.fstatSync(b)).toThrow();
    await nl.link.del('hmvt0');
    await nl.link.del('hmv0');
  });
});
