// Small node programs the VM scenarios run inside test namespaces (through NsProc), and the
// checks they share.
import crypto from 'node:crypto';

/**
 * An HTTP server on 0.0.0.0:PORT: GET /down answers `bytes` random bytes (it prints their
 * sha256 as `{"down":SHA}` first), POST /up hashes the body and prints and answers
 * `{"up":SHA,"bytes":N,"from":ADDR}`. Prints `ready` once listening.
 */
export function httpServer(port: number, bytes: number): string {
  return `
const http = require('node:http'), crypto = require('node:crypto');
const blob = crypto.randomBytes(${bytes});
console.log(JSON.stringify({ down: crypto.createHash('sha256').update(blob).digest('hex') }));
http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/down') { res.setHeader('content-length', blob.length); res.end(blob); return; }
  if (req.method === 'POST' && req.url === '/up') {
    const h = crypto.createHash('sha256'); let n = 0;
    req.on('data', (d) => { h.update(d); n += d.length; });
    req.on('end', () => {
      const r = JSON.stringify({ up: h.digest('hex'), bytes: n, from: req.socket.remoteAddress });
      console.log(r); res.end(r + '\\n');
    });
    return;
  }
  res.statusCode = 404; res.end();
}).listen(${port}, '0.0.0.0', () => console.log('ready'));`;
}

/** Fetches http://HOST/PATH over `conns` parallel connections and prints `{"sha":[...]}` (one per connection). */
export function parallelFetch(url: string, conns: number): string {
  return `
const http = require('node:http'), crypto = require('node:crypto');
setTimeout(() => { console.log('timeout'); process.exit(1); }, 60000).unref();
Promise.all(Array.from({ length: ${conns} }, () => new Promise((resolve, reject) => {
  http.get(${JSON.stringify(url)}, { agent: false }, (res) => {
    const h = crypto.createHash('sha256');
    res.on('data', (d) => h.update(d)); res.on('end', () => resolve(h.digest('hex'))); res.on('error', reject);
  }).on('error', reject);
}))).then((sha) => console.log(JSON.stringify({ sha })), (e) => { console.log('error ' + e.message); process.exit(1); });`;
}

export const sha256 = (b: Buffer): string => crypto.createHash('sha256').update(b).digest('hex');
