// The commit phase of an apply: the plan becomes a list of journal steps, new content is staged
// in the project's staging dir, the journal is made durable, and only then is the project
// touched, step by step. A failure rolls the steps back from the journal; a crash leaves the
// journal for recovery (applyRecover.ts) to do the same.
import {
  closeSync,
  constants,
  fchmodSync,
  fchownSync,
  fstatSync,
  fsyncSync,
  lchownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  symlinkSync,
  unlinkSync,
} from 'node:fs';
import { NanocellError } from '../util/errors.js';
import { hashFile } from './fsSafe.js';
import type { ChangeEntry, Manifest } from './manifest.js';
import { parentOf } from './paths.js';
import type { Validated } from './applyValidate.js';
import {
  fsyncDir,
  killPoint,
  newSlot,
  oldSlot,
  removeJournal,
  removeStaging,
  rollBack,
  writeJournal,
  type Journal,
  type JournalOp,
} from './applyJournal.js';

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY } = constants;

export type Owner = { uid: number; gid: number } | undefined;
export type Progress = (done: number, total: number) => void;

const depth = (p: string) => p.split('/').length;

/** The steps of the apply, in the order they run; and the files to stage first. */
export function planSteps(
  m: Manifest,
  v: Validated,
): { ops: JournalOp[]; staged: { slot: number; e: ChangeEntry }[] } {
  const ops: JournalOp[] = [];
  const staged: { slot: number; e: ChangeEntry }[] = [];
  const asideOf = new Map<string, number>();
  const removals = m.entries
    .filter((e) => {
      const st = v.now.get(e.path);
      if (!st) return false;
      if (e.kind === 'delete') return true;
      if (e.kind === 'mode') return false;
      // Replaced: a file or symlink always; a directory only when it becomes something else.
      return !(st.isDirectory() && e.type === 'dir');
    })
    .sort((a, b) => depth(b.path) - depth(a.path));
  for (const e of removals) {
    asideOf.set(e.path, asideOf.size);
    ops.push({ op: 'aside', path: e.path, slot: asideOf.size - 1 });
  }
  const creations = m.entries
    .filter((e) => e.kind === 'add' || e.kind === 'modify')
    .filter((e) => !(e.type === 'dir' && v.now.get(e.path)?.isDirectory()))
    .sort((a, b) => depth(a.path) - depth(b.path));
  for (const e of creations) {
    const replaces = asideOf.get(e.path);
    const r = replaces === undefined ? {} : { replaces };
    if (e.type === 'dir') ops.push({ op: 'mkdir', path: e.path, ...r });
    else if (e.type === 'symlink')
      ops.push({ op: 'symlink', path: e.path, target: e.target!, ...r });
    else {
      staged.push({ slot: staged.length, e });
      ops.push({ op: 'place', path: e.path, slot: staged.length - 1, ...r });
    }
  }
  const modes = m.entries
    .filter((e) => e.type !== 'symlink' && e.kind !== 'delete')
    .sort((a, b) => depth(b.path) - depth(a.path));
  for (const e of modes) {
    const st = v.now.get(e.path);
    const kept = st && !asideOf.has(e.path);
    ops.push({
      op: 'chmod',
      path: e.path,
      mode: e.mode! & 0o777,
      dir: e.type === 'dir',
      ...(kept ? { old: st.mode & 0o7777 } : {}),
    });
  }
  return { ops, staged };
}

/** Copies each new file's content into the staging dir, checked against its hash, fsynced. */
export function stage(
  changeDir: string,
  j: Journal,
  staged: { slot: number; e: ChangeEntry }[],
  owner: Owner,
): void {
  mkdirSync(j.staging, { mode: 0o700 });
  mkdirSync(`${j.staging}/old`, { mode: 0o700 });
  mkdirSync(`${j.staging}/new`, { mode: 0o700 });
  for (const { slot, e } of staged) {
    const fd = openSync(newSlot(j, slot), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
    try {
      const r = hashFile(`${changeDir}/files/${e.sha256}`, { outFd: fd });
      if (r.sha256 !== e.sha256)
        throw new Error(`stored content of ${e.path} changed during apply`);
      fchmodSync(fd, e.mode! & 0o777);
      if (owner) fchownSync(fd, owner.uid, owner.gid);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
  fsyncDir(`${j.staging}/new`);
  fsyncDir(j.staging);
}

function isDir(p: string): boolean {
  try {
    return lstatSync(p).isDirectory();
  } catch (e) {
    // Deleted, or below a path that is now a file: not a directory to sync.
    if (['ENOENT', 'ENOTDIR'].includes((e as NodeJS.ErrnoException).code ?? '')) return false;
    throw e;
  }
}

function run(j: Journal, o: JournalOp, owner: Owner): void {
  const dest = `${j.projectDir}/${o.path}`;
  switch (o.op) {
    case 'aside':
      return renameSync(dest, oldSlot(j, o.slot));
    case 'mkdir':
      mkdirSync(dest, { mode: 0o700 });
      if (owner) lchownSync(dest, owner.uid, owner.gid);
      return;
    case 'symlink':
      symlinkSync(o.target, dest);
      if (owner) lchownSync(dest, owner.uid, owner.gid);
      return;
    case 'place':
      // link() never replaces: if something appeared at dest meanwhile, this fails.
      linkSync(newSlot(j, o.slot), dest);
      return unlinkSync(newSlot(j, o.slot));
    case 'chmod': {
      const fd = openSync(dest, O_RDONLY | O_NOFOLLOW | (o.dir ? O_DIRECTORY : 0));
      try {
        const st = fstatSync(fd);
        if (o.dir !== st.isDirectory() || (!o.dir && !st.isFile()))
          throw new Error(`${o.path} changed type during apply`);
        fchmodSync(fd, o.mode);
      } finally {
        closeSync(fd);
      }
    }
  }
}

/**
 * Runs the journal's steps. The journal is already durable in state `committing`; on success
 * it becomes `committed` once every touched directory is fsynced. On failure the steps are
 * rolled back and the error says whether the project is as it was.
 */
export function runSteps(file: string, j: Journal, owner: Owner, progress?: Progress): void {
  const die = killPoint('NANOCELL_TEST_APPLY_KILL_AFTER');
  let at = '';
  try {
    for (let i = 0; i < j.ops.length; i++) {
      die?.();
      at = j.ops[i]!.path;
      run(j, j.ops[i]!, owner);
      if (progress && i % 256 === 0) progress(i, j.ops.length);
    }
    const dirs = new Set([
      j.projectDir,
      ...j.ops.map((o) => `${j.projectDir}/${parentOf(o.path)}`),
    ]);
    // Parents of deleted dirs are gone; their own parents are in the set too.
    for (const d of dirs) if (isDir(d)) fsyncDir(d);
    progress?.(j.ops.length, j.ops.length);
  } catch (err) {
    const why = (err as Error).message.split('\n')[0];
    try {
      rollBack(j);
      removeStaging(j);
      removeJournal(file);
    } catch (e2) {
      throw new NanocellError(
        `apply failed at ${at} (${why}) and rolling back failed too (${(e2 as Error).message})`,
        'run nanocell gc to finish the rollback from the journal',
        'WORKSPACE',
      );
    }
    throw new NanocellError(
      `apply failed at ${at} (${why}); the project was restored as it was`,
      'fix the cause (permissions, disk space, read-only mounts) and apply again',
      'WORKSPACE',
    );
  }
  writeJournal(file, { ...j, state: 'committed' });
}
