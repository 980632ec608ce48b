// `nanocell run [options] -- CMD [ARGS...]`: the flags, the policy they make and the closing
// notes are src/task/args/runInputs.ts's, shared with the server's runCli; this is the CLI's
// own process: signals, the user's terminal, the live status line.
import fs from 'node:fs';
import type { Command } from 'commander';
import type { TaskReport } from '../task/task.js';
import { runTaskServedOrHere } from './served.js';
import { ensureStateRoot } from '../cell/state.js';
import type { CliContext } from './context.js';
import { LiveStatus } from './liveStatus.js';
import { TaskOutput } from './output.js';
import { addK8sRunOptions, type K8sRunOpts } from '../task/args/k8sOptions.js';
import { UserTerminal } from './terminal.js';
import {
  changesFlag,
  outcomeLines,
  runExitCode,
  runInputs,
  runOptions,
  writeReport,
  type RunOpts,
} from '../task/args/runInputs.js';

export function registerRunCommand(program: Command, ctx: CliContext): void {
  runOptions(
    addK8sRunOptions(program.command('run'))
      .description('run a command in a new cell; the cell is destroyed when it ends')
      .usage('[options] -- CMD [ARGS...]')
      .argument('<command...>', 'the command and its arguments')
      .passThroughOptions(),
  ).action(async (command: string[], opts: RunOpts & K8sRunOpts) => {
    if (opts.backend === 'k8s') {
      const { runOnK8s } = await import('./k8s.js');
      return void (process.exitCode = await runOnK8s(command, opts, ctx));
    }
    process.exitCode = await runCommand(command, opts, ctx);
  });
}

export async function runCommand(
  command: string[],
  opts: RunOpts,
  ctx: CliContext,
): Promise<number> {
  const { policy, workspace, reportPath } = runInputs(opts, {
    cwd: process.cwd(),
    env: process.env,
  });
  const stack = opts.from ? await startingStack(ctx, opts, workspace) : undefined;

  // The first signal kills the task and still collects its change set; a second one gives up
  // the collection (a hostile change set can take a while) and keeps nothing of it.
  const abort = new AbortController();
  const abandon = new AbortController();
  const onSignal = () => {
    if (!abort.signal.aborted) return abort.abort();
    if (abandon.signal.aborted) return;
    process.stderr.write('nanocell: giving up the change set; nothing of it is kept\n');
    abandon.abort();
  };
  // Raw mode from here to the finally below (or, should it crash, the process's exit).
  const terminal = opts.tty ? UserTerminal.enter() : undefined;
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  // A terminal program draws its own screen: no status line under it, and its escape
  // sequences are its interface, so they pass (they come from the cell's terminal only).
  const live = opts.quiet || opts.tty ? undefined : LiveStatus.forStderr();
  const output = (fd: 1 | 2) => {
    const toTerminal = (fd === 1 ? process.stdout : process.stderr).isTTY === true;
    return new TaskOutput({
      fd,
      toTerminal,
      filter: toTerminal && !opts.rawOutput && !opts.tty,
      ...(live ? { live } : {}),
      // Nobody reads any more: stop the task as SIGPIPE would stop it on the host; the cell is
      // still destroyed, collected and recorded as usual.
      onBroken: () => abort.abort(),
    });
  };
  let report: TaskReport | undefined;
  const passStdin = opts.tty || opts.interactive || !process.stdin.isTTY;
  try {
    report = await runTaskServedOrHere({
      policy,
      workspace,
      command,
      session: opts.session,
      ...(stack ? { stack } : {}),
      stateRoot: ctx.stateRoot(),
      extraAllowNet: opts.allowNet,
      stdin: passStdin ? process.stdin : null,
      ...(terminal
        ? { tty: { size: terminal.size(), onResize: (l) => terminal.onResize(l) } }
        : {}),
      stdout: output(1),
      stderr: output(2),
      abort: abort.signal,
      abandonChanges: abandon.signal,
      changes: changesFlag(opts),
      onEvent: live ? (e) => live.onEvent(e) : undefined,
      ...(opts.verbose
        ? { say: (line: string) => process.stderr.write(`nanocell: ${line}\n`) }
        : {}),
    });
  } catch (e) {
    const r = (e as { report?: TaskReport }).report;
    if (r && reportPath) writeReport(reportPath, r);
    throw e;
  } finally {
    terminal?.restore();
    live?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    process.stdin.unref?.();
  }
  if (reportPath) writeReport(reportPath, report);
  for (const line of outcomeLines(report, command, workspace, !!opts.quiet))
    process.stderr.write(line);
  return runExitCode(report, opts);
}

/** The layers `--from` names: a checkpoint, or a task of the session (`last` or an id). */
async function startingStack(ctx: CliContext, opts: RunOpts, workspace: string) {
  // Loaded only for --from: the session and checkpoint code pulls in the workspace library.
  const { CHECKPOINT_ID, checkpointStack } = await import('../cell/checkpoint.js');
  const { resolveStack } = await import('../cell/session.js');
  const layout = ensureStateRoot(ctx.stateRoot());
  const project = fs.existsSync(workspace) ? fs.realpathSync(workspace) : workspace;
  if (CHECKPOINT_ID.test(opts.from!)) return checkpointStack(layout, opts.from!, project);
  return resolveStack(layout, opts.session ?? 'default', opts.from!, project);
}
