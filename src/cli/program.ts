// The nanocell CLI: argument parsing and printing over the library. Exit codes follow
// Docker's: the command's own status, 124 timeout, 125 nanocell error, 126 cannot execute,
// 127 not found, 137 killed or out of memory.
import { Command, CommanderError, Option } from 'commander';
import { NanocellError } from '../util/errors.js';
import { BrokenPipe } from './output.js';
import { registerRunCommand } from './run.js';
import { registerDoctorCommand } from './doctor.js';
import { registerGcCommand } from './gc.js';
import { registerPsCommand } from './ps.js';
import { registerAuditCommands } from './auditCommands.js';
import { recoverBeforeCommand, registerWorkspaceCommands } from './workspaceCommands.js';
import { registerDemoCommand } from './demo.js';
import { registerK8sCommands } from './k8s.js';
import { registerSessionCommands } from './sessionCommands.js';
import { AuditStore } from '../audit/store.js';
import { defaultStateRoot, ensureStateRoot } from '../cell/state.js';

const EXIT_NANOCELL_ERROR = 125;

function buildProgram(): Command {
  const program = new Command('nanocell')
    .description('Run AI-agent tasks in disposable, locked-down cells')
    .version('0.1.0')
    .enablePositionalOptions()
    .addOption(new Option('--state-root <dir>', 'state directory').env('NANOCELL_STATE_ROOT'))
    .exitOverride()
    .configureOutput({ outputError: () => undefined })
    .showSuggestionAfterError(true);
  const stateRoot = () => {
    const o = program.opts<{ stateRoot?: string }>();
    return o.stateRoot ?? defaultStateRoot();
  };
  const ctx = {
    stateRoot,
    openStore: () => AuditStore.open(ensureStateRoot(stateRoot()).db),
  };
  program.hook('preAction', () => recoverBeforeCommand(stateRoot()));
  registerRunCommand(program, ctx);
  registerDemoCommand(program, ctx);
  registerDoctorCommand(program);
  registerGcCommand(program, ctx);
  registerPsCommand(program, ctx);
  registerAuditCommands(program, ctx);
  registerWorkspaceCommands(program, ctx);
  registerK8sCommands(program, ctx);
  registerSessionCommands(program, ctx);
  for (const c of program.commands)
    c.exitOverride().configureOutput({ outputError: () => undefined });
  return program;
}

export function reportError(e: unknown): number {
  // The reader of our output went away (`nanocell logs X | head`): end quietly, with the
  // status the command had reached.
  if (e instanceof BrokenPipe) return process.exitCode === undefined ? 0 : Number(process.exitCode);
  if (e instanceof CommanderError) {
    if (
      e.code === 'commander.helpDisplayed' ||
      e.code === 'commander.version' ||
      e.code === 'commander.help'
    ) {
      return 0;
    }
    const msg = e.message.replace(/^error:\s*/i, '').split('\n')[0];
    process.stderr.write(`nanocell: ${msg} (fix: see \`nanocell --help\`)\n`);
    return EXIT_NANOCELL_ERROR;
  }
  if (e instanceof NanocellError) {
    process.stderr.write(`nanocell: ${e.oneLine()}\n`);
    return EXIT_NANOCELL_ERROR;
  }
  const err = e as Error;
  process.stderr.write(
    `nanocell: internal error: ${err?.message ?? String(e)} (fix: please report this bug)\n`,
  );
  if (process.env.NANOCELL_DEBUG) process.stderr.write(`${err?.stack}\n`);
  return EXIT_NANOCELL_ERROR;
}

/** An EPIPE on Node's own streams (help text, notes on stderr) is not worth a stack trace. */
function quietOnBrokenPipe(): void {
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code !== 'EPIPE') throw e;
    });
  }
}

export async function main(argv: string[]): Promise<number> {
  quietOnBrokenPipe();
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (e) {
    return reportError(e);
  }
}
