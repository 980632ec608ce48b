// Applies a change set to the project, all of it or nothing, even across a crash. In order:
//   1. validate everything (applyValidate.ts): nothing in the project changes before this;
//   2. take the project's apply lock (applyLock.ts), so two applies never interleave, and
//      recover a journal a dead apply left on this project;
//   3. write the journal (state `staging`) before the staging dir exists, so a crash while
//      staging leaves nothing recovery cannot name; stage the new content, fsynced;
//   4. write the journal (state `committing`), fsynced with its dir, before the first rename;
//   5. run the steps with SIGINT/SIGTERM held (applyCommit.ts); fsync; journal `committed`;
//   6. finish: remove the backups, record the change set as applied, remove it, drop the
//      journal. A crash before 6 is rolled back by recovery; a crash in 6 is finished by it.
// `apply --only` (applyChosen.ts) runs the same steps on the chosen entries; the journal then
// carries what is written and what is left, and step 6 records the change set as partly
// applied and keeps it. Every apply leaves out what an earlier `--only` wrote.
import { lstatSync, mkdirSync } from 'node:fs';
import { loadChangeSet, type Manifest, type RefusedChange } from './manifest.js';
import type { WorkspacePatterns } from './globs.js';
import {
  applyPaths,
  journalPath,
  lockPath,
  projectKey,
  stagingDirName,
  stateRootOfChangeDir,
} from './applyPaths.js';
import { checkProject, refuse, validate } from './applyValidate.js';
import { acquireApplyLock } from './applyLock.js';
import { writeJournal, type Journal } from './applyJournal.js';
import { planSteps, runSteps, stage, type Owner, type Progress } from './applyCommit.js';
import { finishCommitted, recoverJournal } from './applyRecover.js';
import { describeFate, readFate, whoAmI } from './changeFate.js';
import { assertHistoryKeepsHidden } from './gitHistory.js';
import { mergeMovedFiles } from './applyMerge.js';
import { gitIgnoredPaths } from './gitIgnore.js';

export interface ApplyOptions {
  /** Apply over paths the user changed since the task started. */
  force?: boolean;
  /** Apply the rest when the change set holds changes refused at collection. */
  skipRefused?: boolean;
  /** Patterns checked in addition to those recorded in the change set. */
  extraPatterns?: Partial<WorkspacePatterns>;
  /** The state root holding the journal and lock (default: the one the change set is in). */
  stateRoot?: string;
  /** Called now and then during the commit phase. */
  onProgress?: Progress;
  /** Called once when the commit phase starts holding SIGINT/SIGTERM. */
  onCommitStart?: (steps: number) => void;
}

export interface ApplyResult {
  applied: number;
  /** Entries still pending after this apply (only an `apply --only` leaves any). */
  left: number;
  /** Files the project had changed too, merged three ways. */
  merged: string[];
  /** Paths left out because the project's .gitignore ignores them. */
  ignored: string[];
  /** Changes refused at collection that were left out (only with skipRefused). */
  skipped: RefusedChange[];
  /** Paths the user had changed that --force overwrote. */
  forced: string[];
}

export function applyChangeSet(
  changeDir: string,
  projectDir: string,
  opts: ApplyOptions = {},
): ApplyResult {
  return applySelected(changeDir, projectDir, opts);
}

/**
 * Picks the entries one apply writes, from those not applied yet (an `apply --only` before
 * wrote the rest); throws a one-line refusal for a path it cannot pick (applyChosen.ts).
 */
export type Chooser = (pending: Manifest, applied: ReadonlySet<string>) => Set<string>;

/** The refusals that need only the manifest: a refused, stacked or partly refused set. */
function preflight(m: Manifest, opts: ApplyOptions): void {
  if (m.status !== 'ok') {
    refuse(
      `the change set of task ${m.taskId} was refused when it was collected: ${m.reason ?? ''}`,
    );
  }
  if (m.stack?.length) {
    refuse(
      `task ${m.taskId} started from the unapplied change set(s) of task(s) ${m.stack.join(', ')} of session ${m.session ?? 'default'}`,
      `apply them together with nanocell apply --session ${m.session ?? 'default'}`,
    );
  }
  if (m.refused.length && !opts.skipRefused) {
    const r = m.refused[0]!;
    refuse(
      `the change set holds ${m.refused.length} change(s) that are never applied (first: ${r.path}: ${r.reason})`,
      'review them with nanocell diff, then apply with --skip-refused or discard',
    );
  }
}

interface Selection {
  /** The manifest cut down to what this apply writes. */
  m: Manifest;
  ignored: Set<string>;
  /** Set when the change set is applied in parts (see Journal.partial). */
  partial?: { applied: string[]; left: number };
}

/**
 * What this apply writes: the entries not applied before, narrowed by the chooser, less what
 * the project's .gitignore ignores. Read under the lock, after recovery, so an apply that was
 * interrupted and finished by recovery counts as done.
 */
