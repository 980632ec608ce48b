// The walk behind collectChangeSet: the upper dir's entries judged against the merged view
// and the lower layer, each stored or refused within the change set's budgets.
import {
  closeSync,
  constants,
  lstatSync,
  openSync,
  readdirSync,
  readlinkSync,
  renameSync,
  rmSync,
  type Stats,
} from 'node:fs';
import { BudgetExceededError, hashFile } from './fsSafe.js';
import { compileScope, matchAny, type ScopeMatcher } from './globs.js';
import { type BaseState, type ChangeEntry, type Manifest, type RefusedChange } from './manifest.js';
import { isSameOrBelow, lstatNoSymlinkComponents, relPathProblem } from './paths.js';
import type { ScopePlan } from './scope.js';

interface ChangeLimits {
  /** Most paths the upper dir may hold (touched entries, whiteouts and expanded deletions). */
  maxFiles: number;
  /** Most bytes of file content stored (normally the disk cap). */
  maxBytes: number;
  /** Most bytes of path names and symlink targets the manifest holds (DEFAULT_MAX_NAME_BYTES). */
  maxNameBytes?: number;
}

export const DEFAULT_MAX_FILES = 100_000;
/**
 * With DEFAULT_MAX_FILES, this bounds the manifest, and so the collector's memory: 100,000
 * paths of PATH_MAX with 4 KiB symlink targets would otherwise be 800 MB of strings.
 */
export const DEFAULT_MAX_NAME_BYTES = 32 * 1024 * 1024;

export interface CollectOptions {
  upperDir: string;
  /** The overlay's lower layer as it was (normally the project dir itself). */
  lowerDir: string;
  projectDir: string;
  /** `<stateRoot>/changes/<taskId>`; must not exist yet. */
  outDir: string;
  taskId: string;
  startedAtMs: number;
  limits: ChangeLimits;
  scope: ScopePlan;
  /**
   * The still-mounted merged view of the cell's overlay. When absent a read-only overlay of
   * upper over lower is mounted next to outDir for the time of the collection.
   */
  mergedDir?: string;
  /** Extra options for that temporary view, e.g. `userxattr` for a rootless cell's layers. */
  viewOptions?: string[];
  /**
   * The cell's middle layer of whiteouts, stacked into that view exactly as in the cell, so
   * the view shows what the task saw: hidden paths absent, names it recreated over them new.
   */
  hiddenLayerDir?: string;
  /** `mergedDir` is a plain directory, not a mount (a Kubernetes cell's workspace, unpacked). */
  plainView?: boolean;
  /** Globs of generated files left out of the change set (policy workspace.ignore). */
  ignore?: string[];
  /** Recorded for apply: false lets it write what .gitignore ignores. */
  gitignore?: boolean;
  /** The session's layers the task started from, topmost first (see session.ts). */
  stackDirs?: string[];
  /** Recorded in the manifest: the session, and the task ids of those layers, lowest first. */
  session?: string;
  stack?: string[];
}

export class Refusal extends Error {}

/** A file-system error met while reading the change set, as one line naming the path. */
export function unreadable(e: NodeJS.ErrnoException, roots: string[]): Refusal {
  let where = typeof e.path === 'string' ? e.path : '';
  for (const r of roots) if (where.startsWith(`${r}/`)) where = where.slice(r.length + 1);
  return new Refusal(
    `the change set could not be read (${e.code ?? e.message}${where ? ` at ${where}` : ''}); nothing was kept`,
  );
}

/** The name as text, or undefined when its bytes are not UTF-8 (Node would replace them). */
function utf8(name: Buffer): string | undefined {
  const text = name.toString('utf8');
  return Buffer.from(text, 'utf8').equals(name) ? text : undefined;
}

/** A non-UTF-8 name for display: the bytes that are not UTF-8 as \xNN. */
function showBytes(name: Buffer): string {
  return [...name]
    .map((b) => (b < 0x80 ? String.fromCharCode(b) : `\\x${b.toString(16)}`))
    .join('');
}

