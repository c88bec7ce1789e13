#!/usr/bin/env node
// The vnetlink command: `vnetlink bench create ...` (see --help).
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [cmd, sub, ...rest] = process.argv.slice(2);
const top = 'usage: vnetlink bench create [options]   (vnetlink bench create --help)';

async function main() {
  if (cmd === 'bench' && sub === 'create') {
    const { benchCreateCli } = await import(path.join(root, 'dist', 'bench', 'create.js'));
    return benchCreateCli(rest);
  }
  process.stderr.write(top + '\n');
  return cmd === '-h' || cmd === '--help' ? 0 : 2;
}

main().then((code) => { process.exitCode = code; }, (e) => {
  process.stderr.write(`vnetlink: ${e?.message ?? e}\n`);
  process.exitCode = 1;
});
