// The layers of the tree, checked: no runtime import cycle in lib/ (`import type` is erased
// and does not count), no I/O or upward include in native/codec, no ops/napi include in
// native/transport. Each check is also fed a synthetic violation, so it is seen to fail.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(path.join(dir, e.name)) : [path.join(dir, e.name)]);
}

// Runtime imports of one TS module: `import ... from`, `export ... from`, bare `import '...'`,
// without `import type` / `export type` (erased at compile time).
function runtimeImports(src: string): string[] {
  const code = src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
  const out: string[] = [];
  const re = /^\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"]([^'"]+)['"]|^\s*import\s*['"]([^'"]+)['"]/gm;
  for (const m of code.matchAll(re)) {
    if (m[5]) { out.push(m[5]); continue; }
    if (m[2]) continue;
    // `import { type A, type B } from` is erased too when every name is a type.
    const names = m[3].replace(/^\{|\}$/g, '').split(',').map((s) => s.trim()).filter(Boolean);
    if (m[3].startsWith('{') && names.length && names.every((n) => n.startsWith('type '))) continue;
    out.push(m[4]);
  }
  return out;
}

// modules: file -> source. Returns one cycle (as a path of files) or undefined.
export function findCycle(modules: Map<string, string>): string[] | undefined {
  const edges = new Map<string, string[]>();
  for (const [file, src] of modules) {
    edges.set(file, runtimeImports(src).filter((s) => s.startsWith('.'))
      .map((s) => path.join(path.dirname(file), s).replace(/\.js$/, '.ts'))
      .map((f) => (modules.has(f) ? f : modules.has(f.replace(/\.ts$/, '/index.ts')) ? f.replace(/\.ts$/, '/index.ts') : f))
      .filter((f) => modules.has(f)));
  }
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const visit = (f: string): string[] | undefined => {
    state.set(f, 1);
    stack.push(f);
    for (const g of edges.get(f) ?? []) {
      if (state.get(g) === 1) return [...stack.slice(stack.indexOf(g)), g];
      if (!state.has(g)) { const c = visit(g); if (c) return c; }
    }
    stack.pop();
    state.set(f, 2);
    return undefined;
  };
  for (const f of modules.keys()) if (!state.has(f)) { const c = visit(f); if (c) return c; }
  return undefined;
}

const stripC = (src: string) => src.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '').replace(/"(?:[^"\\\n]|\\.)*"/g, (s) => (s.startsWith('"') && /^"[a-z]+\//.test(s) ? s : '""'));

const SYSCALLS = ['socket', 'sendmsg', 'recvmsg', 'sendto', 'recvfrom', 'send', 'recv', 'ioctl', 'open', 'openat', 'read', 'write', 'close', 'bind', 'connect', 'poll', 'epoll_wait', 'setns', 'syscall', 'if_nametoindex', 'if_indextoname', 'fopen', 'getsockopt', 'setsockopt'];

// The netlink socket calls: the transport's alone (NlSocket, its subscription mode included).
const SOCKET_CALLS = ['socket', 'sendmsg', 'recvmsg', 'sendto', 'recvfrom', 'bind', 'poll', 'getsockopt', 'setsockopt'];

