// `nanocell checkpoint TASK` and `nanocell sessions`: a session's tasks, layers and checkpoints.
import type { Command } from 'commander';
import { createCheckpoint, listCheckpoints } from '../cell/checkpoint.js';
import { sessionChangeSets } from '../cell/session.js';
import { ensureStateRoot } from '../cell/state.js';
import { escapeText, toJson } from '../util/display.js';
import { loadChangeSet } from '../workspace/manifest.js';
import type { CliContext } from './context.js';
import { stdoutSink } from './output.js';
import { resolveChangeSet } from './taskRef.js';

export function registerSessionCommands(program: Command, ctx: CliContext): void {
  const out = (s: string) => stdoutSink().write(s);
  program
    .command('checkpoint')
    .description(
      "freeze the workspace state a task left (with the session's tasks below it) for run --from",
    )
    .argument('<task>', 'task id or unique prefix')
    .action(async (task: string) => {
      const layout = ensureStateRoot(ctx.stateRoot());
      const { id, dir } = resolveChangeSet(ctx.stateRoot(), task);
      const m = loadChangeSet(dir).manifest;
      const c = await createCheckpoint(layout, m.session ?? 'default', id, m.projectDir);
      out(
        `checkpoint ${c.id} of task ${id} (session ${escapeText(c.session)}); start tasks from it with --from ${c.id}\n`,
      );
    });

  program
    .command('sessions')
    .description('list sessions with unapplied change sets, and the checkpoints')
    .option('--json', 'as JSON')
    .action((o: { json?: boolean }) => {
      const layout = ensureStateRoot(ctx.stateRoot());
      const bySession = new Map<string, string[]>();
      for (const cs of sessionChangeSets(layout)) {
        const s = cs.manifest.session ?? 'default';
        bySession.set(s, [...(bySession.get(s) ?? []), cs.manifest.taskId]);
      }
      const checkpoints = listCheckpoints(layout);
      if (o.json) {
        const sessions = [...bySession].map(([name, tasks]) => ({ name, tasks }));
        return void out(
          `${toJson({ sessions, checkpoints: checkpoints.map(({ layers: _l, ...c }) => c) }, 2)}\n`,
        );
      }
      for (const [name, tasks] of bySession)
        out(
          `session ${escapeText(name)}: ${tasks.length} unapplied change set(s): ${tasks.join(' ')}\n`,
        );
      for (const c of checkpoints)
        out(
          `checkpoint ${c.id}: session ${escapeText(c.session)}, tasks ${c.taskIds.join(' ')}, ${new Date(c.createdAtMs).toISOString()}\n`,
        );
    });
}
