// `nanocell gc`'s history half: change sets, reports and fate records past their age. Apart
// from gc.ts because what it keeps (a pending change set unless asked, the record of a partly
// applied one) is a rule about the change-set files, not about stale cells.
import fs from 'node:fs';
import path from 'node:path';
import type { StateLayout } from '../cell/state.js';
import { applyPaths } from '../workspace/applyPaths.js';

/**
 * Reports and records of applied/discarded change sets older than the cutoff (by mtime); the
 * change sets themselves only with includePending: one still in changes/ was never applied
 * or discarded, so it is the user's only copy of the task's work.
 */
export function removeStaleChangeSets(
  layout: StateLayout,
  olderThanMs: number,
  includePending = false,
): { changeSets: number; pendingKept: number } {
  const cutoff = Date.now() - olderThanMs;
  const res = { changeSets: 0, pendingKept: 0 };
  for (const dir of [layout.changes, layout.reports, applyPaths(layout.root).fates]) {
    let names: string[] = [];
    try {
      names = fs.readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (!st || st.mtimeMs >= cutoff) continue;
      // A partly applied change set's record is what says which of its paths are written.
      const fates = applyPaths(layout.root).fates;
      if (dir === fates && fs.existsSync(path.join(layout.changes, path.basename(name, '.json'))))
        continue;
      if (dir === layout.changes && !includePending) {
        res.pendingKept++;
        continue;
      }
      fs.rmSync(p, { recursive: true, force: true });
      if (dir === layout.changes) res.changeSets++;
    }
  }
  return res;
}
