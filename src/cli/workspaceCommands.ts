// `nanocell diff | apply | discard TASK`: thin commands over the change set in the state dir.
import type { Command } from 'commander';
import { stateLayout } from '../cell/state.js';
import { formatSize } from '../util/units.js';
import { applyChangeSet } from '../workspace/apply.js';
import { renderDiff } from '../workspace/diff.js';
import { discardChangeSet } from '../workspace/discard.js';
import { loadChangeSet } from '../workspace/manifest.js';

export interface WorkspaceCommandContext {
  stateRoot(): string;
  stdout?: { write(s: string): unknown };
}

/** The change set dir of `task`; StateLayout checks the id so it can never name another path. */
function changeDirOf(stateRoot: string, task: string): string {
  return stateLayout(stateRoot).changeSet(task);
}

export function registerWorkspaceCommands(program: Command, ctx: WorkspaceCommandContext): void {
  const out = (s: string) => (ctx.stdout ?? process.stdout).write(s);

  program
    .command('diff')
    .description("show a task's change set as a unified diff against the project")
    .argument('<task>', 'task id')
    .action((task: string) => {
      const dir = changeDirOf(ctx.stateRoot(), task);
      const { manifest } = loadChangeSet(dir);
      out(renderDiff(dir, manifest.projectDir));
    });

  program
    .command('apply')
    .description("write a task's change set into the project: all of it or nothing")
    .argument('<task>', 'task id')
    .option('--force', 'overwrite files changed in the project since the task started')
    .option('--skip-refused', 'apply even though some changes were refused at collection')
    .action((task: string, o: { force?: boolean; skipRefused?: boolean }) => {
      const dir = changeDirOf(ctx.stateRoot(), task);
      const { manifest } = loadChangeSet(dir);
      const r = applyChangeSet(dir, manifest.projectDir, {
        force: !!o.force,
        skipRefused: !!o.skipRefused,
      });
      for (const s of r.skipped) out(`skipped ${s.path}: ${s.reason}\n`);
      for (const f of r.forced)
        out(`overwrote ${f} (changed in the project since the task started)\n`);
      out(
        `applied ${r.applied} change(s) (${formatSize(manifest.totalBytes)}) to ${manifest.projectDir}\n`,
      );
      discardChangeSet(dir);
    });

  program
    .command('discard')
    .description("throw away a task's change set")
    .argument('<task>', 'task id')
    .action((task: string) => {
      discardChangeSet(changeDirOf(ctx.stateRoot(), task));
      out(`discarded the change set of task ${task}\n`);
    });
}
