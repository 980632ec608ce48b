// Git in a real cell (through the CLI) on repositories of every shape: the project's own git
// sees hidden files as unchanged, `nanocell diff` and `report` show the history a change set
// writes in human terms, and a hostile git setting in a change set runs nothing on the host.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderDiff } from '../../../src/workspace/diff.js';
import { loadChangeSet } from '../../../src/workspace/manifest.js';
import { writeManifest } from '../../../src/workspace/changeset.js';
import { makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';

const GIT =
  'export HOME=/tmp; git config --global safe.directory "*"; git config --global user.email a@x; git config --global user.name Agent; ';

const git = (dir: string, ...a: string[]) =>
  execFileSync('git', ['-C', dir, '-c', 'user.email=u@x', '-c', 'user.name=User', ...a], {
    encoding: 'utf8',
    stdio: 'pipe',
  });

function repo(files: Record<string, string> = {}): Sandbox {
  const sb = makeSandbox({ 'README.md': 'hello\n', '.env': 'SECRET=1\n', ...files });
  git(sb.project, 'init', '-q', '-b', 'main');
  git(sb.project, 'add', '-A');
  git(sb.project, 'commit', '-qm', 'init');
  return sb;
}

/** Runs `script` in a cell on the sandbox's project; returns its output and change-set dir. */
function inCell(sb: Sandbox, script: string, extra: string[] = []) {
  const r = nanocell(
    ['run', '--workspace', sb.project, ...extra, '--', 'bash', '-c', GIT + script],
    {
      stateRoot: sb.stateRoot,
    },
  );
  const id = /change set (\S+);/.exec(r.stderr)?.[1];
  return { ...r, id, dir: id ? path.join(sb.stateRoot, 'changes', id) : undefined };
}

describe.concurrent('git in a cell', () => {
  it('commits an edit; diff and report show the commit, the ref moved and the index, never object files', () => {
    const sb = repo();
    try {
      const r = inCell(
        sb,
        'git status --porcelain; echo more >> README.md; git commit -qam "agent edit"',
      );
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe('');
      const d = nanocell(['diff', r.id!], { stateRoot: sb.stateRoot });
      expect(d.stdout).toMatch(/# git history of \.git/);
      expect(d.stdout).toMatch(
        /commit [0-9a-f]{12} {2}Agent <a@x> {2}agent edit\n# {5}modifies README\.md\n/,
      );
      expect(d.stdout).toMatch(/branch moved: refs\/heads\/main [0-9a-f]{12} -> [0-9a-f]{12}/);
      expect(d.stdout).toMatch(/the index \(staging area\) changed/);
      expect(d.stdout).not.toMatch(/\.git\/objects/);
      const rep = nanocell(['report', r.id!], { stateRoot: sb.stateRoot });
      expect(rep.stdout).toMatch(/\.git: commit [0-9a-f]{12} {2}Agent <a@x> {2}agent edit/);
      expect(rep.stdout).not.toMatch(/\.git\/objects/);
    } finally {
      sb.cleanup();
    }
  });

  it('a repository with no index, a split index and index v4 all keep the hidden file', () => {
    for (const setup of [
      (p: string) => fs.rmSync(path.join(p, '.git/index')),
      (p: string) => git(p, 'update-index', '--split-index'),
      (p: string) => git(p, 'update-index', '--index-version', '4'),
    ]) {
      const sb = repo({ 'src/a.js': '1\n' });
      try {
        setup(sb.project);
        const r = inCell(
          sb,
          'git add -A && git commit -qm x; git ls-tree -r --name-only HEAD; git status --porcelain',
        );
        expect(r.status, r.stderr).toBe(0);
        expect(r.stdout).toMatch(/^\.env$/m);
        expect(r.stdout).not.toMatch(/^ ?D/m);
        if (r.dir) expect(renderDiff(r.dir, sb.project)).not.toMatch(/deletes \.env/);
      } finally {
        sb.cleanup();
      }
    }
  });

  it('a linked worktree (.git file pointing outside) and a submodule (git dir inside the project) start and stay safe', () => {
    const sb = repo();
    const wt = `${sb.project}-wt`;
    try {
      git(sb.project, 'worktree', 'add', '-q', wt);
      fs.writeFileSync(path.join(wt, '.env'), 'WT=1\n');
      // The worktree's git dir is outside the workspace: git in the cell finds no repository.
      const w = nanocell(
        [
          'run',
          '--workspace',
          wt,
          '--discard',
          '--',
          'bash',
          '-c',
          `${GIT} git status 2>&1; cat .env 2>&1; true`,
        ],
        {
          stateRoot: sb.stateRoot,
        },
      );
      expect(w.status, w.stderr).toBe(0);
      expect(w.stdout).toMatch(/not a git repository/);
      expect(w.stdout).toMatch(/No such file/);
      // A submodule whose git dir lives in .git/modules of the project.
      const sub = makeSandbox({ 'lib.js': '1\n', '.env': 'SUB=1\n' });
      try {
        git(sub.project, 'init', '-q', '-b', 'main');
        git(sub.project, 'add', '-A');
        git(sub.project, 'commit', '-qm', 'sub');
        git(
          sb.project,
          '-c',
          'protocol.file.allow=always',
          'submodule',
          'add',
          '-q',
          sub.project,
          'lib',
        );
        git(sb.project, 'commit', '-qm', 'add lib');
      } finally {
        sub.cleanup();
      }
      const r = inCell(
        sb,
        'cd lib && git status --porcelain && echo 2 > lib.js && git add -A && git commit -qm bump && git ls-tree -r --name-only HEAD',
      );
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/^\.env$/m);
      expect(renderDiff(r.dir!, sb.project)).toMatch(
        /git history of \.git\/modules\/lib[\s\S]*modifies lib\.js/,
      );
    } finally {
      fs.rmSync(wt, { recursive: true, force: true });
      sb.cleanup();
    }
  });

  it('a change set forged to carry a hostile .git/config and attributes: diff runs none of it', () => {
    const sb = repo();
    const sentinel = path.join(sb.stateRoot, 'pwned');
    try {
      const r = inCell(sb, 'echo more >> README.md; git commit -qam edit');
      const { manifest } = loadChangeSet(r.dir!);
      const evil = `touch ${sentinel}`;
      const add = (rel: string, body: string) => {
        const sha = createHash('sha256').update(body).digest('hex');
        fs.writeFileSync(path.join(r.dir!, 'files', sha), body);
        manifest.entries.push({
          path: rel,
          kind: 'add',
          type: 'file',
          mode: 0o644,
          size: body.length,
          sha256: sha,
          base: { exists: false },
        });
      };
      add(
        '.git/config.worktree',
        `[core]\n\tfsmonitor = ${evil}\n\tpager = ${evil}\n[diff]\n\texternal = ${evil}\n`,
      );
      add('.git/info/attributes', '* diff=evil filter=evil\n');
      add('.gitattributes', '* diff=evil filter=evil\n');
      add('.git/hooks/post-checkout', `#!/bin/sh\n${evil}\n`);
      writeManifest(r.dir!, manifest);
      // The project's own config names the same programs (as if the user had set them).
      fs.appendFileSync(
        path.join(sb.project, '.git/config'),
        `[core]\n\tfsmonitor = ${evil}\n[diff "evil"]\n\ttextconv = ${evil}\n[filter "evil"]\n\tclean = ${evil}\n\tsmudge = ${evil}\n`,
      );
      const d = nanocell(['diff', r.id!], { stateRoot: sb.stateRoot });
      expect(d.stdout).toMatch(/commit [0-9a-f]{12} {2}Agent <a@x> {2}edit/);
      expect(d.stdout).toMatch(/other git files: .*config\.worktree/);
      expect(fs.existsSync(sentinel), 'host git ran a configured program').toBe(false);
    } finally {
      sb.cleanup();
    }
  });
});
