// nftables over nfnetlink: what we write is what `nft` itself writes (byte for byte, and as
// `nft list ruleset` prints it), a batch is all-or-nothing, and libvirt's masquerade rules
// really translate a guest's flows, port range included, as seen from an outside namespace.
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, nftExpr, NetlinkError, type Handle, type Netns } from '../lib/index.js';
import { masqueradeRules, normMasquerade } from '../lib/nft.js';
import { Namespaces, hasTool, needTools, nsExec, nsRun, privilegedSkipReason, waitFor } from './helpers.js';

const skip = privilegedSkipReason();
const { match, stmt } = nftExpr;

// Message bodies (nfgenmsg + attributes) that nftables v1.0.6 sent, captured with
// `strace -e trace=sendmsg -e write=3 nft -f FILE` for:
//   table ip vnetlink_default {
//     chain nat { type nat hook postrouting priority 100; policy accept;
//       ip saddr 192.168.122.0/24 ip daddr 224.0.0.0/24 counter return
//       ip saddr 192.168.122.0/24 ip daddr 255.255.255.255 counter return
//       ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 meta l4proto tcp counter masquerade to :1024-65535
//       ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 meta l4proto udp counter masquerade to :1024-65535
//       ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 counter masquerade }
//     chain pf { type nat hook prerouting priority -100; policy accept;
//       ip daddr 203.0.113.1 meta l4proto tcp th dport 8080 counter dnat to 192.168.122.50:80 comment "vnetlink pf"
//       ip saddr 10.0.0.0/9 counter accept } }
// in message order: NEWCHAIN nat, NEWCHAIN pf, then the 7 NEWRULEs.
const GOLDEN_MASQ = [
  '0200000015000100766e65746c696e6b5f64656661756c7400000000080003006e617400080007006e61740008000500000000011400048008000100000000040800020000000064',
  '0200000015000100766e65746c696e6b5f64656661756c74000000000700030070660000080007006e617400080005000000000114000480080001000000000008000200ffffff9c',
  '0200000015000100766e65746c696e6b5f64656661756c7400000000080002006e61740008010480340001800c0001007061796c6f6164002400028008000100000000010800020000000001080003000000000c08000400000000032c00018008000100636d700020000280080001000000000108000200000000000c00038007000100c0a87a00340001800c0001007061796c6f6164002400028008000100000000010800020000000001080003000000001008000400000000032c00018008000100636d700020000280080001000000000108000200000000000c00038007000100e0000000140001800c000100636f756e7465720004000280300001800e000100696d6d6564696174650000001c0002800800010000000000100002800c00028008000100fffffffb',
  '0200000015000100766e65746c696e6b5f64656661756c7400000000080002006e61740008010480340001800c0001007061796c6f6164002400028008000100000000010800020000000001080003000000000c08000400000000032c00018008000100636d700020000280080001000000000108000200000000000c00038007000100c0a87a00340001800c0001007061796c6f6164002400028008000100000000010800020000000001080003000000001008000400000000042c00018008000100636d700020000280080001000000000108000200000000000c00038008000100ffffffff140001800c000100636f756e7465720004000280300001800e000100696d6d6564696174650000001c0002800800010000000000100002800c00028008000100fffffffb',
  '0200000015000100766e65746c696e6b5f64656661756c7400000000080002006e617400ac010480340001800c0001007061796c6f6164002400028008000100000000010800020000000001080003000000000c08000400000000032c00018008000100636d700020000280080001000000000108000200000000000c00038007000100c0a87a00340001800c0001007061796c6f6164002400028008000100000000010800020000000001080003000000001008000400000000032c00018008000100636d700020000280080001000000000108000200000000010c00038007000100c0a87a0024000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d700020000280080001000000000108000200000000000c0003800500010006000000140001800c000100636f756e74657200040002802c0001800e000100696d6d6564696174650000001800028008000100000000010c00028006000100040000002c0001800e000100696d6d6564696174650000001800028008000100000000020c00028006000100ffff00002c000180090001006d617371000000001c000280080001000000000208000200000000010800030000000002',
  '0200000015000100766e65746c696e6b5f64656661756c7400000000080002006e617400ac010480340001800c0001007061796c6f6164002400028008000100000000010800020000000001080003000000000c08000400000000032c00018008000100636d700020000280080001000000000108000200000000000c00038007000100c0a87a00340001800c0001007061796c6f6164002400028008000100000000010800020000000001080003000000001008000400000000032c00018008000100636d700020000280080001000000000108000200000000010c00038007000100c0a87a0024000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d700020000280080001000000000108000200000000000c0003800500010011000000140001800c000100636f756e74657200040002802c0001800e000100696d6d6564696174650000001800028008000100000000010c00028006000100040000002c0001800e000100696d6d6564696174650000001800028008000100000000020c00028006000100ffff00002c000180090001006d617371000000001c000280080001000000000208000200000000010800030000000002',
  '0200000015000100766e65746c696e6b5f64656661756c7400000000080002006e617400ec000480340001800c0001007061796c6f6164002400028008000100000000010800020000000001080003000000000c08000400000000032c00018008000100636d700020000280080001000000000108000200000000000c00038007000100c0a87a00340001800c0001007061796c6f6164002400028008000100000000010800020000000001080003000000001008000400000000032c00018008000100636d700020000280080001000000000108000200000000010c00038007000100c0a87a00140001800c000100636f756e746572000400028014000180090001006d6173710000000004000280',
  '0200000015000100766e65746c696e6b5f64656661756c74000000000700020070660000b8010480340001800c0001007061796c6f6164002400028008000100000000010800020000000001080003000000001008000400000000042c00018008000100636d700020000280080001000000000108000200000000000c00038008000100cb00710124000180090001006d6574610000000014000280080002000000001008000100000000012c00018008000100636d700020000280080001000000000108000200000000000c0003800500010006000000340001800c0001007061796c6f6164002400028008000100000000010800020000000002080003000000000208000400000000022c00018008000100636d700020000280080001000000000108000200000000000c000380060001001f900000140001800c000100636f756e74657200040002802c0001800e000100696d6d6564696174650000001800028008000100000000010c00028008000100c0a87a322c0001800e000100696d6d6564696174650000001800028008000100000000020c000280060001000050000038000180080001006e6174002c0002800800010000000001080002000000000208000300000000010800050000000002080007000000000212000700000c766e65746c696e6b207066000000',
  '0200000015000100766e65746c696e6b5f64656661756c74000000000700020070660000ec000480340001800c0001007061796c6f6164002400028008000100000000010800020000000001080003000000000c0800040000000004440001800c0001006269747769736500340002800800010000000001080002000000000108000300000000040c00048008000100ff8000000c00058008000100000000002c00018008000100636d700020000280080001000000000108000200000000000c000380080001000a000000140001800c000100636f756e7465720004000280300001800e000100696d6d6564696174650000001c0002800800010000000000100002800c0002800800010000000001',
];
// The same capture for libvirt's forward guards, in `table ip vnl_probe { chain forward {...} }`:
//   ip daddr 192.168.122.0/24 oifname "virbr0" ct state established,related counter accept
//   ip saddr 192.168.122.0/24 iifname "virbr0" counter accept
//   iifname "virbr0" oifname "virbr0" counter accept
//   oifname "virbr0" counter reject
//   iifname "virbr0" counter reject
const GOLDEN_FORWARD = [
  '020000000e000100766e6c5f70726f62650000000c000200666f72776172640094010480340001800c0001007061796c6f6164002400028008000100000000010800020000000001080003000000001008000400000000032c00018008000100636d700020000280080001000000000108000200000000000c00038007000100c0a87a0024000180090001006d6574610000000014000280080002000000000708000100000000013800018008000100636d70002c000280080001000000000108000200000000001800038014000100766972627230000000000000000000002000018007000100637400001400028008000200000000000800010000000001440001800c0001006269747769736500340002800800010000000001080002000000000108000300000000040c00048008000100060000000c00058008000100000000002c00018008000100636d700020000280080001000000000108000200000000010c0003800800010000000000140001800c000100636f756e7465720004000280300001800e000100696d6d6564696174650000001c0002800800010000000000100002800c0002800800010000000001',
  '020000000e000100766e6c5f70726f62650000000c000200666f72776172640004010480340001800c0001007061796c6f6164002400028008000100000000010800020000000001080003000000000c08000400000000032c00018008000100636d700020000280080001000000000108000200000000000c00038007000100c0a87a0024000180090001006d6574610000000014000280080002000000000608000100000000013800018008000100636d70002c00028008000100000000010800020000000000180003801400010076697262723000000000000000000000140001800c000100636f756e7465720004000280300001800e000100696d6d6564696174650000001c0002800800010000000000100002800c0002800800010000000001',
  '020000000e000100766e6c5f70726f62650000000c000200666f7277617264000001048024000180090001006d6574610000000014000280080002000000000608000100000000013800018008000100636d70002c0002800800010000000001080002000000000018000380140001007669726272300000000000000000000024000180090001006d6574610000000014000280080002000000000708000100000000013800018008000100636d70002c00028008000100000000010800020000000000180003801400010076697262723000000000000000000000140001800c000100636f756e7465720004000280300001800e000100696d6d6564696174650000001c0002800800010000000000100002800c0002800800010000000001',
  '020000000e000100766e6c5f70726f62650000000c000200666f7277617264009800048024000180090001006d6574610000000014000280080002000000000708000100000000013800018008000100636d70002c00028008000100000000010800020000000000180003801400010076697262723000000000000000000000140001800c000100636f756e7465720004000280240001800b00010072656a65637400001400028008000100000000000500020003000000',
  '020000000e000100766e6c5f70726f62650000000c000200666f7277617264009800048024000180090001006d6574610000000014000280080002000000000608000100000000013800018008000100636d70002c00028008000100000000010800020000000000180003801400010076697262723000000000000000000000140001800c000100636f756e7465720004000280240001800b00010072656a65637400001400028008000100000000000500020003000000',
];

