// Change sets that speak git: `diff --format git` is a patch `git apply` takes (binary files
// included), and `apply --branch` commits onto a new branch without touching the work tree,
// the index or HEAD.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
const g = (cwd: string, ...args: string[]) =>
  execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@t', ...args], {
    cwd,
    encoding: 'utf8',
  });
const sha = (f: string) => createHash('sha256').update(fs.readFileSync(f)).digest('hex');

beforeAll(() => {
  sb = makeSandbox({ 'a.txt': 'one\ntwo\n', 'd.txt': 'del\n', 'run.sh': 'echo\n' });
  fs.writeFileSync(path.join(sb.project, 'bin.dat'), Buffer.from([0, 1, 2, 3, 0, 255]));
  g(sb.project, 'init', '-q');
  g(sb.project, 'add', '.');
  g(sb.project, 'commit', '-qm', 'init');
});
afterAll(() => sb.cleanup());

const edit =
  'echo three >> a.txt; rm d.txt; printf "\\000\\001new" > bin.dat; printf "\\000\\377" > new.bin; ' +
  'chmod +x run.sh; mkdir -p sub; echo s > sub/s.txt; ln -s a.txt link';

function runTask(session: string, script: string, extra: string[] = []): string {
  const r = nanocell(
    [
      'run',
      '--quiet',
      '--workspace',
      sb.project,
      '--session',
      session,
      ...extra,
      '--',
      'sh',
      '-c',
      script,
    ],
    { stateRoot: sb.stateRoot },
  );
  expect(r.status).toBe(0);
  return /change set ([0-9a-z]+)/.exec(r.stderr)![1]!;
}

describe('git formats', () => {
  it('diff --format git applies with git apply, binary files included', () => {
    const task = runTask('g1', edit);
    const patch = nanocell(['diff', '--format', 'git', task], { stateRoot: sb.stateRoot });
    expect(patch.status).toBe(0);
    expect(patch.stdout).toMatch(/^# nanocell: change set of task/);
    expect(patch.stdout).toContain('GIT binary patch');
    const file = path.join(path.dirname(sb.project), 'p.patch');
    fs.writeFileSync(file, patch.stdout);
    g(sb.project, 'apply', '--check', file);
    // Applied to a clone, it gives exactly the task's files.
    const clone = path.join(path.dirname(sb.project), 'clone');
    g(path.dirname(sb.project), 'clone', '-q', sb.project, clone);
    g(clone, 'apply', '--binary', file);
    expect(fs.readFileSync(path.join(clone, 'a.txt'), 'utf8')).toBe('one\ntwo\nthree\n');
    expect(fs.existsSync(path.join(clone, 'd.txt'))).toBe(false);
    expect([...fs.readFileSync(path.join(clone, 'bin.dat'))]).toEqual([0, 1, 110, 101, 119]);
    expect([...fs.readFileSync(path.join(clone, 'new.bin'))]).toEqual([0, 255]);
    expect(fs.statSync(path.join(clone, 'run.sh')).mode & 0o111).not.toBe(0);
    expect(fs.readlinkSync(path.join(clone, 'link'))).toBe('a.txt');
    expect(fs.readFileSync(path.join(clone, 'sub/s.txt'), 'utf8')).toBe('s\n');
    nanocell(['discard', task], { stateRoot: sb.stateRoot });
  });

  it('apply --branch commits onto a new branch; work tree, index and HEAD stay as they were', () => {
    const task = runTask('g2', edit);
    const head = g(sb.project, 'rev-parse', 'HEAD').trim();
    const index = sha(path.join(sb.project, '.git', 'index'));
    const r = nanocell(['apply', '--branch', 'nc/try', task], { stateRoot: sb.stateRoot });
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^committed \d+ change\(s\) to branch nc\/try as [0-9a-f]{40}/);
    expect(g(sb.project, 'rev-parse', 'HEAD').trim()).toBe(head);
    expect(sha(path.join(sb.project, '.git', 'index'))).toBe(index);
    expect(g(sb.project, 'status', '--porcelain')).toBe('');
    expect(fs.readFileSync(path.join(sb.project, 'a.txt'), 'utf8')).toBe('one\ntwo\n');
    const log = g(sb.project, 'log', '--format=%P%n%B', '-1', 'nc/try');
    expect(log.split('\n')[0]).toBe(head);
    expect(log).toContain(`nanocell: task ${task}`);
    expect(log).toContain(`Task: ${task}`);
    expect(log).toContain('Command: ["sh","-c","echo three >> a.txt;');
    expect(g(sb.project, 'show', 'nc/try:a.txt')).toBe('one\ntwo\nthree\n');
    expect(
      g(sb.project, 'ls-tree', 'nc/try')
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t')[1])
        .sort(),
    ).toEqual(['a.txt', 'bin.dat', 'link', 'new.bin', 'run.sh', 'sub']);
    expect(g(sb.project, 'ls-tree', 'nc/try', 'run.sh')).toMatch(/^100755 /);
    expect(g(sb.project, 'ls-tree', 'nc/try', 'link')).toMatch(/^120000 /);
    // A branch that exists is refused, and nothing moves.
    const again = nanocell(['apply', '--branch', 'nc/try', task], { stateRoot: sb.stateRoot });
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/branch nc\/try exists/);
    nanocell(['discard', task], { stateRoot: sb.stateRoot });
  });

  it('apply --session --branch commits a stacked session as one commit', () => {
    const t1 = runTask('g3', 'echo first > f1.txt');
    const t2 = runTask('g3', 'cat f1.txt > f2.txt', ['--from', 'last']);
    const r = nanocell(['apply', '--session', 'g3', '--branch', 'nc/session'], {
      stateRoot: sb.stateRoot,
    });
    expect(r.status).toBe(0);
    expect(g(sb.project, 'show', 'nc/session:f2.txt')).toBe('first\n');
    const body = g(sb.project, 'log', '--format=%B', '-1', 'nc/session');
    expect(body).toContain(`Task: ${t1}`);
    expect(body).toContain(`Task: ${t2}`);
    expect(fs.existsSync(path.join(sb.project, 'f1.txt'))).toBe(false);
  });
});
