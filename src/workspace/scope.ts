// Scope: which project paths the cell sees (hidden ones become whiteouts in a middle overlay
// layer) and which it sees read-only (protected: read-only bind mounts over the overlay).
import { lstatSync, readdirSync, type Dirent } from 'node:fs';
import { NanocellError } from '../util/errors.js';
import { compileScope, matchAny, type WorkspacePatterns } from './globs.js';
import type { OciMount } from '../plan/oci.js';
import { isSameOrBelow, relPathProblem } from './paths.js';

export interface ScopePlan {
  projectDir: string;
  /** The patterns the plan came from; recorded in the change set so apply re-checks them. */
  patterns: WorkspacePatterns;
  /** Topmost paths hidden from the cell: excluded, or outside `include`. */
  hidden: string[];
  /** Regular files that share an inode with a hidden file (a hardlink would leak it). */
  hardlinkHidden: string[];
  /** Topmost protected paths that exist, are visible and can be bind-mounted read-only. */
  protected: string[];
  /** Protected paths that are symlinks: never bind-mounted (the host would follow them). */
  protectedSymlinks: string[];
  stats: { entries: number; lstats: number };
}

interface WalkState {
  hidden: string[];
  protected: string[];
  protectedSymlinks: string[];
  /** Regular files among hidden paths, and hidden directories to scan for multi-link files. */
  hiddenFiles: string[];
  hiddenDirs: string[];
  visibleFiles: string[];
  entries: number;
}

function direntKind(root: string, rel: string, d: Dirent): 'dir' | 'file' | 'symlink' | 'other' {
  if (d.isDirectory()) return 'dir';
  if (d.isFile()) return 'file';
  if (d.isSymbolicLink()) return 'symlink';
  if (d.isBlockDevice() || d.isCharacterDevice() || d.isFIFO() || d.isSocket()) return 'other';
  // DT_UNKNOWN on some filesystems: ask the inode.
  const st = lstatSync(`${root}/${rel}`);
  return st.isDirectory()
    ? 'dir'
    : st.isFile()
      ? 'file'
      : st.isSymbolicLink()
        ? 'symlink'
        : 'other';
}

/** The policy's globs, checked relative and with include defaulting to everything. */
function scopePatterns(policyWorkspace: WorkspacePatterns): WorkspacePatterns {
  for (const p of [
    ...policyWorkspace.include,
    ...policyWorkspace.exclude,
    ...policyWorkspace.protected,
  ]) {
    if (p.startsWith('/') || p.split('/').includes('..')) {
      throw new NanocellError(
        `workspace pattern "${p}" is absolute or climbs out with ..`,
        'write workspace globs relative to the project root',
        'POLICY',
      );
    }
  }
  return {
    include: policyWorkspace.include.length ? [...policyWorkspace.include] : ['**'],
    exclude: [...policyWorkspace.exclude],
    protected: [...policyWorkspace.protected],
  };
}

/** Walks the project once, pruning hidden directories. */
export async function planScope(
  projectDir: string,
  policyWorkspace: WorkspacePatterns,
): Promise<ScopePlan> {
  assertProjectDir(projectDir);
  const patterns = scopePatterns(policyWorkspace);
  const matcher = compileScope(patterns);
  // Ancestors are already known not to match while walking, so only the path itself is tested.
  const selfExcluded = matchAny(patterns.exclude);
  const selfProtected = matchAny(patterns.protected);
  const selfIncluded = matchAny(patterns.include);

  const s: WalkState = {
    hidden: [],
    protected: [],
    protectedSymlinks: [],
    hiddenFiles: [],
    hiddenDirs: [],
    visibleFiles: [],
    entries: 0,
  };

  type Hidden = Array<[rel: string, kind: string]>;
  /** Returns what was hidden below `dir` and whether anything below it stays visible. */
  const walk = (dir: string, underIncluded: boolean, underProtected: boolean) => {
    const entries = readdirSync(dir ? `${projectDir}/${dir}` : projectDir, { withFileTypes: true });
    let anyVisible = false;
    let hidden: Hidden = [];
    for (const d of entries) {
      s.entries++;
      const rel = dir ? `${dir}/${d.name}` : d.name;
      const kind = direntKind(projectDir, rel, d);
      if (selfExcluded(rel)) {
        hidden.push([rel, kind]);
        continue;
      }
      const included = underIncluded || selfIncluded(rel);
      if (!included && !(kind === 'dir' && matcher.mayHoldIncluded(rel))) {
        hidden.push([rel, kind]);
        continue;
      }
      const prot = !underProtected && selfProtected(rel);
      if (prot) (kind === 'symlink' ? s.protectedSymlinks : s.protected).push(rel);
      if (kind === 'dir') {
        const below = walk(rel, included, underProtected || prot);
        if (!included && !below.anyVisible) {
          // Nothing inside is in scope: hide the directory itself rather than each child.
          hidden.push([rel, 'dir']);
          continue;
        }
        hidden = hidden.concat(below.hidden);
      } else if (kind === 'file') {
        s.visibleFiles.push(rel);
      }
      anyVisible = true;
    }
    return { anyVisible, hidden };
  };
  for (const [rel, kind] of walk('', false, false).hidden) {
    s.hidden.push(rel);
    if (kind === 'dir') s.hiddenDirs.push(rel);
    else if (kind === 'file') s.hiddenFiles.push(rel);
  }

  const hardlinkHidden = findHardlinksToHidden(projectDir, s);
  const stats = { entries: s.entries, lstats: hardlinkHidden.lstats };
  const hidden = [...s.hidden].sort();
  const isHidden = (rel: string) => hidden.some((h) => isSameOrBelow(rel, h));
  return {
    projectDir,
    patterns,
    hidden,
    hardlinkHidden: hardlinkHidden.paths.sort(),
    protected: s.protected.filter((p) => !isHidden(p)).sort(),
    protectedSymlinks: s.protectedSymlinks.filter((p) => !isHidden(p)).sort(),
    stats,
  };
}

