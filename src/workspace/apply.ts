// Applies a change set to the project: everything is validated first, then each step is
// journaled so any failure rolls the project back to exactly what it was.
import {
  accessSync,
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
  readdirSync,
  readlinkSync,
  renameSync,
  rmdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  type Stats,
} from 'node:fs';
import { randomBytes } from 'node:crypto';
import { NanocellError } from '../util/errors.js';
import { hashFile } from './fsSafe.js';
import { assertHistoryKeepsHidden } from './gitHistory.js';
import { compileScope, type WorkspacePatterns } from './globs.js';
import { loadChangeSet, type ChangeEntry, type Manifest, type RefusedChange } from './manifest.js';
import {
  isSameOrBelow,
  lstatNoSymlinkComponents,
  NotADirectoryComponentError,
  parentOf,
  relPathProblem,
  selfAndAncestors,
  SymlinkComponentError,
  symlinkTargetInProject,
} from './paths.js';

export interface ApplyOptions {
  /** Apply over paths the user changed since the task started. */
  force?: boolean;
  /** Apply the rest when the change set holds changes refused at collection. */
  skipRefused?: boolean;
  /** Patterns checked in addition to those recorded in the change set. */
  extraPatterns?: Partial<WorkspacePatterns>;
}

export interface ApplyResult {
  applied: number;
  /** Changes refused at collection that were left out (only with skipRefused). */
  skipped: RefusedChange[];
  /** Paths the user had changed that --force overwrote. */
  forced: string[];
}

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_DIRECTORY } = constants;

function refuse(message: string, fix = 'discard the change set (nanocell discard TASK)'): never {
  throw new NanocellError(message, fix, 'WORKSPACE');
}

type Current = Stats | undefined;

interface Step {
  what: string;
  undo(): void;
}

export function applyChangeSet(
  changeDir: string,
  projectDir: string,
  opts: ApplyOptions = {},
): ApplyResult {
  const { manifest: m } = loadChangeSet(changeDir);
  if (m.status !== 'ok') {
    refuse(
      `the change set of task ${m.taskId} was refused when it was collected: ${m.reason ?? ''}`,
    );
  }
  if (m.refused.length && !opts.skipRefused) {
    const r = m.refused[0]!;
    refuse(
      `the change set holds ${m.refused.length} change(s) that are never applied (first: ${r.path}: ${r.reason})`,
      'review them with nanocell diff, then apply with --skip-refused or discard',
    );
  }
  const root = checkProject(projectDir, m);
  assertHistoryKeepsHidden(changeDir, projectDir, m);
  const current = validate(changeDir, projectDir, m, opts);
  const owner = process.getuid?.() === 0 ? { uid: root.uid, gid: root.gid } : undefined;
  commit(changeDir, projectDir, m, current, owner);
  return {
    applied: m.entries.length,
    skipped: opts.skipRefused ? m.refused : [],
    forced: current.forced,
  };
}

function checkProject(projectDir: string, m: Manifest): Stats {
  if (!projectDir.startsWith('/'))
    refuse(`project path ${projectDir} is not absolute`, 'pass an absolute path');
  const st = lstatSync(projectDir, { throwIfNoEntry: false });
  if (!st) {
    refuse(
      `project directory ${projectDir} no longer exists (was it moved?)`,
      `move the project back to ${projectDir}, or discard the change set`,
    );
  }
  if (st.isSymbolicLink() || !st.isDirectory()) {
    refuse(`project path ${projectDir} is no longer a directory`, 'restore the project directory');
  }
  const big = lstatSync(projectDir, { bigint: true });
  if (String(big.dev) !== m.projectId.dev || String(big.ino) !== m.projectId.ino) {
    refuse(
      `project directory ${projectDir} is not the directory the task ran on (moved or replaced)`,
      'restore the original project directory, or discard the change set',
    );
  }
  try {
    accessSync(projectDir, constants.W_OK);
  } catch (e) {
    refuse(
      `project directory ${projectDir} is not writable (${(e as NodeJS.ErrnoException).code})`,
      'make it writable, or run nanocell apply as its owner',
    );
  }
  return st;
}

interface Validated {
  /** lstat of each entry's path in the project now (undefined: missing). */
  now: Map<string, Current>;
  forced: string[];
}

