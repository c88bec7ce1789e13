// macvlan and macvtap links (`ip link add ... type macvtap mode vepa`): one table for both
// kinds (a macvtap is a macvlan with a character device). In source mode the list of source
// MACs travels as IFLA_MACVLAN_MACADDR_MODE = SET followed by a nest of IFLA_MACVLAN_MACADDR.
import { defineKind, type Fields, type InfoFields, type KindHooks, type SpecFields } from './schema.js';
import type { Handle } from '../handle.js';
import type { Link, LinkBaseSpec, LinkOf } from '../link.js';
import { NetlinkError } from '../errors.js';
import * as v from '../validate.js';

/**
 * How a macvlan/macvtap treats traffic between siblings on the same lower link:
 * - `vepa` (the default): everything goes out to the external switch; siblings meet only if
 *   that switch reflects frames back (hairpin / reflective relay).
 * - `bridge`: siblings reach each other directly inside the host.
 * - `private`: siblings never reach each other. The kernel drops a sibling's copy of a
 *   reflected broadcast (so ARP, and so IP, fail even with hairpin on), but a hairpinned
 *   *unicast* frame to a sibling's MAC is still delivered.
 * - `passthru`: one link owns the lower device (its MAC follows the guest's).
 * - `source`: only frames from the listed source MACs (`macs`) are received.
 */
export type MacvlanMode = 'vepa' | 'bridge' | 'private' | 'passthru' | 'source';
/**
 * `noPromisc`: in passthru mode, do not put the lower device in promiscuous mode
 * (MACVLAN_FLAG_NOPROMISC). `nodst`: in source mode, skip the destination-MAC match for
 * frames that a source entry already claimed (MACVLAN_FLAG_NODST).
 */
export type MacvlanFlag = 'noPromisc' | 'nodst';

const modes = { vepa: 2, bridge: 4, private: 1, passthru: 8, source: 16 } as const satisfies Record<MacvlanMode, number>;
const flags = { noPromisc: 1, nodst: 2 } as const satisfies Record<MacvlanFlag, number>;
export const macvlanModes: readonly MacvlanMode[] = ['vepa', 'bridge', 'private', 'passthru', 'source'];
export const macvlanFlags: readonly MacvlanFlag[] = ['noPromisc', 'nodst'];

const fields = {
  /** The lower device (uplink) in this namespace. */
  link: { attr: 5, type: 'ifindex', top: true, required: true },
  /**
   * Source mode only: the source MACs whose frames this link receives; `link.set` replaces
   * the list (`macaddr set ...`). The list travels in one nest, whose length is 16 bits.
   */
  macs: { attr: 5, type: 'maclist', itemAttr: 4, lead: [3, 3], maxItems: 5000, settable: true },
  /** Default: `vepa` (the kernel's default too). Not to or from passthru on a live link. */
  mode: { attr: 1, type: 'u32', enum: modes, settable: true },
  flags: { attr: 2, type: 'u16', bits: flags },
  macCount: { attr: 6, type: 'u32', readOnly: true },
  bcQueueLen: { attr: 7, type: 'u32', readOnly: true },
  bcQueueLenUsed: { attr: 8, type: 'u32', readOnly: true },
  bcCutoff: { attr: 9, type: 's32', readOnly: true },
} as const satisfies Fields;

// The kernel refuses passthru conflicts with a bare EINVAL; say which link is in the way.
async function explainAddError(h: Handle, spec: Record<string, unknown>, err: unknown): Promise<Error | undefined> {
  if (!(err instanceof NetlinkError) || err.code !== 'EINVAL' || err.extack) return undefined;
  const links = await h.link.list();
  const isMv = (l: Link): l is LinkOf<'macvlan' | 'macvtap'> => l.kind === 'macvlan' || l.kind === 'macvtap';
  const lower = links.find((l) => l.name === spec.link);
  if (!lower) return undefined;
  let why: string | undefined;
  if (isMv(lower) && lower.info.mode === 'passthru') {
    why = `lower link ${lower.name} is itself a passthru ${lower.kind}, which owns its uplink alone; nothing can be stacked on it`;
  } else {
    const realIdx = isMv(lower) && lower.linkIndex ? lower.linkIndex : lower.index;
    const siblings = links.filter(isMv).filter((l) => l.linkIndex === realIdx);
    const owner = siblings.find((l) => l.info.mode === 'passthru');
    if (owner) why = `${lower.name} is owned by passthru ${owner.kind} ${owner.name}; a passthru link allows no other macvlan/macvtap on its uplink`;
    else if (spec.mode === 'passthru' && siblings.length)
      why = `passthru needs ${lower.name} to itself, but it already carries ${siblings.map((l) => l.name).join(', ')}`;
  }
  return why ? new NetlinkError('link.add', err.errno, why) : undefined;
}

const hooks: KindHooks = {
  patterns: true,
  explainAddError,
  normalize(s, d, op) {
    if (s.macs !== undefined && s.mode !== 'source') throw v.rangeError(op, 'macs', "is only meaningful with mode: 'source'");
  },
  // The same rule on a live link: the mode is the change's, or else the link's own.
  normalizeChanges(c, d, link, op) {
    if (c.macs === undefined) return;
    const mode = c.mode ?? (link.info as { mode?: unknown }).mode;
    if (mode !== 'source') {
      throw v.rangeError(op, 'macs', `is only meaningful with mode: 'source' (${JSON.stringify(link.name)} is in mode ${String(mode)}; ` +
        "set mode: 'source' with it)");
    }
  },
};

export const macvlan = defineKind('macvlan', fields, hooks);
export const macvtap = defineKind('macvtap', fields, hooks);

interface MacvlanCommonSpec extends LinkBaseSpec, SpecFields<typeof fields> {}
/** `ip link add NAME link LOWER type macvlan mode MODE`. */
export interface MacvlanSpec extends MacvlanCommonSpec { kind: 'macvlan' }
/** `ip link add NAME link LOWER type macvtap mode MODE`; the name may be a pattern (`macvtap%d`). */
export interface MacvtapSpec extends MacvlanCommonSpec { kind: 'macvtap' }

/** What `link.get` reports in `info` for a macvlan or macvtap. */
export interface MacvlanInfo extends InfoFields<typeof fields> {
  mode: MacvlanMode;
  flags: MacvlanFlag[];
}
