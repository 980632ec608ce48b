// Checkpoints and forks: five cells started in parallel from one checkpoint, each changing the
// same file its own way, each diff showing only its own change, and the best one applied with
// the chain below it; a damaged checkpoint refused.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { CLI, leftovers, makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
beforeAll(() => {
  sb = makeSandbox({ 'f.txt': 'original\n' });
});
afterAll(() => sb.cleanup());

const runArgs = (session: string, extra: string[], script: string) => [
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
];

function runAsync(args: string[]): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('node', [CLI, ...args], {
      env: { ...process.env, NANOCELL_STATE_ROOT: sb.stateRoot },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('close', (code) => resolve({ status: code ?? 137, stdout, stderr }));
  });
}

describe('checkpoints', () => {
  it('forks 5 cells from one checkpoint; each diff shows only its own change', async () => {
    const base = nanocell(runArgs('forks', [], 'echo prepared > f.txt; echo dep > dep.txt'), {
      stateRoot: sb.stateRoot,
    });
    expect(base.status).toBe(0);
    const t1 = /change set ([0-9a-z]+)/.exec(base.stderr)![1]!;
    const ck = nanocell(['checkpoint', t1], { stateRoot: sb.stateRoot });
    expect(ck.status).toBe(0);
    const id = /checkpoint (ck[0-9a-z]+)/.exec(ck.stdout)![1]!;
    expect(nanocell(['sessions'], { stateRoot: sb.stateRoot }).stdout).toContain(
      `checkpoint ${id}`,
    );

    const forks = await Promise.all(
      [1, 2, 3, 4, 5].map((i) =>
        runAsync(runArgs('forks', ['--from', id], `cat f.txt dep.txt; echo fork ${i} > f.txt`)),
      ),
    );
    const tasks = forks.map((r) => {
      expect(r.stderr).toMatch(/change set/);
      expect(r.status).toBe(0);
      // Each started from the checkpoint, not from a sibling.
      expect(r.stdout).toBe('prepared\ndep\n');
      return /change set ([0-9a-z]+)/.exec(r.stderr)![1]!;
    });
    for (const [k, t] of tasks.entries()) {
      const m = JSON.parse(nanocell(['diff', '--json', t], { stateRoot: sb.stateRoot }).stdout);
      expect(m.entries.map((e: { path: string }) => e.path)).toEqual(['f.txt']);
      expect(m.stack).toEqual([t1]);
      const d = nanocell(['diff', t], { stateRoot: sb.stateRoot }).stdout;
      expect(d).toContain(`+fork ${k + 1}`);
      for (const other of [1, 2, 3, 4, 5].filter((i) => i !== k + 1))
        expect(d).not.toContain(`fork ${other}`);
    }
    // The project is untouched, and nothing of the cells is left.
    expect(fs.readFileSync(path.join(sb.project, 'f.txt'), 'utf8')).toBe('original\n');
    expect(leftovers(sb.stateRoot)).toMatchObject({ cells: [], mounts: [], slots: [] });

    // Keep the best: the chain that ends in fork 3 (the checkpoint's task, then the fork).
    const d3 = nanocell(['diff', '--session', 'forks', tasks[2]!], { stateRoot: sb.stateRoot });
    expect(d3.stdout).toContain('+fork 3');
    expect(d3.stdout).toContain('+dep');
    const a = nanocell(['apply', '--session', 'forks', tasks[2]!], { stateRoot: sb.stateRoot });
    expect(a.status, a.stderr).toBe(0);
    expect(fs.readFileSync(path.join(sb.project, 'f.txt'), 'utf8')).toBe('fork 3\n');
    expect(fs.readFileSync(path.join(sb.project, 'dep.txt'), 'utf8')).toBe('dep\n');
    // The other forks stacked on a task that is now applied: refused, with what to do.
    const again = nanocell(['apply', '--session', 'forks', tasks[0]!], {
      stateRoot: sb.stateRoot,
    });
    expect(again.status).not.toBe(0);
    expect(again.stderr).toMatch(/whose change set is gone \(applied or discarded\)/);
    expect(fs.readFileSync(path.join(sb.project, 'f.txt'), 'utf8')).toBe('fork 3\n');
    // The project as the other tests of this file expect it.
    fs.writeFileSync(path.join(sb.project, 'f.txt'), 'original\n');
    fs.rmSync(path.join(sb.project, 'dep.txt'));
  }, 300_000);

  it('refuses a damaged checkpoint and uses nothing of it', () => {
    const base = nanocell(runArgs('dmg', [], 'echo a > a.txt; echo b > b.txt'), {
      stateRoot: sb.stateRoot,
    });
    const t = /change set ([0-9a-z]+)/.exec(base.stderr)![1]!;
    const id = /checkpoint (ck[0-9a-z]+)/.exec(
      nanocell(['checkpoint', t], { stateRoot: sb.stateRoot }).stdout,
    )![1]!;
    const layer = path.join(sb.stateRoot, 'checkpoints', id, 'layers', '0');
    // A planted file, then a changed one: both are refused.
    fs.writeFileSync(path.join(layer, 'extra.txt'), 'planted\n');
    const r = nanocell(runArgs('dmg', ['--from', id], 'cat a.txt'), { stateRoot: sb.stateRoot });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(new RegExp(`checkpoint ${id} is damaged .*nothing of it was used`));
    expect(r.stdout).toBe('');
    fs.rmSync(path.join(layer, 'extra.txt'));
    fs.rmSync(path.join(layer, 'b.txt'));
    fs.writeFileSync(path.join(layer, 'b.txt'), 'B\n');
    const r2 = nanocell(runArgs('dmg', ['--from', id], 'cat a.txt'), { stateRoot: sb.stateRoot });
    expect(r2.stderr).toMatch(/b\.txt in layer 0 differs from its record/);
    expect(leftovers(sb.stateRoot)).toMatchObject({ cells: [], mounts: [], slots: [] });
  });

  it('checkpoints a live cell through the SDK: forks see the state at that moment', async () => {
    const cell = await Cell.create({
      policy: resolvePolicy(parsePolicy({})),
      workspace: sb.project,
      stateRoot: sb.stateRoot,
      session: 'live',
    });
    let id: string;
    try {
      expect((await cell.run(['sh', '-c', 'echo before > live.txt; rm f.txt'])).exitCode).toBe(0);
      id = await cell.checkpoint();
      expect((await cell.run(['sh', '-c', 'echo after > live.txt'])).exitCode).toBe(0);
    } finally {
      await cell.destroy();
    }
    const r = nanocell(
      runArgs(
        'live',
        ['--from', id],
        'cat live.txt; test -e f.txt || echo no-f; echo fork > g.txt',
      ),
      {
        stateRoot: sb.stateRoot,
      },
    );
    expect(r.stdout).toBe('before\nno-f\n');
    expect(r.status).toBe(0);
    const t = /change set ([0-9a-z]+)/.exec(r.stderr)![1]!;
    const m = JSON.parse(nanocell(['diff', '--json', t], { stateRoot: sb.stateRoot }).stdout);
    expect(m.entries.map((e: { path: string }) => e.path)).toEqual(['g.txt']);
    // Its base is in no change set: the session apply refuses rather than drop it.
    const a = nanocell(['apply', t], { stateRoot: sb.stateRoot });
    expect(a.status).not.toBe(0);
    expect(fs.readFileSync(path.join(sb.project, 'f.txt'), 'utf8')).toBe('original\n');
    expect(leftovers(sb.stateRoot)).toMatchObject({ cells: [], mounts: [], slots: [] });
  });
});
