// What apply leaves out by default: the paths the project's own .gitignore files ignore
// (build output, installed dependencies). git itself decides (check-ignore, no index), in a
// throwaway repository whose work tree is the project, so the project's git config is not read.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { quotePath } from '../util/display.js';
import { git } from './gitTrees.js';
import type { Manifest } from './manifest.js';
import { parentOf, selfAndAncestors } from './paths.js';

/** Whether any .gitignore could apply to the touched paths (else git is not needed at all). */
function anyGitignore(projectDir: string, m: Manifest): boolean {
  const dirs = new Set<string>(['']);
  for (const e of m.entries) {
    for (const d of selfAndAncestors(parentOf(e.path) || '.')) if (d !== '.') dirs.add(d);
  }
  return [...dirs].some((d) => existsSync(path.join(projectDir, d, '.gitignore')));
}

/** The entries' paths the project's .gitignore ignores; empty when the policy turned it off. */
export function gitIgnoredPaths(projectDir: string, m: Manifest): Set<string> {
  if (m.gitignore === false || !m.entries.length || !anyGitignore(projectDir, m)) return new Set();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'nanocell-ignore-'));
  try {
    const gitDir = path.join(tmp, 'repo');
    git(['init', '-q', '--bare', gitDir], { gitDir }, 'init');
    const asked = m.entries.map((e) => (e.type === 'dir' ? `${e.path}/` : e.path));
    const r = git(
      ['check-ignore', '-z', '--no-index', '--stdin'],
      {
        gitDir,
        workTree: projectDir,
        cwd: projectDir,
        noPathspecMagic: true,
        input: `${asked.join('\0')}\0`,
      },
      'check-ignore',
      [0, 1],
    );
    return new Set(
      r
        .split('\0')
        .filter(Boolean)
        .map((p) => p.replace(/\/$/, '')),
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** The one line diffs print about it. */
export function gitIgnoreNote(ignored: ReadonlySet<string>): string {
  if (!ignored.size) return '';
  const first = [...ignored][0]!;
  return `# ${ignored.size} path(s) the project's .gitignore ignores are left out: apply does not write them (e.g. ${quotePath(first)}; workspace.gitignore: false writes them)\n`;
}
