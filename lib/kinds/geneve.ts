// The geneve link kind (IFLA_GENEVE_*): an L2 overlay over UDP 6081 with a 24-bit VNI. Like
// iproute2 6.1, the flow label, ttl and tos are always sent (0: the kernel's defaults).
// Table order is the order iproute2 sends the attributes in (for the golden bytes).
import { defineKind, type InfoFields, type SpecFields } from './schema.js';
import type { LinkBaseSpec } from '../link.js';

export const geneve = defineKind('geneve', {
  /** Don't-fragment bit of the outer IPv4 header: `set`, `unset` or `inherit` (from the inner packet). */
  df: { attr: 13, type: 'u8', enum: { unset: 0, set: 1, inherit: 2 } },
  /** The virtual network identifier (`id`), 0–16777215. */
  vni: { attr: 1, type: 'u32', max: 0xffffff, required: true },
  /** The peer's address (`remote`), IPv4 or IPv6. */
  remote: { attr: 2, attr6: 7, type: 'ip' },
  /** IPv6 flow label of the outer header, 0–0xfffff. */
  label: { attr: 11, type: 'be32', max: 0xfffff, default: 0 },
  /** Outer TTL (0: the route's). */
  ttl: { attr: 3, type: 'u8', default: 0 },
  /** Outer TOS (0: none). */
  tos: { attr: 4, type: 'u8', default: 0 },
  /** UDP destination port (the kernel's default: 6081, IANA's). */
  dstPort: { attr: 5, type: 'be16', min: 1 },
  /** Compute UDP checksums over IPv4 (`udpcsum`). */
  udpCsum: { attr: 8, type: 'bool8' },
  /** IPv6: send zero UDP checksums (`udp6zerocsumtx`). */
  udp6ZeroCsumTx: { attr: 9, type: 'bool8' },
  /** IPv6: accept zero UDP checksums (`udp6zerocsumrx`). */
  udp6ZeroCsumRx: { attr: 10, type: 'bool8' },
});

/**
 * A Geneve tunnel endpoint. Equivalent to: `ip link add gnv0 type geneve id 42 remote 198.51.100.2`.
 *
 * @example
 * await nl.link.add({ kind: 'geneve', name: 'gnv0', vni: 42, remote: '198.51.100.2', up: true });
 */
export interface GeneveSpec extends LinkBaseSpec, SpecFields<typeof geneve.fields> {
  kind: 'geneve';
}

/** What `link.get` reports in `info` for a geneve (IFLA_GENEVE_*). */
export interface GeneveInfo extends InfoFields<typeof geneve.fields> {}
