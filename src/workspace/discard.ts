import { lstatSync, rmSync } from 'node:fs';
import { NanocellError } from '../util/errors.js';

/** Removes a change set directory (refusing anything that does not look like one). */
export function discardChangeSet(changeDir: string): void {
  const st = lstatSync(changeDir, { throwIfNoEntry: false });
  if (!st) {
    throw new NanocellError(
      `no change set at ${changeDir}`,
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
  rmSync(changeDir, { recursive: true, force: true });
}
