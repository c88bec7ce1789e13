// Regressions from the seventh review: libvirt <interface> values that reached QEMU's option
// strings unchecked (a model or a tap name with a comma adds QEMU options), prototype keys that
// passed `x in TABLE` lookups, and kernel-supplied names printed raw to the terminal (escape
// sequences), with the nft printer throwing on short data.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { interfaceFromLibvirtXml, network, open, qemuNetdev, type Handle, type Link, type NftChain, type NftRule, type NftTable } from '../lib/index.js';
import { attachPlan, attachedText } from '../lib/cli/attach.js';
import { formatBridges, formatLink } from '../lib/cli/format.js';
import { ruleText, rulesetText } from '../lib/cli/nft.js';
import { shown } from '../lib/cli/args.js';
import { rate, size, time } from '../lib/tc-units.js';
import { Namespaces, runCli as cli, hasTool, ipLinks, nsExec, privilegedSkipReason } from './helpers.js';

const skip = privilegedSkipReason();


const bridgeIface = (inner: string) => `<interface type='bridge'><mac address='52:54:00:7a:00:01'/><source bridge='rv7br0'/>${inner}</interface>`;

describe('<interface> values that go into QEMU option strings', () => {
  it('a <model type> that is not a QEMU device name is refused naming <interface><model> type=, with the rule qemuNetdev uses', () => {
    for (const bad of ['e1000,romfile=/root/x -object memory-backend-file,id=m,mem-path=/etc', 'e1000 -object x', 'E1000', 'help', 'virtio\nx']) {
      expect(() => interfaceFromLibvirtXml(bridgeIface(`<model type='${bad}'/>`)), bad)
        .toThrow(/^interfaceFromLibvirtXml: <interface><model> type=: must be a QEMU device name such as "virtio-net-pci"/);
      expect(() => qemuNetdev({ fds: [3] }, { id: 'n0', mac: '52:54:00:7a:00:01', model: bad }), bad).toThrow(/^qemuNetdev: model: must be a QEMU device name/);
    }
    expect(interfaceFromLibvirtXml(bridgeIface("<model type='e1000'/>")).guest.model).toBe('e1000');
    expect(interfaceFromLibvirtXml(bridgeIface("<model type='virtio'/>")).guest.model).toBe('virtio');
    // libvirt's and QEMU's own names with an underscore.
    expect(interfaceFromLibvirtXml(bridgeIface("<model type='ne2k_pci'/>")).guest.model).toBe('ne2k_pci');
  });

  it("a <target dev> with a ',' (QEMU's option separator) is refused naming <interface><target> dev=", () => {
    for (const bad of ['x,vhost=on', 'vnet,,0', 'a,script=x']) {
      expect(() => interfaceFromLibvirtXml(bridgeIface(`<target dev='${bad}'/>`)), bad)
        .toThrow(/^interfaceFromLibvirtXml: <interface><target> dev=: must not contain ",", whitespace or control characters/);
    }
    // Names without one still pass ('=' is only special in an option's key, not its value).
    expect(interfaceFromLibvirtXml(bridgeIface("<target dev='vm-1.a=b'/>")).tap!.name).toBe('vm-1.a=b');
  });

  it('a plan handed to attachPlan directly is checked too, before anything is created', async () => {
    // attachPlan checks every QEMU value before its first syscall: a handle that would fail any
    // call proves it is never reached.
    const never = new Proxy({}, { get: () => { throw new Error('a syscall was attempted'); } }) as unknown as Handle;
    const tapPlan = (guest: object, tap: object = {}) => ({ type: 'bridge' as const, bridge: 'rv7br0', tap: { name: 'rv7t0', queues: 1, vnetHdr: false, ...tap }, guest });
    await expect(attachPlan(never, tapPlan({ model: 'e1000 -object x' }))).rejects.toThrow(/^attach: plan\.guest\.model: must be a QEMU device name/);
    await expect(attachPlan(never, tapPlan({}, { name: 'a,vhost=on' }))).rejects.toThrow(/^attach: plan\.tap\.name: must not contain ","/);
    await expect(attachPlan(never, tapPlan({ mac: '52:54:00:7a:00:01,x=y' }))).rejects.toThrow(/^attach: plan\.guest\.mac: must be a MAC address/);
    await expect(attachPlan(never, tapPlan({}), { id: 'n0,x=y' })).rejects.toThrow(/^attach: id: must be a QEMU id/);
  });

  it('the printed command line quotes any word the shell would split or expand, so no value can add arguments', () => {
    const text = attachedText({ plan: {} as any, name: 'rv7t0', index: 7, qemu: ['-netdev', "tap,id=net0,ifname=a b", '-device', "e1000 -object x'y"] });
    expect(text).toBe("rv7t0\nqemu-system-x86_64 ... -netdev 'tap,id=net0,ifname=a b' -device 'e1000 -object x'\\''y'");
    const mv = attachedText({ plan: {} as any, name: 'macvtap3', index: 9, device: '/dev/tap9', qemu: ['-netdev', 'tap,id=net0,fd=3', '-device', 'virtio-net-pci,netdev=net0,mac=52:54:00:7a:00:01'] });
    expect(mv).toBe('macvtap3 /dev/tap9\nqemu-system-x86_64 ... -netdev tap,id=net0,fd=3 -device virtio-net-pci,netdev=net0,mac=52:54:00:7a:00:01 3<>/dev/tap9');
  });
});