const calls = (code: string, names: string[]) => {
  const c = code.replace(/::\s*(?=\w+\s*\()/g, ' ');
  // A call of the function itself (not a member: m.send(...), sock.recv(...), tc::open(...)).
  return names.filter((s) => new RegExp(`(?<![\\w.>:])(::\\s*)?${s}\\s*\\(`).test(c));
};

// Problems of one native file of `layer` (codec: no include of transport/ops/napi/fwd/sys and
// no syscall; transport: no include of ops/napi; ops: no include of napi/fwd, no N-API;
// napi: ops/transport/codec only through their headers, and no netlink socket call, so a
// monitor's subscription and receive loop stay in the transport).
export function nativeProblems(layer: 'codec' | 'transport' | 'ops' | 'napi', file: string, src: string): string[] {
  const problems: string[] = [];
  const banned = { codec: ['transport', 'ops', 'napi', 'fwd', 'sys'], transport: ['ops', 'napi', 'fwd'], ops: ['napi', 'fwd'], napi: [] as string[] }[layer];
  for (const m of src.matchAll(/^\s*#\s*include\s*"([^"]+)"/gm)) {
    if (banned.includes(m[1].split('/')[0])) problems.push(`${file} includes ${m[1]}`);
    else if (layer === 'napi' && !m[1].endsWith('.h')) problems.push(`${file} includes ${m[1]}, not a header`);
  }
  if (layer !== 'napi' && /^\s*#\s*include\s*<napi\.h>/m.test(src)) problems.push(`${file} includes <napi.h>`);
  if (layer === 'codec') for (const s of calls(stripC(src), SYSCALLS)) problems.push(`${file} calls ${s}()`);
  if (layer === 'napi') for (const s of calls(stripC(src), SOCKET_CALLS)) problems.push(`${file} calls ${s}()`);
  return problems;
}

describe('layers', () => {
  it('lib/ has no runtime import cycle (import type does not count)', () => {
    const files = walk(path.join(root, 'lib')).filter((f) => f.endsWith('.ts'));
    const modules = new Map(files.map((f) => [f, fs.readFileSync(f, 'utf8')]));
    const cycle = findCycle(modules);
    expect(cycle?.map((f) => path.relative(root, f)).join(' -> ')).toBeUndefined();
  });

  it('the cycle check sees a synthetic cycle, and ignores one through import type', () => {
    const d = '/x/lib';
    const bad = new Map([
      [`${d}/a.ts`, "import { b } from './b.js';\n"],
      [`${d}/b.ts`, "import fs from 'node:fs';\nexport { c } from './c.js';\n"],
      [`${d}/c.ts`, "import { a } from './a.js';\n"],
    ]);
    expect(findCycle(bad)).toEqual([`${d}/a.ts`, `${d}/b.ts`, `${d}/c.ts`, `${d}/a.ts`]);
    const typeOnly = new Map([
      [`${d}/a.ts`, "import { b } from './b.js';\n"],
      [`${d}/b.ts`, "import type { A } from './a.js';\nimport { type A2 } from './a.js';\n// import { a } from './a.js';\n"],
    ]);
    expect(findCycle(typeOnly)).toBeUndefined();
    const mixed = new Map([
      [`${d}/a.ts`, "import { b } from './b.js';\n"],
      [`${d}/b.ts`, "import { type A, a } from './a.js';\n"],
    ]);
    expect(findCycle(mixed)).toBeDefined();
  });

  it('native/codec includes no transport/ops/napi and makes no syscall; native/transport includes no ops/napi; native/ops no napi; native/napi no socket call', () => {
    const problems: string[] = [];
    for (const layer of ['codec', 'transport', 'ops', 'napi'] as const) {
      const files = walk(path.join(root, 'native', layer)).filter((f) => /\.(cc|h)$/.test(f));
      expect(files.length).toBeGreaterThan(1);
      for (const f of files) problems.push(...nativeProblems(layer, path.relative(root, f), fs.readFileSync(f, 'utf8')));
    }
    expect(problems).toEqual([]);
    // The monitor in its three layers: decoding in the codec (checked above for syscalls),
    // the subscription in the transport, the JS delivery in napi.
    for (const f of ['native/codec/rtnl_event.cc', 'native/ops/monitor.cc', 'native/napi/monitor.cc'])
      expect(fs.existsSync(path.join(root, f)), f).toBe(true);
    expect(fs.readFileSync(path.join(root, 'native/transport/nlsock.h'), 'utf8')).toMatch(/NETLINK_ADD_MEMBERSHIP|subscribed\(/);
  });

  it('the native checks see a bad include and a syscall, and not members or comments', () => {
    expect(nativeProblems('codec', 'x.cc', '#include "ops/ops.h"\n')).toEqual(['x.cc includes ops/ops.h']);
    expect(nativeProblems('codec', 'x.cc', '#include "transport/nlsock.h"\n')).toEqual(['x.cc includes transport/nlsock.h']);
    expect(nativeProblems('codec', 'x.cc', 'int f() { return ::socket(AF_NETLINK, 0, 0); }\n')).toEqual(['x.cc calls socket()']);
    expect(nativeProblems('codec', 'x.cc', 'void f(int fd) { ioctl(fd, 1); }\n')).toEqual(['x.cc calls ioctl()']);
    expect(nativeProblems('codec', 'x.cc', 'void f(S& s) { s.send(1); p->read(2); } // open(x)\n/* write(1) */ const char* k = "close(";\n')).toEqual([]);
    expect(nativeProblems('transport', 'y.cc', '#include "napi/convert.h"\n#include "codec/nlmsg.h"\n')).toEqual(['y.cc includes napi/convert.h']);
    expect(nativeProblems('codec', 'x.cc', '#include <napi.h>\n#include <sys/socket.h>\n')).toEqual(['x.cc includes <napi.h>']);
    expect(nativeProblems('transport', 'y.cc', '#include <sys/socket.h>\nint f() { return socket(1, 2, 3); }\n')).toEqual([]);
    expect(nativeProblems('ops', 'o.cc', '#include <napi.h>\n#include "napi/guard.h"\n#include "transport/nlsock.h"\n')).toEqual(['o.cc includes napi/guard.h', 'o.cc includes <napi.h>']);
    expect(nativeProblems('napi', 'n.cc', '#include <napi.h>\n#include "ops/monitor.h"\n#include "ops/monitor.cc"\n')).toEqual(['n.cc includes ops/monitor.cc, not a header']);
    expect(nativeProblems('napi', 'n.cc', 'void f(int fd) { pollfd p{}; ::poll(&p, 1, -1); recvmsg(fd, 0, 0); }\n')).toEqual(['n.cc calls recvmsg()', 'n.cc calls poll()']);
    expect(nativeProblems('napi', 'n.cc', 'void f(NlSocket& s) { s.waitEvents(1, "poll("); core->poll(); } // setsockopt(x)\n')).toEqual([]);
  });
});
