// Durable networks: a network outlives the process that made it. One process creates it and
// exits without closing anything; a second lists it, re-adopts it, attaches a guest and reads
// its lease; a third destroys it. Status shows what went missing underneath; create never
// tears down a running network silently; update changes it live (same dnsmasq pid).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, type Handle } from '../lib/index.js';
import { procStart } from '../lib/dnsmasq.js';
import { parseLease, udhcpc, udhcpcScript } from '../examples/nat-helpers.js';
import { Namespaces, hasTool, nsExec, privilegedSkipReason, inProcess } from './helpers.js';

const skip = privilegedSkipReason();
const GUEST_MAC = '52:54:00:aa:dd:01';


const spec = (name: string, bridge: string, third: number) => ({
  name, bridge, stp: false, address: `192.168.${third}.1/24`, dhcp: { start: `192.168.${third}.2`, end: `192.168.${third}.254`, ping: false },
});

describe.skipIf(skip)('durable networks', () => {
  const spaces = new Namespaces();
  let H: string, G: string;
  let nl: Handle;
  let tmp: string;
  let script: string;

  beforeAll(async () => {
    hasTool('busybox');
    hasTool('dnsmasq');
    hasTool('nft');
    H = (await spaces.create('durh')).name;
    G = (await spaces.create('durg')).name;
    nl = await open({ netns: H });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'vt-dur-'));
    script = udhcpcScript(tmp);
    await nl.link.add({ kind: 'veth', name: 'vnet0', peer: { name: 'eth0', netns: G, mac: GUEST_MAC } });
    await nsExec(G, 'ip', ['link', 'set', 'eth0', 'up']);
  });
  afterAll(async () => {
    for (const n of ['dur', 'deg', 'upd']) await nl?.network.get(n).then((x) => x.destroy(), () => {});
    await nl?.close();
    await spaces.cleanup();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('created by one process, listed, re-adopted, attached and leased by a second after the first exited, destroyed by a third', async () => {
    const first = await inProcess(H, `
      const net = await nl.network.create(${JSON.stringify(spec('dur', 'durbr0', 122))});
      await net.forwardPort({ proto: 'tcp', hostPort: 8080, guest: '192.168.122.50', guestPort: 80 });
      return { pid: net.dnsmasqPid, dir: net.stateDir, self: process.pid };`);
    // The first process is gone; its network is not.
    expect(procStart(first.self)).toBeUndefined();
    expect(procStart(first.pid)).toBeDefined();
    const st = JSON.parse(fs.readFileSync(path.join(first.dir, 'network.json'), 'utf8'));
    expect(st).toMatchObject({ name: 'dur', bridge: 'durbr0', table: 'vnetlink_dur', dnsmasq: { pid: first.pid, conf: path.join(first.dir, 'dnsmasq.conf') },
      forwards: [{ proto: 'tcp', hostPort: 8080, guest: '192.168.122.50', guestPort: 80 }], spec: { name: 'dur', address: '192.168.122.1/24' } });
    expect(st.dnsmasq.start).toBe(procStart(first.pid));
    expect(fs.readdirSync(first.dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    const second = await inProcess(H, `
      const before = await nl.network.list();
      const net = await nl.network.get('dur');
      await net.attach('vnet0');
      const out = await new Promise((res, rej) => execFile('ip', ['netns', 'exec', process.env.G, 'busybox', 'udhcpc', '-i', 'eth0', '-n', '-q', '-f', '-t', '10', '-T', '1', '-s', process.env.SCRIPT],
        { encoding: 'utf8', timeout: 30000 }, (e, so) => e ? rej(e) : res(so)));
      const after = await nl.network.list();
      return { before, after, pid: net.dnsmasqPid, leases: await net.leases(), udhcpc: out, forwards: net.forwards().map((f) => [f.proto, f.hostPort, f.guest, f.guestPort]) };`,
    { G, SCRIPT: script });
    // Listed with no owner (the first exited), everything in place: active.
    // Only this test's network: a namespace inode reused from an earlier run can show its leftovers.
    expect(second.before.filter((n: any) => n.name === 'dur')).toEqual([expect.objectContaining({ name: 'dur', bridge: 'durbr0', status: 'active', missing: [], address: '192.168.122.1/24', dnsmasqPid: first.pid })]);
    expect(second.before.find((n: any) => n.name === 'dur').owner).toBeUndefined();
    // While the second owned it, list saw its owner.
    expect(second.after[0]).toMatchObject({ status: 'active', owner: expect.any(Number) });
    // The very dnsmasq the first process started, adopted (not restarted).
    expect(second.pid).toBe(first.pid);
    const lease = parseLease(second.udhcpc)!;
    expect(lease.router).toBe('192.168.122.1');
    expect(second.leases).toEqual([expect.objectContaining({ mac: GUEST_MAC, ip: lease.ip })]);
    expect(second.forwards).toEqual([['tcp', 8080, '192.168.122.50', 80]]);
    expect(JSON.parse(await nsExec(H, 'ip', ['-j', 'link', 'show', 'vnet0']))[0].master).toBe('durbr0');

    const third = await inProcess(H, `
      const net = await nl.network.get('dur');
      const leases = await net.leases();
      for (const f of net.forwards()) await f.remove();
      const rules = (await nl.nft.listRules('ip', 'vnetlink_dur')).filter((r) => r.comment?.startsWith('vnetlink:pf:')).length;
      await net.destroy();
      return { leases, rules, list: await nl.network.list() };`);
    expect(third.leases.map((l: any) => l.ip)).toEqual([lease.ip]);
    expect(third.rules).toBe(0);
    expect(third.list).toEqual([]);
    // What a user sees: no bridge, no table, no daemon, no state directory.
    expect(await nsExec(H, 'ip', ['-j', 'link', 'show', 'type', 'bridge'])).not.toMatch(/durbr0/);
    expect(await nsExec(H, 'nft', ['list', 'tables'])).not.toMatch(/vnetlink_dur/);
    expect(procStart(first.pid)).toBeUndefined();
    expect(fs.existsSync(first.dir)).toBe(false);
  });

  it('shows degraded when dnsmasq or the bridge is removed underneath, leftover when nothing runs; create refuses a running name (EEXIST) unless replace', async () => {
    const first = await inProcess(H, `const net = await nl.network.create(${JSON.stringify(spec('deg', 'degbr0', 123))}); return { pid: net.dnsmasqPid };`);
    const info = async () => (await nl.network.list()).find((n) => n.name === 'deg')!;
    expect(await info()).toMatchObject({ status: 'active', missing: [] });
    // Nobody watches it now: dnsmasq killed stays dead.
    process.kill(first.pid, 'SIGKILL');
    for (let i = 0; i < 200 && procStart(first.pid) !== undefined; i++) await new Promise((r) => setTimeout(r, 10));
    expect(await info()).toMatchObject({ status: 'degraded', missing: ['dnsmasq'] });
    await nsExec(H, 'ip', ['link', 'del', 'degbr0']);
    expect(await info()).toMatchObject({ status: 'degraded', missing: ['bridge', 'dnsmasq'] });
    // A running part (the table) still makes it a network, not leftovers: create refuses it.
    const e = await nl.network.create(spec('deg', 'degbr0', 123)).catch((x) => x);
    expect(e.code).toBe('EEXIST');
    expect(e.message).toMatch(/"deg"/);
    expect(await info()).toMatchObject({ status: 'degraded' });
    await nsExec(H, 'nft', ['delete', 'table', 'ip', 'vnetlink_deg']);
    expect(await info()).toMatchObject({ status: 'leftover', missing: ['bridge', 'table', 'dnsmasq'] });
    // Leftovers are cleaned by create.
    const net = await nl.network.create(spec('deg', 'degbr0', 123));
    expect(await info()).toMatchObject({ status: 'active', owner: process.pid });
    // Removed underneath while its owner runs: degraded, and restart() repairs it keeping the port.
    await nl.link.add({ kind: 'veth', name: 'vnet9', peer: { name: 'vnet9p' } });
    await net.attach('vnet9');
    await nsExec(H, 'nft', ['delete', 'table', 'ip', 'vnetlink_deg']);
    expect(await info()).toMatchObject({ status: 'degraded', missing: ['table'] });
    await net.restart();
    expect(await info()).toMatchObject({ status: 'active', missing: [] });
    expect(JSON.parse(await nsExec(H, 'ip', ['-j', 'link', 'show', 'vnet9']))[0].master).toBe('degbr0');
    await nl.link.del('vnet9');
    // In this process it is the live object: create says EEXIST; another process's create too.
    await expect(nl.network.create(spec('deg', 'degbr0', 123))).rejects.toMatchObject({ code: 'EEXIST' });
    const other = await inProcess(H, `return await nl.network.create(${JSON.stringify(spec('deg', 'degbr0', 123))}).then(() => 'created', (e) => e.code);`);
    expect(other).toBe('EBUSY');  // the owner (this process) holds its lock
    await net.destroy();
    // Exited owner, running network: another process must say replace to rebuild it.
    const p1 = await inProcess(H, `const n = await nl.network.create(${JSON.stringify(spec('deg', 'degbr0', 123))}); return { pid: n.dnsmasqPid, index: (await nl.link.get('degbr0')).index };`);
    const again = await nl.network.create(spec('deg', 'degbr0', 123)).catch((x) => x);
    expect(again.code).toBe('EEXIST');
    expect(procStart(p1.pid)).toBeDefined();
    const rebuilt = await nl.network.create(spec('deg', 'degbr0', 123), { replace: true });
    expect(procStart(p1.pid)).toBeUndefined();
    expect(rebuilt.dnsmasqPid).not.toBe(p1.pid);
    await rebuilt.destroy();
    expect((await nl.network.list()).map((n) => n.name)).not.toContain('deg');
  });

  it("update adds a fixed host: the guest's next DHCP gets that address and dnsmasq keeps its pid; a new range restarts dnsmasq only; forwards come and go", async () => {
    const net = await nl.network.create(spec('upd', 'updbr0', 124));
    await net.attach('vnet0');
    const first = parseLease(await udhcpc(G, 'eth0', script))!;
    expect(first.ip).toMatch(/^192\.168\.124\./);
    const pid = net.dnsmasqPid!;
    const start = procStart(pid);
    await net.update({ dhcp: { hosts: [{ mac: GUEST_MAC, ip: '192.168.124.77', name: 'guest' }] } });
    const second = parseLease(await udhcpc(G, 'eth0', script))!;
    expect(second.ip).toBe('192.168.124.77');
    expect(net.dnsmasqPid).toBe(pid);
    expect(procStart(pid)).toBe(start);
    expect(fs.readFileSync(path.join(net.stateDir, 'dnsmasq.hostsfile'), 'utf8')).toBe(`${GUEST_MAC},192.168.124.77,guest\n`);
    // Another process adopting it sees the new host in the recorded spec.
    const seen = await inProcess(H, `return JSON.parse((await import('node:fs')).readFileSync(process.env.DIR + '/network.json', 'utf8')).spec.dhcp.hosts;`, { DIR: net.stateDir });
    expect(seen).toEqual([{ mac: GUEST_MAC, ip: '192.168.124.77', name: 'guest' }]);
    // A DNS host record, live too: the guest resolves it through the gateway; same pid.
    await nsExec(G, 'ip', ['addr', 'add', '192.168.124.77/24', 'dev', 'eth0']);
    await net.update({ dns: { hosts: [{ ip: '192.168.124.10', names: ['db'] }] } });
    const answer = (await nsExec(G, 'busybox', ['nslookup', 'db', '192.168.124.1'])).split(/\n\s*\n/).slice(1).join('\n');
    expect(answer).toMatch(/Address(?: \d+)?:\s*192\.168\.124\.10\b/);
    expect(net.dnsmasqPid).toBe(pid);
    await nsExec(G, 'ip', ['addr', 'del', '192.168.124.77/24', 'dev', 'eth0']);
    // Forwards through update, visible to nft.
    await net.update({ forwards: { add: [{ proto: 'udp', hostPort: 5353, guest: '192.168.124.77' }] } });
    expect(await nsExec(H, 'nft', ['list', 'table', 'ip', 'vnetlink_upd'])).toMatch(/udp dport 5353 .*dnat to 192\.168\.124\.77:5353/);
    await net.update({ forwards: { remove: [{ proto: 'udp', hostPort: 5353 }] } });
    expect(await nsExec(H, 'nft', ['list', 'table', 'ip', 'vnetlink_upd'])).not.toMatch(/5353/);
    // A new range: dnsmasq restarts (new pid), the bridge stays the same device.
    const index = (await nl.link.get('updbr0')).index;
    await net.update({ dhcp: { start: '192.168.124.100', end: '192.168.124.110' } });
    expect(net.dnsmasqPid).not.toBe(pid);
    expect((await nl.link.get('updbr0')).index).toBe(index);
    expect(fs.readFileSync(path.join(net.stateDir, 'dnsmasq.conf'), 'utf8')).toMatch(/^dhcp-range=192\.168\.124\.100,192\.168\.124\.110,/m);
    // Bad changes name the field and change nothing.
    await expect(net.update({ dhcp: { hosts: [{ mac: 'nope', ip: '192.168.124.5' }] } })).rejects.toThrow(/dhcp\.hosts\[0\]\.mac/);
    await expect(net.update({ forwards: { remove: [{ proto: 'tcp', hostPort: 1 }] } })).rejects.toThrow(/no forward tcp:\*:1/);
    await net.destroy();
  });
});
