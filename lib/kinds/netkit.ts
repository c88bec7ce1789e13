// The netkit link kind (Linux 6.7+, IFLA_NETKIT_*): a veth-like pair whose primary end runs
// BPF programs for both. The peer travels as IFLA_NETKIT_PEER_INFO, an ifinfomsg followed by
// the peer's link attributes: the same shape (and attribute number) as veth's peer, written by
// the same native hook. iproute2 6.1 knows no netkit options, so only the bare kind is
// golden-tested against it; the options' bytes are checked against the uapi header.
import { defineKind, type InfoFields, type SpecFields } from './schema.js';
import { veth, type VethPeerSpec } from './veth.js';
import type { LinkBaseSpec } from '../link.js';

const policy = { forward: 0, blackhole: 2 } as const;  // NETKIT_PASS, NETKIT_DROP

export const netkit = defineKind('netkit', {
  /** What the primary does with packets no BPF program decided on: `forward` (default) or `blackhole`. */
  policy: { attr: 3, type: 'u32', enum: policy },
  /** The same for the peer (`peer policy`). */
  peerPolicy: { attr: 4, type: 'u32', enum: policy },
  /** `l3` (the kernel's default: no Ethernet header) or `l2`. */
  mode: { attr: 5, type: 'u32', enum: { l2: 0, l3: 1 } },
  /** Reported: this end is the primary. */
  primary: { attr: 2, type: 'bool8', readOnly: true },
}, {
  extraKeys: veth.hooks.extraKeys,
  nativeHook: 'veth',
  normalize: veth.hooks.normalize,
  needsAfterAdd: veth.hooks.needsAfterAdd,
  afterAdd: veth.hooks.afterAdd,
});

/**
 * A netkit pair. Equivalent to: `ip link add nk0 type netkit mode l2 forward peer name nk1 blackhole`
 * (iproute2 6.7+).
 *
 * @example
 * await nl.link.add({ kind: 'netkit', name: 'nk0', mode: 'l2', peer: { name: 'nk1' } });
 */
export interface NetkitSpec extends LinkBaseSpec, SpecFields<typeof netkit.fields> {
  kind: 'netkit';
  peer?: VethPeerSpec;
}

/** What `link.get` reports in `info` for a netkit (IFLA_NETKIT_*). */
export interface NetkitInfo extends InfoFields<typeof netkit.fields> {}