/** Splits a batch into [type, flags, body hex] per message. */
function messages(b: Buffer): Array<{ type: number; flags: number; body: string }> {
  const out = [];
  for (let off = 0; off < b.length;) {
    const len = b.readUInt32LE(off);
    out.push({ type: b.readUInt16LE(off + 4), flags: b.readUInt16LE(off + 6), body: b.subarray(off + 16, off + len).toString('hex') });
    off += (len + 3) & ~3;
  }
  return out;
}

const NEWCHAIN = 0x0a03, NEWRULE = 0x0a06;
const NLM_F_REQUEST = 1, NLM_F_ACK = 4, NLM_F_CREATE = 0x400, NLM_F_APPEND = 0x800;

// The rule set `nft list ruleset` prints for nl.nft.masquerade on 192.168.122.0/24.
const MASQ_LISTING = `table ip vnetlink_default {
	chain nat {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 192.168.122.0/24 ip daddr 224.0.0.0/24 counter packets 0 bytes 0 return
		ip saddr 192.168.122.0/24 ip daddr 255.255.255.255 counter packets 0 bytes 0 return
		ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 meta l4proto tcp counter packets 0 bytes 0 masquerade to :1024-65535
		ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 meta l4proto udp counter packets 0 bytes 0 masquerade to :1024-65535
		ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 counter packets 0 bytes 0 masquerade
	}
}
`;

