// What the report says about the workspace (issue 13 D): new symlinks are counted as symlinks,
// written files carry their size, and a task that fills the disk cap is told so (limit.hit
// `disk`); apply and discard speak JSON too. Through the real CLI and a real cell.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
beforeEach(() => {
  sb = makeSandbox({ 'README.md': 'hello\n' });
});
afterEach(() => sb.cleanup());

function lastTask(): string {
  const r = nanocell(['tasks', '--json'], { stateRoot: sb.stateRoot });
  const rows = JSON.parse(r.stdout) as { id: string }[];
  return rows[0]!.id;
}

function events(id: string): Record<string, unknown>[] {
  const r = nanocell(['logs', id, '--json'], { stateRoot: sb.stateRoot });
  return r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('report facts', () => {
  it('counts new symlinks as symlinks and gives written files their size', () => {
    const run = nanocell(
      ['run', '--', 'sh', '-c', 'ln -s README.md a; ln -s /etc b; printf 12345 > five'],
      { cwd: sb.project, stateRoot: sb.stateRoot },
    );
    expect(run.status, run.stderr).toBe(0);
    const id = lastTask();
    const changes = events(id).filter((e) => e.type === 'fs.change');
    expect(changes.map((e) => [e.path, e.kind, e.size]).sort()).toEqual([
      ['a', 'symlink', undefined],
      ['b', 'symlink', undefined],
      ['five', 'added', 5],
    ]);
    const report = nanocell(['report', id], { stateRoot: sb.stateRoot }).stdout;
    expect(report).toContain('1 added, 0 modified, 0 deleted, 0 mode changes, 2 symlinks');
    expect(report).not.toMatch(/hit +disk/);
  });

  it('says when the disk cap was hit', () => {
    const run = nanocell(
      ['run', '--disk', '8m', '--', 'sh', '-c', 'head -c 20000000 /dev/zero > big; echo rc=$?'],
      { cwd: sb.project, stateRoot: sb.stateRoot },
    );
    expect(run.stdout).toMatch(/rc=1/);
    const id = lastTask();
    const hit = events(id).find((e) => e.type === 'limit.hit' && e.limit === 'disk');
    expect(hit?.detail).toMatch(/used up 8\.0 MiB of space \(limits\.disk\)/);
    const report = nanocell(['report', id], { stateRoot: sb.stateRoot }).stdout;
    expect(report).toMatch(/hit +disk: the workspace used up 8\.0 MiB/);
  });

  it('apply and discard print JSON with --json', () => {
    const mk = (file: string) =>
      nanocell(['run', '--', 'sh', '-c', `echo x > ${file}`], {
        cwd: sb.project,
        stateRoot: sb.stateRoot,
      });
    expect(mk('one.txt').status).toBe(0);
    const first = lastTask();
    const applied = nanocell(['apply', first, '--json'], { stateRoot: sb.stateRoot });
    expect(applied.status, applied.stderr).toBe(0);
    expect(JSON.parse(applied.stdout)).toMatchObject({
      task: first,
      applied: 1,
      bytes: 2,
      skipped: [],
      forced: [],
    });
    expect(mk('two.txt').status).toBe(0);
    const second = lastTask();
    const discarded = nanocell(['discard', second, '--json'], { stateRoot: sb.stateRoot });
    expect(JSON.parse(discarded.stdout)).toEqual({ task: second, discarded: true });
  });
});
