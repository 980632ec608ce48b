// `nanocell exec TASK -- CMD`, `nanocell stop TASK`, `nanocell kill TASK`: verbs on a running
// cell, through the control socket its supervisor serves (src/control).
import type { Command } from 'commander';
import { endTask, execInTask } from '../control/client.js';
import { NanocellError } from '../util/errors.js';
import type { CliContext } from './context.js';
import { TaskOutput } from './output.js';
import { resolveLiveTask } from './taskRef.js';
import { UserTerminal } from './terminal.js';

const SIGNALS = { SIGINT: 2, SIGTERM: 15, SIGHUP: 1 } as const;

export function registerLiveCommands(program: Command, ctx: CliContext): void {
  program
    .command('exec')
    .description('run a command in a running cell (output streamed, its exit status returned)')
    .usage('[options] TASK -- CMD [ARGS...]')
    .argument('<task>', 'task id or unique prefix (see `nanocell ps`)')
    .argument('<command...>', 'the command and its arguments')
    .passThroughOptions()
    .option('-i, --interactive', 'pass stdin to the command')
    .option('-t, --tty', "give the command a terminal inside the cell (the user's in raw mode)")
    .option('-w, --workdir <dir>', "working directory in the cell (default: the project's path)")
    .option('--raw-output', "pass the command's terminal escape sequences through to a terminal")
    .action(async (task: string, command: string[], opts: ExecOpts) => {
      // Past the task id options are passed through, `--` included: it only separates.
      const argv = command[0] === '--' ? command.slice(1) : command;
      if (argv.length === 0)
        throw new NanocellError('no command given', 'pass a command after --', 'USAGE');
      process.exitCode = await execCommand(ctx, task, argv, opts);
    });

  program
    .command('stop')
    .description('end a running task as its timeout would: SIGTERM, a grace period, then the end')
    .argument('<task>', 'task id or unique prefix')
    .option('--time <seconds>', 'seconds the commands get to exit on SIGTERM', '10')
    .action(async (task: string, opts: { time: string }) => {
      const seconds = Number(opts.time);
      if (!Number.isFinite(seconds) || seconds < 0 || seconds > 3600) {
        throw new NanocellError(
          `--time ${opts.time} is not 0-3600 seconds`,
          'pass e.g. --time 5',
          'USAGE',
        );
      }
      const t = resolveLiveTask(ctx.stateRoot(), task);
      await endTask(t.socket, t.id, { verb: 'stop', graceMs: Math.round(seconds * 1000) });
      process.stderr.write(`nanocell: task ${t.id} stopped; its change set was collected\n`);
    });

  program
    .command('kill')
    .description('end a running task at once (every process in its cell is killed)')
    .argument('<task>', 'task id or unique prefix')
    .action(async (task: string) => {
      const t = resolveLiveTask(ctx.stateRoot(), task);
      await endTask(t.socket, t.id, { verb: 'kill' });
      process.stderr.write(`nanocell: task ${t.id} killed\n`);
    });
}

interface ExecOpts {
  interactive?: boolean;
  workdir?: string;
  tty?: boolean;
  rawOutput?: boolean;
}

async function execCommand(ctx: CliContext, task: string, command: string[], opts: ExecOpts) {
  const t = resolveLiveTask(ctx.stateRoot(), task);
  // Raw mode from here to the finally below (or, should it crash, the process's exit).
  const terminal = opts.tty ? UserTerminal.enter() : undefined;
  try {
    return await execIn(t, command, opts, terminal);
  } finally {
    terminal?.restore();
    process.stdin.unref?.();
  }
}

async function execIn(
  t: { id: string; socket: string },
  command: string[],
  opts: ExecOpts,
  terminal: UserTerminal | undefined,
): Promise<number> {
  const output = (fd: 1 | 2) => {
    const toTerminal = (fd === 1 ? process.stdout : process.stderr).isTTY === true;
    return new TaskOutput({
      fd,
      toTerminal,
      // A terminal program's escape sequences are its interface (as with `run -t`).
      filter: toTerminal && !opts.rawOutput && !terminal,
      // Nobody reads: end the command in the cell, as SIGPIPE would on the host.
      onBroken: () => process.kill(process.pid, 'SIGPIPE'),
    });
  };
  const r = await execInTask(
    t.socket,
    t.id,
    command,
    {
      ...(opts.interactive || terminal ? { stdin: process.stdin } : {}),
      ...(terminal
        ? { tty: { size: terminal.size(), onResize: (l) => terminal.onResize(l) } }
        : {}),
      stdout: output(1),
      stderr: output(2),
      signals: (send) => {
        const handlers = Object.entries(SIGNALS).map(([name, n]) => {
          const h = () => send(n);
          process.on(name, h);
          return () => process.off(name, h);
        });
        return () => handlers.forEach((off) => off());
      },
    },
    opts.workdir ? { cwd: opts.workdir } : {},
  );
  return r.exitCode;
}
