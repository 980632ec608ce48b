// `nanocell ui [--port N]`: serves the dashboard until Ctrl-C.
import type { Command } from 'commander';
import { NanocellError } from '../util/errors.js';
import { startUi } from './server.js';

export function registerUiCommand(program: Command, ctx: { stateRoot(): string }): void {
  program
    .command('ui')
    .description('serve the review dashboard on 127.0.0.1 (the URL carries a one-time token)')
    .option('--port <n>', 'port to listen on (default: a random free port)')
    .action(async (opts: { port?: string }) => {
      const port = opts.port === undefined ? 0 : Number(opts.port);
      if (!Number.isInteger(port) || port < 0 || port > 65535) {
        throw new NanocellError(`--port ${opts.port} is not a port`, 'pass 1-65535', 'USAGE');
      }
      const ui = await startUi({ stateRoot: ctx.stateRoot(), port });
      // The URL is the credential: print it once, on stdout, for the user alone.
      process.stdout.write(`${ui.url}\n`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGINT', stop);
        process.once('SIGTERM', stop);
      });
      await ui.close();
    });
}
