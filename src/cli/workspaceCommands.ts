// `nanocell diff | apply | discard TASK`: thin commands over the change set in the state dir.
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { NanocellError } from '../util/errors.js';
import { escapeText, quotePath, toJson } from '../util/display.js';
import { formatSize } from '../util/units.js';
import { applyChangeSet } from '../workspace/apply.js';
import { applyChosen } from '../workspace/applyChosen.js';
import { describeFate, pendingEntries, readFate } from '../workspace/changeFate.js';
import { writeDiff } from '../workspace/diff.js';
import { discardChangeSet } from '../workspace/discard.js';
import { loadChangeSet } from '../workspace/manifest.js';
import { recoverApplies, type Recovered } from '../workspace/applyRecover.js';
import { stdoutSink } from './output.js';
import { resolveChangeSet } from './taskRef.js';
import { ensureStateRoot, type StateLayout } from '../cell/state.js';
import { sessionChain } from '../cell/session.js';
import { commitChangeSetToBranch } from '../workspace/gitBranch.js';
import { writeGitDiff } from '../workspace/gitPatch.js';
import { applySession, composeSession, discardSession } from '../cell/sessionApply.js';

export interface WorkspaceCommandContext {
  stateRoot(): string;
  stdout?: { write(s: string): unknown };
}

export function describeRecovery(r: Recovered): string {
  return r.outcome === 'completed'
    ? `an interrupted apply of task ${r.taskId} to ${r.projectDir} had committed; finished it`
    : `an interrupted apply of task ${r.taskId} to ${r.projectDir} was rolled back; the project is as it was`;
}

/**
 * Every command first recovers applies a crash interrupted (one readdir when there are none).
 * A state root that does not exist yet has nothing to recover and is not created here.
 */
export function recoverBeforeCommand(stateRoot: string): void {
  // A state root that is missing, not a directory or not ours to read is the command's to
  // refuse, with its own message and fix; there is nothing this step could recover there.
  try {
    if (!statSync(stateRoot).isDirectory()) return;
    accessSync(stateRoot, constants.R_OK | constants.X_OK);
  } catch {
    return;
  }
  for (const r of recoverApplies(stateRoot))
    process.stderr.write(`nanocell: ${describeRecovery(r)}\n`);
}

/**
 * Resolves a task id or unique prefix to its change set, or says what became of it when it is
 * gone (applied or discarded: the fate record names when and by whom).
 */
function load(stateRoot: string, task: string): { id: string; dir: string } {
  const fate = readFate(stateRoot, task);
  // A partly applied change set is still there, with what is left to apply.
  if (fate && fate.status !== 'partly applied') {
    throw new NanocellError(
      `the change set of task ${escapeText(task)} was ${describeFate(fate)}`,
      'nothing to do; see nanocell report for what the task did',
      'STATE',
    );
  }
  return resolveChangeSet(stateRoot, task);
}

interface ApplyFlags {
  force?: boolean;
  skipRefused?: boolean;
  json?: boolean;
  session?: string;
  branch?: string;
  only?: string[];
}

/** The first line names the task(s), the body each one's command (from its report). */
function commitMessage(layout: StateLayout, taskIds: string[], session?: string): string {
  const command = (id: string): string => {
    try {
      const r = JSON.parse(readFileSync(layout.report(id), 'utf8')) as { command?: string[] };
      return JSON.stringify(r.command ?? []);
    } catch {
      return '(no report)';
    }
  };
  const title = session
    ? `nanocell: session ${session} (${taskIds.length} task(s))`
    : `nanocell: task ${taskIds[0]}`;
  const body = taskIds.map((id) => `Task: ${id}\nCommand: ${command(id)}`).join('\n\n');
  return `${title}\n\n${body}\n`;
}

function applyToBranch(stateRoot: string, task: string | undefined, o: ApplyFlags): string {
  let dir: string;
  let ids: string[];
  const layout = ensureStateRoot(stateRoot);
  if (o.session) {
    dir = composeSession(layout, o.session, task ?? 'last').dir;
    ids = sessionChain(layout, o.session, task ?? 'last').map((c) => c.manifest.taskId);
  } else {
    const r = load(stateRoot, needTask(task));
    dir = r.dir;
    ids = [r.id];
  }
  const { manifest } = loadChangeSet(dir);
  const c = commitChangeSetToBranch(
    dir,
    manifest.projectDir,
    o.branch!,
    commitMessage(layout, ids, o.session),
  );
  return `committed ${c.changes} change(s) to branch ${escapeText(c.branch)} as ${c.commit}; the work tree, index and change set are unchanged\n`;
}