describe('prototype keys in lookup tables', () => {
  it("<source mode='constructor'> and <lease unit='toString'> are refused naming the attribute", () => {
    for (const mode of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
      expect(() => interfaceFromLibvirtXml(`<interface type='direct'><source dev='up0' mode='${mode}'/></interface>`), mode)
        .toThrow(`interfaceFromLibvirtXml: <interface><source> mode=: '${mode}' is not supported by vnetlink (vepa, bridge, private, passthrough)`);
    }
    expect(interfaceFromLibvirtXml("<interface type='direct'><source dev='up0' mode='passthrough'/></interface>").macvtap!.mode).toBe('passthru');
    const net = (unit: string) => `<network><name>x</name><bridge name='xbr0'/><ip address='10.1.0.1' prefix='24'><dhcp><range start='10.1.0.2' end='10.1.0.9'><lease expiry='5' unit='${unit}'/></range></dhcp></ip></network>`;
    for (const unit of ['toString', 'constructor', 'valueOf', '__proto__']) {
      expect(() => network.fromLibvirtXml(net(unit)), unit)
        .toThrow(`network.fromLibvirtXml: <network><ip><dhcp><range><lease> unit=: must be seconds, minutes or hours (got ${JSON.stringify(unit)})`);
    }
    expect((network.fromLibvirtXml(net('hours')) as any).dhcp.leaseTime).toBe(18000);
  });

  it("tc's unit words: a prototype key is an unknown unit, not a number that became NaN", () => {
    expect(() => rate('x', 'rate', '5constructor')).toThrow('x: rate: "5constructor" has an unknown unit');
    expect(() => rate('x', 'rate', '5valueOf')).toThrow('x: rate: "5valueOf" has an unknown unit');
    expect(() => size('x', 'burst', '5toString')).toThrow('x: burst: "5toString" has an unknown unit');
    expect(() => time('x', 'latency', '5constructor')).toThrow('x: latency: "5constructor" needs a unit: s, ms or us');
    expect(rate('x', 'rate', '8kbit')).toBe(1000);
  });

  it('vnetlink constructor / help toString: an unknown command (exit 2), not a crash', async () => {
    for (const args of [['constructor'], ['toString'], ['help', 'constructor'], ['__proto__']]) {
      const r = await cli(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^vnetlink: unknown command '${args[args.length - 1]}'`));
    }
  });
});

describe('names from the kernel in the human output', () => {
  it('shown() escapes control characters, C1 controls, bidi/zero-width marks and the backslash itself', () => {
    expect(shown('\x1b]0;pwned\x07a\tb\nc\\x1b\x7f\u009b\u202edef\u200b')).toBe('\\x1b]0;pwned\\x07a\\x09b\\x0ac\\\\x1b\\x7f\\x9b\\u202edef\\u200b');
    expect(shown('vnet0')).toBe('vnet0');
  });

  it('nft list: table, chain and jump target names are printed escaped', () => {
    const t: NftTable = { family: 'ip', name: 'evil\x1b[2J', handle: 1, flags: [] };
    const c: NftChain = { family: 'ip', table: t.name, name: 'c\x1b]0;x\x07', handle: 2, type: 'filter', hook: 'input', priority: 0, policy: 'accept' };
    const r: NftRule = { family: 'ip', table: t.name, chain: c.name, handle: 3, exprs: [{ type: 'immediate', verdict: 'jump', chain: 'to\nfake' } as any], comment: 'x\x1by' };
    expect(rulesetText([t], [c], [r], true)).toBe([
      'table ip evil\\x1b[2J { # handle 1',
      '\tchain c\\x1b]0;x\\x07 { # handle 2',
      '\t\ttype filter hook input priority filter; policy accept;',
      '\t\tjump to\\x0afake comment "x\\u001by" # handle 3',
      '\t}',
      '}',
    ].join('\n'));
    // A prototype key as the chain type: printed as given, the priority as its number.
    expect(rulesetText([t], [{ ...c, type: 'constructor', priority: 1 }], [])).toMatch(/\t\ttype constructor hook input priority 1; policy accept;/);
  });

  it('nft list: data shorter than its expression needs is printed as hex instead of throwing', () => {
    const rule = (exprs: any[]): NftRule => ({ family: 'ip', table: 't', chain: 'c', handle: 1, exprs });
    // th dport with one byte of data (readUInt16BE threw ERR_OUT_OF_RANGE)
    expect(ruleText(rule([{ type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 1 }, { type: 'cmp', op: 'eq', sreg: 1, data: '05' }]), 'ip')).toBe('th dport 0x05');
    // ct state with a two-byte mask (readUInt32LE threw)
    expect(ruleText(rule([{ type: 'ct', key: 'state', dreg: 1 }, { type: 'bitwise', sreg: 1, dreg: 1, mask: '0200', xor: '0000' },
      { type: 'cmp', op: 'neq', sreg: 1, data: '0000' }]), 'ip')).toBe('ct state & 0x0200 != 0x0000');
    // masquerade to a one-byte port, dnat to a three-byte address and a one-byte port
    expect(ruleText(rule([{ type: 'immediate', dreg: 1, data: '04' }, { type: 'masq', protoMin: 1 }]), 'ip')).toBe('masquerade to :0x04');
    expect(ruleText(rule([{ type: 'immediate', dreg: 1, data: '0a0001' }, { type: 'immediate', dreg: 2, data: '16' },
      { type: 'nat', nat: 'dnat', family: 'ip', addrMin: 1, protoMin: 2 }]), 'ip')).toBe('dnat to 0x0a0001:0x16');
    // meta l4proto with no data at all, an ip saddr with a mask and three bytes
    expect(ruleText(rule([{ type: 'meta', key: 'l4proto', dreg: 1 }, { type: 'cmp', op: 'eq', sreg: 1, data: '' }]), 'ip')).toBe('meta l4proto 0x');
    expect(ruleText(rule([{ type: 'payload', base: 'network', offset: 12, len: 4, dreg: 1 }, { type: 'bitwise', sreg: 1, dreg: 1, mask: 'ffffff00', xor: '00000000' },
      { type: 'cmp', op: 'eq', sreg: 1, data: 'c0a87a' }]), 'ip')).toBe('ip saddr 0xc0a87a/24');
    // Full-length data still prints in nft's words.
    expect(ruleText(rule([{ type: 'payload', base: 'transport', offset: 2, len: 2, dreg: 1 }, { type: 'cmp', op: 'eq', sreg: 1, data: '0016' }]), 'ip')).toBe('th dport 22');
  });

  it('ip link show and brctl show: link, master, alias and port names are printed escaped', () => {
    const l = { index: 4, name: 'r\x1b[31md', link: undefined, master: 'b\x1b[0m', flags: ['BROADCAST', 'MULTICAST'], up: false, lowerUp: false, mtu: 1500,
      operState: 'down', group: 0, txqueuelen: 1000, kind: 'bridge', mac: '52:54:00:7a:00:02', broadcast: 'ff:ff:ff:ff:ff:ff', alias: 'a\x07\u202eb', info: {} } as unknown as Link;
    expect(formatLink(l)).toBe([
      '4: r\\x1b[31md: <BROADCAST,MULTICAST> mtu 1500 master b\\x1b[0m state DOWN mode DEFAULT group default qlen 1000',
      '    link/ether 52:54:00:7a:00:02 brd ff:ff:ff:ff:ff:ff',
      '    alias a\\x07\\u202eb',
    ].join('\n'));
    expect(formatBridges([{ name: 'b\x1b[0m', id: '8000.525400000001', stp: false, interfaces: ['p\x1bq', 'x'] } as any]))
      .toBe('bridge name  bridge id          STP enabled  interfaces\nb\\x1b[0m     8000.525400000001  no           p\\x1bq\n                                             x');
  });
});

describe.skipIf(skip)('for real, in a test namespace', () => {
  const spaces = new Namespaces();
  let ns: string;
  let nl: Handle;
  let tmp: string;
  beforeAll(async () => {
    hasTool('ip');
    ns = (await spaces.create('rv7')).name;
    nl = await open({ netns: ns });
    await nl.link.add({ kind: 'bridge', name: 'rv7br0', up: true });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-rv7-'));
  });
  afterAll(async () => {
    await nl?.close();
    await spaces.cleanup();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });
  const linkNames = async () => (await ipLinks(ns)).map((l: any) => l.ifname).sort();

  it('vnetlink attach refuses a model or a tap name that would add QEMU options, naming the XML field; no tap is created', async () => {
    const before = await linkNames();
    expect(before).toEqual(['lo', 'rv7br0']);
    const cases: Array<[string, string]> = [
      ["<target dev='rv7t0'/><model type='e1000,romfile=/root/x -object memory-backend-file,id=m'/>", 'vnetlink: interfaceFromLibvirtXml: <interface><model> type=: must be a QEMU device name such as "virtio-net-pci"'],
      ["<target dev='x,vhost=on'/><model type='virtio'/>", 'vnetlink: interfaceFromLibvirtXml: <interface><target> dev=: must not contain ",", whitespace or control characters'],
    ];
    for (const [inner, msg] of cases) {
      const f = path.join(tmp, 'bad.xml');
      fs.writeFileSync(f, bridgeIface(inner));
      const r = await cli('attach', '--xml', f, '--netns', ns);
      expect(r.code, inner).toBe(1);
      expect(r.stderr.startsWith(msg), r.stderr).toBe(true);
      expect(r.stdout).toBe('');
      expect(await linkNames()).toEqual(before);
    }
  });

  it('vnetlink attach with a QEMU model prints exactly the options QEMU takes, and the tap is on the bridge', async () => {
    const f = path.join(tmp, 'good.xml');
    fs.writeFileSync(f, bridgeIface("<target dev='rv7t0'/><model type='e1000'/>"));
    const r = await cli('attach', '--xml', f, '--netns', ns);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('rv7t0\nqemu-system-x86_64 ... -netdev tap,id=net0,ifname=rv7t0,script=no,downscript=no -device e1000,netdev=net0,mac=52:54:00:7a:00:01\n');
    const [t] = await ipLinks(ns, 'rv7t0');
    expect(t.master).toBe('rv7br0');
    await nl.link.del('rv7t0');
    // <driver queues='2'/>: a multi-queue tap, and the virtio device's mq=on with its vectors
    // (without them the guest drives one queue).
    fs.writeFileSync(f, bridgeIface("<target dev='rv7t1'/><model type='virtio'/><driver queues='2'/>"));
    const mq = await cli('attach', '--xml', f, '--netns', ns);
    expect(mq.stderr).toBe('');
    expect(mq.stdout).toBe('rv7t1\nqemu-system-x86_64 ... -netdev tap,id=net0,ifname=rv7t1,script=no,downscript=no,queues=2 -device virtio-net-pci,netdev=net0,mac=52:54:00:7a:00:01,mq=on,vectors=6\n');
    const [t1] = await ipLinks(ns, 'rv7t1');
    expect(t1.linkinfo.info_data).toMatchObject({ type: 'tap', multi_queue: true, persist: true });
    await nl.link.del('rv7t1');
  });

  it('vnetlink link list and bridge show print a link name holding terminal escapes as \\xNN, never the raw bytes', async () => {
    const evil = '\x1b[31mrv7\x1b[0m';  // 13 bytes: the kernel takes it (no '/', ':' or whitespace)
    await nsExec(ns, 'ip', ['link', 'add', evil, 'type', 'bridge']);
    try {
      // ip prints the name raw (even inside its -j output); vnetlink prints the same line with
      // the escapes spelled out.
      const ipLine = (await nsExec(ns, 'ip', ['link', 'show', 'dev', evil])).split('\n')[0].replace(/ qdisc \S+/, '').replace(/,M-DOWN/, '').trim();
      expect(ipLine.startsWith(`${ipLine.split(':')[0]}: ${evil}: <`), ipLine).toBe(true);
      const r = await cli('link', 'list', '--netns', ns);
      expect(r.code).toBe(0);
      expect(r.stdout).not.toContain('\x1b');
      const line = r.stdout.split('\n').find((s) => s.startsWith(`${ipLine.split(':')[0]}: `));
      expect(line).toBe(ipLine.replaceAll('\x1b', '\\x1b'));
      expect(line).toMatch(/^\d+: \\x1b\[31mrv7\\x1b\[0m: </);
      const b = await cli('bridge', 'show', '--netns', ns);
      expect(b.code).toBe(0);
      expect(b.stdout).not.toContain('\x1b');
      expect(b.stdout).toMatch(/^\\x1b\[31mrv7\\x1b\[0m {2}8000\.[0-9a-f]{12} {2}no\s*$/m);
    } finally {
      await nsExec(ns, 'ip', ['link', 'del', evil]);
    }
  });
});
