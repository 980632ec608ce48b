// `nanocell run [options] -- CMD [ARGS...]`
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { loadPolicyFile, resolvePolicy } from '../policy/load.js';
import type { PolicyFile } from '../policy/schema.js';
import { degradableControls } from '../policy/schema.js';
import type { TaskReport } from '../task/task.js';
import { runTaskServedOrHere } from './served.js';
import { ensureStateRoot } from '../cell/state.js';
import { NanocellError } from '../util/errors.js';
import { escapeText } from '../util/display.js';
import type { CliContext } from './context.js';
import { policyFromFlags, type RunFlags } from './policyFromFlags.js';
import { LiveStatus } from './liveStatus.js';
import { TaskOutput } from './output.js';
import { runtimeOption } from './runtimeOption.js';
import { addK8sRunOptions, type K8sRunOpts } from './k8sOptions.js';
import { K8S_DEGRADABLE_CONTROLS } from '../k8s/mapping.js';
import { UserTerminal } from './terminal.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

export interface RunOpts extends RunFlags {
  policy?: string;
  workspace?: string;
  session?: string;
  from?: string;
  report?: string;
  allowNet?: string[];
  apply?: boolean;
  discard?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  rawOutput?: boolean;
  tty?: boolean;
  interactive?: boolean;
  /** An agent preset (`nanocell agent NAME`). */
  preset?: string;
}

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

/** The options of a local cell run, shared by `run` and `agent`. */
export function runOptions(cmd: Command): Command {
  return cmd
    .option('--policy <file>', 'policy file (YAML or JSON)')
    .option('--workspace <dir>', 'project directory shown to the cell (default: current directory)')
    .option('--memory <size>', 'memory limit, e.g. 512m')
    .option('--pids <n>', 'maximum processes and threads')
    .option('--cpus <n>', 'CPU quota in cores, e.g. 1.5')
    .option('--timeout <duration>', 'wall-clock limit, e.g. 30s, 10m')
    .option('--output-limit <size>', 'stdout+stderr bytes kept, e.g. 16m')
    .option('--disk <size>', 'cap on what the task may write to the workspace')
    .option(
      '--env <NAME[=V]>',
      'environment variable; NAME alone passes the host value, off the command line (repeatable)',
      collect,
    )
    .option('--env-file <file>', 'NAME=VALUE lines, Docker syntax (repeatable)', collect)
    .option(
      '--mount <HOST[:CELL]>',
      'bind a host path read-only into the cell, checked first (repeatable)',
      collect,
    )
    .option(
      '--secret <NAME=ENV_VAR@host>',
      "broker a credential: the cell's NAME holds a placeholder, the proxy sends the host's ENV_VAR to host (repeatable)",
      collect,
    )
    .option(
      '--allow-net <host>',
      'allow egress to a host pattern, e.g. registry.npmjs.org (repeatable)',
      collect,
    )
    .addOption(
      new Option('--allow-degraded <control>', 'accept running without a control (repeatable)')
        .choices([...degradableControls, ...K8S_DEGRADABLE_CONTROLS])
        .argParser(collect as never),
    )
    .option('--no-denial-notes', "don't tell the command on stderr what the cell refused")
    .option('-t, --tty', "give the command a terminal inside the cell (the user's in raw mode)")
    .option('-i, --interactive', 'pass stdin to the command even when it is a terminal')
    .option('--session <name>', 'session name for grouping tasks', 'default')
    .option(
      '--from <last|TASK>',
      "start from the project plus the session's unapplied change sets up to this task",
    )
    .option('--report <file>', 'write the JSON task report here')
    .addOption(runtimeOption('OCI runtime'))
    .option('--runtime-path <path>', 'path to the OCI runtime binary')
    .addOption(
      new Option('--apply', 'apply the change set after the task if it has no conflict').conflicts(
        'discard',
      ),
    )
    .option('--discard', 'discard the change set after the task')
    .option('--quiet', 'no live status line and no notes (the change-set id is still printed)')
    .option(
      '--verbose',
      'say where the task runs: through `nanocell serve` (and whether in a warm cell), or in this process',
    )
    .option(
      '--raw-output',
      "pass the task's terminal escape sequences (title, clipboard, cursor) through to a terminal",
    );
}