const readNames = (dir: string): Buffer[] => readdirSync(dir, { encoding: 'buffer' });

type Kind = 'file' | 'dir' | 'symlink' | 'other';
const kindOf = (st: Stats): Kind =>
  st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';

export class Collector {
  private readonly matcher: ScopeMatcher;
  private readonly hidden: string[];
  private seen = 0;
  private nameBytes = 0;
  private baseBytes = 0;
  private readonly stored = new Set<string>();

  constructor(
    private readonly o: CollectOptions,
    private readonly view: string,
    private readonly m: Manifest,
  ) {
    this.matcher = compileScope(o.scope.patterns);
    this.hidden = m.hidden;
    this.ignore = matchAny(o.ignore ?? []);
  }

  private readonly ignore: (rel: string) => boolean;

  /** A generated path the policy leaves out: counted, never stored, not descended into. */
  private ignored(rel: string, type: Kind): boolean {
    if (!this.ignore(rel) && !(type === 'dir' && this.ignore(`${rel}/`))) return false;
    const ig = (this.m.ignored ??= { count: 0, examples: [] });
    ig.count++;
    if (ig.examples.length < 5) ig.examples.push(rel);
    return true;
  }

  run(): void {
    this.walkUpperDir('');
  }

  private count(): void {
    if (++this.seen > this.o.limits.maxFiles) {
      throw new Refusal(
        `the task touched more than ${this.o.limits.maxFiles} paths; nothing was kept`,
      );
    }
  }

  private isHidden(rel: string): boolean {
    return this.hidden.some((h) => isSameOrBelow(rel, h));
  }

  private refuse(path: string, reason: string): void {
    this.chargeNames(path, reason);
    this.m.refused.push({ path, reason } satisfies RefusedChange);
  }

  private chargeNames(...texts: (string | undefined)[]): void {
    const max = this.o.limits.maxNameBytes ?? DEFAULT_MAX_NAME_BYTES;
    for (const t of texts) if (t) this.nameBytes += Buffer.byteLength(t);
    if (this.nameBytes > max) {
      throw new Refusal(
        `the change set's path names and symlink targets take more than ${max} bytes; nothing was kept`,
      );
    }
  }

  /** Why a new or changed path may not come back, or undefined. */
  private scopeProblem(rel: string, type: Kind): string | undefined {
    const problem = relPathProblem(rel);
    if (problem) return `path ${problem}`;
    if (this.isHidden(rel) || this.matcher.isExcluded(rel)) return 'excluded from the workspace';
    if (this.matcher.isProtected(rel)) return 'protected path';
    if (!this.matcher.isIncluded(rel) && !(type === 'dir' && this.matcher.mayHoldIncluded(rel))) {
      return 'outside the workspace include patterns';
    }
    return undefined;
  }

  private lower(rel: string): Stats | undefined {
    try {
      return lstatNoSymlinkComponents(this.o.lowerDir, rel);
    } catch {
      return undefined; // reached through a symlink or a file: not the same path in the lower
    }
  }

  private walkUpperDir(dir: string): void {
    const abs = dir ? `${this.o.upperDir}/${dir}` : this.o.upperDir;
    for (const raw of readNames(abs)) {
      this.count();
      const name = utf8(raw);
      if (name === undefined) {
        // Node's string paths cannot name it: refuse it (and all below it) by its bytes.
        const up = lstatSync(Buffer.concat([Buffer.from(`${abs}/`), raw]));
        if (up.isCharacterDevice() && up.rdev === 0) continue; // findDeletions refuses it
        this.refuse(`${dir ? `${dir}/` : ''}${showBytes(raw)}`, 'name is not UTF-8');
        continue;
      }
      const rel = dir ? `${dir}/${name}` : name;
      const up = lstatSync(`${this.o.upperDir}/${rel}`);
      if (up.isCharacterDevice() && up.rdev === 0) continue; // whiteout: seen from its parent
      const view = lstatSync(`${this.view}/${rel}`, { throwIfNoEntry: false });
      if (!view) throw new Refusal(`upper entry ${rel} is not in the merged view`);
      this.visit(rel, view);
    }
    if (dir === '' || lstatSync(`${this.view}/${dir}`).isDirectory()) this.findDeletions(dir);
  }

