// Handing a tap's or macvtap's queue fds to QEMU: the -netdev/-device arguments and the
// child_process stdio array that puts each fd at the number the arguments name. No I/O.
import type { StdioNull, StdioPipe } from 'node:child_process';
import * as v from './validate.js';

/** What qemuNetdev takes: a `Tap` or the `MacvtapQueues` from `macvtap.open` (anything with fds). */
export interface NetdevFds {
  fds: readonly number[];
  name?: string;
  /** A macvtap's MAC (the guest's NIC must use it, or the macvtap drops the guest's frames). */
  mac?: string;
  /** Set on `MacvtapQueues` only (the character device): marks `mac` as the guest's. */
  device?: string;
  /** A Tap's `closed`; a closed tap has no fds to hand over. */
  readonly closed?: boolean;
}

/** One element of `child_process.spawn`'s `stdio` array. */
export type StdioEntry = StdioPipe | StdioNull | 'inherit' | number;

export interface QemuNetdevOptions {
  /** The netdev id (QEMU's `id=`): a letter, then letters, digits, `-`, `_`, `.`. */
  id: string;
  /** The guest NIC's MAC. Required for a tap; for a macvtap it defaults to (and must equal) the macvtap's MAC. */
  mac?: string;
  /** The QEMU device model. Default `virtio-net-pci`; multi-queue needs a virtio-net model. */
  model?: string;
  /** `vhost=on` (needs /dev/vhost-net). Default false: QEMU moves the frames itself. */
  vhost?: boolean;
  /**
   * The stdio array to extend (from an earlier qemuNetdev call, for a second NIC). Default
   * `['inherit', 'inherit', 'inherit']`. The fds get the next numbers after it.
   */
  stdio?: readonly StdioEntry[];
}

export interface QemuNetdev {
  /** `['-netdev', 'tap,id=…,fd=3,vhost=off', '-device', 'virtio-net-pci,netdev=…,mac=…']` (`fds=3:4` and `mq=on,vectors=6` when multi-queue). */
  args: string[];
  /** For `spawn(qemu, args, { stdio })`: element N is the fd the child sees as fd N. */
  stdio: StdioEntry[];
  /** The child-side fd numbers, one per queue. */
  childFds: number[];
}

const op = 'qemuNetdev';
// QEMU's option parser ends a value at ',' (',,' stands for one comma), so a caller string
// with a comma would add options of its own; every string that goes into an option string
// is one of these forms. `help` in a driver's place makes QEMU list its devices and exit.
const idRe = /^[A-Za-z][A-Za-z0-9_.-]{0,127}$/;

/** A QEMU id (`id=`, `netdev=`), or a TypeError naming `field`. */
export function qemuId(op: string, field: string, id: unknown): string {
  if (typeof id !== 'string' || !idRe.test(id)) throw v.typeError(op, field, `must be a QEMU id: a letter, then letters, digits, '-', '_' or '.' (got ${JSON.stringify(id)})`);
  return id;
}

/** A QEMU device model (a `-device` driver name): lower-case letters, digits and '-'. */
export const modelRe = /^[a-z0-9][a-z0-9_-]{0,63}$/;

/** A QEMU `-device` driver name such as `virtio-net-pci` or `e1000`, or a TypeError naming `field`. */
export function qemuModel(op: string, field: string, model: unknown): string {
  if (typeof model !== 'string' || !modelRe.test(model) || model === 'help')
    throw v.typeError(op, field, `must be a QEMU device name such as "virtio-net-pci" (got ${typeof model === 'string' ? JSON.stringify(model) : String(model)})`);
  return model;
}

/**
 * A string that goes into a QEMU option as a value (`ifname=`): no ',' (QEMU would read what
 * follows as further options), and no whitespace or control characters (the command line
 * vnetlink prints is split at spaces by whoever runs it).
 */
export function qemuOptValue(op: string, field: string, s: string): string {
  if (/[,\s\x00-\x1f\x7f]/.test(s)) throw v.rangeError(op, field, `must not contain ",", whitespace or control characters (QEMU would read what follows a "," as options of its own; got ${JSON.stringify(s)})`);
  return s;
}

