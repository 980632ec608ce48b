// Every path the apply machinery keeps under the state root, in one place so it can move into
// the state layout as a unit: the journal of an apply in progress, the per-project lock, and
// the record of what became of each change set.
import { createHash } from 'node:crypto';
import { readdirSync } from 'node:fs';
import path from 'node:path';

export interface ApplyPaths {
  /** Holds one journal and one lock per project being applied to. */
  dir: string;
  /** What became of each change set (pending/applied/discarded), one file per task. */
  fates: string;
}

export function applyPaths(stateRoot: string): ApplyPaths {
  return { dir: path.join(stateRoot, 'apply'), fates: path.join(stateRoot, 'fates') };
}

/** The state root a change set dir belongs to (`ROOT/changes/TASK`), or its parent dir. */
export function stateRootOfChangeDir(changeDir: string): string {
  const parent = path.dirname(path.resolve(changeDir));
  return path.basename(parent) === 'changes' ? path.dirname(parent) : parent;
}

/** A project is named by its device and inode, so a renamed path still finds its journal. */
export function projectKey(projectId: { dev: string; ino: string }): string {
  return createHash('sha256')
    .update(`${projectId.dev}:${projectId.ino}`)
    .digest('hex')
    .slice(0, 24);
}

/**
 * The journals under the apply dir (cheap when there are none: one readdir). Here, with the
 * paths, so the CLI can ask before every command without loading the apply code.
 */
export function listJournals(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  return names.filter((n) => n.endsWith('.journal')).map((n) => path.join(dir, n));
}

export function journalPath(p: ApplyPaths, key: string): string {
  return path.join(p.dir, `${key}.journal`);
}

export function lockPath(p: ApplyPaths, key: string): string {
  return path.join(p.dir, `${key}.lock`);
}

/** The staging dir in the project: renames into and out of it stay on the project's fs. */
export function stagingDirName(key: string): string {
  return `.nanocell-apply-${key.slice(0, 12)}`;
}