function validate(
  changeDir: string,
  projectDir: string,
  m: Manifest,
  opts: ApplyOptions,
): Validated {
  const patterns: WorkspacePatterns = {
    include: [...m.patterns.include],
    exclude: [...m.patterns.exclude, ...(opts.extraPatterns?.exclude ?? [])],
    protected: [...m.patterns.protected, ...(opts.extraPatterns?.protected ?? [])],
  };
  const scope = compileScope(patterns);
  const hidden = (rel: string) => m.hidden.some((h) => isSameOrBelow(rel, h));
  const byPath = new Map<string, ChangeEntry>();
  for (const e of m.entries) {
    const problem = relPathProblem(e.path);
    if (problem) refuse(`change set path ${JSON.stringify(e.path)} ${problem}`);
    if (byPath.has(e.path)) refuse(`change set lists ${e.path} twice`);
    byPath.set(e.path, e);
  }
  const now = new Map<string, Current>();
  const forced: string[] = [];
  let bytes = 0;
  for (const e of m.entries) {
    const p = e.path;
    if (hidden(p) || scope.isExcluded(p)) refuse(`change set touches excluded path ${p}`);
    if (scope.isProtected(p)) refuse(`change set touches protected path ${p}`);
    if (!scope.isIncluded(p) && !(e.type === 'dir' && scope.mayHoldIncluded(p))) {
      refuse(`change set touches ${p}, outside the workspace include patterns`);
    }
    // No entry may sit below another entry that is not a surviving directory.
    for (const a of selfAndAncestors(parentOf(p) || '.')) {
      const pe = byPath.get(a);
      if (pe && (pe.type !== 'dir' || pe.kind === 'delete') && e.kind !== 'delete') {
        refuse(
          `change set puts ${p} below ${a}, which it makes a ${pe.kind === 'delete' ? 'deleted path' : pe.type}`,
        );
      }
    }
    if (e.mode !== undefined && (e.mode & ~0o777) !== 0) {
      refuse(`change set gives ${p} mode ${e.mode.toString(8)} (setuid, setgid or sticky)`);
    }
    if (e.kind !== 'delete') checkShape(e);
    if (e.type === 'symlink' && e.kind !== 'delete') {
      const t = symlinkTargetInProject(p, e.target!, projectDir);
      if (t === undefined) refuse(`symlink ${p} points outside the project (${e.target})`);
      if (t !== '' && (hidden(t) || scope.isExcluded(t) || scope.isProtected(t))) {
        refuse(`symlink ${p} points at excluded or protected path ${t}`);
      }
    }
    if (e.type === 'file' && e.kind !== 'delete' && e.kind !== 'mode') {
      bytes += e.size!;
      if (bytes > m.limits.maxBytes) refuse('change set is larger than its recorded size limit');
      checkStored(changeDir, e);
    }
    let st: Current;
    try {
      st = lstatNoSymlinkComponents(projectDir, p);
    } catch (err) {
      if (err instanceof SymlinkComponentError || err instanceof NotADirectoryComponentError) {
        refuse(
          `${p} is reached through ${err.component} in the project, which is ${err instanceof SymlinkComponentError ? 'a symlink' : 'not a directory'}`,
          'resolve the conflict by hand, or discard the change set',
        );
      }
      throw err;
    }
    now.set(p, st);
    const conflict = conflictWith(e, st, m.startedAtMs, projectDir);
    if (conflict) {
      if (!opts.force) {
        refuse(
          `conflict: ${p} ${conflict} since the task started`,
          'review with nanocell diff; apply --force to overwrite, or discard',
        );
      }
      forced.push(p);
    }
    if (st && e.kind !== 'mode' && (e.kind === 'delete' || e.type !== 'dir') && st.isDirectory()) {
      // Removing a directory: every child must be removed by this change set too.
      for (const name of readdirSync(`${projectDir}/${p}`)) {
        const child = byPath.get(`${p}/${name}`);
        if (!child || child.kind !== 'delete') {
          refuse(
            `change set removes directory ${p}, which holds ${p}/${name} that the change set does not remove`,
            'resolve by hand, or discard the change set',
          );
        }
      }
    }
    if (st && !st.isDirectory() && e.kind === 'mode' && e.type === 'dir') {
      refuse(`conflict: ${p} is no longer a directory`);
    }
  }
  return { now, forced };
}

function checkShape(e: ChangeEntry): void {
  const bad = (what: string) => refuse(`change set entry ${e.path} lacks ${what}`);
  if (e.type === 'symlink') {
    if (e.kind === 'mode') bad('a valid kind (mode on a symlink)');
    if (
      e.target === undefined ||
      e.target.length === 0 ||
      e.target.length > 4095 ||
      e.target.includes('\0')
    ) {
      bad('a valid symlink target');
    }
    return;
  }
  if (e.mode === undefined) bad('a mode');
  if (e.type === 'file' && e.kind !== 'mode' && (e.sha256 === undefined || e.size === undefined)) {
    bad('a content hash and size');
  }
}

function checkStored(changeDir: string, e: ChangeEntry): void {
  const abs = `${changeDir}/files/${e.sha256}`;
  const st = lstatSync(abs, { throwIfNoEntry: false });
  if (!st?.isFile() || st.size !== e.size) {
    refuse(
      `change set ${changeDir} is corrupted: the content of ${e.path} is missing or truncated`,
    );
  }
  if (hashFile(abs).sha256 !== e.sha256) {
    refuse(
      `change set ${changeDir} is corrupted: the content of ${e.path} does not match its hash`,
    );
  }
}

