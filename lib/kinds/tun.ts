// tun/tap devices as rtnetlink reports them (IFLA_TUN_*). They are made through /dev/net/tun
// (nl.tap.create), never with RTM_NEWLINK: this table only decodes.
import { defineKind, type InfoFields } from './schema.js';

export const tun = defineKind('tun', {
  uid: { attr: 1, type: 'u32', readOnly: true },
  gid: { attr: 2, type: 'u32', readOnly: true },
  /** IFF_TUN (1) or IFF_TAP (2). */
  mode: { attr: 3, type: 'u8', enum: { tun: 1, tap: 2 }, readOnly: true },
  pi: { attr: 4, type: 'bool8', readOnly: true },
  vnetHdr: { attr: 5, type: 'bool8', readOnly: true },
  persist: { attr: 6, type: 'bool8', readOnly: true },
  multiQueue: { attr: 7, type: 'bool8', readOnly: true },
  queues: { attr: 8, type: 'u32', readOnly: true },
  disabledQueues: { attr: 9, type: 'u32', readOnly: true },
}, { create: false });

/** What `link.get` reports in `info` for a tun/tap device (IFLA_TUN_*). */
export interface TunInfo extends InfoFields<typeof tun.fields> {}
