// `nanocell run [options] -- CMD [ARGS...]`
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { loadPolicyFile, resolvePolicy } from '../policy/load.js';
import type { PolicyFile } from '../policy/schema.js';
import { degradableControls, runtimeNames } from '../policy/schema.js';
import { runTask, type TaskReport } from '../task/task.js';
import { NanocellError } from '../util/errors.js';
import type { CliContext } from './context.js';
import { policyFromFlags, type RunFlags } from './policyFromFlags.js';
import { LiveStatus } from './liveStatus.js';
import { addK8sRunOptions, runOnK8s, type K8sRunOpts } from './k8s.js';

const collect = (v: string, prev: string[] = []) => [...prev, v];

interface RunOpts extends RunFlags {
  policy?: string;
  workspace?: string;
  session?: string;
  report?: string;
  allowNet?: string[];
  apply?: boolean;
  discard?: boolean;
  quiet?: boolean;
}

export function registerRunCommand(program: Command, ctx: CliContext): void {
  addK8sRunOptions(program.command('run'))
    .description('run a command in a new cell; the cell is destroyed when it ends')
    .usage('[options] -- CMD [ARGS...]')
    .argument('<command...>', 'the command and its arguments')
    .passThroughOptions()
    .option('--policy <file>', 'policy file (YAML or JSON)')
    .option('--workspace <dir>', 'project directory shown to the cell (default: current directory)')
    .option('--memory <size>', 'memory limit, e.g. 512m')
    .option('--pids <n>', 'maximum processes and threads')
    .option('--cpus <n>', 'CPU quota in cores, e.g. 1.5')
    .option('--timeout <duration>', 'wall-clock limit, e.g. 30s, 10m')
    .option('--output-limit <size>', 'stdout+stderr bytes kept, e.g. 16m')
    .option('--disk <size>', 'cap on what the task may write to the workspace')
    .option('--env <K=V>', 'environment variable for the command (repeatable)', collect)
    .option(
      '--allow-net <host>',
      'allow egress to a host pattern, e.g. registry.npmjs.org (repeatable)',
      collect,
    )
    .addOption(
      new Option('--allow-degraded <control>', 'accept running without a control (repeatable)')
        .choices([...degradableControls])
        .argParser(collect as never),
    )
    .option('--session <name>', 'session name for grouping tasks', 'default')
    .option('--report <file>', 'write the JSON task report here')
    .addOption(new Option('--runtime <name>', 'OCI runtime').choices(runtimeNames))
    .option('--runtime-path <path>', 'path to the OCI runtime binary')
    .addOption(
      new Option('--apply', 'apply the change set after the task if it has no conflict').conflicts(
        'discard',
      ),
    )
    .option('--discard', 'discard the change set after the task')
    .option('--quiet', 'no live status line')
    .action(async (command: string[], opts: RunOpts & K8sRunOpts) => {
      if (opts.backend === 'k8s')
        return void (process.exitCode = await runOnK8s(command, opts, ctx));
      process.exitCode = await runCommand(command, opts, ctx);
    });
}

async function runCommand(command: string[], opts: RunOpts, ctx: CliContext): Promise<number> {
  const reportPath = opts.report ? path.resolve(opts.report) : undefined;
  if (reportPath) checkReportPath(reportPath);
  const layers: PolicyFile[] = [];
  if (opts.policy) layers.push(loadPolicyFile(path.resolve(opts.policy)));
  layers.push(policyFromFlags(opts));
  const policy = resolvePolicy(...layers);
  const workspace = path.resolve(opts.workspace ?? process.cwd());

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
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  const live = opts.quiet ? undefined : LiveStatus.forStderr();
  let report: TaskReport | undefined;
  try {
    report = await runTask({
      policy,
      workspace,
      command,
      session: opts.session,
      stateRoot: ctx.stateRoot(),
      extraAllowNet: opts.allowNet,
      stdin: process.stdin.isTTY ? null : process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
      abort: abort.signal,
      abandonChanges: abandon.signal,
      changes: opts.apply ? 'apply' : opts.discard ? 'discard' : 'keep',
      onEvent: live ? (e) => live.onEvent(e) : undefined,
    });
  } catch (e) {
    const r = (e as { report?: TaskReport }).report;
    if (r && reportPath) writeReport(reportPath, r);
    throw e;
  } finally {
    live?.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    process.stdin.unref?.();
  }
  if (reportPath) writeReport(reportPath, report);
  const fate = report.changeSetFate;
  if (fate && !opts.quiet) {
    if (fate.action === 'applied')
      process.stderr.write(`nanocell: applied ${fate.applied} change(s) to ${workspace}\n`);
    else if (fate.action === 'kept') {
      process.stderr.write(
        `nanocell: changes kept as change set ${report.taskId}${fate.error ? ` (${fate.error})` : ''}; review with \`nanocell diff ${report.taskId}\`\n`,
      );
    }
  } else if (fate?.error) {
    process.stderr.write(`nanocell: ${fate.error}\n`);
  }
  if (report.endReason === 'timeout')
    process.stderr.write(`nanocell: task ${report.taskId} timed out\n`);
  if (report.endReason === 'oom')
    process.stderr.write(`nanocell: task ${report.taskId} ran out of memory\n`);
  // --apply that did not apply is a failure even when the command succeeded: a script must
  // not go on as if the project held the task's changes.
  // The reason (fate.error) was printed above.
  if (opts.apply && fate?.action === 'kept' && report.exitCode === 0) return EXIT_APPLY_NOT_DONE;
  return report.exitCode;
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