function needTask(task: string | undefined): string {
  if (task === undefined)
    throw new NanocellError('no task given', 'pass a task id, or --session NAME', 'USAGE');
  return task;
}

/** A session verb takes no task: the session names what it works on. */
function sessionLayout(stateRoot: string, task: string | undefined) {
  if (task !== undefined)
    throw new NanocellError('give a task or --session, not both', 'drop one of them', 'USAGE');
  return ensureStateRoot(stateRoot);
}

/** With --session, a task names the chain's top: one fork of a checkpoint, say. */
function pick(stateRoot: string, task: string | undefined, session: string | undefined) {
  if (!session) return load(stateRoot, needTask(task));
  return composeSession(ensureStateRoot(stateRoot), session, task ?? 'last');
}

function applySessionCommand(stateRoot: string, task: string | undefined, o: ApplyFlags): string {
  const layout = ensureStateRoot(stateRoot);
  const r = applySession(
    layout,
    o.session!,
    { force: !!o.force, skipRefused: !!o.skipRefused, ...applyFeedback() },
    task ?? 'last',
  );
  const lines = r.skipped.map((s) => `skipped ${quotePath(s.path)}: ${escapeText(s.reason)}\n`);
  for (const f of r.merged)
    lines.push(`merged ${quotePath(f)} three ways (changed in the project too)\n`);
  for (const f of r.forced)
    lines.push(`overwrote ${quotePath(f)} (changed in the project since the task started)\n`);
  lines.push(
    `applied ${r.applied} change(s) (${formatSize(r.totalBytes)}) of ${r.tasks.length} task(s) of session ${escapeText(o.session!)}\n`,
  );
  return lines.join('');
}

/** On a terminal: a progress line for long applies, and a note that Ctrl-C is held. */
function applyFeedback(): Pick<
  Parameters<typeof applyChangeSet>[2] & object,
  'onProgress' | 'onCommitStart'
> {
  if (!process.stderr.isTTY) return {};
  let last = 0;
  let shown = false;
  return {
    onCommitStart: (steps) => {
      if (steps >= 1000)
        process.stderr.write(`nanocell: committing ${steps} steps; Ctrl-C waits until it ends\n`);
    },
    onProgress: (done, total) => {
      const now = Date.now();
      if (total < 1000 || (now - last < 100 && done < total)) return;
      last = now;
      shown = true;
      process.stderr.write(`\r\x1b[Kapplying ${done}/${total}`);
      if (done === total && shown) process.stderr.write('\r\x1b[K');
    },
  };
}

export function registerWorkspaceCommands(program: Command, ctx: WorkspaceCommandContext): void {
  registerDiffCommand(program, ctx);
  registerApplyCommand(program, ctx);
  registerDiscardCommand(program, ctx);
}

const stdoutOf = (ctx: WorkspaceCommandContext) => ctx.stdout ?? stdoutSink();

function registerDiffCommand(program: Command, ctx: WorkspaceCommandContext): void {
  const out = (s: string) => stdoutOf(ctx).write(s);
  program
    .command('diff')
    .description("show a task's change set as a unified diff against the project")
    .argument('[task]', 'task id or unique prefix')
    .option('--json', 'print the change set manifest (entries, refusals) as JSON')
    .option(
      '--session <name>',
      "the session's unapplied change sets, combined; with TASK, the chain that ends in TASK",
    )
    .addOption(
      new Option('--format <format>', 'nanocell (review) or git (a patch git apply takes)')
        .choices(['nanocell', 'git'])
        .default('nanocell'),
    )
    .action((task: string | undefined, o: { json?: boolean; session?: string; format: string }) => {
      const { dir } = pick(ctx.stateRoot(), task, o.session);
      const { manifest } = loadChangeSet(dir);
      if (o.json) {
        // As the text diff: the entries still to apply, and what `apply --only` wrote.
        const { manifest: rest, applied } = pendingEntries(dir, manifest);
        return void out(`${toJson(applied.length ? { ...rest, applied } : manifest, 2)}\n`);
      }
      if (o.format === 'git') {
        const sink = stdoutOf(ctx);
        return void writeGitDiff(dir, manifest.projectDir, (t) => sink.write(t));
      }
      // Streamed entry by entry: a 50,000-file change set never sits in memory as text.
      const sink = stdoutOf(ctx);
      writeDiff(dir, manifest.projectDir, (t) => sink.write(t), manifest);
    });
}

