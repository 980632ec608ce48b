// The SDK verbs of a real cell (src/cell/cellVerbs.ts): background processes that run between
// calls and are listed, read, and killed; the change set so far while the cell runs; metadata
// labels checked at create, recorded with the task and matched by `nanocell tasks --label`.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
let cell: Cell | undefined;
beforeEach(() => {
  sb = makeSandbox({ 'README.md': 'hello\n', 'old.txt': 'old\n', 'gone.txt': 'bye\n' });
});
afterEach(async () => {
  await cell?.destroy().catch(() => undefined);
  cell = undefined;
  sb.cleanup();
});

const open = (labels?: Record<string, string>) =>
  Cell.create({
    policy: resolvePolicy(parsePolicy({})),
    workspace: sb.project,
    stateRoot: sb.stateRoot,
    ...(labels ? { labels } : {}),
  });

/** Attaches until `pred` holds of everything read so far (a process's output comes when it comes). */
async function readUntil(c: Cell, id: string, pred: (out: string, running: boolean) => boolean) {
  let out = '';
  for (;;) {
    const r = c.attach(id);
    out += r.stdout;
    if (pred(out, r.running)) return { out, last: r };
    await new Promise((res) => setTimeout(res, 20));
  }
}

describe('background processes', () => {
  it('keep running between calls; attach returns only what is new; kill ends them', async () => {
    cell = await open();
    const { id } = cell.spawn([
      'sh',
      '-c',
      'echo start; while [ ! -f /tmp/go ]; do sleep 0.05; done; echo after-go; exec sleep 1000',
    ]);
    const first = await readUntil(cell, id, (o) => o.includes('start\n'));
    expect(first.out).toBe('start\n');
    // Another call in between: the process is still there, waiting.
    await cell.run(['touch', '/tmp/go']);
    const second = await readUntil(cell, id, (o) => o.includes('after-go'));
    expect(second.out).toBe('after-go\n');
    expect(second.last.running).toBe(true);
    expect(cell.processes()).toMatchObject([
      { id, argv: ['sh', '-c', expect.any(String)], running: true, exitCode: null },
    ]);
    expect(cell.processes()[0]!.startedAt).toBeGreaterThan(0);

    cell.killProcess(id, 9);
    const end = await readUntil(cell, id, (_o, running) => !running);
    expect(end.last.exitCode).toBe(137);
    expect(cell.processes()[0]).toMatchObject({ id, running: false, exitCode: 137 });
    // Killing an ended process is a no-op; an unknown id is a one-line usage error.
    cell.killProcess(id);
    expect(() => cell!.attach('p-nope')).toThrow(/no background process "p-nope"/);
  });

  it('output past the buffer is dropped and marked; the exit code of a finished one is kept', async () => {
    cell = await open();
    const { id } = cell.spawn(['sh', '-c', 'head -c 5000 /dev/zero | tr "\\0" x; exit 3'], {
      bufferBytes: 1000,
    });
    const r = await readUntil(cell, id, (_o, running) => !running);
    expect(r.out).toBe('x'.repeat(1000));
    expect(r.last.truncated).toBe(true);
    expect(r.last.dropped.stdout).toBe(4000);
    expect(r.last.exitCode).toBe(3);
    // Read once: the next attach has nothing new and is not truncated.
    expect(cell.attach(id)).toMatchObject({ stdout: '', truncated: false, running: false });
  });

  it('can keep stdin open and stream live output through the handle', async () => {
    cell = await open();
    const { id } = cell.spawn(['cat'], { stdin: true });
    const { exec } = cell.attach(id);
    const live: Buffer[] = [];
    exec.stdout.on('data', (d: Buffer) => live.push(d));
    exec.stdin.end('typed\n');
    await exec.result;
    await readUntil(cell, id, (_o, running) => !running);
    expect(Buffer.concat(live).toString()).toBe('typed\n');
  });
});

describe('changes()', () => {
  it('summarises the change set so far while the cell runs, in a dir removed at destroy', async () => {
    cell = await open();
    await cell.run(['sh', '-c', 'echo new > new.txt; echo changed > old.txt; rm gone.txt']);
    const c = await cell.changes();
    expect(c).toMatchObject({
      status: 'ok',
      added: ['new.txt'],
      modified: ['old.txt'],
      deleted: ['gone.txt'],
      refused: [],
    });
    expect(fs.existsSync(path.join(c!.dir, 'manifest.json'))).toBe(true);
    // Still running: a later call sees a later state, and the earlier preview is gone.
    await cell.run(['sh', '-c', 'echo more > more.txt']);
    const d = await cell.changes();
    expect(d!.added.sort()).toEqual(['more.txt', 'new.txt']);
    expect(fs.existsSync(c!.dir)).toBe(false);
    // Calls at once are taken one after the other: the last one's dir is the one kept.
    const [x, y] = await Promise.all([cell.changes(), cell.changes()]);
    expect(x!.dir).not.toBe(y!.dir);
    expect(y!.added.sort()).toEqual(['more.txt', 'new.txt']);
    expect(fs.existsSync(path.join(y!.dir, 'manifest.json'))).toBe(true);
    expect(fs.existsSync(x!.dir)).toBe(false);
    // The project itself is untouched until the change set is applied.
    expect(fs.existsSync(path.join(sb.project, 'new.txt'))).toBe(false);
    await cell.destroy();
    expect(fs.existsSync(path.dirname(y!.dir))).toBe(false);
    cell = undefined;
  });
});

describe('labels', () => {
  it('are readable, recorded with the task and matched by `nanocell tasks --label`', async () => {
    cell = await open({ 'agent.run': 'r-42', ticket: 'NC-16' });
    expect(cell.labels).toEqual({ 'agent.run': 'r-42', ticket: 'NC-16' });
    const labelled = cell.taskId;
    await cell.destroy();
    cell = await open();
    const plain = cell.taskId;
    await cell.destroy();
    cell = undefined;
    const tasks = (...args: string[]) =>
      (
        JSON.parse(nanocell(['tasks', '--json', ...args], { stateRoot: sb.stateRoot }).stdout) as {
          id: string;
          labels: Record<string, string>;
        }[]
      ).map((t) => [t.id, t.labels]);
    expect(tasks()).toEqual([
      [plain, {}],
      [labelled, { 'agent.run': 'r-42', ticket: 'NC-16' }],
    ]);
    expect(tasks('--label', 'ticket=NC-16')).toEqual([
      [labelled, { 'agent.run': 'r-42', ticket: 'NC-16' }],
    ]);
    expect(tasks('--label', 'ticket=NC-16', '--label', 'agent.run=r-41')).toEqual([]);
    const bad = nanocell(['tasks', '--label', 'no-equals'], { stateRoot: sb.stateRoot });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/labels: "no-equals" is not k=v/);
  });

  it('are checked before anything starts, with one-line errors', async () => {
    await expect(open({ 'bad key': 'x' })).rejects.toThrow(/labels: key "bad key"/);
    await expect(open({ k: 'two\nlines' })).rejects.toThrow(/not one line/);
    await expect(open({ k: 'v'.repeat(257) })).rejects.toThrow(/longer than 256/);
    const many = Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, 'v']));
    await expect(open(many)).rejects.toThrow(/33 labels, more than 32/);
    expect(fs.existsSync(path.join(sb.stateRoot, 'nanocell.db'))).toBe(false);
  });
});
