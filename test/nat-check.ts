// The NAT check shared by the network tests: the guest talks UDP (from port 53) and TCP (from
// port 80) to a server in the outside namespace, which must see the host's address and a
// source port moved into 1024–65535 by the masquerade.
import { expect } from 'vitest';
import type { Netns } from '../lib/index.js';
import { nsRun } from './helpers.js';
import { GUEST_CLIENT, NsProc, OUTSIDE_SERVER } from '../examples/nat-helpers.js';

export async function expectMasqueradedOutside(guest: Netns, outside: Netns, hostAddress = '203.0.113.1'): Promise<void> {
  const server = new NsProc(outside, OUTSIDE_SERVER);
  try {
    await server.line(/^ready$/, 'the outside server');
    const r = await nsRun(guest, process.execPath, ['-e', GUEST_CLIENT], 10_000);
    expect(r.stdout).toContain('tcp-reply pong');
    for (const proto of ['udp', 'tcp']) {
      const seen = JSON.parse(await server.line(new RegExp(`"${proto}"`), proto));
      expect(seen.address).toBe(hostAddress);  // the host's address, not the guest's lease
      expect(seen.port).toBeGreaterThanOrEqual(1024);  // from 53 and 80: the range applied
    }
  } finally {
    server.stop();
  }
}
