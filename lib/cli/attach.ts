// `vnetlink attach --xml iface.xml`: a libvirt <interface> made real — a persistent tap on a
// vnetlink network or a bridge (Linux or Open vSwitch), or a macvtap — and the QEMU options
// that use it (QEMU opens a persistent tap by name, a macvtap through its /dev/tapN).
import fs from 'node:fs';
import { Ovsdb } from '../ovsdb.js';
import { interfaceFromLibvirtXml, type InterfacePlan } from '../libvirt-xml.js';
import type { Handle } from '../handle.js';
import { qemuDeviceOpts, qemuId, qemuModel, qemuOptValue } from '../qemu.js';
import * as v from '../validate.js';
import { UsageError, parse, positionals, print, printJson, shown } from './args.js';
import { withHandle, type Command } from './ip.js';


export interface Attached {
  plan: InterfacePlan;
  name: string;
  index: number;
  /** The character device of a macvtap. */
  device?: string;
  /** QEMU's options for this port (a macvtap also needs `3<>DEVICE` on QEMU's command line). */
  qemu: string[];
}

async function networkBridge(h: Handle, name: string): Promise<string> {
  const n = (await h.network.list()).find((x) => x.name === name);
  if (!n || n.missing.includes('bridge')) throw Object.assign(new Error(`attach: no vnetlink network ${JSON.stringify(name)} runs in this namespace${n ? ' (its bridge is missing)' : ''}`), { code: 'ENOENT' });
  return n.bridge;
}

/** Creates what `plan` asks for in `h`'s namespace; on failure nothing is left. */
export async function attachPlan(h: Handle, plan: InterfacePlan, opts: { ovsdb?: string; id?: string } = {}): Promise<Attached> {
  // Everything that goes into QEMU's option strings is checked before anything is created:
  // a plan need not come from interfaceFromLibvirtXml.
  const op = 'attach';
  const id = qemuId(op, 'id', opts.id ?? 'net0');
  const model = qemuModel(op, 'plan.guest.model', plan.guest.model === 'virtio' || plan.guest.model === undefined ? 'virtio-net-pci' : plan.guest.model);
  const mac = plan.guest.mac === undefined ? undefined : v.mac(op, 'plan.guest.mac', plan.guest.mac);
  if (plan.tap) qemuOptValue(op, 'plan.tap.name', plan.tap.name);
  // A multi-queue tap needs the device's mq=on and its vectors too, or the guest uses one queue.
  const dev = (netdev: string, queues = 1) => ['-netdev', netdev, '-device', qemuDeviceOpts(model, id, mac, queues)];
  if (plan.macvtap) {
    const m = plan.macvtap;
    const l = await h.link.add({ kind: 'macvtap', name: m.name, link: m.link, mode: m.mode, ...(m.mac ? { mac: m.mac } : {}), up: true } as any) as any;
    const index = l.index ?? (await h.link.get(l.name)).index;
    const device = `/dev/tap${index}`;
    return { plan, name: l.name, index, device, qemu: dev(`tap,id=${id},fd=3${m.vnetHdr ? '' : ',vnet_hdr=off'}`) };
  }
  const t = plan.tap!;
  const bridge = plan.network !== undefined ? await networkBridge(h, plan.network) : plan.bridge!;
  const tap = await h.tap.create({
    name: t.name, persist: true, up: true, ...(t.queues > 1 ? { queues: t.queues, multiQueue: true } : {}),
    vnetHdr: t.vnetHdr, ...(t.mac ? { mac: t.mac } : {}), ...(t.mtu ? { mtu: t.mtu } : {}), ...(plan.ovs ? {} : { master: bridge }),
  } as any);
  const name = tap.name, index = tap.index;
  await tap.close();
  try {
    if (plan.ovs) {
      const ovs = await Ovsdb.connect(opts.ovsdb);
      try {
        const ext: Record<string, string> = {};
        if (plan.ovs.interfaceId) ext['iface-id'] = plan.ovs.interfaceId;
        if (plan.guest.mac) ext['attached-mac'] = plan.guest.mac;
        await ovs.addPort(bridge, name, Object.keys(ext).length ? { externalIds: ext } : {});
      } finally {
        await ovs.close();
      }
    }
  } catch (e) {
    await h.link.del(index).catch(() => {});
    throw e;
  }
  return { plan, name, index, qemu: dev(`tap,id=${id},ifname=${name},script=no,downscript=no${t.queues > 1 ? `,queues=${t.queues}` : ''}`, t.queues) };
}

// A word the shell reads as itself; anything else is printed single-quoted, so no value can
// add words (arguments) to the printed command line.
const shellWord = (s: string) => (/^[A-Za-z0-9_.,:=\/%@+-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

/** The text `vnetlink attach` prints: the port's name (and device), then QEMU's command line. */
export function attachedText(a: Attached): string {
  const words = [...a.qemu.map(shellWord), ...(a.device ? [`3<>${shellWord(a.device)}`] : [])];
  return `${shown(a.name)}${a.device ? ` ${a.device}` : ''}\nqemu-system-x86_64 ... ${words.join(' ')}`;
}

const attachUsage = `usage: vnetlink attach --xml IFACE.xml [--ovsdb SOCKET] [--id NETDEV-ID] [--netns NS] [--json]
Creates the port a libvirt <interface> describes: type='network' (a persistent tap on that
vnetlink network's bridge), type='bridge' (on a Linux bridge, or an OVS bridge with
<virtualport type='openvswitch'>) or type='direct' (a macvtap on <source dev mode>), and prints
the QEMU options that use it.`;

export const attach: Command = {
  summary: 'create the guest port a libvirt <interface> XML describes, print QEMU\'s options',
  usage: attachUsage,
  async run(argv) {
    const p = parse(argv, { xml: { type: 'string' }, ovsdb: { type: 'string' }, id: { type: 'string' } }, attachUsage);
    if (p.values.help) { print(attachUsage); return 0; }
    positionals(p, [], attachUsage);
    if (p.values.xml === undefined) throw new UsageError('--xml FILE is required', attachUsage);
    const id = p.values.id as string | undefined;
    if (id !== undefined) {
      try { qemuId('attach', '--id', id); } catch (e: any) { throw new UsageError(e.message.replace(/^attach: /, ''), attachUsage); }
    }
    const plan = interfaceFromLibvirtXml(fs.readFileSync(String(p.values.xml)));
    return withHandle(p, async (h) => {
      const a = await attachPlan(h, plan, { ovsdb: p.values.ovsdb as string | undefined, id });
      if (p.values.json) printJson(a);
      else print(attachedText(a));
      return 0;
    });
  },
};
