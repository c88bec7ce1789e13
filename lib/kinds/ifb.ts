// The ifb link kind: an intermediate functional block, a device whose only job is to receive
// traffic redirected by a tc mirred action so that it can be shaped as egress (ingress
// shaping without the police action). It takes no kind-specific attributes.
import { defineKind, type SpecFields } from './schema.js';
import type { LinkBaseSpec } from '../link.js';

export const ifb = defineKind('ifb', {});

/**
 * An ifb device. Equivalent to: `ip link add ifb0 type ifb`.
 *
 * @example
 * await nl.link.add({ kind: 'ifb', name: 'ifb0', up: true });
 */
export interface IfbSpec extends LinkBaseSpec, SpecFields<typeof ifb.fields> {
  kind: 'ifb';
}
