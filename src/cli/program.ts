// The nanocell CLI: argument parsing and printing over the library. Exit codes follow
// Docker's: the command's own status, 124 timeout, 125 nanocell error, 126 cannot execute,
// 127 not found, 137 killed or out of memory.
import { Command, CommanderError, Option } from 'commander';
import { NanocellError } from '../util/errors.js';
import { BrokenPipe } from './output.js';
import type { CliContext } from './context.js';
import { modulesFor, verbOf } from './verbs.js';
import { VERSION } from './version.js';

const EXIT_NANOCELL_ERROR = 125;

/**
 * The program with the verbs `argv` needs. Nothing of the library is loaded before the
 * arguments are looked at: `--version` loads no verb, a verb loads its own module.
 */
async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command('nanocell')
    .description('Run AI-agent tasks in disposable, locked-down cells')
    .version(VERSION)
    .enablePositionalOptions()
    .addOption(new Option('--state-root <dir>', 'state directory').env('NANOCELL_STATE_ROOT'))
    .exitOverride()
    .configureOutput({ outputError: () => undefined })
    .showSuggestionAfterError(true);
  const verb = verbOf(argv);
  const versionOnly = verb === undefined && argv.some((a) => a === '-V' || a === '--version');
  const modules = versionOnly ? [] : modulesFor(verb);
  if (modules.length === 0) return program;
  const state = await import('../cell/state.js');
  const stateRoot = () =>
    program.opts<{ stateRoot?: string }>().stateRoot ?? state.defaultStateRoot();
  const store = modules.some((m) => m.store)
    ? (await import('../audit/store.js')).AuditStore
    : undefined;
  const ctx: CliContext = {
    stateRoot,
    openStore: () => {
      if (!store) throw new Error('this verb was not registered as opening the audit store');
      return store.open(state.ensureStateRoot(stateRoot()).db);
    },
  };
  program.hook('preAction', async () => {
    // The recovery code loads only when an interrupted apply left a journal; most commands find
    // none, and a dir it cannot read is left to recoverBeforeCommand's own checks.
    const { applyPaths, listJournals } = await import('../workspace/applyPaths.js');
    try {
      if (listJournals(applyPaths(stateRoot()).dir).length === 0) return;
    } catch {
      // fall through
    }
    (await import('./workspaceCommands.js')).recoverBeforeCommand(stateRoot());
  });
  for (const register of await Promise.all(modules.map((m) => m.load()))) register(program, ctx);
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
  try {
    const program = await buildProgram(argv);
    await program.parseAsync(argv);
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (e) {
    return reportError(e);
  }
}
