// A change set as git objects: the blobs of what it writes, and index lines that turn a tree
// holding the project's state into one holding the task's. Shared by `diff --format git`
// (two trees in a throwaway repository) and `apply --branch` (a commit in the project's own).
import { mkdtempSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NanocellError } from '../util/errors.js';
import { hostGitSync, type HostGitOptions } from './hostGit.js';
import type { ChangeEntry, Manifest } from './manifest.js';
import { lstatNoSymlinkComponents } from './paths.js';

/** Paths git does not take from a change set: a repository's own files. */
export const inGitDir = (rel: string): boolean => rel.split('/').includes('.git');

/** Where a blob comes from: a file on disk, a symlink's target, or a blob git already has. */
type BlobSource = { file: string } | { link: string } | { blob: string };
export interface IndexItem {
  path: string;
  /** 0 removes the path from the index. */
  mode: '100644' | '100755' | '120000' | '0';
  src?: BlobSource;
}

export function git(
  args: string[],
  o: HostGitOptions,
  what: string,
  okCodes: readonly number[] = [0],
): string {
  const r = hostGitSync(args, o);
  if (!okCodes.includes(r.exitCode)) {
    throw new NanocellError(
      `git ${what} failed: ${r.stderr.trim().split('\n')[0] ?? ''}`,
      'check the repository with git fsck',
      'WORKSPACE',
    );
  }
  return r.stdout;
}

const fileMode = (mode: number | undefined): IndexItem['mode'] =>
  (mode ?? 0) & 0o100 ? '100755' : '100644';

/** The project's current state of the touched paths, as index items (absent paths: none). */
export function projectItems(projectDir: string, entries: readonly ChangeEntry[]): IndexItem[] {
  const out: IndexItem[] = [];
  for (const e of entries) {
    let st;
    try {
      st = lstatNoSymlinkComponents(projectDir, e.path);
    } catch {
      continue; // below a symlink: not this path in git's eyes either
    }
    if (!st) continue;
    const abs = path.join(projectDir, e.path);
    if (st.isFile()) out.push({ path: e.path, mode: fileMode(st.mode), src: { file: abs } });
    else if (st.isSymbolicLink()) {
      out.push({ path: e.path, mode: '120000', src: { link: readlinkSync(abs) } });
    }
  }
  return out;
}

/**
 * Index items that take `base` (the project's state of the touched paths) to the task's:
 * removals first, then what the task wrote. Directories are not git objects: they appear
 * through their files.
 */
export function changeItems(
  changeDir: string,
  m: Manifest,
  base: ReadonlyMap<string, IndexItem>,
): IndexItem[] {
  const removals: IndexItem[] = [];
  const adds: IndexItem[] = [];
  for (const e of m.entries) {
    if (inGitDir(e.path)) continue;
    const had = base.get(e.path);
    if (e.kind === 'delete' || e.type === 'dir') {
      if (had || e.kind !== 'mode') removals.push({ path: e.path, mode: '0' });
      continue;
    }
    if (e.type === 'symlink') adds.push({ path: e.path, mode: '120000', src: { link: e.target! } });
    else if (e.kind === 'mode') {
      if (had?.src) adds.push({ ...had, mode: fileMode(e.mode) });
    } else {
      const src = { file: path.join(changeDir, 'files', e.sha256!) };
      adds.push({ path: e.path, mode: fileMode(e.mode), src });
    }
  }
  return [...removals, ...adds];
}

/** Writes the blobs of `items` into the repository and returns `update-index -z --index-info` input. */
export function indexInfo(items: readonly IndexItem[], o: HostGitOptions, zeroId: string): string {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'nanocell-blobs-'));
  try {
    const paths = items.map((it, i) => {
      if (!it.src || 'blob' in it.src) return undefined;
      if ('file' in it.src) return it.src.file;
      const p = path.join(tmp, String(i));
      writeFileSync(p, it.src.link);
      return p;
    });
    const list = paths.filter((p): p is string => !!p);
    const odd = [...items.map((it) => it.path), ...list].find((p) => /[\n\0]/.test(p));
    if (odd !== undefined) {
      throw new NanocellError(
        `${JSON.stringify(odd)} has a newline in its name, which git's batch input cannot carry`,
        'use nanocell diff / apply without git for this change set',
        'WORKSPACE',
      );
    }
    const ids = list.length
      ? git(
          ['hash-object', '-w', '--no-filters', '--stdin-paths'],
          { ...o, input: `${list.join('\n')}\n` },
          'hash-object',
        )
          .trim()
          .split('\n')
      : [];
    let k = 0;
    return items
      .map((it, i) => {
        const src = it.src;
        const id = paths[i] ? ids[k++]! : src && 'blob' in src ? src.blob : zeroId;
        return `${it.mode} ${id}\t${it.path}\0`;
      })
      .join('');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
