// A guest port's bandwidth in libvirt's words (<bandwidth><inbound/><outbound/></bandwidth>),
// checked once here and turned into what each data path takes: tc's shape() on a tap or
// bridge, OVS's own QoS columns on an Open vSwitch port.
import * as v from './validate.js';
import type { ShapeOptions } from './tc.js';

/**
 * One direction's limits in libvirt's units: `average` and `peak` in kilobytes per second
 * (1000 bytes, what libvirt hands tc as `kbps`), `burst` in KiB (1024 bytes, tc's `kb`).
 */
export interface BandwidthRate {
  average: number;
  /** The rate a burst may reach (htb ceil). */
  peak?: number;
  /** Bytes (KiB) sent at `peak` before `average` holds again. */
  burst?: number;
}

/**
 * libvirt's `<bandwidth>`: `inbound` is the traffic to the guest (its tap's egress),
 * `outbound` the traffic from it (its tap's ingress). On a network, `inbound` is what the
 * bridge sends and `outbound` what it receives, as libvirt applies a network's `<bandwidth>`.
 */
export interface Bandwidth {
  inbound?: BandwidthRate;
  outbound?: BandwidthRate;
}

// tc keeps a burst in 32 bits of bytes, and a rate beyond 2^32 KB/s means nothing here.
const MAX_KBYTES = 0xffffffff;
const MAX_BURST_KIB = Math.floor(0xffffffff / 1024);

function rate(op: string, field: string, x: unknown): BandwidthRate {
  const o = v.object(op, field, x);
  if ('floor' in o) {
    throw v.rangeError(op, `${field}.floor`, 'is not supported by vnetlink (a guaranteed floor needs libvirt\'s per-network class tree on the bridge)');
  }
  v.knownKeys(op, field, o, ['average', 'peak', 'burst']);
  if (o.average === undefined) throw v.typeError(op, `${field}.average`, 'is required (kilobytes per second)');
  const out: BandwidthRate = { average: v.uint(op, `${field}.average`, o.average, 1, MAX_KBYTES) };
  if (o.peak !== undefined) {
    out.peak = v.uint(op, `${field}.peak`, o.peak, 1, MAX_KBYTES);
    if (out.peak < out.average) throw v.rangeError(op, `${field}.peak`, `${out.peak} is below average ${out.average}`);
  }
  if (o.burst !== undefined) out.burst = v.uint(op, `${field}.burst`, o.burst, 1, MAX_BURST_KIB);
  return out;
}

/** The bandwidth checked and normalized (only the fields given), or undefined for none. */
export function bandwidth(op: string, field: string, x: unknown): Bandwidth | undefined {
  if (x === undefined) return undefined;
  const o = v.object(op, field, x);
  v.knownKeys(op, field, o, ['inbound', 'outbound']);
  const out: Bandwidth = {};
  if (o.inbound !== undefined) out.inbound = rate(op, `${field}.inbound`, o.inbound);
  if (o.outbound !== undefined) out.outbound = rate(op, `${field}.outbound`, o.outbound);
  return out.inbound || out.outbound ? out : undefined;
}

/**
 * What shape() takes on the host's side of a guest's port (a tap, or a network's bridge):
 * inbound on its egress (htb rate/ceil/burst), outbound on its ingress. As libvirt, an
 * outbound `peak` shapes nothing (a policer has no peak rate).
 */
export function shapeOptions(bw: Bandwidth): ShapeOptions {
  const out: ShapeOptions = {};
  const i = bw.inbound, o = bw.outbound;
  if (i) {
    out.egress = { rate: i.average * 1000 };
    if (i.peak !== undefined) out.egress.ceil = i.peak * 1000;
    if (i.burst !== undefined) out.egress.burst = i.burst * 1024;
  }
  if (o) {
    out.ingress = { rate: o.average * 1000 };
    if (o.burst !== undefined) out.ingress.burst = o.burst * 1024;
  }
  return out;
}

/**
 * OVS's QoS for the same limits, in its units, as libvirt sets them: outbound polices what
 * the interface receives (`ingress_policing_rate` in kbit/s, `ingress_policing_burst` in kbit),
 * inbound shapes what the port sends through a linux-htb QoS with one Queue (bits per second).
 * Unlike libvirt, the queue's max-rate is the average when no peak is given, so `average`
 * caps the guest as it does on the tc path.
 */
export function ovsQos(bw: Bandwidth): {
  policing?: { rate: number; burst: number };
  htb?: { maxRate: number; minRate: number; burst?: number };
} {
  const out: ReturnType<typeof ovsQos> = {};
  if (bw.outbound) out.policing = { rate: bw.outbound.average * 8, burst: (bw.outbound.burst ?? 0) * 8 };
  if (bw.inbound) {
    const i = bw.inbound;
    out.htb = { minRate: i.average * 8000, maxRate: (i.peak ?? i.average) * 8000 };
    if (i.burst !== undefined) out.htb.burst = i.burst * 8192;
  }
  return out;
}
