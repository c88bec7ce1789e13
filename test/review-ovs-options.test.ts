// Regression tests: tunnel options ovs-vswitchd takes without complaint but never uses.
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ovsdb } from '../lib/index.js';
import { JsonSplitter } from '../lib/ovsdb/json-stream.js';

describe('ovsdb.addPort tunnel options ovs-vswitchd would accept but never use', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-review-ovsopt-'));
  const sock = path.join(dir, 'db.sock');
  let srv: net.Server;
  // Every transact the fake server sees (it never answers them: a call that gets this far times out).
  const writes: unknown[] = [];

  beforeAll(async () => {
    srv = net.createServer((c) => {
      const sp = new JsonSplitter();
      c.on('error', () => undefined);
      c.on('data', (d) => {
        for (const m of sp.push(d) as any[]) {
          if (m.method === 'list_dbs') c.write(JSON.stringify({ id: m.id, result: ['Open_vSwitch'], error: null }));
          else if (m.method === 'transact') writes.push(m);
        }
      });
    });
    await new Promise<void>((r) => srv.listen(sock, r));
  });
  afterAll(() => {
    srv?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const attempt = async (type: string, options: Record<string, string>) => {
    const o = await Ovsdb.connect(sock, { timeout: 3000 });
    try {
      return await o.addPort('br-int', 'tun0', { type, options }).then(() => undefined, (e) => e);
    } finally {
      await o.close();
    }
  };

  it('refuses a tos with ECN bits (OVS logs "invalid TOS" and sends TOS 0) and an ERSPAN session id above 10 bits, naming the field', async () => {
    const bad: [string, Record<string, string>, RegExp][] = [
      ['vxlan', { remote_ip: '198.51.100.2', tos: '1' }, /^ovsdb\.addPort: options\.tos: must be a DSCP value .*multiple of 4/],
      ['gre', { remote_ip: '198.51.100.2', tos: '186' }, /^ovsdb\.addPort: options\.tos: /],
      ['vxlan', { remote_ip: '198.51.100.2', tos: '255' }, /^ovsdb\.addPort: options\.tos: /],
      ['erspan', { remote_ip: '198.51.100.2', key: '1024' }, /^ovsdb\.addPort: options\.key: must be "flow", a decimal integer .* between 0 and 1023/],
      ['ip6erspan', { remote_ip: '2001:db8::2', out_key: '70000' }, /^ovsdb\.addPort: options\.out_key: .*0 and 1023/],
      // strtoull(s, NULL, 0) reads "010" as 8 and "0x1000000" as a 25-bit VNI.
      ['vxlan', { remote_ip: '198.51.100.2', key: '010' }, /^ovsdb\.addPort: options\.key: .*no leading zero.*"010"/],
      ['vxlan', { remote_ip: '198.51.100.2', key: '0x1000000' }, /^ovsdb\.addPort: options\.key: .*between 0 and 16777215/],
      ['gre', { remote_ip: '198.51.100.2', in_key: '0x' }, /^ovsdb\.addPort: options\.in_key: /],
      ['gre', { remote_ip: '198.51.100.2', key: '42abc' }, /^ovsdb\.addPort: options\.key: /],
    ];
    for (const [type, options, re] of bad) {
      const e = await attempt(type, options);
      expect(e, `${type} ${JSON.stringify(options)}`).toBeInstanceOf(RangeError);
      expect(e.message).toMatch(re);
    }
    expect(writes).toEqual([]);
  });

  it('lets DSCP values, 10-bit session ids and hex keys through to the server', async () => {
    const good = [
      ['vxlan', { remote_ip: '198.51.100.2', tos: '184' }],
      ['erspan', { remote_ip: '198.51.100.2', key: '1023' }],
      ['vxlan', { remote_ip: '198.51.100.2', key: '0xFFFFFF' }],
      ['gre', { remote_ip: '198.51.100.2', key: '0' }],
      ['stt', { remote_ip: '198.51.100.2', key: '0xffffffffffffffff' }],
    ] as const;
    for (const [type, options] of good) {
      const n = writes.length;
      const e = await attempt(type, options);
      // Past the checks: the client read the database (and the silent fake made it time out).
      expect(e, `${type} ${JSON.stringify(options)}`).not.toBeInstanceOf(RangeError);
      expect(writes.length).toBeGreaterThan(n);
    }
  });
});