  private visit(rel: string, view: Stats): void {
    const type = kindOf(view);
    const low = this.lower(rel);
    if (type === 'other') {
      this.refuse(rel, 'device file, fifo or socket');
      return;
    }
    if (this.ignored(rel, type)) return;
    const problem = this.scopeProblem(rel, type);
    if (problem) {
      this.refuse(rel, problem);
      return;
    }
    const lowType = low ? kindOf(low) : undefined;
    const mode = view.mode & 0o777;
    const extra = view.mode & 0o7000 ? { modeMasked: true } : {};
    if (type === 'dir') {
      if (lowType === 'dir') {
        if ((low!.mode & 0o777) !== mode)
          this.add({ path: rel, kind: 'mode', type, mode, ...extra });
      } else {
        if (lowType && !this.replaceable(rel, low!)) return;
        this.add({ path: rel, kind: lowType ? 'modify' : 'add', type, mode, ...extra });
      }
      this.walkUpperDir(rel);
      return;
    }
    if (lowType === 'dir' && !this.replaceable(rel, low!)) return;
    if (type === 'symlink') {
      const target = utf8(readlinkSync(`${this.view}/${rel}`, { encoding: 'buffer' }));
      if (target === undefined) return this.refuse(rel, 'symlink target is not UTF-8');
      if (lowType === 'symlink' && readlinkSync(`${this.o.lowerDir}/${rel}`) === target) return;
      this.add({ path: rel, kind: lowType ? 'modify' : 'add', type, target });
      return;
    }
    const content = this.store(rel);
    if (lowType === 'file') {
      const before = hashFile(`${this.o.lowerDir}/${rel}`);
      if (before.sha256 === content.sha256) {
        if ((low!.mode & 0o777) === mode) return; // copied up, unchanged
        this.add({ path: rel, kind: 'mode', type, mode, ...extra });
        return;
      }
    }
    this.add({ path: rel, kind: lowType ? 'modify' : 'add', type, mode, ...content, ...extra });
  }

  /** A lower directory replaced by a non-directory: everything below it is deleted. */
  private replaceable(rel: string, low: Stats): boolean {
    if (!low.isDirectory()) return true;
    const dels = this.expandDeletion(rel, false);
    if (!dels) {
      this.refuse(rel, 'replaces a directory that holds hidden, protected or non-UTF-8 paths');
      return false;
    }
    for (const d of dels) this.add(d);
    return true;
  }

  /** Lower children that the merged view no longer shows were deleted (whiteout or opaque). */
  private findDeletions(dir: string): void {
    const low = dir ? this.lower(dir) : lstatSync(this.o.lowerDir);
    if (!low?.isDirectory()) return;
    const key = (b: Buffer) => b.toString('latin1');
    const shown = new Set(readNames(dir ? `${this.view}/${dir}` : this.view).map(key));
    for (const raw of readNames(dir ? `${this.o.lowerDir}/${dir}` : this.o.lowerDir)) {
      if (shown.has(key(raw))) continue;
      const name = utf8(raw);
      if (name === undefined) {
        this.refuse(`${dir ? `${dir}/` : ''}${showBytes(raw)}`, 'deletes a name that is not UTF-8');
        continue;
      }
      const rel = dir ? `${dir}/${name}` : name;
      if (this.isHidden(rel)) continue; // the cell never saw it
      const dels = this.expandDeletion(rel, true);
      if (!dels)
        this.refuse(rel, 'deletes a directory that holds hidden, protected or non-UTF-8 paths');
      else for (const d of dels) this.add(d);
    }
  }

