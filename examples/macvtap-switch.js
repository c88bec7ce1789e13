// The macvtap topology shared by the macvtap demo (examples/demo/25-macvtap.js) and its test
// (test/macvtap.test.ts): an "external switch" namespace with a bridge br0 (no STP, so ports
// forward at once), a host whose uplink veth plugs into it as sw-host, and an outside host o0.
// IPv6 is off in all three so no router solicitations or MLD reports reach the guests' fds.

/** Builds the switch picture with open handles on the three namespaces. */
export async function buildSwitch({ sw, host, out, SW, outAddress }) {
  for (const h of [sw, host, out]) {
    await h.sysctl.set('net.ipv6.conf.all.disable_ipv6', '1');
    await h.sysctl.set('net.ipv6.conf.default.disable_ipv6', '1');
  }
  await sw.link.add({ kind: 'bridge', name: 'br0', stp: false, up: true });
  await host.link.add({ kind: 'veth', name: 'uplink', up: true, peer: { name: 'sw-host', netns: SW } });
  await out.link.add({ kind: 'veth', name: 'o0', up: true, peer: { name: 'sw-out', netns: SW } });
  await sw.link.set('sw-host', { master: 'br0', up: true });
  await sw.link.set('sw-out', { master: 'br0', up: true });
  await out.addr.add('o0', `${outAddress}/24`);
}
