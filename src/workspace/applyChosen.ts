// `apply --only PATH...`: writes the chosen part of a change set through the one apply of
// apply.ts (the same validation, protected-path refusals, lock and crash-safe journal), and
// records the change set as partly applied, naming the paths, until nothing is left. A path
// chooses its entry and everything below it; the directories the change set creates above a
// chosen entry come with it, since the entry cannot be written without them.
import path from 'node:path';
import { NanocellError } from '../util/errors.js';
import { applySelected, type ApplyOptions, type ApplyResult } from './apply.js';
import type { Manifest } from './manifest.js';
import { isSameOrBelow, parentOf, selfAndAncestors } from './paths.js';

export function applyChosen(
  changeDir: string,
  projectDir: string,
  only: readonly string[],
  opts: ApplyOptions = {},
): ApplyResult {
  if (!only.length)
    throw new NanocellError('no path chosen', 'name the paths to apply after --only', 'USAGE');
  const wanted = only.map((p) => projectRelative(projectDir, p));
  return applySelected(changeDir, projectDir, opts, (pending, applied) =>
    chooseEntries(pending, applied, wanted),
  );
}

/** A path as the user gave it (project-relative, `./x`, `x/`, or absolute inside the project). */
function projectRelative(projectDir: string, given: string): string {
  const abs = path.isAbsolute(given);
  const rel = abs ? path.relative(path.resolve(projectDir), given) : path.normalize(given);
  const clean = rel.replace(/\/+$/, '');
  if (clean === '' || clean === '.' || clean.startsWith('..') || path.isAbsolute(clean)) {
    throw new NanocellError(
      `--only ${JSON.stringify(given)} is not a path inside the project ${projectDir}`,
      'name paths relative to the project, as nanocell diff shows them',
      'USAGE',
    );
  }
  return clean;
}

/** The entries' paths the chosen paths select; throws for a path that selects nothing. */
function chooseEntries(
  pending: Manifest,
  applied: ReadonlySet<string>,
  wanted: readonly string[],
): Set<string> {
  const chosen = new Set<string>();
  for (const p of wanted) {
    const hits = pending.entries.filter((e) => isSameOrBelow(e.path, p));
    if (!hits.length) throw notInChangeSet(pending.taskId, p, applied);
    for (const e of hits) chosen.add(e.path);
  }
  const byPath = new Map(pending.entries.map((e) => [e.path, e]));
  for (const p of [...chosen]) {
    for (const a of selfAndAncestors(parentOf(p) || '.')) {
      const e = byPath.get(a);
      if (e?.type === 'dir' && (e.kind === 'add' || e.kind === 'modify')) chosen.add(a);
    }
  }
  return chosen;
}

function notInChangeSet(taskId: string, p: string, applied: ReadonlySet<string>): NanocellError {
  const done = [...applied].some((a) => isSameOrBelow(a, p));
  return new NanocellError(
    done
      ? `${JSON.stringify(p)} of the change set of task ${taskId} is already applied`
      : `the change set of task ${taskId} holds no change to ${JSON.stringify(p)}`,
    `pick paths from nanocell diff ${taskId} (relative to the project)`,
    'USAGE',
  );
}
