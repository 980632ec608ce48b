// Rootless scope: an unprivileged user's cell hides excluded paths through the same middle
// layer of whiteouts as root mode (absent, not masked), keeps the change set honest about them,
// and warns about files it cannot change because their owner is not mapped into the cell.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeRootlessSandbox, type RootlessSandbox } from '../../helpers/rootless.js';

let sb: RootlessSandbox;
let base: string;
let project: string;
let stateRoot: string;
const asUser = (args: string[]) => sb.asUser(args);

const files: Record<string, string> = {
  'a.txt': 'original\n',
  '.env': 'TOKEN=rootless-secret\n',
  id_rsa: 'PRIVATE KEY\n',
  '.ssh/id_rsa': 'SSH KEY\n',
  '.ssh/known_hosts': 'host\n',
  'src/main.c': 'int main(void) { return 0; }\n',
  'src/.env.local': 'NESTED=secret\n',
  'ro/visible.txt': 'visible\n',
  'ro/.env': 'RO=secret\n',
  'foreign.txt': 'group is root\n',
};

beforeAll(() => {
  sb = makeRootlessSandbox('rootless-scope-', files, (dir) => {
    // A group the user is not in: the cell cannot map it, so the file can be read, not changed.
    execFileSync('chgrp', ['root', path.join(dir, 'foreign.txt')]);
    // A read-only directory holding a hidden file: the whiteout layer must still be writable.
    fs.chmodSync(path.join(dir, 'ro'), 0o555);
  });
  ({ base, project, stateRoot } = sb);
});

afterAll(() => sb?.cleanup());

interface Report {
  taskId: string;
  degradations: { control: string; reason: string }[];
  changes: {
    status: string;
    counts: Record<string, number>;
    changes: { path: string; kind: string; detail?: string }[];
  };
}

describe('rootless workspace scope', () => {
  let out: string;
  let report: Report;

  beforeAll(() => {
    const reportPath = path.join(base, 'report.json');
    const script = [
      'ls -A; echo ---',
      'ls -A .ssh src ro 2>&1; echo ---',
      // Absent, not masked: every one of them is ENOENT, not an empty file or an unreadable dir.
      'for p in .env id_rsa .ssh src/.env.local ro/.env; do stat -c %n "$p" 2>&1; done; echo ---',
      'echo planted > .env && mkdir .ssh && echo planted > .ssh/config && cat .env .ssh/config',
      'echo edit >> a.txt',
      'echo changed >> foreign.txt || echo foreign-refused',
      'cat foreign.txt',
    ].join('\n');
    const r = asUser([
      'run',
      '--quiet',
      '--allow-degraded',
      'cgroups',
      '--allow-degraded',
      'disk-cap',
      '--report',
      reportPath,
      '--',
      'sh',
      '-c',
      script,
    ]);
    expect(r.stderr).not.toMatch(/error/i);
    expect(r.status).toBe(0);
    out = r.stdout;
    report = JSON.parse(fs.readFileSync(reportPath, 'utf8')) as Report;
  });

  it('shows excluded files and directories as absent, not masked', () => {
    const [top, below, stats] = out.split('---\n');
    const names = top!.trim().split('\n');
    expect(names.sort()).toEqual(['a.txt', 'foreign.txt', 'ro', 'src']);
    expect(below).toContain('main.c');
    expect(below).toContain('visible.txt');
    expect(below).toMatch(/\.ssh.*No such file or directory/);
    expect(below).not.toMatch(/\.env/);
    for (const p of ['.env', 'id_rsa', 'src/.env.local', 'ro/.env']) {
      expect(stats).toContain(`cannot statx '${p}': No such file or directory`);
    }
    expect(out).not.toMatch(/secret|PRIVATE KEY|SSH KEY/);
  });

  it('lets the task create a file and a directory where excluded ones are hidden', () => {
    expect(out).toContain('planted\nplanted\n');
  });

  it('removes the cell, read-only whiteout layer dirs included', () => {
    expect(fs.readdirSync(path.join(stateRoot, 'cells'))).toEqual([]);
  });

  it('returns the edit, refuses the recreated excluded paths and reports no deletions', () => {
    expect(report.changes.status).toBe('ok');
    expect(report.changes.counts).toMatchObject({ add: 0, modify: 1, delete: 0, refused: 2 });
    const byPath = Object.fromEntries(report.changes.changes.map((c) => [c.path, c]));
    expect(byPath['a.txt']).toMatchObject({ kind: 'modify' });
    // Same as root mode: the hidden originals are never replaced by what the task wrote.
    expect(byPath['.env']).toMatchObject({
      kind: 'refused',
      detail: 'excluded from the workspace',
    });
    expect(byPath['.ssh']).toMatchObject({
      kind: 'refused',
      detail: 'excluded from the workspace',
    });
  });

  it('warns about in-scope files whose owner the cell cannot map, naming one and the fix', () => {
    expect(out).toContain('foreign-refused');
    expect(out).toContain('group is root\n');
    const w = report.degradations.filter((d) => d.control === 'workspace-owners');
    expect(w).toHaveLength(1);
    expect(w[0]!.reason).toMatch(/^1 workspace file/);
    expect(w[0]!.reason).toContain('e.g. foreign.txt');
    expect(w[0]!.reason).toMatch(/EOVERFLOW/);
    expect(w[0]!.reason).toContain(`chown -R`);
  });

  it('apply refuses the change set as a whole, and with --skip-refused writes only the edit', () => {
    const refused = asUser(['apply', report.taskId]);
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toMatch(/never applied/);
    expect(fs.readFileSync(path.join(project, 'a.txt'), 'utf8')).toBe('original\n');

    const applied = asUser(['apply', '--skip-refused', report.taskId]);
    expect(applied.stderr).toBe('');
    expect(applied.status).toBe(0);
    expect(applied.stdout).toMatch(/skipped \.env: excluded from the workspace/);
    expect(fs.readFileSync(path.join(project, 'a.txt'), 'utf8')).toBe('original\nedit\n');
    for (const [rel, body] of Object.entries(files)) {
      if (rel !== 'a.txt') expect(fs.readFileSync(path.join(project, rel), 'utf8')).toBe(body);
    }
    expect(fs.readdirSync(path.join(project, '.ssh')).sort()).toEqual(['id_rsa', 'known_hosts']);
  });
});

describe('rootless git configuration with credentials', () => {
  it('shows the cell a copy of .git/config without the token, bound read-only', () => {
    const config = '[remote "origin"]\n\turl = https://bob:ROOTLESS-PAT@github.com/a/b.git\n';
    const git = makeRootlessSandbox('rootless-gitcfg-', {
      '.git/config': config,
      '.git/HEAD': 'ref: refs/heads/main\n',
    });
    try {
      const r = git.asUser([
        'run',
        '--quiet',
        '--allow-degraded',
        'cgroups',
        '--allow-degraded',
        'disk-cap',
        '--',
        'sh',
        '-c',
        'cat .git/config; echo x >> .git/config 2>/dev/null || echo read-only',
      ]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).not.toContain('ROOTLESS-PAT');
      expect(r.stdout).toContain('url = https://github.com/a/b.git');
      expect(r.stdout).toContain('read-only');
      expect(fs.readFileSync(path.join(git.project, '.git/config'), 'utf8')).toBe(config);
    } finally {
      git.cleanup();
    }
  });
});