  /**
   * Deletion entries for `rel` and everything below it in the lower, children first.
   * Undefined when something below may not be deleted (hidden or protected).
   */
  private expandDeletion(
    rel: string,
    includeSelf: boolean,
  ): Omit<ChangeEntry, 'base'>[] | undefined {
    const out: Omit<ChangeEntry, 'base'>[] = [];
    const walk = (p: string, self: boolean): boolean => {
      if (self) this.count();
      if (this.isHidden(p) || this.matcher.isProtected(p)) return false;
      const st = lstatSync(`${this.o.lowerDir}/${p}`);
      const type = kindOf(st);
      if (type === 'dir') {
        for (const raw of readNames(`${this.o.lowerDir}/${p}`)) {
          const name = utf8(raw);
          if (name === undefined || !walk(`${p}/${name}`, true)) return false;
        }
      }
      if (self) out.push({ path: p, kind: 'delete', type: type === 'other' ? 'file' : type });
      return true;
    };
    return walk(rel, includeSelf) ? out : undefined;
  }

  private store(rel: string): { size: number; sha256: string } {
    const tmp = `${this.o.outDir}/files/.incoming`;
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
    let r: { size: number; sha256: string };
    try {
      r = hashFile(`${this.view}/${rel}`, {
        outFd: fd,
        budget: this.o.limits.maxBytes - this.m.totalBytes,
      });
      // No fsync per file: apply re-hashes every stored file, so a torn copy is caught there.
    } catch (e) {
      if (e instanceof BudgetExceededError) {
        throw new Refusal(
          `the task wrote more than ${this.o.limits.maxBytes} bytes of files (at ${rel}); nothing was kept`,
        );
      }
      throw e;
    } finally {
      closeSync(fd);
    }
    this.m.totalBytes += r.size;
    if (this.stored.has(r.sha256)) rmSync(tmp);
    else renameSync(tmp, `${this.o.outDir}/files/${r.sha256}`);
    this.stored.add(r.sha256);
    return r;
  }

  private add(e: Omit<ChangeEntry, 'base'>): void {
    this.chargeNames(e.path, e.target);
    const base = baseState(this.o.projectDir, e.path);
    this.m.entries.push({ ...e, base });
    if (e.kind === 'modify' && e.type === 'file' && base.type === 'file')
      this.storeBase(e.path, base);
  }

  /**
   * The project's version of a modified text-sized file, so apply can merge three ways when the
   * project moved on. Bounded by the change set's own byte limit; a file that changed while
   * copied is simply not kept (apply then refuses the conflict as before).
   */
  private storeBase(rel: string, base: BaseState): void {
    const size = base.size ?? Infinity;
    if (size > MERGE_MAX_BYTES || this.baseBytes + size > this.o.limits.maxBytes) return;
    if (this.stored.has(base.sha256!)) return;
    const tmp = `${this.o.outDir}/files/.incoming-base`;
    const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
    let r: { size: number; sha256: string };
    try {
      r = hashFile(`${this.o.projectDir}/${rel}`, { outFd: fd, budget: MERGE_MAX_BYTES });
    } catch {
      rmSync(tmp, { force: true });
      return;
    } finally {
      closeSync(fd);
    }
    if (r.sha256 !== base.sha256) return void rmSync(tmp, { force: true });
    renameSync(tmp, `${this.o.outDir}/files/${r.sha256}`);
    this.stored.add(r.sha256);
    this.baseBytes += r.size;
  }
}

/** Larger files are not kept for a three-way merge (see applyMerge.ts). */
const MERGE_MAX_BYTES = 1024 * 1024;

/** The project's state of `rel` now, for the conflict check at apply. */
export function baseState(projectDir: string, rel: string): BaseState {
  let st: Stats | undefined;
  try {
    st = lstatNoSymlinkComponents(projectDir, rel);
  } catch {
    return { exists: true, type: 'other' };
  }
  if (!st) return { exists: false };
  const type = kindOf(st);
  const base: BaseState = {
    exists: true,
    type,
    size: st.size,
    mode: st.mode & 0o7777,
    mtimeMs: st.mtimeMs,
    ctimeMs: st.ctimeMs,
  };
  if (type === 'file') base.sha256 = hashFile(`${projectDir}/${rel}`).sha256;
  if (type === 'symlink') base.target = readlinkSync(`${projectDir}/${rel}`);
  return base;
}