/** How the project's path differs from the state recorded at collection, or undefined. */
function conflictWith(
  e: ChangeEntry,
  st: Current,
  startedAtMs: number,
  projectDir: string,
): string | undefined {
  const b = e.base;
  if (!st) return b.exists ? 'was deleted' : undefined;
  if (!b.exists) return 'was created';
  const type = st.isFile()
    ? 'file'
    : st.isDirectory()
      ? 'dir'
      : st.isSymbolicLink()
        ? 'symlink'
        : 'other';
  if (type !== b.type) return `changed type (${b.type} → ${type})`;
  if (type === 'dir') return undefined;
  if (st.mtimeMs > startedAtMs || st.ctimeMs > startedAtMs) return 'was modified';
  if (
    type === 'file' &&
    (st.size !== b.size || hashFile(`${projectDir}/${e.path}`).sha256 !== b.sha256)
  ) {
    return 'was modified';
  }
  if (type === 'symlink' && readlinkSync(`${projectDir}/${e.path}`) !== b.target)
    return 'was re-pointed';
  return undefined;
}

function depth(p: string): number {
  return p.split('/').length;
}

function commit(
  changeDir: string,
  projectDir: string,
  m: Manifest,
  v: Validated,
  owner: { uid: number; gid: number } | undefined,
): void {
  const tag = randomBytes(6).toString('hex');
  let n = 0;
  const aside = (rel: string, kind: string) =>
    `${projectDir}/${parentOf(rel) ? `${parentOf(rel)}/` : ''}.nanocell-${kind}-${tag}-${n++}`;
  const journal: Step[] = [];
  const backups: string[] = [];
  const abs = (rel: string) => `${projectDir}/${rel}`;
  const step = (what: string, undo: () => void) => journal.push({ what, undo });

  const entries = m.entries;
  const removals = entries
    .filter((e) => {
      const st = v.now.get(e.path);
      if (!st) return false;
      if (e.kind === 'delete') return true;
      if (e.kind === 'mode') return false;
      // Replaced: a file or symlink always; a directory only when it becomes something else.
      return !(st.isDirectory() && e.type === 'dir');
    })
    .sort((a, b) => depth(b.path) - depth(a.path));
  const creations = entries
    .filter((e) => e.kind === 'add' || e.kind === 'modify')
    .filter((e) => !(e.type === 'dir' && v.now.get(e.path)?.isDirectory()))
    .sort((a, b) => depth(a.path) - depth(b.path));
  const modes = entries
    .filter((e) => e.type !== 'symlink' && e.kind !== 'delete')
    .sort((a, b) => depth(b.path) - depth(a.path));

  let current = '';
  try {
    for (const e of removals) {
      current = e.path;
      const bak = aside(e.path, 'old');
      renameSync(abs(e.path), bak);
      backups.push(bak);
      step(`move ${e.path} aside`, () => renameSync(bak, abs(e.path)));
    }
    for (const e of creations) {
      current = e.path;
      const dest = abs(e.path);
      if (e.type === 'dir') {
        mkdirSync(dest, { mode: 0o700 });
        step(`create ${e.path}`, () => rmdirSync(dest));
        if (owner) lchownSync(dest, owner.uid, owner.gid);
      } else if (e.type === 'symlink') {
        symlinkSync(e.target!, dest);
        step(`create ${e.path}`, () => unlinkSync(dest));
        if (owner) lchownSync(dest, owner.uid, owner.gid);
      } else {
        const tmp = aside(e.path, 'new');
        const fd = openSync(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600);
        step(`stage ${e.path}`, () => unlinkSync(tmp));
        const staged = journal.length - 1;
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
        // link() never replaces: if something appeared at dest meanwhile, this fails.
        linkSync(tmp, dest);
        step(`place ${e.path}`, () => unlinkSync(dest));
        unlinkSync(tmp);
        journal.splice(staged, 1);
      }
    }
    for (const e of modes) {
      current = e.path;
      const dir = e.type === 'dir';
      const fd = openSync(abs(e.path), O_RDONLY | O_NOFOLLOW | (dir ? O_DIRECTORY : 0));
      try {
        const st = fstatSync(fd);
        if (dir !== st.isDirectory() || (!dir && !st.isFile()))
          throw new Error(`${e.path} changed type during apply`);
        const old = st.mode & 0o7777;
        fchmodSync(fd, e.mode! & 0o777);
        step(`chmod ${e.path}`, () => {
          const fd2 = openSync(abs(e.path), O_RDONLY | O_NOFOLLOW | (dir ? O_DIRECTORY : 0));
          try {
            fchmodSync(fd2, old);
          } finally {
            closeSync(fd2);
          }
        });
      } finally {
        closeSync(fd);
      }
    }
  } catch (err) {
    const failed: string[] = [];
    for (const s of journal.reverse()) {
      try {
        s.undo();
      } catch {
        failed.push(s.what);
      }
    }
    const why = (err as Error).message.split('\n')[0];
    if (failed.length) {
      throw new NanocellError(
        `apply failed at ${current} (${why}) and rolling back failed for: ${failed.slice(0, 5).join(', ')}`,
        `restore by hand from the .nanocell-old-${tag}-* files in the project`,
        'WORKSPACE',
      );
    }
    throw new NanocellError(
      `apply failed at ${current} (${why}); the project was restored as it was`,
      'fix the cause (permissions, disk space, read-only mounts) and apply again',
      'WORKSPACE',
    );
  }
  // Committed: the backups are no longer needed. Deepest first so nested ones go first.
  for (const b of backups) rmSync(b, { recursive: true, force: true });
}
