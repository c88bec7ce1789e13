// The dummy link kind: a device that drops what it is sent, a stable place to hang addresses
// (a loopback for routing, a VRF member). It takes no kind-specific attributes.
import { defineKind, type SpecFields } from './schema.js';
import type { LinkBaseSpec } from '../link.js';

export const dummy = defineKind('dummy', {});

/**
 * A dummy device. Equivalent to: `ip link add dummy0 type dummy`.
 *
 * @example
 * await nl.link.add({ kind: 'dummy', name: 'dummy0', up: true });
 */
export interface DummySpec extends LinkBaseSpec, SpecFields<typeof dummy.fields> {
  kind: 'dummy';
}
