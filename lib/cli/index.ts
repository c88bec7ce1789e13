// The `vnetlink` command: one module per command group, each parsed with node:util.parseArgs.
// Exit status: 0 done, 1 the operation failed, 2 usage error.
import fs from 'node:fs';
import path from 'node:path';
import { packageRoot } from '../native.js';
import { UsageError, print, terminalText } from './args.js';
import { addr, bridge, link, monitor, neigh, netns, route, tap, type Command } from './ip.js';
import { nft } from './nft.js';
import { bench } from '../bench/create.js';
import { attach } from './attach.js';
import { network } from './network.js';
import { fdb, rule, tc } from './tc.js';

const commands: Record<string, Command> = { network, link, addr, route, neigh, fdb, rule, bridge, tap, tc, netns, monitor, nft, attach, bench };

/** Late-bound groups (their modules load only when used). */
export function register(name: string, c: Command): void {
  commands[name] = c;
}

function version(): string {
  return JSON.parse(fs.readFileSync(path.join(packageRoot, 'package.json'), 'utf8')).version;
}

function topUsage(): string {
  const w = Math.max(...Object.keys(commands).map((k) => k.length));
  return [
    'usage: vnetlink COMMAND [SUBCOMMAND] [ARGS] [--netns NAME|PATH] [--json]',
    '       vnetlink help [COMMAND]    vnetlink --version',
    '',
    'Commands:',
    ...Object.entries(commands).map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`),
    '',
    'Every command works in the caller\'s network namespace or in --netns (a name under',
    '/run/netns or a path such as /proc/PID/ns/net); --json prints one JSON document',
    '(monitor: one JSON object per line). Exit status: 0 ok, 1 failure, 2 usage error.',
  ].join('\n');
}

/** Runs the CLI; resolves with the exit status. Errors go to stderr. */
export async function main(argv: string[]): Promise<number> {
  try {
    const [cmd, ...rest] = argv;
    if (cmd === undefined) { process.stderr.write(topUsage() + '\n'); return 2; }
    if (cmd === '--version' || cmd === '-V') { print(version()); return 0; }
    if (cmd === '-h' || cmd === '--help') { print(topUsage()); return 0; }
    if (cmd === 'help') {
      if (rest.length > 1) throw new UsageError(`help takes one command (got ${rest.join(' ')})`, topUsage());
      if (!rest.length) { print(topUsage()); return 0; }
      const c = Object.hasOwn(commands, rest[0]) ? commands[rest[0]] : undefined;
      if (!c) throw new UsageError(`unknown command '${rest[0]}'`, topUsage());
      print(c.usage);
      return 0;
    }
    const c = Object.hasOwn(commands, cmd) ? commands[cmd] : undefined;
    if (!c) throw new UsageError(`unknown command '${cmd}'`, topUsage());
    return await c.run(rest);
  } catch (e: any) {
    if (e instanceof UsageError) {
      process.stderr.write(terminalText(`vnetlink: ${e.message}\n${e.usage ? e.usage + '\n' : ''}`));
      return 2;
    }
    process.stderr.write(terminalText(`vnetlink: ${e?.message ?? e}\n`));
    return 1;
  }
}
