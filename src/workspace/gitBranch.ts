// `nanocell apply --branch NAME`: the change set as one commit on a new branch of the project's
// repository, made with plumbing only (a temporary index, hash-object, commit-tree,
// update-ref), so the work tree, the index and HEAD stay exactly as they are.
import { lstatSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { NanocellError } from '../util/errors.js';
import { changeItems, git, indexInfo, type IndexItem } from './gitTrees.js';
import { hostGitSync, type HostGitOptions } from './hostGit.js';
import { loadChangeSet } from './manifest.js';
import { gitIgnoredPaths } from './gitIgnore.js';

/** The project's git dir: `.git` itself, or where a worktree's `.git` file points. */
function projectGitDir(projectDir: string): string {
  const dotGit = path.join(projectDir, '.git');
  const st = lstatSync(dotGit, { throwIfNoEntry: false });
  if (st?.isDirectory()) return dotGit;
  if (st?.isFile()) {
    const m = /^gitdir: (.+)$/m.exec(readFileSync(dotGit, 'utf8').slice(0, 4096));
    if (m) return path.resolve(projectDir, m[1]!.trim());
  }
  throw new NanocellError(
    `${projectDir} is not the top of a git repository`,
    'apply --branch needs the project to be a repository (git init), or apply without --branch',
    'USAGE',
  );
}

export interface BranchCommit {
  branch: string;
  commit: string;
  changes: number;
}

/** Commits the change set onto `refs/heads/<branch>`, which must not exist yet. */
export function commitChangeSetToBranch(
  changeDir: string,
  projectDir: string,
  branch: string,
  message: string,
): BranchCommit {
  const { manifest: m } = loadChangeSet(changeDir);
  if (m.status !== 'ok' || m.stack?.length) {
    throw new NanocellError(
      `the change set of task ${m.taskId} cannot be committed on its own (${m.status !== 'ok' ? 'it was refused' : 'it stacks on earlier tasks'})`,
      m.stack?.length
        ? `use apply --session ${m.session ?? 'default'} --branch ${branch}`
        : 'discard it',
      'WORKSPACE',
    );
  }
  const gitDir = projectGitDir(projectDir);
  const ref = `refs/heads/${branch}`;
  const base: HostGitOptions = { gitDir, workTree: projectDir, cwd: projectDir };
  if (!hostGitSync(['check-ref-format', ref], base).ok)
    throw new NanocellError(`${branch} is not a valid branch name`, 'pick another name', 'USAGE');
  if (hostGitSync(['rev-parse', '--verify', '-q', ref], base).ok)
    throw new NanocellError(`branch ${branch} exists`, 'pick a new branch name', 'USAGE');
  const head = hostGitSync(['rev-parse', '--verify', '-q', 'HEAD^{commit}'], base);
  const zero = git(['hash-object', '--stdin'], { ...base, input: '' }, 'hash-object')
    .trim()
    .replace(/./g, '0');
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'nanocell-branch-'));
  try {
    const o = { ...base, indexFile: path.join(tmp, 'index') };
    git(head.ok ? ['read-tree', 'HEAD'] : ['read-tree', '--empty'], o, 'read-tree');
    const tracked = new Map<string, IndexItem>();
    for (const line of git(['ls-files', '-s', '-z'], o, 'ls-files').split('\0')) {
      const t = /^(\d+) ([0-9a-f]+) \d\t(.*)$/s.exec(line);
      if (t) {
        const mode = t[1] as IndexItem['mode'];
        tracked.set(t[3]!, { path: t[3]!, mode, src: { blob: t[2]! } });
      }
    }
    const ignored = gitIgnoredPaths(projectDir, m);
    const kept = { ...m, entries: m.entries.filter((e) => !ignored.has(e.path)) };
    const items = changeItems(changeDir, kept, tracked);
    if (items.length)
      git(
        ['update-index', '-z', '--index-info'],
        { ...o, input: indexInfo(items, o, zero) },
        'update-index',
      );
    const tree = git(['write-tree'], o, 'write-tree').trim();
    const parent = head.ok ? ['-p', head.stdout.trim()] : [];
    const env = { ...o, input: message };
    const commit = git(
      [
        '-c',
        'user.name=nanocell',
        '-c',
        'user.email=nanocell@localhost',
        'commit-tree',
        tree,
        ...parent,
      ],
      env,
      'commit-tree',
    ).trim();
    // The old value of all zeroes: the ref must not have appeared meanwhile.
    git(
      ['update-ref', '-m', `nanocell: apply task ${m.taskId}`, ref, commit, zero],
      o,
      'update-ref',
    );
    return { branch, commit, changes: items.length };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
