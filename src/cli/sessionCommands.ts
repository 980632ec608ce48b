// `nanocell checkpoint TASK` and `nanocell sessions`: a session's tasks, layers and checkpoints.
import type { Command } from 'commander';
import { createCheckpoint, listCheckpoints, verifyCheckpoints } from '../cell/checkpoint.js';
import { sessionChangeSets } from '../cell/session.js';
import { ensureStateRoot, type StateLayout } from '../cell/state.js';
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
    .option('--verify', 'rehash every checkpoint in full (exit 1 when one is damaged)')
    .action(async (o: { json?: boolean; verify?: boolean }) => {
      const layout = ensureStateRoot(ctx.stateRoot());
      if (o.verify) return verify(layout, !!o.json, out);
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

/** `sessions --verify`: what a fork checks cheaply (stat fingerprints), rehashed in full. */
async function verify(layout: StateLayout, json: boolean, out: (s: string) => void) {
  const verdicts = await verifyCheckpoints(layout);
  if (json) out(`${toJson(verdicts, 2)}\n`);
  else
    for (const v of verdicts)
      out(`checkpoint ${v.id}: ${v.damage === null ? 'intact' : `DAMAGED: ${v.damage}`}\n`);
  if (verdicts.some((v) => v.damage !== null)) process.exitCode = 1;
}