export async function runCommand(
  command: string[],
  opts: RunOpts,
  ctx: CliContext,
): Promise<number> {
  const reportPath = opts.report ? path.resolve(opts.report) : undefined;
  if (reportPath) checkReportPath(reportPath);
  const layers: PolicyFile[] = [];
  if (opts.policy) layers.push(loadPolicyFile(path.resolve(opts.policy)));
  layers.push(policyFromFlags(opts));
  // `nanocell agent NAME` names the preset last, so it wins over a policy file's.
  if (opts.preset) layers.push({ preset: opts.preset });
  const policy = resolvePolicy(...layers);
  const workspace = path.resolve(opts.workspace ?? process.cwd());
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
      changes: opts.apply ? 'apply' : opts.discard ? 'discard' : 'keep',
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
  printOutcome(report, command, workspace, !!opts.quiet);
  // --apply that did not apply is a failure even when the command succeeded: a script must
  // not go on as if the project held the task's changes. The reason was printed above.
  const fate = report.changeSetFate;
  if (opts.apply && fate?.action === 'kept' && report.exitCode === 0) return EXIT_APPLY_NOT_DONE;
  return report.exitCode;
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

/** What the user must know after the task, on stderr (stdout is the task's). */
function printOutcome(report: TaskReport, command: string[], workspace: string, quiet: boolean) {
  const note = (s: string) => process.stderr.write(`nanocell: ${s}\n`);
  const fate = report.changeSetFate;
  if (fate?.action === 'applied' && !quiet)
    note(`applied ${fate.applied} change(s) to ${escapeText(workspace)}`);
  else if (fate?.action === 'kept' && quiet) {
    // Scripts need the id even when quiet: the change set waits for them.
    note(`change set ${report.taskId}${fate.error ? ` (${fate.error})` : ''}`);
  } else if (fate?.action === 'kept') {
    note(
      `changes kept as change set ${report.taskId}${fate.error ? ` (${fate.error})` : ''}; review with \`nanocell diff ${report.taskId}\``,
    );
  }
  const spawn = spawnFailure(report, command);
  if (spawn) note(spawn);
  if (report.endReason === 'timeout')
    process.stderr.write(`nanocell: task ${report.taskId} timed out\n`);
  if (report.endReason === 'oom')
    process.stderr.write(`nanocell: task ${report.taskId} ran out of memory\n`);
}

/** A command that never started: one line naming it, like a shell says it. */
function spawnFailure(report: TaskReport, command: string[]): string | undefined {
  if (report.endReason !== 'error' || report.error !== undefined) return undefined;
  const name = escapeText(command[0] ?? '');
  if (report.exitCode === 127) return `${name}: not found (in the cell's PATH or file system)`;
  if (report.exitCode === 126)
    return `${name}: cannot execute (not executable, a directory, or outside exec.allow)`;
  return undefined;
}

/** `run --apply` whose command succeeded but whose change set was kept (nanocell's error code). */
const EXIT_APPLY_NOT_DONE = 125;

function checkReportPath(p: string): void {
  const dir = path.dirname(p);
  const st = fs.statSync(dir, { throwIfNoEntry: false });
  if (!st?.isDirectory()) {
    throw new NanocellError(
      `--report ${p}: directory ${dir} does not exist`,
      'create it or choose another path',
      'USAGE',
    );
  }
  const f = fs.lstatSync(p, { throwIfNoEntry: false });
  if (f && !f.isFile()) {
    throw new NanocellError(
      `--report ${p} exists and is not a regular file`,
      'choose another path',
      'USAGE',
    );
  }
}

function writeReport(p: string, report: TaskReport): void {
  // Never follow a symlink planted at the report path.
  const tmp = `${p}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(report, null, 2)}\n`, { flag: 'wx', mode: 0o644 });
  fs.renameSync(tmp, p);
}