describe('nftables encoding (no kernel needed)', () => {
  let h: Handle;
  beforeAll(async () => { h = await open(); });
  afterAll(async () => { await h?.close(); });

  it('encodes the masquerade table, a port forward and a non-byte-aligned prefix exactly as nft does', async () => {
    const m = normMasquerade('t', { table: 'vnetlink_default', subnet: '192.168.122.0/24' });
    const tx = h.nft.transaction()
      .addChain({ family: 'ip', table: 'vnetlink_default', name: 'nat', type: 'nat', hook: 'postrouting', priority: 'srcnat' })
      .addChain({ family: 'ip', table: 'vnetlink_default', name: 'pf', type: 'nat', hook: 'prerouting', priority: -100 });
    for (const r of masqueradeRules(m)) tx.addRule(r);
    tx.addRule({ family: 'ip', table: 'vnetlink_default', chain: 'pf', comment: 'vnetlink pf',
      exprs: [...match.addr('ip', 'daddr', '203.0.113.1'), ...match.l4proto('tcp'), ...match.dport(8080), stmt.counter(), ...stmt.dnat('ip', '192.168.122.50', 80)] });
    tx.addRule({ family: 'ip', table: 'vnetlink_default', chain: 'pf', exprs: [...match.addr('ip', 'saddr', '10.0.0.0/9'), stmt.counter(), stmt.accept()] });
    const msgs = messages(await tx._encode());
    // BATCH_BEGIN for the nftables subsystem, the commands, BATCH_END.
    expect(msgs[0]).toEqual({ type: 0x10, flags: NLM_F_REQUEST, body: '0000000a' });
    expect(msgs.at(-1)).toEqual({ type: 0x11, flags: NLM_F_REQUEST, body: '0000000a' });
    const cmds = msgs.slice(1, -1);
    expect(cmds.map((c) => c.body)).toEqual(GOLDEN_MASQ);
    // nft's flags; only the last command asks for an ack (errors are reported regardless).
    expect(cmds.slice(0, 2).every((c) => c.type === NEWCHAIN && c.flags === (NLM_F_REQUEST | NLM_F_CREATE))).toBe(true);
    expect(cmds.slice(2, -1).every((c) => c.type === NEWRULE && c.flags === (NLM_F_REQUEST | NLM_F_CREATE | NLM_F_APPEND))).toBe(true);
    expect(cmds.at(-1)!.flags).toBe(NLM_F_REQUEST | NLM_F_CREATE | NLM_F_APPEND | NLM_F_ACK);
  });

  it('encodes libvirt forward guards (ct state, iifname/oifname, reject) exactly as nft does', async () => {
    const T = { family: 'ip' as const, table: 'vnl_probe', chain: 'forward' };
    const S = '192.168.122.0/24';
    const tx = h.nft.transaction()
      .addRule({ ...T, exprs: [...match.addr('ip', 'daddr', S), ...match.oifname('virbr0'), ...match.ctState(['established', 'related']), stmt.counter(), stmt.accept()] })
      .addRule({ ...T, exprs: [...match.addr('ip', 'saddr', S), ...match.iifname('virbr0'), stmt.counter(), stmt.accept()] })
      .addRule({ ...T, exprs: [...match.iifname('virbr0'), ...match.oifname('virbr0'), stmt.counter(), stmt.accept()] })
      .addRule({ ...T, exprs: [...match.oifname('virbr0'), stmt.counter(), stmt.reject()] })
      .addRule({ ...T, exprs: [...match.iifname('virbr0'), stmt.counter(), stmt.reject()] });
    expect(messages(await tx._encode()).slice(1, -1).map((c) => c.body)).toEqual(GOLDEN_FORWARD);
  });

  it('rejects bad input naming the field, before anything is sent', async () => {
    const bad: Array<[() => unknown, RegExp, any]> = [
      [() => h.nft.masquerade({ subnet: '192.168.122.1/24' }), /nft\.masquerade: subnet: has host bits set/, RangeError],
      [() => h.nft.masquerade({ subnet: '192.168.122.0' } as any), /nft\.masquerade: subnet: must include a prefix length/, TypeError],
      [() => h.nft.masquerade({ subnet: '192.168.122.0/24', family: 'ip6' }), /subnet: is IPv4 but family is ip6/, RangeError],
      [() => h.nft.masquerade({ subnet: '192.168.122.0/24', ports: [2000, 1000] }), /ports: min 2000 is above max 1000/, RangeError],
      [() => h.nft.masquerade({ subnet: '192.168.122.0/24', ports: [0, 10] }), /ports\[0\]: must be between 1 and 65535/, RangeError],
      [() => h.nft.masquerade({ subnet: '192.168.122.0/24', table: 'bad table' }), /table: must be letters/, RangeError],
      [() => h.nft.masquerade({ subnet: '192.168.122.0/24', colour: 1 } as any), /colour: unknown option/, TypeError],
      [() => h.nft.listRules('ipx' as any, 't'), /nft\.listRules: family: must be one of/, RangeError],
      [() => h.nft.delTable('ip', '', {}), /nft\.delTable: table: must be letters/, RangeError],
      [() => h.nft.transaction().addRule({ family: 'ip', table: 't', chain: 'c', exprs: [] }), /cmds\[0\]\.exprs: must be a non-empty array/, TypeError],
      [() => h.nft.transaction().addRule({ family: 'ip', table: 't', chain: 'c', exprs: [{ type: 'cmp', op: 'eq', data: 'xyz' } as any] }), /cmds\[0\]\.exprs\[0\]\.data: must be bytes or a hex string/, TypeError],
      [() => h.nft.transaction().addRule({ family: 'ip', table: 't', chain: 'c', exprs: [{ type: 'meta', key: 'colour' } as any] }), /exprs\[0\]\.key: must be one of/, RangeError],
      [() => h.nft.transaction().addRule({ family: 'ip', table: 't', chain: 'c', exprs: [{ type: 'warp' } as any] }), /exprs\[0\]\.type: unknown expression "warp"/, RangeError],
      [() => h.nft.transaction().addRule({ family: 'ip', table: 't', chain: 'c', exprs: [{ type: 'immediate', verdict: 'accept', chain: 'x' }] }), /chain: only jump and goto take a chain/, RangeError],
      [() => h.nft.transaction().addChain({ family: 'ip', table: 't', name: 'c', priority: 5 }), /hook: is required for a base chain/, TypeError],
      [() => h.nft.transaction().addChain({ family: 'ip', table: 't', name: 'c', hook: 'sideways' as any }), /cmds\[0\]\.hook: must be one of/, RangeError],
    ];
    for (const [fn, re, cls] of bad) {
      const e = await (async () => fn())().then(() => null, (err) => err);
      expect(e, String(re)).toBeInstanceOf(cls);
      expect(e.message).toMatch(re);
    }
  });
});

