// `nanocell mcp`: the MCP server on stdio, or `--install CLIENT` to configure an agent.
import fs from 'node:fs';
import type { Command } from 'commander';
import { installMcp, MCP_CLIENTS } from '../mcp/install.js';
import { serveMcpStdio } from '../mcp/server.js';
import { loadPolicyFile } from '../policy/load.js';
import type { CliContext } from './context.js';
import { VERSION } from './version.js';

export function registerMcpCommand(program: Command, ctx: CliContext): void {
  program
    .command('mcp')
    .description('serve cells to an agent over MCP (stdio), or configure an agent to use it')
    .option('--policy <file>', 'policy under every cell the agent creates')
    .option(
      '--allow-apply',
      'offer the apply tool (the agent can write change sets into the project)',
    )
    .option('--install <client>', `print the configuration for ${MCP_CLIENTS.join(', ')}`)
    .option('--write', "with --install: write it into the client's configuration file")
    .action(
      async (o: { policy?: string; allowApply?: boolean; install?: string; write?: boolean }) => {
        if (o.install) {
          const cli = fs.realpathSync(process.argv[1]!);
          const args = [cli, 'mcp', ...(o.allowApply ? ['--allow-apply'] : [])];
          const msg = installMcp(o.install, {
            write: !!o.write,
            cmd: { command: process.execPath, args },
            cwd: process.cwd(),
          });
          process.stdout.write(msg);
          return;
        }
        await serveMcpStdio({
          stateRoot: ctx.stateRoot(),
          ...(o.policy ? { basePolicy: loadPolicyFile(o.policy) } : {}),
          allowApply: !!o.allowApply,
          defaultWorkspace: process.cwd(),
          version: VERSION,
        });
      },
    );
}
