// Apply on a project that moved on since the task started: a three-way merge per file, clean
// merges applied, any conflict left refusing the whole apply with the project unchanged.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';
import { snapshot } from '../workspace/helpers.js';

const lines = (n: number, tag = '') =>
  Array.from({ length: n }, (_, i) => `line ${i + 1}${tag}`).join('\n') + '\n';
let sb: Sandbox | undefined;
afterEach(() => sb?.cleanup());

function taskEditing(script: string): string {
  sb = makeSandbox({ 'f.txt': lines(10), 'g.txt': lines(10), 'other.txt': 'x\n' });
  const r = nanocell(['run', '--quiet', '--workspace', sb.project, '--', 'sh', '-c', script], {
    stateRoot: sb.stateRoot,
  });
  expect(r.status).toBe(0);
  return /change set ([0-9a-z]+)/.exec(r.stderr)![1]!;
}

const editLine = (file: string, n: number, text: string) => {
  const all = fs.readFileSync(file, 'utf8').split('\n');
  all[n - 1] = text;
  fs.writeFileSync(file, all.join('\n'));
};

describe('apply onto a project that moved on', () => {
  it('merges each file three ways when the edits do not overlap', () => {
    const task = taskEditing("sed -i 's/^line 2$/task 2/' f.txt g.txt && echo new > n.txt");
    const f = path.join(sb!.project, 'f.txt');
    editLine(f, 9, 'host 9');
    const r = nanocell(['apply', task], { stateRoot: sb!.stateRoot });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('merged f.txt three ways');
    expect(fs.readFileSync(f, 'utf8')).toBe(
      lines(10).replace('line 2\n', 'task 2\n').replace('line 9\n', 'host 9\n'),
    );
    expect(fs.readFileSync(path.join(sb!.project, 'g.txt'), 'utf8')).toContain('task 2\n');
    expect(fs.readFileSync(path.join(sb!.project, 'n.txt'), 'utf8')).toBe('new\n');
  });

  it('reports every conflicted file and leaves the project unchanged', () => {
    const task = taskEditing("sed -i 's/^line 5$/task 5/' f.txt g.txt && echo new > n.txt");
    editLine(path.join(sb!.project, 'f.txt'), 5, 'host 5');
    editLine(path.join(sb!.project, 'g.txt'), 5, 'host five');
    const before = snapshot(sb!.project);
    const r = nanocell(['apply', task], { stateRoot: sb!.stateRoot });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(
      /three-way merge left conflicts in 2 file\(s\): f\.txt, g\.txt; the project is unchanged/,
    );
    expect(snapshot(sb!.project)).toEqual(before);
    // The change set is still there, for a --force or a discard.
    expect(nanocell(['diff', task], { stateRoot: sb!.stateRoot }).stdout).toContain('n.txt');
  });
});
