// The Cell library API without the CLI (issue 13 D): a normal destroy() reports `exited`,
// run() returns the exact bytes when asked for a buffer, and a library cell is recorded in the
// audit store like a CLI task, so the CLI's audit and change-set verbs see it.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
let cell: Cell | undefined;
beforeEach(() => {
  sb = makeSandbox({ 'README.md': 'hello\n' });
});
afterEach(async () => {
  await cell?.destroy().catch(() => undefined);
  cell = undefined;
  sb.cleanup();
});

const open = () =>
  Cell.create({
    policy: resolvePolicy(parsePolicy({})),
    workspace: sb.project,
    stateRoot: sb.stateRoot,
  });

describe('library cells', () => {
  it('destroy() after a normal run reports exited, not killed', async () => {
    cell = await open();
    const r = await cell.run(['true']);
    expect(r.exitCode).toBe(0);
    const summary = await cell.destroy();
    expect(summary.endReason).toBe('exited');
  });

  it('a cell killed before destroy() still reports killed', async () => {
    cell = await open();
    await cell.kill('killed');
    expect((await cell.destroy()).endReason).toBe('killed');
  });

  it("run() with encoding 'buffer' returns stdout and stderr as the exact bytes", async () => {
    cell = await open();
    const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x80, 0x41, 0xc3]);
    const r = await cell.run(['sh', '-c', 'cat; printf "\\377" >&2'], {
      input: bytes,
      encoding: 'buffer',
    });
    expect(Buffer.isBuffer(r.stdout)).toBe(true);
    expect(r.stdout.equals(bytes)).toBe(true);
    expect([...r.stderr]).toEqual([0xff]);
    // The default stays text, where those bytes would be replaced.
    const t = await cell.run(['cat'], { input: bytes });
    expect(typeof t.stdout).toBe('string');
    expect(t.stdout).toContain('\ufffd');
  });
});

interface TaskJson {
  id: string;
  status: string;
  endReason: string | null;
  exitCode: number | null;
  command: string[];
  report: { changeSetFate?: { action: string }; events: { execs: number } } | null;
}

const cli = (args: string[]) => nanocell(args, { stateRoot: sb.stateRoot, cwd: sb.project });
const tasks = () => JSON.parse(cli(['tasks', '--json']).stdout) as TaskJson[];

describe('library cells in the audit store', () => {
  it('get a task row, their events, their end and their change set, as CLI tasks do', async () => {
    cell = await open();
    // The row exists from the start: `nanocell ps`/`tasks` see a running library cell.
    expect(tasks()).toMatchObject([{ id: cell.taskId, status: 'running', command: [] }]);
    expect((await cell.run(['sh', '-c', 'echo new > made.txt; cat README.md'])).stdout).toBe(
      'hello\n',
    );
    await cell.destroy();
    const [t] = tasks();
    expect(t).toMatchObject({ id: cell.taskId, status: 'exited', endReason: 'exited' });
    expect(t!.exitCode).toBeNull();
    expect(t!.report!.changeSetFate).toEqual({ action: 'kept' });
    expect(t!.report!.events.execs).toBeGreaterThan(0);

    const report = JSON.parse(cli(['report', cell.taskId, '--json']).stdout) as Record<
      string,
      unknown
    >;
    expect(JSON.stringify(report)).toContain('/bin/cat');
    const log = cli(['logs', cell.taskId]).stdout;
    expect(log).toMatch(/task\.started/);
    expect(log).toMatch(/task\.exited/);
    const verify = cli(['verify', cell.taskId]);
    expect(verify.status, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/hash chain intact/);
    // The change set waits for review like a CLI task's, and applies the same way.
    expect(cli(['diff', cell.taskId]).stdout).toContain('made.txt');
    expect(cli(['apply', cell.taskId]).status).toBe(0);
    expect(fs.readFileSync(path.join(sb.project, 'made.txt'), 'utf8')).toBe('new\n');
    expect(fs.existsSync(path.join(sb.stateRoot, 'reports', `${cell.taskId}.json`))).toBe(true);
    cell = undefined;
  });

  it('a cell with no changes records the fate none; a killed one records killed', async () => {
    cell = await open();
    await cell.run(['true']);
    const quiet = cell.taskId;
    await cell.destroy();
    cell = await open();
    await cell.kill('killed');
    await cell.destroy();
    const byId = new Map(tasks().map((t) => [t.id, t]));
    expect(byId.get(quiet)?.report?.changeSetFate).toEqual({ action: 'none' });
    expect(byId.get(cell.taskId)).toMatchObject({ status: 'exited', endReason: 'killed' });
    cell = undefined;
  });

  it('a cell refused before it starts leaves no task row (nothing changed on the host)', async () => {
    await expect(
      Cell.create({
        policy: resolvePolicy(parsePolicy({})),
        workspace: path.join(sb.project, 'no-such-dir'),
        stateRoot: sb.stateRoot,
      }),
    ).rejects.toThrow(/no-such-dir/);
    expect(fs.existsSync(path.join(sb.stateRoot, 'nanocell.db'))).toBe(false);
  });

  it('record: false leaves the record to the caller (runTask keeps its own)', async () => {
    cell = await Cell.create({
      policy: resolvePolicy(parsePolicy({})),
      workspace: sb.project,
      stateRoot: sb.stateRoot,
      record: false,
    });
    await cell.run(['true']);
    await cell.destroy();
    expect(tasks()).toEqual([]);
    cell = undefined;
  });
});