/** A long-running helper process inside a namespace whose stdout lines we read. */
class NsProc {
  readonly lines: string[] = [];
  readonly child: ChildProcess;
  constructor(ns: Netns, code: string) {
    this.child = spawn('ip', ['netns', 'exec', ns.name, process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    this.child.stdout!.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) { this.lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
    });
  }
  async line(re: RegExp, what: string): Promise<string> {
    return waitFor(() => this.lines.find((l) => re.test(l)), what, 10_000, 20);
  }
  stop(): void { try { this.child.kill('SIGKILL'); } catch { /* gone */ } }
}

// Echoes every UDP datagram and TCP connection back, and reports who it came from.
const SERVER = `
const dgram = require('node:dgram'), net = require('node:net');
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => { console.log(JSON.stringify({ proto: 'udp', address: r.address, port: r.port })); u.send(m, r.port, r.address); });
u.bind(7000, () => {
  net.createServer((s) => { console.log(JSON.stringify({ proto: 'tcp', address: s.remoteAddress, port: s.remotePort })); s.end('pong'); })
    .listen(7001, '0.0.0.0', () => console.log('ready'));
});`;

// Sends from a fixed source port (UDP 53, TCP 80) and needs the answer to come back.
const client = (dst: string, udpPort: number, tcpPort: number) => `
const dgram = require('node:dgram'), net = require('node:net');
const u = dgram.createSocket('udp4');
const t = setTimeout(() => { console.log('timeout'); process.exit(1); }, 5000);
u.on('message', () => {
  u.close();
  const s = net.connect({ host: '${dst}', port: 7001, localPort: ${tcpPort} });
  s.on('data', (d) => { console.log('tcp-reply ' + d); s.destroy(); clearTimeout(t); });
  s.on('error', (e) => { console.log('tcp-error ' + e.code); process.exit(1); });
});
u.bind(${udpPort}, () => u.send('ping', 7000, '${dst}'));`;

