// libvirt XML in: the stock "default" network becomes the seed's NAT network, the three
// <interface> forms of the seed each become a working port (through `vnetlink attach`), and
// whatever vnetlink cannot do is an error naming the element.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { network, interfaceFromLibvirtXml, open, Ovsdb, type Handle, type Network } from '../lib/index.js';
import { Namespaces, hasTool, nsExec, privilegedSkipReason } from './helpers.js';
import { ovsSkipReason, startOvs, type OvsDaemons } from './ovs-helpers.js';

const execFileP = promisify(execFile);
const root = path.resolve(import.meta.dirname, '..');
const fixture = (f: string) => fs.readFileSync(path.join(import.meta.dirname, 'fixtures', f), 'utf8');
const skip = privilegedSkipReason();
const ovsSkip = skip ? skip : ovsSkipReason();

describe('network.fromLibvirtXml', () => {
  it("libvirt's stock default network is the seed's NAT network", () => {
    expect(network.fromLibvirtXml(fixture('default.xml'))).toEqual({
      name: 'default', bridge: 'virbr0', nat: true, address: '192.168.122.1/24',
      dhcp: { start: '192.168.122.2', end: '192.168.122.254' },
    });
  });

  it('reads bridge stp/delay, mac, mtu, forward dev and port range, fixed hosts, lease time, dns and domain', () => {
    const spec = network.fromLibvirtXml(`<network>
      <name>lab</name><uuid>0b8a6e04-5c3b-4f0e-9a3e-1c2d3e4f5a6b</uuid>
      <forward mode='nat' dev='up0'><nat><port start='2000' end='3000'/></nat><interface dev='up0'/></forward>
      <bridge name='labbr0' stp='off' delay='2'/>
      <mac address='52:54:00:0a:0b:0c'/><mtu size='9000'/>
      <domain name='lab'/>
      <dns><forwarder addr='203.0.113.53'/><host ip='192.168.122.10'><hostname>db</hostname><hostname>db2</hostname></host></dns>
      <ip address='192.168.122.1' prefix='24'>
        <dhcp><range start='192.168.122.100' end='192.168.122.200'><lease expiry='2' unit='hours'/></range>
          <host mac='52:54:00:00:00:07' name='seven' ip='192.168.122.7'/></dhcp>
      </ip>
      <ip family='ipv6' address='fd00:122::1' prefix='64'/>
    </network>`);
    expect(spec).toEqual({
      name: 'lab', bridge: 'labbr0', stp: false, forwardDelay: 2, mac: '52:54:00:0a:0b:0c', mtu: 9000,
      nat: { outInterface: 'up0', ports: [2000, 3000] }, address: '192.168.122.1/24', address6: 'fd00:122::1/64',
      dhcp: { start: '192.168.122.100', end: '192.168.122.200', leaseTime: 7200, hosts: [{ mac: '52:54:00:00:00:07', ip: '192.168.122.7', name: 'seven' }] },
      dns: { forwarders: [{ addr: '203.0.113.53' }], hosts: [{ ip: '192.168.122.10', names: ['db', 'db2'] }], domain: 'lab' },
    });
    // No <forward>: isolated.
    expect(network.fromLibvirtXml("<network><name>iso</name><bridge name='isobr0'/><ip address='10.9.0.1' netmask='255.255.0.0'/></network>"))
      .toEqual({ name: 'iso', bridge: 'isobr0', nat: false, address: '10.9.0.1/16' });
  });

  it('refuses what vnetlink cannot do, naming the element or attribute, and malformed or DTD-bearing XML', () => {
    const net = (inner: string) => `<network><name>x</name><bridge name='xbr0'/><ip address='10.1.0.1' prefix='24'/>${inner}</network>`;
    const cases: Array<[string, RegExp]> = [
      [net("<forward mode='route'/>"), /<network><forward> mode=: 'route' is not supported/],
      [net('<portgroup name="a"/>'), /<network><portgroup>: is not supported by vnetlink/],
      [net("<dns><srv service='x' protocol='tcp'/></dns>"), /<network><dns><srv>: is not supported/],
      [net("<forward><nat><address start='1.2.3.4' end='1.2.3.5'/></nat></forward>"), /<network><forward><nat><address>: is not supported/],
      [net("<bridge name='y'/>"), /<network><bridge>: appears 2 times/],
      [net("<forward mode='nat' zone='trusted'/>"), /<network><forward> zone=: attribute is not supported/],
      ["<network><name>x</name><bridge name='xbr0'/><ip address='10.1.0.1' prefix='24'><dhcp><range start='10.1.0.2' end='10.1.0.9'/><range start='10.1.0.20' end='10.1.0.29'/></dhcp></ip></network>", /<range>: vnetlink serves one DHCP range/],
      ["<network><name>x</name><bridge name='xbr0'/><ip family='ipv6' address='fd00::1' prefix='64'><dhcp><range start='fd00::2' end='fd00::9'/></dhcp></ip><ip address='10.1.0.1' prefix='24'/></network>", /DHCPv6 is not supported/],
      ["<network><name>x</name><bridge name='xbr0'/><ip address='10.1.0.1' netmask='255.0.255.0'/></network>", /not a contiguous netmask/],
      ["<network><name>x</name><bridge name='xbr0'/></network>", /an IPv4 <ip address=...> is required/],
      ['<network><name>x</name>', /xml: /],
      ['<!DOCTYPE network [<!ENTITY a "aaaa">]><network><name>&a;</name></network>', /DOCTYPE is not accepted/],
      ["<domain type='kvm'/>", /root element must be <network>/],
    ];
    for (const [xml, re] of cases) {
      expect(() => network.fromLibvirtXml(xml), xml).toThrow(re);
      expect(() => network.fromLibvirtXml(xml), xml).toThrow(/^network\.fromLibvirtXml: /);
    }
    expect(() => network.fromLibvirtXml(42 as any)).toThrow(TypeError);
  });
});

