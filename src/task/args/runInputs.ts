// What `nanocell run` makes of its arguments and says after its task, apart from where the
// task runs: the CLI uses it in its own process, and `nanocell serve` uses it for the native
// front's `runCli` request (src/server/cliRun.ts), with the client's cwd and environment in
// place of its own. One definition of the flags, the policy they make and the closing notes
// keeps both ways of running `nanocell run` the same command.
import fs from 'node:fs';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { loadPolicyFile, resolvePolicy } from '../../policy/load.js';
import type { Policy } from '../../policy/defaults.js';
import type { PolicyFile } from '../../policy/schema.js';
import { degradableControls } from '../../policy/schema.js';
import type { TaskReport } from '../task.js';
import { NanocellError } from '../../util/errors.js';
import { escapeText } from '../../util/display.js';
import { policyFromFlags, type RunFlags } from './policyFromFlags.js';
import { runtimeOption } from './runtimeOption.js';
import { K8S_DEGRADABLE_CONTROLS } from '../../k8s/mapping.js';

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

/** Where a run's arguments are read: the process's own, or a served client's. */
export interface RunPlace {
  cwd: string;
  env: NodeJS.ProcessEnv;
}

export interface RunInputs {
  policy: Policy;
  /** Absolute. */
  workspace: string;
  reportPath?: string;
}

/** The policy, workspace and report path `opts` name; relative paths are the place's cwd's. */
export function runInputs(opts: RunOpts, at: RunPlace): RunInputs {
  const reportPath = opts.report ? path.resolve(at.cwd, opts.report) : undefined;
  if (reportPath) checkReportPath(reportPath);
  const layers: PolicyFile[] = [];
  if (opts.policy) layers.push(loadPolicyFile(path.resolve(at.cwd, opts.policy)));
  layers.push(policyFromFlags(opts, at));
  // `nanocell agent NAME` names the preset last, so it wins over a policy file's.
  if (opts.preset) layers.push({ preset: opts.preset });
  return {
    policy: resolvePolicy(...layers),
    workspace: path.resolve(at.cwd, opts.workspace ?? '.'),
    ...(reportPath ? { reportPath } : {}),
  };
}

/** The change set's fate `--apply` / `--discard` ask for. */
export function changesFlag(opts: RunOpts): 'apply' | 'discard' | 'keep' {
  return opts.apply ? 'apply' : opts.discard ? 'discard' : 'keep';
}

/** What the user must know after the task, as lines for stderr (stdout is the task's). */
export function outcomeLines(
  report: TaskReport,
  command: string[],
  workspace: string,
  quiet: boolean,
): string[] {
  const lines: string[] = [];
  const note = (s: string) => lines.push(`nanocell: ${s}\n`);
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
  if (report.endReason === 'timeout') note(`task ${report.taskId} timed out`);
  if (report.endReason === 'oom') note(`task ${report.taskId} ran out of memory`);
  return lines;
}

/**
 * The run's exit status: the command's, except that --apply that did not apply is a failure
 * even when the command succeeded: a script must not go on as if the project held the task's
 * changes. The reason is among the outcome lines.
 */
export function runExitCode(report: TaskReport, opts: RunOpts): number {
  const fate = report.changeSetFate;
  if (opts.apply && fate?.action === 'kept' && report.exitCode === 0) return EXIT_APPLY_NOT_DONE;
  return report.exitCode;
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

export function writeReport(p: string, report: TaskReport): void {
  // Never follow a symlink planted at the report path.
  const tmp = `${p}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(report, null, 2)}\n`, { flag: 'wx', mode: 0o644 });
  fs.renameSync(tmp, p);
}

/** `--verbose`: whether a served task got a warm cell. */
export function whichCell(cell: { id: string; warmPool?: string }): string {
  return cell.warmPool
    ? `the task got warm cell ${cell.id} of pool "${cell.warmPool}"`
    : `the task's cell ${cell.id} was started for it (no warm pool fits its policy and project, or the pool had no ready cell)`;
}
