// Helpers shared by the NAT demos (examples/demo/3x-*.js) and the NAT tests (test/network.test.ts,
// test/nat-forwarder.test.ts): a DHCP client run inside a guest namespace, and small node
// programs that play the outside world and the guest's client. Plain JS, so both can import it.
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const nsName = (ns) => (typeof ns === 'string' ? ns : ns.name);

/**
 * Writes a udhcpc script into `dir` and returns its path. Debian's busybox ships no default
 * script; ours prints `LEASE ip mask router` on "bound" and configures nothing (the caller does).
 */
export function udhcpcScript(dir) {
  const file = path.join(dir, 'udhcpc.sh');
  fs.writeFileSync(file, '#!/bin/sh\n[ "$1" = bound ] && echo "LEASE $ip $mask $router"\nexit 0\n', { mode: 0o755 });
  return file;
}

/**
 * Asks for one lease on `dev` inside namespace `ns` with busybox udhcpc (10 tries, 1 s apart)
 * and resolves with its stdout; parseLease() reads it. Rejects when udhcpc gives up.
 */
export function udhcpc(ns, dev, script, timeoutMs = 20_000) {
  const args = ['netns', 'exec', nsName(ns), 'busybox', 'udhcpc', '-i', dev, '-n', '-q', '-f', '-t', '10', '-T', '1', '-s', script];
  return new Promise((resolve, reject) => execFile('ip', args, { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => {
    if (err) reject(Object.assign(new Error(`udhcpc on ${dev} in ${nsName(ns)} failed: ${stderr || err.message}`), { stdout, stderr }));
    else resolve(stdout);
  }));
}

/** The lease in udhcpc's output from our script: { ip, mask (prefix length), router }, or null. */
export function parseLease(out) {
  const m = /LEASE (\S+) (\S+) (\S+)/.exec(out);
  return m ? { ip: m[1], mask: m[2], router: m[3] } : null;
}

/** A long-running node program inside a namespace whose stdout lines we collect. */
export class NsProc {
  constructor(ns, code) {
    this.lines = [];
    this.child = spawn('ip', ['netns', 'exec', nsName(ns), process.execPath, '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    let buf = '';
    this.child.stdout.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) { this.lines.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
    });
  }

  /** Resolves with the first line matching `re`, polling every 20 ms for up to `timeoutMs`. */
  async line(re, what, timeoutMs = 10_000) {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const l = this.lines.find((x) => re.test(x));
      if (l !== undefined) return l;
      if (Date.now() > end || this.child.exitCode !== null) throw new Error(`no line ${re} from ${what} (got ${JSON.stringify(this.lines)})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  stop() { try { this.child.kill('SIGKILL'); } catch { /* gone */ } }
}

/** Outside: prints who each UDP datagram (port 7000) / TCP connection (7001) came from, and answers. */
export const OUTSIDE_SERVER = `
const dgram = require('node:dgram'), net = require('node:net');
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => { console.log(JSON.stringify({ proto: 'udp', address: r.address, port: r.port })); u.send(m, r.port, r.address); });
u.bind(7000, '0.0.0.0', () => net.createServer((s) => { console.log(JSON.stringify({ proto: 'tcp', address: s.remoteAddress, port: s.remotePort })); s.end('pong'); })
  .listen(7001, '0.0.0.0', () => console.log('ready')));`;

/** Guest: a UDP datagram from port 53 and a TCP connection from port 80 to 203.0.113.2, both answered. */
export const GUEST_CLIENT = `
const dgram = require('node:dgram'), net = require('node:net');
const u = dgram.createSocket('udp4');
setTimeout(() => { console.log('timeout'); process.exit(1); }, 5000).unref();
u.on('message', () => {
  u.close();
  const s = net.connect({ host: '203.0.113.2', port: 7001, localPort: 80 });
  s.on('data', (d) => { console.log('tcp-reply ' + d); s.destroy(); });
});
u.bind(53, () => u.send('ping', 7000, '203.0.113.2'));`;