describe('<bandwidth>', () => {
  const net = (inner: string) => `<network><name>x</name><bridge name='xbr0'/><ip address='10.1.0.1' prefix='24'/>${inner}</network>`;
  it('on the network and on an interface (tap or OVS port) becomes the bandwidth, in libvirt units', () => {
    expect(network.fromLibvirtXml(net("<bandwidth><inbound average='1000' peak='5000' burst='1024'/><outbound average='128'/></bandwidth>")).bandwidth)
      .toEqual({ inbound: { average: 1000, peak: 5000, burst: 1024 }, outbound: { average: 128 } });
    expect(network.fromLibvirtXml(net('<bandwidth/>')).bandwidth).toBeUndefined();
    const tap = interfaceFromLibvirtXml("<interface type='network'><source network='default'/><bandwidth><outbound average='3750' burst='32'/></bandwidth></interface>");
    expect(tap.bandwidth).toEqual({ outbound: { average: 3750, burst: 32 } });
    const ovs = interfaceFromLibvirtXml("<interface type='bridge'><source bridge='ovsbr0'/><virtualport type='openvswitch'/><bandwidth><inbound average='6250' peak='12500'/></bandwidth></interface>");
    expect(ovs).toMatchObject({ ovs: {}, bandwidth: { inbound: { average: 6250, peak: 12500 } } });
  });

  it('refuses bad or unsupported attributes, naming them', () => {
    const cases: Array<[string, RegExp]> = [
      ["<bandwidth><inbound average='100' floor='10'/></bandwidth>", /<network><bandwidth><inbound> floor=: is not supported by vnetlink/],
      ["<bandwidth><inbound average='fast'/></bandwidth>", /<network><bandwidth><inbound> average=: must be an integer/],
      ["<bandwidth><inbound average='0'/></bandwidth>", /<network><bandwidth><inbound> average=: must be an integer from 1/],
      ["<bandwidth><outbound peak='100'/></bandwidth>", /<network><bandwidth><outbound> average=: is required/],
      ["<bandwidth><outbound average='100' peak='10'/></bandwidth>", /<network><bandwidth><outbound> peak=: 10 is below average=100/],
      ["<bandwidth><outbound average='100' burst='-5'/></bandwidth>", /<network><bandwidth><outbound> burst=: must be an integer/],
      ["<bandwidth><outbound average='100' rate='5'/></bandwidth>", /<network><bandwidth><outbound> rate=: attribute is not supported/],
      ["<bandwidth><sideways average='1'/></bandwidth>", /<network><bandwidth><sideways>: is not supported/],
      ["<bandwidth><inbound average='1'/><inbound average='2'/></bandwidth>", /<network><bandwidth><inbound>: appears 2 times/],
      ["<bandwidth enabled='yes'/>", /<network><bandwidth> enabled=: attribute is not supported/],
    ];
    for (const [inner, re] of cases) expect(() => network.fromLibvirtXml(net(inner)), inner).toThrow(re);
    expect(() => interfaceFromLibvirtXml("<interface type='network'><source network='default'/><bandwidth><inbound average='1' floor='1'/></bandwidth></interface>"))
      .toThrow(/<interface><bandwidth><inbound> floor=: is not supported/);
  });
});

