// The switch half of libvirt's NAT network: virbr0 with STP and a pinned MAC, 192.168.122.1/24,
// and a guest tap vnet0 on it. The demo plays the guest through the tap fd: it sends an ARP
// who-has for the gateway and reads the bridge's answer back from the fd.
import fs from 'node:fs';
import { execFileSync } from 'node:child_process';
import { open } from '../../dist/index.js';

export const title = 'bridge virbr0 (STP) + guest tap vnet0, a frame each way through the tap fd';

const guestMac = Buffer.from('525400aabbcc', 'hex');
const guestIp = Buffer.from([192, 168, 122, 2]);
const gwIp = Buffer.from([192, 168, 122, 1]);

function arpWhoHas() {
  const f = Buffer.alloc(60);
  Buffer.alloc(6, 0xff).copy(f, 0);
  guestMac.copy(f, 6);
  f.writeUInt16BE(0x0806, 12);
  Buffer.from('0001080006040001', 'hex').copy(f, 14);  // Ethernet/IPv4, request
  guestMac.copy(f, 22);
  guestIp.copy(f, 28);
  gwIp.copy(f, 38);
  return f;
}

async function readArpReply(fd, timeoutMs = 5000) {
  const buf = Buffer.alloc(2048);
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    try {
      const n = fs.readSync(fd, buf, 0, buf.length, null);
      if (n >= 42 && buf.readUInt16BE(12) === 0x0806 && buf.readUInt16BE(20) === 2) return Buffer.from(buf.subarray(0, n));
    } catch (e) {
      if (e.code !== 'EAGAIN') throw e;
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  throw new Error('no ARP reply from virbr0');
}

const mac = (b) => [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');

export async function run(ctx) {
  const host = await ctx.ns('host');
  const nl = await open({ netns: host });
  ctx.defer(() => nl.close());

  await nl.link.add({ kind: 'bridge', name: 'virbr0', stp: true, forwardDelay: 2, mac: '52:54:00:82:32:7e', up: true });
  await nl.addr.add('virbr0', '192.168.122.1/24');
  const tap = await nl.tap.create({ name: 'vnet%d', master: 'virbr0', up: true });
  ctx.defer(() => tap.close());
  ctx.say(`tap ${tap.name} (index ${tap.index}, MAC ${(await nl.link.get(tap.name)).mac}), guest fd ${tap.fds[0]}`);

  const t0 = performance.now();
  await nl.bridge.waitPort(tap.name, 'forwarding');
  ctx.say(`STP: ${tap.name} forwarding after ${((performance.now() - t0) / 1000).toFixed(1)} s (listening + learning, forwardDelay 2 s)`);

  ctx.say('bridge name\tbridge id\t\tSTP enabled\tinterfaces');
  for (const b of await nl.bridge.show()) ctx.say(`${b.name}\t\t${b.id}\t${b.stp ? 'yes' : 'no'}\t\t${b.interfaces.join(' ')}`);
  const ipd = execFileSync('ip', ['-n', host.name, '-d', 'link', 'show', 'vnet0'], { encoding: 'utf8' });
  ctx.say('ip -d link show vnet0: ' + (ipd.match(/master \S+/)?.[0] ?? '') + ', ' + (ipd.match(/tun type \S+ pi \S+ vnet_hdr \S+ persist \S+/)?.[0] ?? ''));

  fs.writeSync(tap.fds[0], arpWhoHas());
  ctx.say('guest -> fd: ARP who-has 192.168.122.1 tell 192.168.122.2');
  const reply = await readArpReply(tap.fds[0]);
  ctx.say(`fd -> guest: ARP reply 192.168.122.1 is-at ${mac(reply.subarray(22, 28))} (the bridge's pinned MAC)`);
}
