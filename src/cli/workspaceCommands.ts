// `nanocell diff | apply | discard TASK`: thin commands over the change set in the state dir.
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { stateLayout } from '../cell/state.js';
import { NanocellError } from '../util/errors.js';
import { formatSize } from '../util/units.js';
import { applyChangeSet } from '../workspace/apply.js';
import { describeFate, readFate } from '../workspace/changeFate.js';
import { renderDiff } from '../workspace/diff.js';
import { discardChangeSet } from '../workspace/discard.js';
import { loadChangeSet } from '../workspace/manifest.js';
import { recoverApplies, type Recovered } from '../workspace/applyRecover.js';

export interface WorkspaceCommandContext {
  stateRoot(): string;
  stdout?: { write(s: string): unknown };
}

/** The change set dir of `task`; StateLayout checks the id so it can never name another path. */
function changeDirOf(stateRoot: string, task: string): string {
  return stateLayout(stateRoot).changeSet(task);
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
  if (!existsSync(stateRoot)) return;
  for (const r of recoverApplies(stateRoot))
    process.stderr.write(`nanocell: ${describeRecovery(r)}\n`);
}

/** Loads the change set, or says what became of it when it is gone. */
function load(stateRoot: string, task: string): ReturnType<typeof loadChangeSet> {
  const dir = changeDirOf(stateRoot, task);
  const fate = readFate(stateRoot, task);
  if (fate) {
    throw new NanocellError(
      `the change set of task ${task} was ${describeFate(fate)}`,
      'nothing to do; see nanocell report for what the task did',
      'STATE',
    );
  }
  return loadChangeSet(dir);
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
  const out = (s: string) => (ctx.stdout ?? process.stdout).write(s);

  program
    .command('diff')
    .description("show a task's change set as a unified diff against the project")
    .argument('<task>', 'task id')
    .action((task: string) => {
      const { manifest } = load(ctx.stateRoot(), task);
      out(renderDiff(changeDirOf(ctx.stateRoot(), task), manifest.projectDir));
    });

  program
    .command('apply')
    .description(
      "write a task's change set into the project: all of it or nothing, even on a crash",
    )
    .argument('<task>', 'task id')
    .option('--force', 'overwrite files changed in the project since the task started')
    .option('--skip-refused', 'apply even though some changes were refused at collection')
    .action((task: string, o: { force?: boolean; skipRefused?: boolean }) => {
      const { manifest } = load(ctx.stateRoot(), task);
      const r = applyChangeSet(changeDirOf(ctx.stateRoot(), task), manifest.projectDir, {
        force: !!o.force,
        skipRefused: !!o.skipRefused,
        stateRoot: ctx.stateRoot(),
        ...applyFeedback(),
      });
      discardChangeSet(changeDirOf(ctx.stateRoot(), task), { record: false });
      for (const s of r.skipped) out(`skipped ${s.path}: ${s.reason}\n`);
      for (const f of r.forced)
        out(`overwrote ${f} (changed in the project since the task started)\n`);
      out(
        `applied ${r.applied} change(s) (${formatSize(manifest.totalBytes)}) to ${manifest.projectDir}\n`,
      );
    });

  program
    .command('discard')
    .description("throw away a task's change set")
    .argument('<task>', 'task id')
    .action((task: string) => {
      load(ctx.stateRoot(), task);
      discardChangeSet(changeDirOf(ctx.stateRoot(), task));
      out(`discarded the change set of task ${task}\n`);
    });
}