describe('interfaceFromLibvirtXml', () => {
  it('the three forms of the seed: a tap on a network, an OVS port, a macvtap', () => {
    expect(interfaceFromLibvirtXml(fixture('iface-network.xml'))).toEqual({
      type: 'network', network: 'default', tap: { name: 'vnet0', queues: 1, vnetHdr: true, mac: 'fe:54:00:39:c8:23' },
      guest: { mac: '52:54:00:39:c8:23', model: 'virtio' },
    });
    expect(interfaceFromLibvirtXml(fixture('iface-ovs.xml'))).toEqual({
      type: 'bridge', bridge: 'ovsbr0', ovs: {}, tap: { name: 'vnet%d', queues: 1, vnetHdr: true, mac: 'fe:54:00:fb:00:01' },
      guest: { mac: '52:54:00:fb:00:01', model: 'virtio', address: { type: 'pci', domain: '0x0000', bus: '0x00', slot: '0x03', function: '0x0' } },
    });
    expect(interfaceFromLibvirtXml(fixture('iface-direct.xml'))).toEqual({
      type: 'direct', macvtap: { name: 'macvtap%d', link: 'eth0', mode: 'vepa', queues: 1, vnetHdr: false }, guest: {},
    });
  });

  it('refuses other types, vhost, unknown virtualports and bad names', () => {
    const cases: Array<[string, RegExp]> = [
      ["<interface type='user'/>", /type=: 'user' is not supported/],
      ["<interface type='network'><source network='default'/><driver name='vhost'/></interface>", /driver> name=: 'vhost'/],
      ["<interface type='bridge'><source bridge='br0'/><virtualport type='802.1Qbh'/></interface>", /virtualport> type=: '802.1Qbh'/],
      ["<interface type='network'><source network='default'/><target dev='a/b'/></interface>", /<target> dev=/],
      ["<interface type='direct'><source dev='eth0' mode='weird'/></interface>", /mode=: 'weird'/],
      ["<interface type='direct'><source dev='eth0'/><bandwidth><inbound average='10'/></bandwidth></interface>", /<interface><bandwidth>: is not supported by vnetlink on a macvtap/],
    ];
    for (const [xml, re] of cases) expect(() => interfaceFromLibvirtXml(xml), xml).toThrow(re);
  });
});

