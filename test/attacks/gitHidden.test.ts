// Git against hidden files: an agent in a real cell uses the project's own git to delete or
// expose the files the workspace hides from it (.env and other excluded secrets), or plants git
// settings that would run a program on the host when nanocell summarises the history. Git in the
// cell must see hidden files as unchanged; any history that still deletes one is flagged in the
// diff and the report and refused by apply; nothing the cell wrote makes host git run a program.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { applyChangeSet } from '../../src/workspace/apply.js';
import { renderDiff } from '../../src/workspace/diff.js';
import { loadChangeSet } from '../../src/workspace/manifest.js';
import { AttackCell } from './harness.js';

const SECRET = 'API_KEY=hunter2\n';
const GIT =
  'export HOME=/tmp; git config --global safe.directory "*"; git config --global user.email a@x; git config --global user.name Agent; ';

function gitInit(dir: string): void {
  const g = (...a: string[]) => execFileSync('git', ['-C', dir, ...a], { stdio: 'pipe' });
  g('init', '-q', '-b', 'main');
  g('-c', 'user.email=u@x', '-c', 'user.name=User', 'add', '-A');
  g('-c', 'user.email=u@x', '-c', 'user.name=User', 'commit', '-qm', 'init');
}

async function withRepo(
  script: string,
  check: (c: AttackCell, out: string, dir: string) => Promise<void> | void,
  prepare?: (project: string) => void,
) {
  const c = await AttackCell.start({
    files: { 'README.md': 'hello\n', '.env': SECRET, 'keys/deploy.pem': 'PEM\n' },
    prepare: (p) => {
      prepare?.(p);
      gitInit(p);
    },
  });
  try {
    const r = await c.sh(GIT + script);
    await c.end();
    const dir = path.join(c.sb.stateRoot, 'changes', c.taskId);
    await check(c, r.stdout + r.stderr, dir);
    // Whatever happened, the user's secrets are where they were.
    expect(fs.readFileSync(path.join(c.project, '.env'), 'utf8')).toBe(SECRET);
    expect(fs.readFileSync(path.join(c.project, 'keys/deploy.pem'), 'utf8')).toBe('PEM\n');
  } finally {
    await c.dispose();
  }
}

const headTree = (project: string) =>
  execFileSync('git', ['-C', project, 'ls-tree', '-r', '--name-only', 'HEAD'], {
    encoding: 'utf8',
  });

