// Reading a repository's refs the way git does (packed-refs, loose refs outranking them, HEAD),
// by this module's own parser: before and after a change set, without running git on the
// cell's files. Also where an entry's git dir is (a repository, a worktree, a submodule).
import { lstatSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { ChangeEntry } from './manifest.js';

/** Ref files larger than this are not refs. */
const MAX_REF_BYTES = 4096;
const MAX_PACKED_REFS_BYTES = 64 * 1024 * 1024;

/** Names that sit directly in a git dir: where a submodule's name under modules/ ends. */
const GIT_DIR_ENTRIES = new Set([
  'objects',
  'refs',
  'HEAD',
  'index',
  'logs',
  'packed-refs',
  'config',
  'hooks',
  'info',
  'modules',
  'worktrees',
  'description',
  'branches',
  'COMMIT_EDITMSG',
  'ORIG_HEAD',
  'FETCH_HEAD',
  'MERGE_HEAD',
  'shallow',
]);

/** The git dir an entry lies in ('.git', 'a/.git', '.git/modules/lib'), or undefined. */
export function gitDirOfPath(rel: string): string | undefined {
  const parts = rel.split('/');
  let i = parts.indexOf('.git');
  if (i < 0) return undefined;
  // A submodule's git dir: .git/modules/<name, possibly with slashes>/, nested as deep as needed.
  while (parts[i + 1] === 'modules' && parts.length > i + 3) {
    let j = i + 2;
    while (j + 1 < parts.length && !GIT_DIR_ENTRIES.has(parts[j + 1]!)) j++;
    if (j + 1 >= parts.length) break;
    i = j;
  }
  return parts.slice(0, i + 1).join('/');
}

type Refs = Map<string, string>;
export const HEX = /^[0-9a-f]{40}([0-9a-f]{24})?$/;

function readSmall(abs: string, max: number): string | undefined {
  const st = lstatSync(abs, { throwIfNoEntry: false });
  if (!st?.isFile() || st.size > max) return undefined;
  return readFileSync(abs, 'utf8');
}

function parsePacked(text: string | undefined, into: Refs): void {
  for (const line of (text ?? '').split('\n')) {
    const m = /^([0-9a-f]{40,64}) (refs\/\S+)$/.exec(line);
    if (m && HEX.test(m[1]!)) into.set(m[2]!, m[1]!);
  }
}

function refValue(text: string | undefined): string | undefined {
  const t = (text ?? '').trim();
  if (HEX.test(t)) return t;
  const sym = /^ref: (refs\/\S+)$/.exec(t);
  return sym ? `→ ${sym[1]}` : undefined;
}

/** Loose refs below `<gitDir>/refs`, as git would read them (loose outranks packed). */
function walkLoose(abs: string, rel: string, into: Refs, depth = 0): void {
  if (depth > 32) return;
  for (const d of readdirSync(abs, { withFileTypes: true })) {
    const r = `${rel}/${d.name}`;
    if (d.isDirectory()) walkLoose(`${abs}/${d.name}`, r, into, depth + 1);
    else if (d.isFile()) {
      const v = refValue(readSmall(`${abs}/${d.name}`, MAX_REF_BYTES));
      if (v) into.set(r, v);
    }
  }
}

interface RefFiles {
  packed: Refs;
  /** Loose refs and HEAD: they outrank packed ones. */
  loose: Refs;
}

export function projectRefs(projectDir: string, gitDir: string): RefFiles {
  const packed: Refs = new Map();
  const loose: Refs = new Map();
  const abs = path.join(projectDir, gitDir);
  parsePacked(readSmall(`${abs}/packed-refs`, MAX_PACKED_REFS_BYTES), packed);
  if (lstatSync(`${abs}/refs`, { throwIfNoEntry: false })?.isDirectory())
    walkLoose(`${abs}/refs`, 'refs', loose);
  const head = refValue(readSmall(`${abs}/HEAD`, MAX_REF_BYTES));
  if (head) loose.set('HEAD', head);
  return { packed, loose };
}

/** The ref files after the change set: the project's, with those it writes replaced. */
export function changedRefs(
  old: RefFiles,
  gitDir: string,
  entries: ChangeEntry[],
  files: string,
): RefFiles {
  const stored = (e: ChangeEntry) =>
    e.kind === 'delete' || e.type !== 'file'
      ? undefined
      : readSmall(`${files}/${e.sha256}`, MAX_PACKED_REFS_BYTES);
  const packed: Refs = new Map(old.packed);
  const loose: Refs = new Map(old.loose);
  for (const e of entries) {
    const rel = e.path.slice(gitDir.length + 1);
    if (rel === 'packed-refs') {
      packed.clear();
      parsePacked(stored(e), packed);
      continue;
    }
    if ((rel !== 'HEAD' && !rel.startsWith('refs/')) || e.type === 'dir') continue;
    // A loose ref below a deleted directory is listed as its own deletion.
    loose.delete(rel);
    const v = refValue(stored(e));
    if (v) loose.set(rel, v);
  }
  return { packed, loose };
}

export const merged = (f: RefFiles): Refs => new Map([...f.packed, ...f.loose]);