/** An ARP request for `tpa` from (mac, spa), as a guest sends it. */
function arpRequest(mac: string, spa: string, tpa: string): Buffer {
  const m = (s: string) => Buffer.from(s.split(':').map((x) => parseInt(x, 16)));
  const ip = (s: string) => Buffer.from(s.split('.').map(Number));
  const f = Buffer.alloc(60);
  m('ff:ff:ff:ff:ff:ff').copy(f, 0); m(mac).copy(f, 6); f.writeUInt16BE(0x0806, 12);
  f.writeUInt16BE(1, 14); f.writeUInt16BE(0x0800, 16); f[18] = 6; f[19] = 4; f.writeUInt16BE(1, 20);
  m(mac).copy(f, 22); ip(spa).copy(f, 28); ip(tpa).copy(f, 38);
  return f;
}
/** Sends ARP for `tpa` into a guest fd until the reply comes back from it (non-blocking fd). */
async function arpThrough(fd: number, hdr: number, mac: string, spa: string, tpa: string, ms = 10_000): Promise<boolean> {
  const buf = Buffer.alloc(65600);
  const end = Date.now() + ms;
  let next = 0;
  while (Date.now() < end) {
    if (Date.now() >= next) { fs.writeSync(fd, Buffer.concat([Buffer.alloc(hdr), arpRequest(mac, spa, tpa)])); next = Date.now() + 500; }
    for (;;) {
      let n: number;
      try { n = fs.readSync(fd, buf); } catch (e: any) { if (e.code === 'EAGAIN') break; throw e; }
      const f = buf.subarray(hdr, n);
      if (f.length >= 42 && f.readUInt16BE(12) === 0x0806 && f.readUInt16BE(20) === 2 && [...f.subarray(28, 32)].join('.') === tpa) return true;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}

describe.skipIf(skip)('libvirt XML, for real', () => {
  const spaces = new Namespaces();
  let ns: string;
  let nl: Handle;
  let net: Network | undefined;
  let tmp: string;
  const cli = (...args: string[]) => execFileP('node', [path.join(root, 'bin', 'vnetlink.js'), ...args], { timeout: 30_000 });

  beforeAll(async () => {
    hasTool('ip');
    ns = (await spaces.create('lvx')).name;
    nl = await open({ netns: ns });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-lvx-'));
  });
  afterAll(async () => {
    await net?.destroy().catch(() => {});
    await nl?.close();
    await spaces.cleanup();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it("default.xml makes the seed's NAT network: virbr0 with STP, 192.168.122.1/24, the masquerade, dnsmasq's range", async () => {
    hasTool('nft');
    net = await nl.network.create(network.fromLibvirtXml(fixture('default.xml')));
    const br = JSON.parse(await nsExec(ns, 'ip', ['-d', '-j', 'link', 'show', 'virbr0']))[0];
    expect(br.linkinfo.info_data.stp_state).toBe(1);
    expect(JSON.parse(await nsExec(ns, 'ip', ['-j', 'addr', 'show', 'virbr0']))[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toContain('192.168.122.1/24');
    const rules = await nsExec(ns, 'nft', ['list', 'table', 'ip', 'vnetlink_default']);
    expect(rules).toMatch(/ip saddr 192\.168\.122\.0\/24 ip daddr != 192\.168\.122\.0\/24 meta l4proto tcp counter .*masquerade to :1024-65535/);
    expect(rules).toMatch(/ip saddr 192\.168\.122\.0\/24 ip daddr != 192\.168\.122\.0\/24 meta l4proto udp counter .*masquerade to :1024-65535/);
    expect(fs.readFileSync(path.join(net.stateDir, 'dnsmasq.conf'), 'utf8')).toMatch(/^dhcp-range=192\.168\.122\.2,192\.168\.122\.254,255\.255\.255\.0$/m);
  });

  it("<interface type='network'>: vnetlink attach makes a persistent vnet0 on virbr0 that answers ARP from the gateway", async () => {
    const f = path.join(tmp, 'iface-network.xml');
    fs.writeFileSync(f, fixture('iface-network.xml'));
    const out = JSON.parse((await cli('attach', '--xml', f, '--netns', ns, '--json')).stdout);
    expect(out).toMatchObject({ name: 'vnet0', qemu: ['-netdev', 'tap,id=net0,ifname=vnet0,script=no,downscript=no', '-device', 'virtio-net-pci,netdev=net0,mac=52:54:00:39:c8:23'] });
    const d = JSON.parse(await nsExec(ns, 'ip', ['-d', '-j', 'link', 'show', 'vnet0']))[0];
    expect(d.master).toBe('virbr0');
    expect(d.address).toBe('fe:54:00:39:c8:23');
    expect(d.linkinfo.info_data).toMatchObject({ type: 'tap', vnet_hdr: true, persist: true });
    // The VMM's side: attach to the persistent tap by name, as QEMU's ifname= does.
    const tap = await nl.tap.create({ name: 'vnet0', vnetHdr: true, persist: true });
    try {
      expect(await arpThrough(tap.fds[0], 10, '52:54:00:39:c8:23', '192.168.122.50', '192.168.122.1')).toBe(true);
    } finally {
      await tap.close();
      await nl.link.del('vnet0');
    }
  });

  it("<interface type='direct'>: a vepa macvtap on the lower device whose /dev/tapN reaches the host beyond it", async () => {
    const outside = await spaces.create('lvxo');
    await nl.link.add({ kind: 'veth', name: 'low0', up: true, peer: { name: 'up0', netns: outside.name } });
    await nsExec(outside, 'ip', ['addr', 'add', '198.51.100.2/24', 'dev', 'up0']);
    await nsExec(outside, 'ip', ['link', 'set', 'up0', 'up']);
    const f = path.join(tmp, 'iface-direct.xml');
    // Never the host's eth0: the lower device is the test's veth.
    fs.writeFileSync(f, fixture('iface-direct.xml').replace("dev='eth0'", "dev='low0'"));
    const out = JSON.parse((await cli('attach', '--xml', f, '--netns', ns, '--json')).stdout);
    expect(out.name).toMatch(/^macvtap\d+$/);
    expect(out.device).toBe(`/dev/tap${out.index}`);
    expect(out.qemu[1]).toBe('tap,id=net0,fd=3,vnet_hdr=off');
    const d = JSON.parse(await nsExec(ns, 'ip', ['-d', '-j', 'link', 'show', out.name]))[0];
    expect(d.link).toBe('low0');
    expect(d.linkinfo).toMatchObject({ info_kind: 'macvtap', info_data: { mode: 'vepa' } });
    const q = await nl.macvtap.open(out.name, { vnetHdr: false });
    try {
      const mac = (await nl.link.get(out.name)).mac!;
      expect(await arpThrough(q.fds[0], 0, mac, '198.51.100.7', '198.51.100.2')).toBe(true);
    } finally {
      await q.close();
      await nl.link.del(out.name);
    }
  });

  it.skipIf(!!ovsSkip)("<interface type='bridge'> with <virtualport type='openvswitch'>: a tap added as a port of the OVS bridge", async () => {
    const ovsNs = await spaces.create('lvxovs');
    let ovs: OvsDaemons | undefined;
    try {
      ovs = await startOvs(ovsNs);
      const db = await Ovsdb.connect(ovs.sock);
      await db.addBridge('ovsbr0', { datapathType: 'netdev' });
      await db.close();
      const f = path.join(tmp, 'iface-ovs.xml');
      fs.writeFileSync(f, fixture('iface-ovs.xml').replace("<virtualport type='openvswitch'/>", "<virtualport type='openvswitch'><parameters interfaceid='09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f'/></virtualport>"));
      const out = JSON.parse((await cli('attach', '--xml', f, '--ovsdb', ovs.sock, '--netns', ovsNs.name, '--json')).stdout);
      expect(out.name).toMatch(/^vnet\d+$/);
      expect(await ovs.vsctl(['list-ports', 'ovsbr0'])).toMatch(new RegExp(`^${out.name}$`, 'm'));
      const ext = await ovs.vsctl(['get', 'Interface', out.name, 'external_ids']);
      expect(ext).toMatch(/attached-mac="52:54:00:fb:00:01"/);
      expect(ext).toMatch(/iface-id="09b11c53-8b5c-4eeb-8f00-d84eaa0aaa4f"/);
      // ovs-vswitchd opened it: an OpenFlow port number, no error.
      const deadline = Date.now() + 10_000;
      let ofport = '-1';
      while (Date.now() < deadline && !(Number(ofport) > 0)) {
        ofport = (await ovs.vsctl(['get', 'Interface', out.name, 'ofport'])).trim();
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(Number(ofport)).toBeGreaterThan(0);
      expect((await ovs.vsctl(['get', 'Interface', out.name, 'error'])).trim()).toMatch(/^(\[\]|"")$/);
    } finally {
      await ovs?.stop();
    }
  });
});
