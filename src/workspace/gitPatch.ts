// `nanocell diff --format git`: the change set as a patch `git apply` takes, binary files
// included (git's own binary patches). Two trees holding only the touched paths, before (the
// project as it is) and after (the task's), in a throwaway repository; git diffs them.
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { changeItems, git, inGitDir, indexInfo, projectItems, type IndexItem } from './gitTrees.js';
import type { HostGitOptions } from './hostGit.js';
import { pendingEntries } from './changeFate.js';
import { loadChangeSet, type Manifest } from './manifest.js';
import { gitIgnoredPaths, gitIgnoreNote } from './gitIgnore.js';

const ZERO = '0'.repeat(40);

function writeTree(items: readonly IndexItem[], o: HostGitOptions): string {
  git(['read-tree', '--empty'], o, 'read-tree');
  if (items.length) {
    git(
      ['update-index', '-z', '--index-info'],
      { ...o, input: indexInfo(items, o, ZERO) },
      'update-index',
    );
  }
  return git(['write-tree'], o, 'write-tree').trim();
}

/** The header lines: what the patch leaves out, as comments `git apply` skips. */
function header(m: Manifest, skipped: { git: number; ignored: string[] }): string {
  const lines = [`# nanocell: change set of task ${m.taskId} as a git patch`];
  if (skipped.git) lines.push(`# ${skipped.git} path(s) inside .git left out (git's own files)`);
  const dirs = m.entries.filter((e) => e.type === 'dir' && e.kind !== 'delete').length;
  if (dirs) lines.push(`# ${dirs} directory change(s) not shown: git tracks files only`);
  if (m.ignored?.count)
    lines.push(`# ${m.ignored.count} generated path(s) left out by workspace.ignore`);
  return `${lines.join('\n')}\n${gitIgnoreNote(new Set(skipped.ignored))}`;
}

export function writeGitDiff(
  changeDir: string,
  projectDir: string,
  write: (text: string) => void,
): void {
  // What an `apply --only` wrote is in the project already: the patch is of the rest.
  const { manifest } = pendingEntries(changeDir, loadChangeSet(changeDir).manifest);
  const ignored = gitIgnoredPaths(projectDir, manifest);
  const entries = manifest.entries.filter((e) => !inGitDir(e.path) && !ignored.has(e.path));
  const m = { ...manifest, entries };
  write(
    header(manifest, {
      git: manifest.entries.filter((e) => inGitDir(e.path)).length,
      ignored: [...ignored],
    }),
  );
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'nanocell-patch-'));
  try {
    const o: HostGitOptions = {
      gitDir: path.join(tmp, 'repo'),
      indexFile: path.join(tmp, 'index'),
    };
    git(['init', '-q', '--bare', o.gitDir], { gitDir: o.gitDir }, 'init');
    const before = projectItems(projectDir, entries);
    const baseTree = writeTree(before, o);
    const base = new Map(before.map((it) => [it.path, it]));
    // The new tree is the old one with the changes on top.
    const after = new Map(before.map((it) => [it.path, it]));
    for (const it of changeItems(changeDir, m, base)) {
      if (it.mode === '0') after.delete(it.path);
      else after.set(it.path, it);
    }
    const newTree = writeTree([...after.values()], o);
    write(
      git(
        ['diff-tree', '-p', '--binary', '--full-index', '--no-renames', '-r', baseTree, newTree],
        o,
        'diff-tree',
      ),
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
