import fs from 'node:fs';
import path from 'node:path';
import type { StateLayout } from '../cell/state.js';

/** Change sets and reports older than the cutoff (by mtime). */
export function removeStaleChangeSets(layout: StateLayout, olderThanMs: number): number {
  const cutoff = Date.now() - olderThanMs;
  let n = 0;
  for (const dir of [layout.changes, layout.reports]) {
    for (const name of fs.readdirSync(dir)) {
      const p = path.join(dir, name);
      const st = fs.lstatSync(p, { throwIfNoEntry: false });
      if (st && st.mtimeMs < cutoff) {
        fs.rmSync(p, { recursive: true, force: true });
        if (dir === layout.changes) n++;
      }
    }
  }
  return n;
}
