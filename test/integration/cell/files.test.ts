// cell.files on real cells: the workspace as the task sees it, without a process in the cell.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { leftovers, makeSandbox, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
let cell: Cell | undefined;
beforeEach(() => {
  sb = makeSandbox({
    'notes.txt': 'one\n',
    'src/a.ts': 'export const a = 1;\n',
    'secret.env': 'TOKEN=hunter2\n',
    'locked/keep.txt': 'do not touch\n',
  });
});
afterEach(async () => {
  await cell?.destroy().catch(() => undefined);
  cell = undefined;
  sb.cleanup();
});

const start = () =>
  Cell.create({
    policy: resolvePolicy(
      parsePolicy({ workspace: { exclude: ['secret.env'], protected: ['locked'] } }),
    ),
    workspace: sb.project,
    stateRoot: sb.stateRoot,
  });

describe('cell.files', () => {
  it('reads, writes, lists, stats, makes and removes what the task sees', async () => {
    cell = await start();
    const f = cell.files;
    await cell.run(['sh', '-c', 'echo from-task > made.txt']);
    expect((await f.read('made.txt')).content.toString()).toBe('from-task\n');
    expect((await f.read(`${sb.project}/notes.txt`)).content.toString()).toBe('one\n');

    await f.write('out/deep/new.txt', 'from-files\n', { parents: true });
    const seen = await cell.run([
      'sh',
      '-c',
      'cat out/deep/new.txt; stat -c %u:%g out/deep/new.txt out',
    ]);
    expect(seen.stdout).toBe('from-files\n1000:1000\n1000:1000\n');
    // Copy on write: the project itself is untouched until apply.
    expect(fs.existsSync(path.join(sb.project, 'out'))).toBe(false);

    await f.write('notes.txt', 'replaced\n');
    expect((await cell.run(['cat', 'notes.txt'])).stdout).toBe('replaced\n');

    const capped = await f.read('src/a.ts', { maxBytes: 6 });
    expect(capped).toMatchObject({ size: 20, truncated: true });
    expect(capped.content.toString()).toBe('export');

    const { entries, truncated } = await f.list('');
    expect(truncated).toBe(false);
    expect(entries.map((e) => e.name)).toEqual(['locked', 'made.txt', 'notes.txt', 'out', 'src']);
    expect(entries.find((e) => e.name === 'src')?.type).toBe('dir');
    expect((await f.list('', { maxEntries: 2 })).truncated).toBe(true);
    expect(await f.stat('src/a.ts')).toMatchObject({ path: 'src/a.ts', type: 'file', size: 20 });

    await f.mkdir('empty');
    expect((await cell.run(['test', '-d', 'empty'])).exitCode).toBe(0);
    await f.remove('out', { recursive: true });
    await f.remove('empty');
    await expect(f.remove('src')).rejects.toThrow(/not empty/);
    expect((await cell.run(['sh', '-c', 'ls'])).stdout).toBe('locked\nmade.txt\nnotes.txt\nsrc\n');
  });

  it('refuses paths outside the workspace, however they are spelled or linked', async () => {
    cell = await start();
    const f = cell.files;
    await cell.run([
      'sh',
      '-c',
      'ln -s /etc/passwd abs; ln -s ../../../../../etc up; ln -s /etc etcdir; ' +
        `ln -s notes.txt alias; ln -s ${sb.project}/src srcdir; ln -s loop1 loop2; ln -s loop2 loop1`,
    ]);
    for (const p of ['../x', '/etc/passwd', 'src/../../x', 'abs', 'up/passwd', 'etcdir/passwd']) {
      await expect(f.read(p), p).rejects.toThrow(/outside the cell's workspace/);
    }
    await expect(f.write('etcdir/nanocell-escape', 'x')).rejects.toThrow(/outside/);
    await expect(f.write('up/nanocell-escape', 'x')).rejects.toThrow(/outside/);
    expect(fs.existsSync('/etc/nanocell-escape')).toBe(false);
    await expect(f.read('loop1')).rejects.toThrow(/too many symlinks/);

    // Links that stay inside resolve like the task's own lookups.
    expect((await f.read('alias')).content.toString()).toBe('one\n');
    expect((await f.read('srcdir/a.ts')).content.toString()).toBe('export const a = 1;\n');
    expect(await f.stat('abs')).toMatchObject({ type: 'symlink' });
    // Removing a link removes the link, never its target.
    await f.remove('etcdir');
    expect(fs.existsSync('/etc/passwd')).toBe(true);
  });

  it('keeps excluded secrets invisible and protected paths read-only', async () => {
    cell = await start();
    const f = cell.files;
    await expect(f.read('secret.env')).rejects.toThrow(/no such file/);
    await expect(f.stat('secret.env')).rejects.toThrow(/no such file/);
    expect((await f.list('')).entries.map((e) => e.name)).not.toContain('secret.env');
    await expect(f.write('locked/keep.txt', 'changed')).rejects.toThrow(/read-only in the cell/);
    await expect(f.remove('locked/keep.txt')).rejects.toThrow(/read-only in the cell/);
    expect((await f.read('locked/keep.txt')).content.toString()).toBe('do not touch\n');
  });

  it('refuses once the cell has ended, and leaves nothing behind', async () => {
    const c = await start();
    const base = c.hostUidBase!;
    await c.destroy();
    await expect(c.files.read('notes.txt')).rejects.toThrow(/the cell has ended/);
    expect(leftovers(sb.stateRoot, [base])).toMatchObject({ cells: [], mounts: [], slots: [] });
  });
});
