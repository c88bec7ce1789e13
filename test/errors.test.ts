// Errors a user can act on: one base class, the object named, Linux's errno names, the missing
// capability for EPERM/EACCES, and timeouts and aborts in one shape.
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { open, Forwarder, NetlinkError, OvsdbError, TimeoutError, VnetlinkError, type Handle, type Netns } from '../lib/index.js';
import { errnoCode } from '../lib/errors.js';
import { Namespaces, privilegedSkipReason } from './helpers.js';

const skip = privilegedSkipReason();

describe('error values', () => {
  it('every error vnetlink makes shares VnetlinkError, with code and op', () => {
    const n = new NetlinkError('link.get', 19, undefined, undefined, 'v9');
    const o = new OvsdbError('ovsdb.addPort', 'not-found', 'no bridge "x"');
    const t = new TimeoutError('bridge.waitPort', 'vnet0 is listening, not forwarding,', 5);
    for (const e of [n, o, t]) expect(e).toBeInstanceOf(VnetlinkError);
    expect(n.message).toBe('link.get: no such device "v9" (ENODEV)');
    expect(t).toMatchObject({ code: 'ETIMEDOUT', op: 'bridge.waitPort', timeout: 5 });
    expect(t.message).toBe('bridge.waitPort: vnet0 is listening, not forwarding, within 5 ms (ETIMEDOUT)');
  });

  it('gives Linux-only errnos their names (EBADFD, not E77) and never repeats the op or shows an internal one', () => {
    expect(errnoCode(77)).toBe('EBADFD');
    expect(errnoCode(76)).toBe('ENOTUNIQ');
    expect(errnoCode(524)).toBe('ENOTSUPP');
    expect(new NetlinkError('forwarder.add', 77).message).toBe('forwarder.add: file descriptor in bad state (EBADFD)');
    // The native layer tags its own op name; the message starts with the public one only.
    expect(new NetlinkError('link.set', 19, 'link.get', undefined, 'nope0').message).toBe('link.set: no such device "nope0" (ENODEV)');
    expect(new NetlinkError('link.set', 22, 'link.set: mtu', 'mtu greater than device maximum', 'v0').message)
      .toBe('link.set: invalid argument "v0" (EINVAL) [mtu]: mtu greater than device maximum');
  });

  it('failures that are not the kernel\'s are VnetlinkErrors, not NetlinkErrors', async () => {
    const fw = new Forwarder({ mode: 'wire' });
    await fw.close();
    let e: unknown;
    try { fw.start(); } catch (x) { e = x; }
    expect(e).toBeInstanceOf(VnetlinkError);
    expect(e).not.toBeInstanceOf(NetlinkError);
    expect(e).toMatchObject({ code: 'EBADF', op: 'forwarder.start', message: 'forwarder.start: the forwarder is closed (EBADF)' });
  });

  it('EPERM and EACCES say which capability is missing', () => {
    expect(new NetlinkError('link.add', 1).message).toMatch(/\(EPERM\) \(needs CAP_NET_ADMIN: /);
    expect(new NetlinkError('netns.create', 1, 'mount /run/netns/x').capability).toBe('CAP_SYS_ADMIN');
    expect(new NetlinkError('tap.create', 13).capability).toBe('CAP_NET_ADMIN');
  });
});

describe.skipIf(skip)('errors from the kernel', () => {
  const nss = new Namespaces();
  let N: Netns;
  let nl: Handle;
  beforeAll(async () => {
    N = await nss.create('err');
    nl = await open({ netns: N });
  });
  afterAll(async () => {
    await nl?.close();
    await nss.cleanup();
  });

  it('name the object: link.get: no such device "v9" (ENODEV)', async () => {
    const e = await nl.link.get('v9').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(NetlinkError);
    expect(e).toBeInstanceOf(VnetlinkError);
    expect((e as Error).message).toBe('link.get: no such device "v9" (ENODEV)');
    expect(e).toMatchObject({ code: 'ENODEV', errno: 19, op: 'link.get', subject: 'v9' });
    const d = await nl.link.del('v9').catch((x: unknown) => x);
    expect((d as Error).message).toBe('link.del: no such device "v9" (ENODEV)');
  });

  it('a timeout is code ETIMEDOUT, an abort is an AbortError with the reason', async () => {
    await nl.link.add({ kind: 'bridge', name: 'br0', stp: true, forwardDelay: 30 });
    await nl.link.add({ kind: 'veth', name: 'p0', master: 'br0', up: true, peer: { name: 'p1', up: true } });
    await nl.link.set('br0', { up: true });
    const t = await nl.bridge.waitPort('p0', 'forwarding', { timeout: 300 }).catch((x: unknown) => x);
    expect(t).toBeInstanceOf(TimeoutError);
    expect(t).toMatchObject({ code: 'ETIMEDOUT', op: 'bridge.waitPort' });
    const why = new Error('the user went away');
    const a = await nl.bridge.waitPort('p0', 'forwarding', { signal: AbortSignal.abort(why) }).catch((x: unknown) => x);
    expect(a).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: why });
    const ac = new AbortController();
    setTimeout(() => ac.abort(why), 150);
    const b = await nl.bridge.waitPort('p0', 'forwarding', { signal: ac.signal }).catch((x: unknown) => x);
    expect(b).toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: why });
    await expect(nl.bridge.waitPort('p0', 'forwarding', { timeout: -1 })).rejects.toThrow(/^bridge\.waitPort: timeout: /);
    await expect(nl.bridge.waitPort('p0', 'forwarding', { timout: 1 } as never)).rejects.toThrow(/^bridge\.waitPort: timout: is not an option/);
  });

  it('a monitor whose signal aborts closes, and its iteration rejects with the AbortError', async () => {
    const why = new Error('shutting down');
    const ac = new AbortController();
    const mon = nl.monitor({ groups: ['link'], signal: ac.signal });
    await mon.ready;
    const seen: string[] = [];
    const loop = (async () => { for await (const ev of mon) seen.push(ev.type); })();
    await nl.link.add({ kind: 'bridge', name: 'seen0' });
    await new Promise((r) => setTimeout(r, 100));
    ac.abort(why);
    await expect(loop).rejects.toMatchObject({ name: 'AbortError', code: 'ABORT_ERR', cause: why });
    expect(seen).toContain('newlink');
    expect(mon.closed).toBe(true);
    // Already aborted: the first iteration rejects at once.
    const gone = nl.monitor({ groups: ['link'], signal: AbortSignal.abort(why) });
    await expect((async () => { for await (const _ of gone) void _; })()).rejects.toMatchObject({ name: 'AbortError' });
    expect(() => nl.monitor({ signal: 'x' as never })).toThrow(/^monitor: signal: must be an AbortSignal/);
  });

  it('as a user without CAP_NET_ADMIN, the error says so', () => {
    const url = new URL('../dist/index.js', import.meta.url).href;
    // Inside the test namespace, then without privileges (util-linux's setpriv).
    const r = spawnSync('ip', ['netns', 'exec', N.name, 'setpriv', '--reuid=65534', '--regid=65534', '--clear-groups',
      process.execPath, '--input-type=module', '-e', `
      import { open } from ${JSON.stringify(url)};
      const nl = await open();
      try { await nl.link.add({ kind: 'bridge', name: 'nocap0' }); console.log('created'); }
      catch (e) { console.log(e.code, e.capability, e.message); }
      await nl.close();`], { encoding: 'utf8', cwd: '/' });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^EPERM CAP_NET_ADMIN link\.add: operation not permitted "nocap0" \(EPERM\)/);
  });
});
