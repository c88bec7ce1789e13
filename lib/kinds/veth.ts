// veth: a pair of links. IFLA_INFO_DATA holds VETH_INFO_PEER, an ifinfomsg followed by the
// peer's own link attributes: a shape no table describes, so the native `veth` hook
// (native/ops/kind_veth.cc) writes it from the checked `peer` object.
import { defineKind, type SpecFields } from './schema.js';
import type { LinkBaseSpec, NetnsRef } from '../link.js';
import * as v from '../validate.js';

export interface VethPeerSpec {
  name?: string;
  mac?: string;
  mtu?: number;
  txqueuelen?: number;
  group?: number;
  up?: boolean;
  /** Put the peer straight into another namespace. */
  netns?: NetnsRef;
}

export const veth = defineKind('veth', {}, {
  extraKeys: ['peer'],
  nativeHook: 'veth',
  normalize(spec, out, op) {
    if (spec.peer === undefined) return;
    const p = v.object(op, 'peer', spec.peer);
    v.knownKeys(op, 'peer', p, ['name', 'mac', 'mtu', 'txqueuelen', 'group', 'up', 'netns']);
    const peer: Record<string, unknown> = {};
    if (p.name !== undefined) peer.name = v.ifname(op, 'peer.name', p.name);
    if (p.mac !== undefined) peer.mac = v.mac(op, 'peer.mac', p.mac);
    if (p.mtu !== undefined) peer.mtu = v.uint(op, 'peer.mtu', p.mtu, 1, 0x7fffffff);
    if (p.txqueuelen !== undefined) peer.txqueuelen = v.uint(op, 'peer.txqueuelen', p.txqueuelen);
    if (p.group !== undefined) peer.group = v.uint(op, 'peer.group', p.group);
    // The kernel cannot open a veth end before the pair is linked (ENOTCONN), so the peer is
    // brought up after creation (see afterAdd), not in the create message.
    if (p.up !== undefined) out.peerUp = v.bool(op, 'peer.up', p.up);
    if (p.netns !== undefined) peer.netns = v.netns(op, 'peer.netns', p.netns);
    if (peer.name !== undefined && peer.name === spec.name && p.netns === undefined)
      throw v.rangeError(op, 'peer.name', `must differ from name in the same namespace (both ${JSON.stringify(spec.name)})`);
    out.peer = peer;
  },
  needsAfterAdd: (d) => d.peerUp === true,
  async afterAdd(h, d, link) {
    if (d.peerUp !== true || link.linkIndex === undefined) return;
    const peer = d.peer as Record<string, unknown>;
    if (!peer.netns) {
      await h._call('link.add', { index: link.linkIndex, up: true }, 'link.set');
      return;
    }
    // The peer lives in another namespace: bring it up from a handle there.
    const { open } = await import('../handle.js');
    const ns = peer.netns as { netnsPath?: string; netnsFd?: number };
    const other = await open({ netns: ns.netnsPath ?? ns.netnsFd! });
    try {
      await other._call('link.add', { index: link.linkIndex, up: true }, 'link.set');
    } finally {
      await other.close();
    }
  },
});

export interface VethSpec extends LinkBaseSpec, SpecFields<typeof veth.fields> {
  kind: 'veth';
  peer?: VethPeerSpec;
}
