// Git in the cell must not see hidden paths as deleted. A whiteout hides `.env` from the file
// system, but the repository's index still lists it, so `git status` calls it deleted and
// `git add -A && git commit` records its deletion. For each repository in the project whose
// index lists a hidden path, the middle layer (the one that holds the whiteouts) gets a copy of
// that index in which those entries carry the skip-worktree bit: git then takes the missing file
// as unchanged (status, add -A, commit -a, stash, checkout, reset --hard, rm of other paths).
// Being in the middle layer, the copy is not a change: only what the cell itself writes to the
// index shows in the change set.
import {
  chmodSync,
  chownSync,
  copyFileSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  rmSync,
} from 'node:fs';
import path from 'node:path';
import { NanocellError } from '../util/errors.js';
import { hostGit } from './hostGit.js';
import type { Owner } from './overlay.js';
import { parentOf, selfAndAncestors } from './paths.js';

export interface GitIndexView {
  /** Project-relative path of the repository's work tree ('' for the project root). */
  repo: string;
  /** Project-relative path of the index copy in the middle layer. */
  index: string;
  /** Repository-relative tracked paths marked skip-worktree. */
  marked: string[];
}

/** The git dir of a work tree at `abs`, project-relative, or undefined (none, or outside). */
function gitDirOf(projectDir: string, repoRel: string): string | undefined {
  const dotGit = path.join(projectDir, repoRel, '.git');
  const st = lstatSync(dotGit, { throwIfNoEntry: false });
  if (!st) return undefined;
  if (st.isDirectory()) return repoRel ? `${repoRel}/.git` : '.git';
  if (!st.isFile() || st.size > 4096) return undefined;
  // A linked worktree or submodule: "gitdir: <path>". Only a git dir inside the project is in
  // the cell's view; one outside it is absent there, and git in the cell finds no repository.
  const m = /^gitdir: (.+?)\s*$/m.exec(readFileSync(dotGit, 'utf8'));
  if (!m) return undefined;
  const abs = path.resolve(path.dirname(dotGit), m[1]!);
  const rel = path.relative(projectDir, abs);
  if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) return undefined;
  return rel;
}

/** Nearest repository (work tree root) holding each hidden path; paths inside a git dir skipped. */
function reposOf(projectDir: string, hidden: string[]): Map<string, string[]> {
  const byRepo = new Map<string, string[]>();
  for (const h of hidden) {
    if (h.split('/').includes('.git')) continue;
    const parents = ['', ...selfAndAncestors(parentOf(h) || '.').filter((d) => d !== '.')];
    for (const dir of parents.reverse()) {
      if (!lstatSync(path.join(projectDir, dir, '.git'), { throwIfNoEntry: false })) continue;
      const list = byRepo.get(dir) ?? [];
      list.push(dir ? h.slice(dir.length + 1) : h);
      byRepo.set(dir, list);
      break;
    }
  }
  return byRepo;
}

/**
 * Writes the index copies into `layerDir` (the middle layer) and returns what it marked.
 * Called after the whiteouts are written; `owner` owns what it adds, as for the whiteouts.
 */
