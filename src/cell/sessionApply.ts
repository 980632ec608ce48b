// `diff|apply|discard --session`: the session's chain composed into one change set under
// `<state>/sessions/<name>/combined`, applied by the ordinary apply (all or nothing). The
// members are removed only after it committed; a crash in between is finished by the next
// session command, which finds the combined apply's fate newer than the members' record.
import fs from 'node:fs';
import path from 'node:path';
import { applyChangeSet, type ApplyOptions, type ApplyResult } from '../workspace/apply.js';
import { appliedPaths, readFate, recordFate } from '../workspace/changeFate.js';
import { NanocellError } from '../util/errors.js';
import type { ChangeSet } from '../workspace/manifest.js';
import { writeComposedChangeSet } from '../workspace/stack.js';
import { sessionChain, sessionChangeSets } from './session.js';
import type { StateLayout } from './state.js';

/** The id the combined change set's apply is recorded under. */
const combinedId = (session: string) => `session.${session}`;

interface Members {
  taskIds: string[];
  atMs: number;
}

const membersFile = (layout: StateLayout, session: string) =>
  path.join(layout.session(session), 'members.json');

/**
 * Composes the session's chain, the one that ends in `from` (its last task by default; a fork of
 * a checkpoint picks the fork); the caller reads or applies it.
 */
export function composeSession(layout: StateLayout, session: string, from = 'last'): ChangeSet {
  finishSessionApply(layout, session);
  const chain = sessionChain(layout, session, from);
  for (const cs of chain) {
    // Its entries are judged against the project as it was: part of it is written since.
    if (appliedPaths(layout.root, cs.manifest.taskId).size)
      throw new NanocellError(
        `task ${cs.manifest.taskId} of session ${session} was partly applied (apply --only)`,
        `apply its rest first (nanocell apply ${cs.manifest.taskId}), or discard the session`,
        'STATE',
      );
  }
  fs.mkdirSync(layout.session(session), { recursive: true, mode: 0o700 });
  return writeComposedChangeSet(
    chain,
    path.join(layout.session(session), 'combined'),
    combinedId(session),
  );
}

export function applySession(
  layout: StateLayout,
  session: string,
  opts: ApplyOptions = {},
  from = 'last',
): ApplyResult & { tasks: string[]; totalBytes: number } {
  const cs = composeSession(layout, session, from);
  const tasks = sessionChain(layout, session, from).map((c) => c.manifest.taskId);
  const file = membersFile(layout, session);
  const members: Members = { taskIds: tasks, atMs: Date.now() };
  fs.writeFileSync(file, JSON.stringify(members), { mode: 0o600 });
  let r: ApplyResult;
  try {
    r = applyChangeSet(cs.dir, cs.manifest.projectDir, { ...opts, stateRoot: layout.root });
  } catch (e) {
    fs.rmSync(file, { force: true });
    fs.rmSync(cs.dir, { recursive: true, force: true });
    throw e;
  }
  finishSessionApply(layout, session);
  return { ...r, tasks, totalBytes: cs.manifest.totalBytes };
}

/** Removes the members of a combined apply that committed; forgets one that did not. */
function finishSessionApply(layout: StateLayout, session: string): void {
  const file = membersFile(layout, session);
  let m: Members;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as Members;
  } catch {
    return;
  }
  const fate = readFate(layout.root, combinedId(session));
  if (fate?.status === 'applied' && Date.parse(fate.at) >= m.atMs - 1000) {
    for (const id of m.taskIds) {
      if (!fs.existsSync(layout.changeSet(id))) continue;
      fs.rmSync(layout.changeSet(id), { recursive: true, force: true });
      recordFate(layout.root, id, { status: 'applied', applied: 0 });
      removeLayer(layout, id);
    }
  }
  fs.rmSync(path.join(layout.session(session), 'combined'), { recursive: true, force: true });
  fs.rmSync(file, { force: true });
}

/** Throws away every unapplied change set of the session and its layers. */
export function discardSession(layout: StateLayout, session: string): string[] {
  finishSessionApply(layout, session);
  const ids = sessionChangeSets(layout, session).map((c) => c.manifest.taskId);
  for (const id of ids) {
    fs.rmSync(layout.changeSet(id), { recursive: true, force: true });
    recordFate(layout.root, id, { status: 'discarded' });
    removeLayer(layout, id);
  }
  fs.rmSync(layout.session(session), { recursive: true, force: true });
  return ids;
}

function removeLayer(layout: StateLayout, taskId: string): void {
  fs.rmSync(layout.layer(taskId), { recursive: true, force: true });
}
