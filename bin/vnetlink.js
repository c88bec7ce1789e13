#!/usr/bin/env node
// The vnetlink command (see `vnetlink help`). It runs the compiled package (dist/).
import { fileURLToPath } from 'node:url';
import path from 'node:path';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { main } = await import(path.join(root, 'dist', 'cli', 'index.js'));
const code = await main(process.argv.slice(2));
// Let stdout drain; handles and monitors are closed by then.
process.exitCode = code;