/**
 * Hidden regular files with more than one link expose their content through any other link.
 * Only those inodes are looked for among visible files, and visible files are only lstat'ed
 * when such an inode exists.
 */
function findHardlinksToHidden(projectDir: string, s: WalkState) {
  let lstats = 0;
  const wanted = new Map<string, number>();
  const note = (abs: string) => {
    const st = lstatSync(abs, { bigint: true });
    lstats++;
    if (st.isFile() && st.nlink > 1n) {
      const key = `${st.dev}:${st.ino}`;
      // Links found inside hidden trees are already hidden; count them off.
      wanted.set(key, (wanted.get(key) ?? Number(st.nlink)) - 1);
    }
  };
  for (const f of s.hiddenFiles) note(`${projectDir}/${f}`);
  for (const d of s.hiddenDirs) {
    const stack = [`${projectDir}/${d}`];
    while (stack.length) {
      const dir = stack.pop()!;
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const abs = `${dir}/${e.name}`;
        if (e.isDirectory()) stack.push(abs);
        else if (e.isFile()) note(abs);
      }
    }
  }
  for (const [k, left] of wanted) if (left <= 0) wanted.delete(k);
  const paths: string[] = [];
  if (wanted.size === 0) return { paths, lstats };
  for (const rel of s.visibleFiles) {
    const st = lstatSync(`${projectDir}/${rel}`, { bigint: true });
    lstats++;
    if (st.nlink > 1n && st.isFile() && wanted.has(`${st.dev}:${st.ino}`)) paths.push(rel);
  }
  return { paths, lstats };
}

export function assertProjectDir(projectDir: string): void {
  if (!projectDir.startsWith('/')) {
    throw new NanocellError(
      `project path ${projectDir} is not absolute`,
      'pass an absolute project path',
      'WORKSPACE',
    );
  }
  const st = lstatSync(projectDir, { throwIfNoEntry: false });
  if (!st) {
    throw new NanocellError(
      `project directory ${projectDir} does not exist`,
      'run nanocell from an existing project directory (was it moved?)',
      'WORKSPACE',
    );
  }
  if (st.isSymbolicLink()) {
    throw new NanocellError(
      `project path ${projectDir} is a symlink`,
      'pass the real path of the project (realpath)',
      'WORKSPACE',
    );
  }
  if (!st.isDirectory()) {
    throw new NanocellError(
      `project path ${projectDir} is not a directory`,
      'pass a project directory',
      'WORKSPACE',
    );
  }
}

/** Every path the cell must not see: hidden trees and hardlinks to hidden files. */
export function allHidden(plan: Pick<ScopePlan, 'hidden' | 'hardlinkHidden'>): string[] {
  return [...plan.hidden, ...plan.hardlinkHidden];
}

/**
 * Read-only bind mounts that make protected paths read-only inside the cell. Parents come
 * before children so a nested protected path is not hidden by its parent's mount.
 */
export function scopeMounts(plan: ScopePlan, projectDir: string, mergedDir: string): OciMount[] {
  for (const dir of [projectDir, mergedDir]) {
    if (!dir.startsWith('/') || dir.split('/').includes('..')) {
      throw new NanocellError(
        `mount path ${dir} is not a clean absolute path`,
        'pass absolute paths',
        'INTERNAL',
      );
    }
  }
  const root = projectDir.replace(/\/+$/, '');
  const merged = mergedDir.replace(/\/+$/, '');
  return [...plan.protected]
    .sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b))
    .map((rel) => {
      const problem = relPathProblem(rel);
      if (problem) {
        throw new NanocellError(
          `protected path ${JSON.stringify(rel)} ${problem}`,
          'fix the scope plan',
          'INTERNAL',
        );
      }
      return {
        destination: `${root}/${rel}`,
        type: 'bind',
        source: `${merged}/${rel}`,
        options: ['rbind', 'ro', 'nosuid', 'nodev'],
      };
    });
}