function select(stateRoot: string, projectDir: string, m: Manifest, choose?: Chooser): Selection {
  const fate = readFate(stateRoot, m.taskId);
  if (fate && fate.status !== 'partly applied')
    refuse(`the change set of task ${m.taskId} was ${describeFate(fate)}`, 'nothing to do');
  const done = new Set(fate?.status === 'partly applied' ? (fate.paths ?? []) : []);
  const pending = done.size ? { ...m, entries: m.entries.filter((e) => !done.has(e.path)) } : m;
  const chosen = choose?.(pending, done);
  // What the project's .gitignore ignores is not written (the diff's header says so).
  const all = gitIgnoredPaths(projectDir, pending);
  const ignored = chosen ? new Set([...all].filter((p) => chosen.has(p))) : all;
  const entries = pending.entries.filter(
    (e) => !all.has(e.path) && (!chosen || chosen.has(e.path)),
  );
  if (!done.size && !chosen) return { m: ignored.size ? { ...m, entries } : m, ignored };
  const written = new Set([
    ...done,
    ...pending.entries.filter((e) => chosen?.has(e.path) ?? true).map((e) => e.path),
  ]);
  const left = pending.entries.filter((e) => !written.has(e.path) && !all.has(e.path)).length;
  return { m: { ...m, entries }, ignored, partial: { applied: [...written].sort(), left } };
}

/** The apply behind applyChangeSet (every pending entry) and applyChosen (those chosen). */
export function applySelected(
  changeDir: string,
  projectDir: string,
  opts: ApplyOptions,
  choose?: Chooser,
): ApplyResult {
  const whole = loadChangeSet(changeDir).manifest;
  preflight(whole, opts);
  const root = checkProject(projectDir, whole);
  const stateRoot = opts.stateRoot ?? stateRootOfChangeDir(changeDir);
  const paths = applyPaths(stateRoot);
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  const key = projectKey(whole.projectId);
  const release = acquireApplyLock(lockPath(paths, key), whole.taskId, projectDir);
  try {
    const file = journalPath(paths, key);
    recoverJournal(file, stateRoot);
    const sel = select(stateRoot, projectDir, whole, choose);
    let m = sel.m;
    assertHistoryKeepsHidden(changeDir, projectDir, m);
    const staging = `${projectDir}/${stagingDirName(key)}`;
    const top = stagingDirName(key);
    if (m.entries.some((e) => e.path === top || e.path.startsWith(`${top}/`)))
      refuse(`change set touches ${top}, the name apply stages under`);
    if (lstatSync(staging, { throwIfNoEntry: false }))
      refuse(`${staging} exists in the project`, `move it away, then apply again`);
    // Merged under the lock, so the project cannot move again between merge and commit.
    const merge = opts.force ? undefined : mergeMovedFiles(changeDir, projectDir, m);
    if (merge?.merged.length) m = merge.manifest;
    const current = validate(changeDir, projectDir, m, opts);
    const owner: Owner = process.getuid?.() === 0 ? { uid: root.uid, gid: root.gid } : undefined;
    const { ops, staged } = planSteps(m, current);
    const j: Journal = {
      version: 1,
      state: 'staging',
      taskId: m.taskId,
      changeDir,
      projectDir,
      staging,
      by: whoAmI(),
      changes: m.entries.length,
      ...(sel.partial ? { partial: sel.partial } : {}),
      ops,
    };
    writeJournal(file, j);
    try {
      stage(changeDir, j, staged, owner);
    } catch (e) {
      recoverJournal(file, stateRoot);
      throw e;
    }
    commitHoldingSignals(file, { ...j, state: 'committing' }, owner, opts);
    finishCommitted(file, { ...j, state: 'committed' }, stateRoot, false);
    return {
      applied: m.entries.length,
      left: sel.partial?.left ?? 0,
      merged: merge?.merged ?? [],
      ignored: [...sel.ignored],
      skipped: opts.skipRefused ? m.refused : [],
      forced: current.forced,
    };
  } finally {
    release();
  }
}

/**
 * Steps 4 and 5. The commit runs synchronously, so a held signal's handler only runs after
 * it; the handlers stay for one more turn of the event loop and then re-raise what came.
 */
function commitHoldingSignals(file: string, j: Journal, owner: Owner, opts: ApplyOptions): void {
  const pending: NodeJS.Signals[] = [];
  let holding = true;
  const hold = (sig: NodeJS.Signals) => {
    if (holding) return void pending.push(sig);
    process.off('SIGINT', hold);
    process.off('SIGTERM', hold);
    process.kill(process.pid, sig);
  };
  process.on('SIGINT', hold);
  process.on('SIGTERM', hold);
  try {
    writeJournal(file, j);
    opts.onCommitStart?.(j.ops.length);
    runSteps(file, j, owner, opts.onProgress);
  } finally {
    holding = false;
    setImmediate(() => {
      process.off('SIGINT', hold);
      process.off('SIGTERM', hold);
      if (pending.length) process.kill(process.pid, pending[0]!);
    });
  }
}
