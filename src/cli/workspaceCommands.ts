// `nanocell diff | apply | discard TASK`: thin commands over the change set in the state dir.
import type { Command } from 'commander';
import { escapeText, quotePath, toJson } from '../util/display.js';
import { formatSize } from '../util/units.js';
import { applyChangeSet } from '../workspace/apply.js';
import { writeDiff } from '../workspace/diff.js';
import { discardChangeSet } from '../workspace/discard.js';
import { loadChangeSet } from '../workspace/manifest.js';
import { stdoutSink } from './output.js';
import { resolveChangeSet } from './taskRef.js';

export interface WorkspaceCommandContext {
  stateRoot(): string;
  stdout?: { write(s: string): unknown };
}

export function registerWorkspaceCommands(program: Command, ctx: WorkspaceCommandContext): void {
  const stdout = () => ctx.stdout ?? stdoutSink();
  const out = (s: string) => stdout().write(s);

  program
    .command('diff')
    .description("show a task's change set as a unified diff against the project")
    .argument('<task>', 'task id or unique prefix')
    .option('--json', 'print the change set manifest (entries, refusals) as JSON')
    .action((task: string, o: { json?: boolean }) => {
      const { dir } = resolveChangeSet(ctx.stateRoot(), task);
      const { manifest } = loadChangeSet(dir);
      if (o.json) return void out(`${toJson(manifest, 2)}\n`);
      // Streamed entry by entry: a 50,000-file change set never sits in memory as text.
      const sink = stdout();
      writeDiff(dir, manifest.projectDir, (t) => sink.write(t));
    });

  program
    .command('apply')
    .description("write a task's change set into the project: all of it or nothing")
    .argument('<task>', 'task id or unique prefix')
    .option('--force', 'overwrite files changed in the project since the task started')
    .option('--skip-refused', 'apply even though some changes were refused at collection')
    .action((task: string, o: { force?: boolean; skipRefused?: boolean }) => {
      const { dir } = resolveChangeSet(ctx.stateRoot(), task);
      const { manifest } = loadChangeSet(dir);
      const r = applyChangeSet(dir, manifest.projectDir, {
        force: !!o.force,
        skipRefused: !!o.skipRefused,
      });
      for (const s of r.skipped) out(`skipped ${quotePath(s.path)}: ${escapeText(s.reason)}\n`);
      for (const f of r.forced)
        out(`overwrote ${quotePath(f)} (changed in the project since the task started)\n`);
      out(
        `applied ${r.applied} change(s) (${formatSize(manifest.totalBytes)}) to ${quotePath(manifest.projectDir)}\n`,
      );
      discardChangeSet(dir);
    });

  program
    .command('discard')
    .description("throw away a task's change set")
    .argument('<task>', 'task id or unique prefix')
    .action((task: string) => {
      const { id, dir } = resolveChangeSet(ctx.stateRoot(), task);
      discardChangeSet(dir);
      out(`discarded the change set of task ${id}\n`);
    });
}