describe.concurrent('git against hidden files', () => {
  it('GIT-01 add -A, commit -a, stash, checkout, reset --hard and rm of another file never delete a hidden file', async () => {
    await withRepo(
      [
        'git status --porcelain; echo STATUS-END',
        'echo edit >> README.md; git add -A; git commit -qam edit',
        'echo more >> README.md; git stash -q; git stash pop -q; git commit -qam more',
        'git checkout -qb side; git reset -q --hard main; git rm -q README.md; git commit -qm rm',
        'git checkout -q main; git merge -q side; git ls-tree -r --name-only HEAD',
      ].join('\n'),
      (c, out, dir) => {
        expect(out.split('STATUS-END')[0]!.trim()).toBe('');
        expect(out).toMatch(/^\.env$/m);
        expect(out).toMatch(/^keys\/deploy\.pem$/m);
        const diff = renderDiff(dir, c.project);
        expect(diff).toMatch(/commit [0-9a-f]{12} {2}Agent <a@x> {2}rm/);
        expect(diff).toMatch(/deletes README\.md/);
        expect(diff).not.toMatch(/\.env|deploy\.pem/);
        expect(diff).not.toMatch(/diff --nanocell a\/\.git\//);
      },
    );
  });

  it('GIT-02 clears skip-worktree on purpose and commits the deletion: flagged in diff and report, refused by apply', async () => {
    await withRepo(
      'git update-index --no-skip-worktree .env keys/deploy.pem && git add -A && git commit -qm "tidy up"',
      async (c, _out, dir) => {
        const diff = renderDiff(dir, c.project);
        expect(diff).toMatch(/deletes \.env {3}<- hidden from the cell/);
        expect(diff).toMatch(/deletes keys\/deploy\.pem {3}<- hidden from the cell/);
        const ev = c
          .events()
          .filter((e) => e.type === 'fs.change')
          .map((e) => (e as { path: string }).path);
        expect(ev.some((p) => p.startsWith('.git: deletes .env'))).toBe(true);
        expect(ev.some((p) => p.startsWith('.git/objects/'))).toBe(false);
        const before = headTree(c.project);
        expect(() => applyChangeSet(dir, c.project, { skipRefused: true, force: true })).toThrow(
          /git history touches 2 path\(s\) hidden from the cell/,
        );
        expect(headTree(c.project)).toBe(before);
        await c.execRecorded('update-index');
      },
    );
  });

  it('GIT-03 rebuilds the index from scratch (rm .git/index; read-tree; force-remove) to stage the deletion: flagged and refused', async () => {
    await withRepo(
      'rm -f .git/index && git reset -q && git add -A && git commit -qm a; git update-index --force-remove keys/deploy.pem; git commit -qm b',
      (c, _out, dir) => {
        const diff = renderDiff(dir, c.project);
        expect(diff).toMatch(/deletes \.env {3}<- hidden/);
        expect(diff).toMatch(/deletes keys\/deploy\.pem {3}<- hidden/);
        expect(() => applyChangeSet(dir, c.project, { skipRefused: true, force: true })).toThrow(
          /hidden from the cell/,
        );
      },
    );
  });

  it('GIT-04 reads a hidden file through git: only what history holds, with a notice; the working copy stays unreadable', async () => {
    await withRepo(
      [
        'cat .env 2>&1; echo CAT-END',
        'git show HEAD:.env; git cat-file -p "$(git rev-parse HEAD:keys/deploy.pem)"',
        'git checkout-index -f .env 2>&1; git restore .env 2>&1; ls -a',
      ].join('\n'),
      (c, out) => {
        // The cell cannot see the working copy; committed content is readable (documented).
        expect(out.split('CAT-END')[0]).toMatch(/No such file/);
        expect(out).toContain('API_KEY=hunter2');
        const notice = c
          .events()
          .find((e) => e.type === 'policy.degraded' && e.control === 'workspace-git-history');
        expect(notice, 'a workspace-git-history notice').toBeDefined();
        expect((notice as { reason: string }).reason).toMatch(
          /2 hidden path\(s\) are tracked by git/,
        );
      },
    );
  });

  it('GIT-05 plants git settings that would run programs on the host: nanocell diff runs none', async () => {
    const sentinel = `/var/tmp/nanocell-tests/git05-${process.pid}-${Date.now()}`;
    const evil = `touch ${sentinel}`;
    await withRepo(
      [
        // The repository's config is read-only in the cell; a nested repository's is refused.
        `git config core.fsmonitor "${evil}" 2>&1; echo CFG-RC=$?`,
        `mkdir -p sub && git -C sub init -q && git -C sub config core.fsmonitor "${evil}"`,
        `git -C sub config core.pager "${evil}"; git -C sub config diff.evil.textconv "${evil}"`,
        `git -C sub config filter.evil.smudge "${evil}"; printf '* diff=evil filter=evil\\n' > sub/.gitattributes`,
        'echo x > sub/f; git -C sub add -A; git -C sub commit -qm sub',
        `printf '* diff=evil filter=evil\\n' > .gitattributes; printf '[diff "evil"]\\n\\ttextconv = ${evil}\\n' > .git/config.local`,
        'echo y >> README.md; git add -A; git commit -qm attrs',
      ].join('\n'),
      (c, out, dir) => {
        expect(out).toMatch(/CFG-RC=[1-9]/);
        const { manifest } = loadChangeSet(dir);
        expect(manifest.refused.map((r) => r.path)).toContain('sub/.git/config');
        const diff = renderDiff(dir, c.project);
        expect(diff).toMatch(/git history of sub\/\.git/);
        expect(diff).toMatch(/commit [0-9a-f]{12} {2}Agent <a@x> {2}attrs/);
        expect(fs.existsSync(sentinel), 'a program planted by the cell ran on the host').toBe(
          false,
        );
      },
    );
  });

  it('GIT-06 a nested repository with its own hidden secret: add -A there keeps it too', async () => {
    await withRepo(
      'cd vendor/lib && git status --porcelain && echo v2 > lib.js && git add -A && git commit -qm bump && git ls-tree -r --name-only HEAD',
      (c, out, dir) => {
        expect(out).toMatch(/^\.env$/m);
        const diff = renderDiff(dir, c.project);
        expect(diff).toMatch(/git history of vendor\/lib\/\.git/);
        expect(diff).toMatch(/modifies lib\.js/);
        expect(diff).not.toMatch(/deletes \.env/);
      },
      (p) => {
        fs.mkdirSync(path.join(p, 'vendor/lib'), { recursive: true });
        fs.writeFileSync(path.join(p, 'vendor/lib/lib.js'), 'v1\n');
        fs.writeFileSync(path.join(p, 'vendor/lib/.env'), 'NESTED=1\n');
        gitInit(path.join(p, 'vendor/lib'));
      },
    );
  });
});