/** `-device`'s option string for a NIC on netdev `id` (model, id and mac already checked). */
export function qemuDeviceOpts(model: string, id: string, mac: string | undefined, queues = 1): string {
  // A virtio-net device needs one MSI-X vector per rx and tx queue, one for config and one for control.
  return `${model},netdev=${id}${mac ? `,mac=${mac}` : ''}${queues > 1 ? `,mq=on,vectors=${2 * queues + 2}` : ''}`;
}

/**
 * QEMU arguments for a NIC on a tap's or macvtap's queue fds, and the `stdio` array for
 * `child_process.spawn` that hands those fds over at the numbers the arguments use.
 * Equivalent to what libvirt passes: `-netdev tap,fds=27:28,vhost=off
 * -device virtio-net-pci,netdev=hostnet0,mac=52:54:00:…,mq=on,vectors=6`.
 *
 * After QEMU has started, close vnetlink's copies (`tap.close()`): the device stays as long as
 * QEMU holds its own, and goes when QEMU exits (unless the tap is persistent).
 *
 * @example
 * const tap = await nl.tap.create({ name: 'vnet%d', queues: 2, vnetHdr: true, master: 'virbr0', up: true });
 * const { args, stdio } = qemuNetdev(tap, { id: 'n0', mac: '52:54:00:12:34:56' });
 * const qemu = spawn('qemu-system-x86_64', [...otherArgs, ...args], { stdio });
 * await tap.close();   // QEMU keeps the device alive
 */
export function qemuNetdev(queues: NetdevFds, options: QemuNetdevOptions): QemuNetdev {
  const q = v.object(op, 'queues', queues);
  const o = v.object(op, 'options', options);
  v.knownKeys(op, 'options', o, ['id', 'mac', 'model', 'vhost', 'stdio']);
  if (q.closed === true) throw v.typeError(op, 'queues', `${typeof q.name === 'string' ? q.name : 'the tap'} is closed: its fds are gone`);
  if (!Array.isArray(q.fds) || q.fds.length === 0) throw v.typeError(op, 'queues.fds', 'must be a non-empty array of fds (a Tap or macvtap.open() result)');
  const fds = q.fds.map((fd, i) => v.uint(op, `queues.fds[${i}]`, fd, 0, 0x7fffffff));
  const id = qemuId(op, 'id', o.id);
  const model = qemuModel(op, 'model', o.model === undefined ? 'virtio-net-pci' : o.model);
  if (fds.length > 1 && !model.startsWith('virtio-net')) throw v.rangeError(op, 'model', `${model} has one queue; ${fds.length} fds need a virtio-net model`);
  // Only a macvtap's MAC is the guest's; a tap's own address is the host end's.
  const own = typeof q.device === 'string' && q.mac !== undefined ? v.mac(op, 'queues.mac', q.mac) : undefined;
  const mac = o.mac === undefined ? own : v.mac(op, 'mac', o.mac);
  if (mac === undefined) throw v.typeError(op, 'mac', "is required for a tap: the guest NIC's address (a macvtap's own MAC is its default)");
  if (own !== undefined && mac.toLowerCase() !== own.toLowerCase()) {
    throw v.rangeError(op, 'mac', `must equal the macvtap's MAC ${own} (got ${mac}): the macvtap only passes frames for its own address`);
  }
  const vhost = o.vhost === undefined ? false : v.bool(op, 'vhost', o.vhost);
  let stdio: StdioEntry[] = ['inherit', 'inherit', 'inherit'];
  if (o.stdio !== undefined) {
    if (!Array.isArray(o.stdio) || o.stdio.length < 3) throw v.typeError(op, 'stdio', 'must be a spawn stdio array of at least 3 entries');
    stdio = [...o.stdio];
  }
  const childFds = fds.map((_, i) => stdio.length + i);
  stdio.push(...fds);
  const n = fds.length;
  // No `queues=` with `fds=`: QEMU counts the fds, and refuses the two together.
  const netdev = `tap,id=${id},${n > 1 ? `fds=${childFds.join(':')}` : `fd=${childFds[0]}`},vhost=${vhost ? 'on' : 'off'}`;
  const device = qemuDeviceOpts(model, id, mac, n);
  return { args: ['-netdev', netdev, '-device', device], stdio, childFds };
}
