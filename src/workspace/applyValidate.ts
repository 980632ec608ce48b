// Validation of an apply: every check runs before anything in the project changes. A change
// set that fails any of them is refused whole (protected, excluded or out-of-scope paths,
// setuid/setgid/sticky modes, symlinks leaving the project or reached through a symlinked
// parent, corrupted content, and conflicts with what the user changed since the task started).
import { accessSync, constants, lstatSync, readdirSync, readlinkSync, type Stats } from 'node:fs';
import { NanocellError } from '../util/errors.js';
import { hashFile } from './fsSafe.js';
import { compileScope, type WorkspacePatterns } from './globs.js';
import type { ChangeEntry, Manifest } from './manifest.js';
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
import type { ApplyOptions } from './apply.js';
import { rolledBackAt } from './applyJournal.js';

export function refuse(
  message: string,
  fix = 'discard the change set (nanocell discard TASK)',
): never {
  throw new NanocellError(message, fix, 'WORKSPACE');
}

type Current = Stats | undefined;

export function checkProject(projectDir: string, m: Manifest): Stats {
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

export interface Validated {
  /** lstat of each entry's path in the project now (undefined: missing). */
  now: Map<string, Current>;
  forced: string[];
}

export function validate(
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
  const ctx: EntryContext = {
    changeDir,
    projectDir,
    m,
    opts,
    scope,
    hidden,
    byPath,
    now,
    forced,
    bytes: 0,
    rolledBack: rolledBackAt(changeDir),
  };
  for (const e of m.entries) checkEntry(ctx, e);
  return { now, forced };
}

interface EntryContext {
  changeDir: string;
  projectDir: string;
  m: Manifest;
  opts: ApplyOptions;
  scope: ReturnType<typeof compileScope>;
  hidden(rel: string): boolean;
  byPath: Map<string, ChangeEntry>;
  now: Map<string, Current>;
  forced: string[];
  bytes: number;
  /** When an interrupted apply of this change set was last rolled back. */
  rolledBack: number | undefined;
}

/** The named checks of one entry, in order; the first that fails refuses the whole apply. */
function checkEntry(ctx: EntryContext, e: ChangeEntry): void {
  const { changeDir, projectDir, m, opts, scope, hidden, byPath, now, forced } = ctx;
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
    ctx.bytes += e.size!;
    if (ctx.bytes > m.limits.maxBytes) refuse('change set is larger than its recorded size limit');
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
  const conflict = conflictWith(e, st, m.startedAtMs, projectDir, ctx.rolledBack);
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
  rolledBack: number | undefined,
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
  const since = b.mergedAtMs ?? startedAtMs;
  if (st.mtimeMs > since) return 'was modified';
  if (st.ctimeMs > since) {
    const restored =
      rolledBack !== undefined &&
      st.ctimeMs <= rolledBack &&
      (b.mode === undefined || (st.mode & 0o7777) === b.mode);
    if (!restored) return 'was modified';
  }
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
