// Crash recovery with the real CLI: SIGKILL `nanocell run` mid-task; what it recorded stays,
// and the next `nanocell run` or `nanocell gc` marks the task as ended abnormally.
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSandbox, nanocell, spawnNanocell, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
beforeAll(() => {
  sb = makeSandbox();
});
afterAll(() => sb?.cleanup());

const cli = (args: string[]) => nanocell(args, { stateRoot: sb.stateRoot, cwd: sb.project });

interface Event {
  type: string;
  seq: number;
  [k: string]: unknown;
}
const eventsOf = (id: string): Event[] =>
  cli(['export', id])
    .stdout.trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Event);

/** Starts a long task, waits until its exec of `sleep` is in the store, then SIGKILLs the CLI. */
async function crashMidTask(session: string): Promise<string> {
  const child = spawnNanocell(
    ['run', '--quiet', '--session', session, '--', 'sh', '-c', 'unshare -r true; sleep 60'],
    { stateRoot: sb.stateRoot, cwd: sb.project },
  );
  child.stderr.resume();
  const closed = once(child, 'close');
  try {
    for (let i = 0; i < 150; i++) {
      await new Promise((r) => setTimeout(r, 100));
      const running = JSON.parse(
        cli(['tasks', '--json', '--status', 'running', '--session', session]).stdout,
      ) as { id: string }[];
      if (running.length !== 1) continue;
      const id = running[0]!.id;
      if (eventsOf(id).some((e) => e.type === 'exec' && (e.argv as string[])[0] === 'sleep')) {
        child.kill('SIGKILL');
        await closed;
        return id;
      }
    }
    throw new Error('the task never reached its sleep');
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  }
}

function expectRecovered(id: string): void {
  const events = eventsOf(id);
  expect(events.map((e) => e.seq)).toEqual([...events.keys()]);
  // What was recorded before the kill is still there.
  expect(events[0]).toMatchObject({ type: 'task.created' });
  expect(events.some((e) => e.type === 'task.started')).toBe(true);
  expect(events.some((e) => e.type === 'syscall.denied' && e.name === 'unshare')).toBe(true);
  expect(events.at(-1)).toMatchObject({
    type: 'task.exited',
    endReason: 'killed',
    exitCode: null,
    detail: expect.stringMatching(/vanished without ending the task/),
  });
  expect(cli(['verify', id]).status).toBe(0);
  const report = cli(['report', id]).stdout;
  expect(report).toMatch(/status\s+abnormal/);
  expect(report).toMatch(/Why it ended\n\s+the cell was killed: owner process \d+ vanished/);
}

describe('crash recovery', () => {
  it('the next run, or gc, marks a task whose CLI was SIGKILLed as abnormal', async () => {
    const first = await crashMidTask('crash-1');
    // The cell died with its supervisor; the task is still `running` in the store until someone
    // notices. The next run does.
    expect(cli(['tasks', '--json', '--status', 'running']).stdout).toContain(first);
    expect(cli(['run', '--quiet', '--', 'true']).status).toBe(0);
    expectRecovered(first);

    const second = await crashMidTask('crash-2');
    const gc = cli(['gc']);
    expect(gc.status).toBe(0);
    expect(gc.stdout).toMatch(/\(1 tasks marked abnormal\)/);
    expectRecovered(second);

    const abnormal = JSON.parse(cli(['tasks', '--json', '--status', 'abnormal']).stdout) as {
      id: string;
      endReason: string;
    }[];
    expect(abnormal.map((t) => t.id)).toEqual([second, first]);
    expect(abnormal.every((t) => t.endReason === 'killed')).toBe(true);
    const human = cli(['tasks', '--status', 'abnormal']).stdout;
    expect(human).toMatch(new RegExp(`${second}.*abnormal\\s+killed\\s+-\\s+crash-2`));
    // Nothing of the killed cells is left.
    expect(cli(['ps', '--json']).stdout.trim()).toBe('[]');
  });

  // A supervisor SIGKILLed while removing its cell dir (a few milliseconds, the owner record
  // possibly gone first) leaves it under its retired name. Such a dir is garbage at once: gc
  // does not wait the minute it gives an ownerless dir that may be still being created.
  it('gc removes at once a cell dir whose removal or creation was cut short', () => {
    const cells = path.join(sb.stateRoot, 'cells');
    const retired = path.join(cells, '.removing-cutshort1');
    fs.mkdirSync(path.join(retired, 'bundle', 'rootfs'), { recursive: true });
    fs.writeFileSync(path.join(retired, 'bundle', 'config.json'), '{}');
    const unowned = path.join(cells, 'beingcreated1');
    fs.mkdirSync(unowned);
    // A cell dir is made under a name that says who makes it: a dead maker's goes at once, a
    // live one's stays (this process's pid and start time).
    const stat = fs.readFileSync('/proc/self/stat', 'utf8');
    const myStart = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
    const deadMaker = path.join(cells, '.creating-999999999-1-deadmaker1');
    const liveMaker = path.join(cells, `.creating-${process.pid}-${myStart}-livemaker1`);
    fs.mkdirSync(deadMaker);
    fs.mkdirSync(liveMaker);
    try {
      const gc = cli(['gc']);
      expect(gc.status).toBe(0);
      expect(fs.existsSync(retired)).toBe(false);
      expect(fs.existsSync(deadMaker)).toBe(false);
      expect(fs.existsSync(liveMaker)).toBe(true);
      // An ownerless dir younger than a minute may be an older nanocell's cell being created.
      expect(fs.existsSync(unowned)).toBe(true);
    } finally {
      for (const d of [unowned, liveMaker]) fs.rmSync(d, { recursive: true, force: true });
    }
  });
});
