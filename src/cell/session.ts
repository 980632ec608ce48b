// A session's tasks, as their unapplied change sets say (each manifest records its session and
// the tasks it stacked on): which one `--from last` means, the layers a new task starts from,
// and the chain that `diff|apply|discard --session` take as one.
import fs from 'node:fs';
import path from 'node:path';
import { NanocellError } from '../util/errors.js';
import { loadChangeSet, type ChangeSet } from '../workspace/manifest.js';
import { ensureLayer } from '../workspace/layer.js';
import { ensureSealed } from './layerSeal.js';
import { checkedSessionName, type StateLayout } from './state.js';
import type { WorkspaceStack } from './stackMount.js';

/** The session's (or every session's) pending, collected change sets, oldest first. */
export function sessionChangeSets(layout: StateLayout, session?: string): ChangeSet[] {
  if (session !== undefined) checkedSessionName(session);
  const names = fs.existsSync(layout.changes) ? fs.readdirSync(layout.changes) : [];
  const out: ChangeSet[] = [];
  for (const name of names) {
    if (!fs.existsSync(path.join(layout.changes, name, 'manifest.json'))) continue;
    let cs: ChangeSet;
    try {
      cs = loadChangeSet(path.join(layout.changes, name));
    } catch {
      continue; // a corrupted change set is its own command's to report
    }
    if (session === undefined || (cs.manifest.session ?? 'default') === session) out.push(cs);
  }
  return out.sort((a, b) => a.manifest.collectedAtMs - b.manifest.collectedAtMs);
}

function noSuchTask(session: string, what: string): NanocellError {
  return new NanocellError(
    `session ${session} has no unapplied change set ${what}`,
    'run a task with --session first, or see nanocell sessions',
    'STATE',
  );
}

/**
 * The chain a task or the session ends in: the change sets below it and itself, lowest first.
 * Refuses a chain with a member that is gone (applied or discarded) or was refused.
 */
export function sessionChain(layout: StateLayout, session: string, from = 'last'): ChangeSet[] {
  const sets = sessionChangeSets(layout, session);
  const top =
    from === 'last'
      ? sets[sets.length - 1]
      : (sets.find((s) => s.manifest.taskId === from) ??
        onlyOne(
          sets.filter((s) => s.manifest.taskId.startsWith(from)),
          session,
          from,
        ));
  if (!top) throw noSuchTask(session, from === 'last' ? '' : `for task ${from}`);
  const byId = new Map(sets.map((s) => [s.manifest.taskId, s]));
  const chain = [...(top.manifest.stack ?? []), top.manifest.taskId].map((id) => {
    const cs = byId.get(id);
    if (!cs) {
      throw new NanocellError(
        `task ${top.manifest.taskId} stacks on task ${id}, whose change set is gone (applied or discarded)`,
        `discard the session's rest with nanocell discard --session ${session}`,
        'STATE',
      );
    }
    return cs;
  });
  for (const cs of chain) {
    if (cs.manifest.status !== 'ok') {
      throw new NanocellError(
        `the change set of task ${cs.manifest.taskId} was refused when it was collected: ${cs.manifest.reason ?? ''}`,
        `discard it (nanocell discard ${cs.manifest.taskId}) and start from an earlier task`,
        'STATE',
      );
    }
  }
  return chain;
}

function onlyOne(sets: ChangeSet[], session: string, from: string): ChangeSet | undefined {
  if (sets.length > 1) {
    throw new NanocellError(
      `task prefix ${from} matches ${sets.length} tasks of session ${session}`,
      'give more of the task id',
      'USAGE',
    );
  }
  return sets[0];
}

/**
 * The layers a new task of `session` starts from (`--from last|TASK`), built and sealed where
 * missing: each on the ones below it and the project.
 */
export async function resolveStack(
  layout: StateLayout,
  session: string,
  from: string,
  project: string,
): Promise<WorkspaceStack> {
  const chain = sessionChain(layout, session, from);
  const trees: string[] = []; // topmost first
  for (const cs of chain) {
    if (cs.manifest.projectDir !== project) {
      throw new NanocellError(
        `task ${cs.manifest.taskId} of session ${session} ran on ${cs.manifest.projectDir}, not ${project}`,
        'start the task in the same project, or use another session',
        'USAGE',
      );
    }
    const tree = await ensureLayer(cs, layout.layer(cs.manifest.taskId), [...trees, project]);
    // Hashed once, when first built (or first used, for a layer of an older nanocell): what a
    // checkpoint of it is checked against.
    await ensureSealed(layout, tree);
    trees.unshift(tree);
  }
  return { layers: trees, taskIds: chain.map((c) => c.manifest.taskId) };
}
