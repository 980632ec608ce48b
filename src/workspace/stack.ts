// A session's stacked change sets as one: each task's entries were judged against the project
// plus the tasks below it, and every base is the project's own state, so composing them path by
// path gives one change set that the ordinary apply (journal, locks, protected paths, conflict
// check) writes all or nothing.
import { linkSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { NanocellError } from '../util/errors.js';
import { writeManifest } from './changeset.js';
import type { BaseState, ChangeEntry, ChangeSet, Manifest } from './manifest.js';

const union = (lists: string[][]) => [...new Set(lists.flat())];

/** One entry per path: the first base seen (the project's) and the last state written. */
function composeEntries(sets: readonly Manifest[]): ChangeEntry[] {
  const byPath = new Map<string, { base: BaseState; last: ChangeEntry }>();
  for (const m of sets) {
    for (const e of m.entries) {
      const prev = byPath.get(e.path);
      if (!prev) {
        byPath.set(e.path, { base: e.base, last: e });
        continue;
      }
      // A mode change on top of new content keeps the content.
      const last =
        e.kind === 'mode' && prev.last.kind !== 'delete' && prev.last.type === e.type
          ? { ...prev.last, mode: e.mode, ...(e.modeMasked ? { modeMasked: true } : {}) }
          : e;
      byPath.set(e.path, { base: prev.base, last });
    }
  }
  const out: ChangeEntry[] = [];
  for (const [, { base, last }] of byPath) {
    const e = netEntry(base, last);
    if (e) out.push(e);
  }
  return out.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

/** What the last state is against the project's base; undefined when nothing changed. */
function netEntry(base: BaseState, last: ChangeEntry): ChangeEntry | undefined {
  const e = { ...last, base };
  if (last.kind === 'delete') {
    if (!base.exists) return undefined;
    return { ...e, type: base.type === 'dir' || base.type === 'symlink' ? base.type : 'file' };
  }
  if (!base.exists) {
    if (last.kind === 'mode') return undefined; // cannot happen: a mode change needs a base
    return { ...e, kind: 'add' };
  }
  if (base.type !== last.type) return { ...e, kind: last.kind === 'mode' ? 'mode' : 'modify' };
  const sameContent =
    last.kind === 'mode' ||
    last.type === 'dir' ||
    (last.type === 'file' && last.sha256 === base.sha256) ||
    (last.type === 'symlink' && last.target === base.target);
  if (!sameContent) return { ...e, kind: 'modify' };
  if (last.type === 'symlink' || (last.mode ?? 0) === ((base.mode ?? 0) & 0o777)) return undefined;
  const { sha256: _s, size: _z, ...rest } = e;
  return { ...rest, kind: 'mode' };
}

/**
 * Writes the composition of `sets` (lowest first) as a change set at `outDir`, whose files are
 * hard links to the members' own. The members stay as they are until the apply succeeded.
 */
export function writeComposedChangeSet(
  sets: readonly ChangeSet[],
  outDir: string,
  taskId: string,
): ChangeSet {
  if (!sets.length)
    throw new NanocellError(
      'the session has no change sets',
      'run a task with --session first',
      'STATE',
    );
  const first = sets[0]!.manifest;
  for (const { manifest: m } of sets) {
    if (m.status !== 'ok') {
      throw new NanocellError(
        `the change set of task ${m.taskId} was refused when it was collected: ${m.reason ?? ''}`,
        'discard the session (nanocell discard --session) and run it again',
        'STATE',
      );
    }
    if (m.projectId.dev !== first.projectId.dev || m.projectId.ino !== first.projectId.ino) {
      throw new NanocellError(
        `task ${m.taskId} ran on another project than task ${first.taskId}`,
        'a session stacks the tasks of one project; discard the stray task',
        'STATE',
      );
    }
  }
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(`${outDir}/files`, { recursive: true, mode: 0o700 });
  for (const { dir } of sets) {
    for (const name of readdirSync(`${dir}/files`)) {
      if (!/^[0-9a-f]{64}$/.test(name)) continue;
      try {
        linkSync(`${dir}/files/${name}`, `${outDir}/files/${name}`);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
    }
  }
  const ms = sets.map((s) => s.manifest);
  const last = ms[ms.length - 1]!;
  const entries = composeEntries(ms);
  const manifest: Manifest = {
    version: 1,
    taskId,
    projectDir: first.projectDir,
    projectId: first.projectId,
    startedAtMs: first.startedAtMs,
    collectedAtMs: last.collectedAtMs,
    status: 'ok',
    patterns: {
      include: last.patterns.include,
      exclude: union(ms.map((m) => m.patterns.exclude)),
      protected: union(ms.map((m) => m.patterns.protected)),
    },
    hidden: union(ms.map((m) => m.hidden)),
    limits: last.limits,
    entries,
    refused: ms.flatMap((m) =>
      m.refused.map((r) => ({ ...r, reason: `${m.taskId}: ${r.reason}` })),
    ),
    totalBytes: entries.reduce((n, e) => n + (e.size ?? 0), 0),
    ...(last.session ? { session: last.session } : {}),
  };
  writeManifest(outDir, manifest);
  return { dir: outDir, manifest };
}