describe.skipIf(skip)('nftables in a namespace', () => {
  const nss = new Namespaces();
  let G: Netns, H: Netns, O: Netns;
  let g: Handle, h: Handle, o: Handle;

  beforeAll(async () => {
    [G, H, O] = await Promise.all([nss.create('nftg'), nss.create('nfth'), nss.create('nfto')]);
    [g, h, o] = await Promise.all([open({ netns: G }), open({ netns: H }), open({ netns: O })]);
    // guest g0 192.168.122.2 -- h0 192.168.122.1 [host] h1 203.0.113.1 -- o0 203.0.113.2 outside
    await h.link.add({ kind: 'veth', name: 'h0', peer: { name: 'g0', netns: G }, up: true });
    await h.link.add({ kind: 'veth', name: 'h1', peer: { name: 'o0', netns: O }, up: true });
    await h.addr.add('h0', '192.168.122.1/24');
    await h.addr.add('h1', '203.0.113.1/24');
    for (const [x, dev, cidr] of [[g, 'g0', '192.168.122.2/24'], [o, 'o0', '203.0.113.2/24']] as const) {
      await x.link.set(dev, { up: true });
      await x.link.set('lo', { up: true });
      await x.addr.add(dev, cidr);
    }
    await h.link.set('lo', { up: true });
    await g.route.add({ dst: 'default', via: '192.168.122.1' });
    await h.sysctl.set('net.ipv4.ip_forward', 1);
    // The outside has no route back to the guests: only translated flows can be answered.
  });
  afterAll(async () => {
    await Promise.all([g?.close(), h?.close(), o?.close()]);
    await nss.cleanup();
  });

  it('writes libvirt\'s masquerade rules; `nft list ruleset` shows them as nft prints them; re-applying is idempotent', async (ctx) => {
    needTools(ctx, 'nft');
    // (A multicast report of the host's own may already have moved a counter.)
    const ruleset = async () => (await nsExec(H, 'nft', ['list', 'ruleset'])).replace(/packets \d+ bytes \d+/g, 'packets 0 bytes 0');
    await h.nft.masquerade({ table: 'vnetlink_default', subnet: '192.168.122.0/24', ports: [1024, 65535] });
    expect(await ruleset()).toBe(MASQ_LISTING);
    await h.nft.masquerade({ table: 'vnetlink_default', subnet: '192.168.122.0/24', ports: [1024, 65535] });
    expect(await ruleset()).toBe(MASQ_LISTING);
    const tables = await h.nft.listTables();
    expect(tables.map((t) => `${t.family} ${t.name}`)).toEqual(['ip vnetlink_default']);
    const chains = await h.nft.listChains('ip', 'vnetlink_default');
    expect(chains).toMatchObject([{ name: 'nat', type: 'nat', hook: 'postrouting', priority: 100, policy: 'accept' }]);
    const rules = await h.nft.listRules('ip', 'vnetlink_default');
    expect(rules).toHaveLength(5);
    expect(rules[2].exprs.slice(-3)).toEqual([
      { type: 'immediate', data: '0400', dreg: 1 },
      { type: 'immediate', data: 'ffff', dreg: 2 },
      { type: 'masq', flags: ['proto-specified'], protoMin: 1, protoMax: 2 },
    ]);
    expect(rules[0].exprs.at(-1)).toEqual({ type: 'immediate', verdict: 'return' });
    // What nft holds, expression by expression, matches what nft writes from the same text.
    const ours = (await nsExec(H, 'nft', ['--debug=netlink', 'list', 'table', 'ip', 'vnetlink_default'])).split('\n').filter((l) => l.startsWith('  ['));
    const ns2 = await nss.create('nftref');
    const text = MASQ_LISTING.replace(/ counter packets 0 bytes 0/g, ' counter').replace('priority srcnat', 'priority 100');
    const { spawnSync } = await import('node:child_process');
    expect(spawnSync('ip', ['netns', 'exec', ns2.name, 'nft', '-f', '-'], { input: text }).status).toBe(0);
    const theirs = (await nsExec(ns2, 'nft', ['--debug=netlink', 'list', 'table', 'ip', 'vnetlink_default'])).split('\n').filter((l) => l.startsWith('  ['));
    expect(ours.length).toBeGreaterThan(30);
    expect(ours).toEqual(theirs);
  });

  it('masquerades a guest\'s UDP and TCP flows: the outside sees the host address and a source port in 1024-65535', async () => {
    await h.nft.masquerade({ table: 'vnetlink_default', subnet: '192.168.122.0/24' });
    const server = new NsProc(O, SERVER);
    try {
      await server.line(/^ready$/, 'the outside server');
      const r = await nsRun(G, process.execPath, ['-e', client('203.0.113.2', 53, 80)], 10_000);
      expect(r.stdout).toContain('tcp-reply pong');
      const udp = JSON.parse(await server.line(/"udp"/, 'the UDP datagram'));
      const tcp = JSON.parse(await server.line(/"tcp"/, 'the TCP connection'));
      for (const seen of [udp, tcp]) {
        expect(seen.address).toBe('203.0.113.1');
        expect(seen.port).toBeGreaterThanOrEqual(1024);
        expect(seen.port).toBeLessThanOrEqual(65535);
      }
      // The counters of the TCP and UDP rules moved.
      const rules = await h.nft.listRules('ip', 'vnetlink_default', 'nat');
      const pk = rules.map((x) => (x.exprs.find((e) => e.type === 'counter') as any).packets);
      expect(pk[2]).toBeGreaterThanOrEqual(1);
      expect(pk[3]).toBeGreaterThanOrEqual(1);
      expect(await nsExec(H, 'nft', ['list', 'chain', 'ip', 'vnetlink_default', 'nat'])).toMatch(/meta l4proto udp counter packets [1-9]/);

      // Without the port range the kernel keeps source port 53: the range is what moved it.
      await h.nft.masquerade({ table: 'vnetlink_default', subnet: '192.168.122.0/24', ports: false });
      // New source ports (54, 81) so no conntrack entry of the first run is reused.
      server.lines.length = 0;
      const r2 = await nsRun(G, process.execPath, ['-e', client('203.0.113.2', 54, 81)], 10_000);
      expect(r2.stdout).toContain('tcp-reply pong');
      const udp2 = JSON.parse(await server.line(/"udp"/, 'the second UDP datagram'));
      expect(udp2).toEqual({ proto: 'udp', address: '203.0.113.1', port: 54 });
    } finally {
      server.stop();
    }
  });

  it('writes the masquerade for ip6 and inet tables too, as nft prints them', async () => {
    await h.nft.masquerade({ table: 'v6nat', family: 'ip6', subnet: 'fd00:7a::/64' });
    await h.nft.masquerade({ table: 'both', family: 'inet', subnet: '192.168.122.0/24', outInterface: 'h1', ports: [2000, 3000] });
    const v6 = await nsExec(H, 'nft', ['list', 'table', 'ip6', 'v6nat']);
    expect(v6).toContain('ip6 saddr fd00:7a::/64 ip6 daddr != fd00:7a::/64 meta l4proto tcp counter packets 0 bytes 0 masquerade to :1024-65535');
    expect(v6).toContain('ip6 saddr fd00:7a::/64 ip6 daddr != fd00:7a::/64 counter packets 0 bytes 0 masquerade');
    expect(v6).not.toContain('224.0.0.0');  // the multicast/broadcast returns are IPv4 only
    const inet = await nsExec(H, 'nft', ['list', 'table', 'inet', 'both']);
    expect(inet).toContain('ip saddr 192.168.122.0/24 ip daddr 224.0.0.0/24 counter packets 0 bytes 0 return');
    expect(inet).toContain('ip saddr 192.168.122.0/24 ip daddr != 192.168.122.0/24 oifname "h1" meta l4proto udp counter packets 0 bytes 0 masquerade to :2000-3000');
    // In an inet table an address match needs the family check first (nft folds it into "ip saddr").
    const rules = await h.nft.listRules('inet', 'both');
    expect(rules[0].exprs.slice(0, 2)).toEqual([{ type: 'meta', key: 'nfproto', dreg: 1 }, { type: 'cmp', op: 'eq', data: '02', sreg: 1 }]);
    await h.nft.delTable('ip6', 'v6nat');
    await h.nft.delTable('inet', 'both');
    await expect(h.nft.masquerade({ subnet: 'fd00:7a::5/64' })).rejects.toThrow(/subnet: has host bits set \(the network is fd00:7a::\/64\)/);
  });

  it('commits a batch atomically: the first error wins, names the command, and nothing is applied', async () => {
    const before = await nsExec(H, 'nft', ['list', 'ruleset']);
    const e = await h.nft.transaction()
      .addTable({ family: 'ip', name: 'half' })
      .addChain({ family: 'ip', table: 'half', name: 'c' })
      .addRule({ family: 'ip', table: 'half', chain: 'missing', exprs: [stmt.counter()] })
      .addRule({ family: 'ip', table: 'nope', chain: 'missing', exprs: [stmt.counter()] })
      .commit().catch((x) => x);
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e).toMatchObject({ code: 'ENOENT', op: 'nft.commit' });
    expect(e.message).toMatch(/^nft\.commit: no such file or directory \(ENOENT\) \[command 3 \(addRule half missing\)\]/);  // counted from 1
    expect(await nsExec(H, 'nft', ['list', 'ruleset'])).toBe(before);
    expect((await h.nft.listTables()).map((t) => t.name)).not.toContain('half');
    // The handle keeps working after a failed batch (no stale acks confuse the next call).
    await h.nft.transaction().addTable({ family: 'inet', name: 'after' }).commit();
    expect((await h.nft.listTables('inet')).map((t) => t.name)).toEqual(['after']);
    await h.nft.delTable('inet', 'after');
    await expect(h.nft.delTable('inet', 'after')).rejects.toMatchObject({ code: 'ENOENT', op: 'nft.delTable' });
    await h.nft.delTable('inet', 'after', { ifExists: true });
    await expect(h.nft.listRules('inet', 'after')).rejects.toMatchObject({ code: 'ENOENT', op: 'nft.listRules' });
  });

  it('reports an error addressed to BATCH_BEGIN, and a batch the kernel drops silently, instead of waiting forever', async () => {
    const b = await h.nft.transaction().addTable({ family: 'ip', name: 'rawt' })._encode();
    // BATCH_BEGIN's res_id (bytes 18-19, big-endian) names the subsystem; 0xff does not exist.
    const bad = Buffer.from(b);
    bad.writeUInt16BE(0xff, 18);
    let t0 = Date.now();
    expect(await h._call('nft.sendRaw', { bytes: bad })).toMatchObject({ errno: 22, message: 0 });
    expect(Date.now() - t0).toBeLessThan(500);
    // BATCH_BEGIN twice: the kernel aborts and says nothing at all.
    t0 = Date.now();
    const r = await h._call('nft.sendRaw', { bytes: Buffer.concat([b.subarray(0, 20), b]) });
    expect(r).toMatchObject({ errno: 71, extack: 'the kernel did not acknowledge the batch' });
    expect(Date.now() - t0).toBeLessThan(3000);
    // The same batch, intact, goes through; the earlier ones left nothing behind.
    expect(await h._call('nft.sendRaw', { bytes: b })).toEqual({ errno: 0 });
    expect((await h.nft.listTables('ip')).map((t) => t.name)).toContain('rawt');
    await h.nft.delTable('ip', 'rawt');
  });

  it('commits 5000 rules in one batch (no ack flood) and lists them back', async () => {
    const tx = h.nft.transaction().addTable({ family: 'ip', name: 'big' }).addChain({ family: 'ip', table: 'big', name: 'c' });
    for (let i = 0; i < 5000; i++) tx.addRule({ family: 'ip', table: 'big', chain: 'c', exprs: [...match.l4proto('tcp'), ...match.dport(i + 1), stmt.counter(), stmt.accept()] });
    await tx.commit();
    const rules = await h.nft.listRules('ip', 'big');
    expect(rules).toHaveLength(5000);
    expect(rules[4999].exprs[3]).toEqual({ type: 'cmp', op: 'eq', data: '1388', sreg: 1 });
    // One bad rule among thousands: the whole batch is refused and the error names it.
    const bad = h.nft.transaction();
    for (let i = 0; i < 3000; i++) bad.addRule({ family: 'ip', table: 'big', chain: i === 2500 ? 'nochain' : 'c', exprs: [stmt.counter()] });
    await expect(bad.commit()).rejects.toThrow(/command 2501 \(addRule big nochain\)/);
    expect(await h.nft.listRules('ip', 'big')).toHaveLength(5000);
    await h.nft.delTable('ip', 'big');
  });

  it('returns created rules with handles (echo), keeps comments, and deletes a rule by handle', async () => {
    const T = { family: 'inet' as const, table: 'tx' };
    const created = await h.nft.transaction()
      .addTable({ family: 'inet', name: 'tx' })
      .addChain({ ...T, name: 'fwd', type: 'filter', hook: 'forward', priority: 'filter', policy: 'accept' })
      .addRule({ ...T, chain: 'fwd', comment: 'vnetlink test', exprs: [...match.nfproto('ipv4'), ...match.addr('ip', 'saddr', '198.51.100.0/25'), ...match.l4proto('tcp'), ...match.dport(22), stmt.counter(), stmt.accept()] })
      .addRule({ ...T, chain: 'fwd', exprs: [...match.iifname('g0'), ...match.ctState(['established', 'related']), stmt.counter(), stmt.accept()] })
      .commit({ echo: true });
    const rules = created.filter((c) => c.kind === 'rule');
    expect(rules).toHaveLength(2);
    expect(rules.every((r) => r.handle > 0)).toBe(true);
    const listing = await nsExec(H, 'nft', ['-a', 'list', 'table', 'inet', 'tx']);
    expect(listing).toContain(`\t\tip saddr 198.51.100.0/25 tcp dport 22 counter packets 0 bytes 0 accept comment "vnetlink test" # handle ${rules[0].handle}`);
    expect(listing).toContain(`iifname "g0" ct state established,related counter packets 0 bytes 0 accept # handle ${rules[1].handle}`);
    const listed = await h.nft.listRules('inet', 'tx');
    expect(listed.map((r) => r.handle)).toEqual(rules.map((r) => r.handle));
    expect(listed[0].comment).toBe('vnetlink test');
    await h.nft.transaction().delRule({ ...T, chain: 'fwd', handle: rules[0].handle }).commit();
    expect((await h.nft.listRules('inet', 'tx')).map((r) => r.handle)).toEqual([rules[1].handle]);
    await h.nft.transaction().flush({ ...T, chain: 'fwd' }).commit();
    expect(await h.nft.listRules('inet', 'tx')).toEqual([]);
    await h.nft.delTable('inet', 'tx');
  });
});
