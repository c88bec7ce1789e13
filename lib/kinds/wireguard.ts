// The wireguard link kind: the device alone (it takes no IFLA_INFO_DATA). Its keys, port and
// peers are configured over generic netlink: nl.wireguard.set (lib/wireguard.ts).
import { defineKind, type SpecFields } from './schema.js';
import type { LinkBaseSpec } from '../link.js';

export const wireguard = defineKind('wireguard', {});

/**
 * A WireGuard device; configure it with `nl.wireguard.set`. Equivalent to: `ip link add wg0 type wireguard`.
 *
 * @example
 * await nl.link.add({ kind: 'wireguard', name: 'wg0' });
 * await nl.wireguard.set('wg0', { privateKey, listenPort: 51820 });
 */
export interface WireguardSpec extends LinkBaseSpec, SpecFields<typeof wireguard.fields> {
  kind: 'wireguard';
}
