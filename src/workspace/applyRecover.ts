// Recovery of interrupted applies, run by the next nanocell command that opens the state root,
// by `gc` and by apply itself: a journal in state `committed` is finished (staging removed,
// the change set recorded as applied), any other is rolled back. Only a journal whose lock is
// free is touched: a live apply is never recovered from under itself.
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { applyPaths, listJournals, lockPath } from './applyPaths.js';
import {
  killPoint,
  readJournal,
  removeJournal,
  removeStaging,
  rollBack,
  type Journal,
} from './applyJournal.js';
import { tryApplyLock } from './applyLock.js';
import { recordFate } from './changeFate.js';

export type RecoveryOutcome = 'none' | 'rolled back' | 'completed';

export interface Recovered {
  taskId: string;
  projectDir: string;
  outcome: Exclude<RecoveryOutcome, 'none'>;
}

/** The last steps of a committed apply: idempotent, so a crash among them is fine too. */
export function finishCommitted(
  file: string,
  j: Journal,
  stateRoot: string,
  recovered: boolean,
): void {
  removeStaging(j);
  const by = { uid: j.by.uid, user: j.by.user, ...(recovered ? { recovered: true } : {}) };
  const done = j.partial?.applied;
  if (done && j.partial!.left > 0) {
    // Applied in part: the change set stays, its record says which paths are written.
    recordFate(stateRoot, j.taskId, {
      status: 'partly applied',
      applied: done.length,
      paths: done,
      ...by,
    });
    return removeJournal(file);
  }
  recordFate(stateRoot, j.taskId, { status: 'applied', applied: done?.length ?? j.changes, ...by });
  // The library caller removes an applied change set itself (it may read it afterwards);
  // recovery has no caller, so it does.
  if (recovered) rmSync(j.changeDir, { recursive: true, force: true });
  removeJournal(file);
}

/** Recovers one project's journal; the caller holds the project's lock. */
export function recoverJournal(file: string, stateRoot: string): RecoveryOutcome {
  const j = readJournal(file);
  if (!j) return 'none';
  if (j.state === 'committed') {
    finishCommitted(file, j, stateRoot, true);
    return 'completed';
  }
  if (j.state === 'committing') rollBack(j, killPoint('NANOCELL_TEST_RECOVER_KILL_AFTER'));
  removeStaging(j);
  removeJournal(file);
  return 'rolled back';
}

/** Recovers every interrupted apply under the state root. One readdir when there is none. */
export function recoverApplies(stateRoot: string): Recovered[] {
  const paths = applyPaths(stateRoot);
  const done: Recovered[] = [];
  const journals = listJournals(paths.dir);
  if (!journals.length) return done;
  mkdirSync(paths.dir, { recursive: true, mode: 0o700 });
  for (const file of journals) {
    const key = path.basename(file, '.journal');
    const release = tryApplyLock(lockPath(paths, key), 'recovery');
    if (!release) continue; // applying right now
    try {
      const j = readJournal(file);
      const outcome = recoverJournal(file, stateRoot);
      if (j && outcome !== 'none')
        done.push({ taskId: j.taskId, projectDir: j.projectDir, outcome });
    } finally {
      release();
    }
  }
  return done;
}
