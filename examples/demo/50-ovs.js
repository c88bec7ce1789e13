// The seed's third mode: two guest taps as ports of an Open vSwitch bridge, configured over
// OVSDB (RFC 7047) by vnetlink itself; ovsdb-server and ovs-vswitchd run in a throwaway
// namespace (userspace datapath, so no kernel module is needed), and a frame crosses the switch.
import fs from 'node:fs';
import { open, Ovsdb } from '../../dist/index.js';
import { ovsMissing, startOvs } from './ovs-daemons.js';

export const title = 'Open vSwitch: tap ports on ovsbr0 over OVSDB (ovs-vsctl add-br / add-port, without ovs-vsctl)';

export async function run(ctx) {
  const missing = ovsMissing();
  if (missing) {
    ctx.say(`left out: ${missing} not installed. This part starts a private`);
    ctx.say('ovsdb-server and ovs-vswitchd (userspace datapath, no kernel module) in a throwaway namespace and');
    ctx.say('adds two tap ports over OVSDB; vnetlink itself needs only the database socket of an OVS you run.');
    ctx.say('To see it: apt-get install --no-install-recommends openvswitch-switch, then npm run demo ovs');
    return;
  }
  const ns = await ctx.ns('ovs');
  // The daemons (a test/demo starts them; the library only talks to the socket).
  const { sock, pids, vsctl } = startOvs(ctx, ns);
  ctx.say(`${ns.name}: ovsdb-server and ovs-vswitchd (pids ${pids.join(', ')}), db socket ${sock}`);

  // No `ovs-vsctl init` either: the client creates the Open_vSwitch root row when it is missing.
  const nl = await open({ netns: ns });
  ctx.defer(() => nl.close());
  const ovs = await Ovsdb.connect(sock);
  ctx.defer(() => ovs.close());

  let t0 = performance.now();
  await ovs.addBridge('ovsbr0', { datapathType: 'netdev', failMode: 'standalone' });
  ctx.say(`addBridge ovsbr0 (datapath_type=netdev), applied by ovs-vswitchd in ${(performance.now() - t0).toFixed(1)} ms`);

  const guests = [];
  for (const [i, vm] of ['guest-a', 'guest-b'].entries()) {
    const tap = await nl.tap.create({ name: 'vnet%d', up: true });
    ctx.defer(() => tap.close());
    const mac = `52:54:00:0e:00:0${i + 1}`;
    t0 = performance.now();
    const port = await ovs.addPort('ovsbr0', tap.name, {
      externalIds: { 'attached-mac': mac, 'iface-id': `iface-${vm}`, 'iface-status': 'active', 'vm-id': vm },
    });
    ctx.say(`tap ${tap.name} (fd ${tap.fds[0]}) -> port of ovsbr0, ofport ${port.ofport}, vm-id ${vm}, in ${(performance.now() - t0).toFixed(1)} ms`);
    guests.push({ tap, mac });
  }

  ctx.say('ovs-vsctl show (OVS\'s own view of what vnetlink wrote):');
  for (const line of vsctl(['show']).trimEnd().split('\n').slice(1)) ctx.say(line);

  // Play the guests: a frame written into A's fd comes out of B's fd, and B's answer reaches A.
  const [a, b] = guests;
  const eth = (dst, src, text) => Buffer.concat([
    Buffer.from(dst.split(':').map((x) => parseInt(x, 16))), Buffer.from(src.split(':').map((x) => parseInt(x, 16))),
    Buffer.from([0x88, 0xb5]), Buffer.from(text.padEnd(46, '.'))]);
  const receive = async (fd, text) => {
    const buf = Buffer.alloc(2048);
    const end = Date.now() + 5000;
    while (Date.now() < end) {
      try {
        const n = fs.readSync(fd, buf);
        if (n >= 14 && buf.readUInt16BE(12) === 0x88b5 && buf.subarray(14, n).toString().startsWith(text)) return buf.subarray(0, n);
      } catch (e) { if (e.code !== 'EAGAIN') throw e; await new Promise((r) => setTimeout(r, 10)); }
    }
    throw new Error(`no frame "${text}" arrived`);
  };
  t0 = performance.now();
  fs.writeSync(a.tap.fds[0], eth('ff:ff:ff:ff:ff:ff', a.mac, 'hello from guest-a'));
  await receive(b.tap.fds[0], 'hello from guest-a');
  ctx.say(`broadcast from ${a.tap.name}'s fd came out of ${b.tap.name}'s fd (${(performance.now() - t0).toFixed(1)} ms)`);
  fs.writeSync(b.tap.fds[0], eth(a.mac, b.mac, 'hello back from guest-b'));
  await receive(a.tap.fds[0], 'hello back from guest-b');
  ctx.say(`unicast reply to ${a.mac} came out of ${a.tap.name}'s fd (OVS learned the MAC on its port)`);

  for (const g of guests) await ovs.delPort('ovsbr0', g.tap.name);
  await ovs.delBridge('ovsbr0');
  ctx.say(`delPort x2, delBridge: bridges left: [${(await ovs.listBridges()).join(', ')}]`);
}
