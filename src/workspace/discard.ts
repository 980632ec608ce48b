// Discarding a change set at the user's word (CLI, dashboard): its fate record (changeFate.ts)
// says it was discarded and keeps what a partial apply wrote, and nothing that does not look
// like a change set directory is removed.
import { lstatSync, rmSync } from 'node:fs';
import path from 'node:path';
import { NanocellError } from '../util/errors.js';
import { stateRootOfChangeDir } from './applyPaths.js';
import { readFate, recordFate, describeFate } from './changeFate.js';

/** Removes a change set directory (refusing anything that does not look like one). */
export function discardChangeSet(changeDir: string, opts: { record?: boolean } = {}): void {
  const st = lstatSync(changeDir, { throwIfNoEntry: false });
  if (!st) {
    const fate = readFate(stateRootOfChangeDir(changeDir), path.basename(changeDir));
    throw new NanocellError(
      fate
        ? `the change set of task ${path.basename(changeDir)} was ${describeFate(fate)}`
        : `no change set at ${changeDir}`,
      'check the task id; it may already have been applied or discarded',
      'STATE',
    );
  }
  if (st.isSymbolicLink() || !st.isDirectory()) {
    throw new NanocellError(
      `${changeDir} is not a change set directory`,
      'remove it by hand',
      'STATE',
    );
  }
  const stateRoot = stateRootOfChangeDir(changeDir);
  const id = path.basename(changeDir);
  // The rest of a partly applied change set: its record keeps what had been applied.
  const before = readFate(stateRoot, id);
  rmSync(changeDir, { recursive: true, force: true });
  if (opts.record !== false)
    recordFate(stateRoot, id, {
      status: 'discarded',
      ...(before?.status === 'partly applied' ? { paths: before.paths ?? [] } : {}),
    });
}