function registerApplyCommand(program: Command, ctx: WorkspaceCommandContext): void {
  const out = (s: string) => stdoutOf(ctx).write(s);
  program
    .command('apply')
    .description(
      "write a task's change set into the project: all of it or nothing, even on a crash",
    )
    .argument('[task]', 'task id or unique prefix')
    .option('--force', 'overwrite files changed in the project since the task started')
    .option('--skip-refused', 'apply even though some changes were refused at collection')
    .option('--json', 'print what was applied, skipped and overwritten as JSON')
    .option(
      '--session <name>',
      "apply the session's unapplied change sets as one, in order; with TASK, the chain that ends in TASK (one fork of a checkpoint, say)",
    )
    .option(
      '--branch <name>',
      "commit the change set onto a new branch of the project's repository instead (work tree and index untouched)",
    )
    .option(
      '--only <path...>',
      'apply only these paths (and what is below them); the rest stays for a later apply',
    )
    .action((task: string | undefined, o: ApplyFlags) => {
      if (o.only && (o.branch || o.session))
        throw new NanocellError(
          '--only takes one task, not --branch or --session',
          'drop one of them',
          'USAGE',
        );
      if (o.branch) return void out(applyToBranch(ctx.stateRoot(), task, o));
      if (o.session) return void out(applySessionCommand(ctx.stateRoot(), task, o));
      const { id, dir } = load(ctx.stateRoot(), needTask(task));
      const { manifest } = loadChangeSet(dir);
      const opts = {
        force: !!o.force,
        skipRefused: !!o.skipRefused,
        stateRoot: ctx.stateRoot(),
        ...(o.json ? {} : applyFeedback()),
      };
      const r = o.only
        ? applyChosen(dir, manifest.projectDir, o.only, opts)
        : applyChangeSet(dir, manifest.projectDir, opts);
      if (r.left === 0) discardChangeSet(dir, { record: false });
      if (o.json) {
        const { applied, left, skipped, forced } = r;
        const bytes = manifest.totalBytes;
        const doc = {
          task: id,
          projectDir: manifest.projectDir,
          applied,
          left,
          bytes,
          skipped,
          forced,
        };
        return void out(`${toJson(doc, 2)}\n`);
      }
      for (const s of r.skipped) out(`skipped ${quotePath(s.path)}: ${escapeText(s.reason)}\n`);
      for (const f of r.merged)
        out(`merged ${quotePath(f)} three ways (changed in the project too)\n`);
      for (const f of r.forced)
        out(`overwrote ${quotePath(f)} (changed in the project since the task started)\n`);
      if (r.left > 0)
        return void out(
          `applied ${r.applied} change(s) to ${quotePath(manifest.projectDir)}; ${r.left} left (nanocell diff ${id} shows them)\n`,
        );
      out(
        `applied ${r.applied} change(s) (${formatSize(manifest.totalBytes)}) to ${quotePath(manifest.projectDir)}\n`,
      );
    });
}

function registerDiscardCommand(program: Command, ctx: WorkspaceCommandContext): void {
  const out = (s: string) => stdoutOf(ctx).write(s);
  program
    .command('discard')
    .description("throw away a task's change set")
    .argument('[task]', 'task id or unique prefix')
    .option('--session <name>', 'every unapplied change set of the session, and its layers')
    .option('--json', 'print the task whose change set was discarded as JSON')
    .action((task: string | undefined, o: { session?: string; json?: boolean }) => {
      if (o.session) {
        const ids = discardSession(sessionLayout(ctx.stateRoot(), task), o.session);
        return void out(
          o.json
            ? `${toJson({ session: o.session, discarded: ids })}\n`
            : `discarded ${ids.length} change set(s) of session ${o.session}\n`,
        );
      }
      const { id, dir } = load(ctx.stateRoot(), needTask(task));
      discardChangeSet(dir);
      out(
        o.json
          ? `${toJson({ task: id, discarded: true })}\n`
          : `discarded the change set of task ${id}\n`,
      );
    });
}
