// Before an apply: files the task modified that the project changed too since are merged three
// ways (git merge-file: the project's version, the version the task started from, the task's).
// A clean merge becomes the entry's new content, judged against the project as it is now; any
// conflict left refuses the apply as a whole, naming every conflicted file, and nothing in the
// project changes.
import { existsSync, lstatSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { NanocellError } from '../util/errors.js';
import { baseState, writeManifest } from './changeset.js';
import { hashFile } from './fsSafe.js';
import { hostGitSync } from './hostGit.js';
import type { ChangeEntry, Manifest } from './manifest.js';
import { lstatNoSymlinkComponents } from './paths.js';

export interface MergeOutcome {
  manifest: Manifest;
  merged: string[];
}

/** Whether the project's file at `e.path` is no longer the one the task started from. */
function movedOn(projectDir: string, e: ChangeEntry): boolean {
  let st;
  try {
    st = lstatNoSymlinkComponents(projectDir, e.path);
  } catch {
    return false; // the ordinary conflict check refuses it
  }
  if (!st?.isFile()) return false;
  return st.size !== e.base.size || hashFile(`${projectDir}/${e.path}`).sha256 !== e.base.sha256;
}

/** git merge-file's output comes back as text: only NUL-free UTF-8 survives the trip. */
function isText(b: Buffer): boolean {
  return !b.includes(0) && Buffer.from(b.toString('utf8'), 'utf8').equals(b);
}

/** Merges what can be merged; rewrites the change set's manifest when something was. */
export function mergeMovedFiles(changeDir: string, projectDir: string, m: Manifest): MergeOutcome {
  const conflicts: string[] = [];
  const merged: string[] = [];
  const entries = m.entries.map((e) => {
    if (e.kind !== 'modify' || e.type !== 'file' || e.base.type !== 'file' || !e.base.sha256)
      return e;
    if (!movedOn(projectDir, e)) return e;
    const baseFile = `${changeDir}/files/${e.base.sha256}`;
    if (!existsSync(baseFile)) return e; // not kept (large): the conflict check refuses it
    const ours = readFileSync(`${projectDir}/${e.path}`);
    const base = readFileSync(baseFile);
    const theirs = readFileSync(`${changeDir}/files/${e.sha256}`);
    if (![ours, base, theirs].every(isText)) {
      conflicts.push(`${e.path} (binary or not UTF-8)`);
      return e;
    }
    const out = mergeFile(
      changeDir,
      `${projectDir}/${e.path}`,
      baseFile,
      `${changeDir}/files/${e.sha256}`,
    );
    if (out === undefined) {
      conflicts.push(e.path);
      return e;
    }
    const sha256 = createHash('sha256').update(out).digest('hex');
    const file = `${changeDir}/files/${sha256}`;
    if (!existsSync(file)) {
      writeFileSync(`${file}.tmp`, out, { mode: 0o600 });
      renameSync(`${file}.tmp`, file);
    }
    merged.push(e.path);
    const now = Date.now();
    return {
      ...e,
      sha256,
      size: out.length,
      base: { ...baseState(projectDir, e.path), mergedAtMs: now },
    };
  });
  if (conflicts.length) {
    throw new NanocellError(
      `the project moved on since the task started and the three-way merge left conflicts in ${conflicts.length} file(s): ${conflicts.slice(0, 10).join(', ')}${conflicts.length > 10 ? ', ...' : ''}; the project is unchanged`,
      'resolve them in the project (or start a new task from it), then apply again; apply --force overwrites them',
      'WORKSPACE',
    );
  }
  if (!merged.length) return { manifest: m, merged };
  const manifest = { ...m, entries };
  writeManifest(changeDir, manifest);
  return { manifest, merged };
}

/** `git merge-file -p`: the merged text, or undefined when a conflict remains. */
function mergeFile(
  scratch: string,
  ours: string,
  base: string,
  theirs: string,
): Buffer | undefined {
  if (!lstatSync(ours).isFile()) return undefined;
  const r = hostGitSync(
    ['merge-file', '-p', '-L', 'project', '-L', 'start', '-L', 'task', ours, base, theirs],
    {
      gitDir: `${scratch}/.no-git`,
      maxBuffer: 8 * 1024 * 1024,
    },
  );
  return r.ok ? Buffer.from(r.stdout, 'utf8') : undefined;
}