export async function writeGitIndexViews(
  layerDir: string,
  projectDir: string,
  hidden: string[],
  owner: Owner,
): Promise<GitIndexView[]> {
  const views: GitIndexView[] = [];
  for (const [repo, paths] of reposOf(projectDir, hidden)) {
    const gitDirRel = gitDirOf(projectDir, repo);
    if (!gitDirRel) continue;
    const gitDir = path.join(projectDir, gitDirRel);
    const workTree = path.join(projectDir, repo);
    const indexRel = `${gitDirRel}/index`;
    const copy = path.join(layerDir, indexRel);
    const original = path.join(projectDir, indexRel);
    const git = (args: string[], input?: string) =>
      hostGit(args, { gitDir, workTree, cwd: workTree, indexFile: copy, input });
    const hasIndex = lstatSync(original, { throwIfNoEntry: false })?.isFile() ?? false;
    if (!hasIndex && !(await git(['rev-parse', '-q', '--verify', 'HEAD^{tree}'])).ok) continue;
    const made = mkdirsLike(layerDir, projectDir, parentOf(indexRel), owner);
    // A repository with no index but a HEAD: git in the cell would see every file as staged
    // for deletion; the copy is HEAD's tree, so hidden paths stay as they are.
    if (hasIndex) copyFileSync(original, copy);
    else if (!(await git(['read-tree', 'HEAD'])).ok) {
      setModes(made);
      continue;
    }
    const listed = await git(['ls-files', '-z', '--', ...paths]);
    if (!listed.ok) throw indexError(indexRel, listed.stderr);
    const marked = [...new Set(listed.stdout.split('\0').filter(Boolean))];
    if (!marked.length) {
      // Nothing hidden is tracked here: the copy must not shadow the real index.
      rmSync(copy, { force: true });
      setModes(made);
      continue;
    }
    // core.splitIndex=false (hostGit) writes the copy whole: a split index's shared part lives
    // in the git dir, where the cell's git would otherwise write a new one.
    const r = await git(['update-index', '--skip-worktree', '-z', '--stdin'], marked.join('\0'));
    if (!r.ok) throw indexError(indexRel, r.stderr);
    chownSync(copy, owner.uid, owner.gid);
    chmodSync(copy, hasIndex ? lstatSync(original).mode & 0o666 : 0o644);
    setModes(made);
    views.push({ repo, index: indexRel, marked });
  }
  return views;
}

function indexError(indexRel: string, stderr: string): NanocellError {
  return new NanocellError(
    `cannot give the cell a view of ${indexRel} that keeps hidden paths out of git: ${stderr.trim().split('\n')[0] ?? ''}`,
    'check the repository with `git status` on the host (a corrupt or locked index?), or exclude .git from the workspace',
    'WORKSPACE',
  );
}

/**
 * Creates `rel` and its ancestors in the layer with the project's modes and `owner`, as the
 * whiteout layer does: a merged directory shows the attributes of its topmost layer.
 */
function mkdirsLike(
  layerDir: string,
  projectDir: string,
  rel: string,
  owner: Owner,
): Array<[string, number]> {
  const made: Array<[string, number]> = [];
  for (const dir of selfAndAncestors(rel)) {
    const dest = path.join(layerDir, dir);
    const st = lstatSync(path.join(projectDir, dir));
    if (!st.isDirectory()) {
      throw new NanocellError(
        `${projectDir}/${dir} changed during setup`,
        'retry the task',
        'WORKSPACE',
      );
    }
    if (lstatSync(dest, { throwIfNoEntry: false })) continue;
    // The parent may already carry its final mode (set by writeWhiteoutLayer): open it briefly.
    const parent = path.dirname(dest);
    const pmode = lstatSync(parent).mode & 0o7777;
    chmodSync(parent, pmode | 0o700);
    mkdirSync(dest, { mode: 0o700 });
    chmodSync(parent, pmode);
    chownSync(dest, owner.uid, owner.gid);
    made.push([dest, st.mode & 0o7777]);
  }
  return made;
}

/** Final modes, children first (a final mode may deny its owner write). */
function setModes(made: Array<[string, number]>): void {
  for (const [dir, mode] of [...made].reverse()) chmodSync(dir, mode);
}

/**
 * The index copy keeps git from deleting hidden tracked files, but their committed content is
 * in the object store, which is part of the lower layer: `git show HEAD:.env` reads it. Said in
 * the report so the user can untrack and rotate such secrets.
 */
export function trackedHiddenNotice(views: GitIndexView[]): string | undefined {
  const paths = views.flatMap((v) => v.marked.map((m) => (v.repo ? `${v.repo}/${m}` : m)));
  if (!paths.length) return undefined;
  const eg = paths.slice(0, 3).join(', ');
  return (
    `${paths.length} hidden path(s) are tracked by git (${eg}${paths.length > 3 ? ', ...' : ''}): ` +
    'git in the cell sees them as unchanged and cannot delete them by accident, but their committed ' +
    `content is in .git's object store, which the cell can read (git show HEAD:${paths[0]}); ` +
    'to fix, untrack them (git rm --cached), rotate the secrets and rewrite history, or exclude .git'
  );
}
