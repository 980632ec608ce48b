// A checkpoint of a live cell is one point in time: a writer loop runs in the cell while it is
// taken, and what the fork sees (two files the loop appends to one after the other, with a
// large file between them in the copy) agrees as it did at some moment. The cell is
// thawed after, also when the capture fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import { withCellFrozen } from '../../../src/host/cgroups.js';
import { probeHost } from '../../../src/host/probe.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { leftovers, makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
beforeAll(() => {
  sb = makeSandbox({ 'f.txt': 'original\n' });
});
afterAll(() => sb.cleanup());

// Each round appends its number to `a`, then to `b` (shell builtins only: thousands of rounds
// a second). At any moment the last lines agree, or `a` is one ahead. `big` is made between the
// two: whichever order the copy takes (cp goes by inode), it copies 32 MiB between them, while
// an unfrozen loop would go on for many rounds.
const WRITER = [
  ': > a; head -c 33554432 /dev/zero > big; : > b',
  'i=0; while :; do i=$((i+1)); echo $i >> a; echo $i >> b; done',
].join('; ');

/** The last line of `b`, read from the host side: works while the cell is frozen. */
async function counter(cell: Cell): Promise<number> {
  try {
    const lines = (await cell.files.read('b', { maxBytes: 1 << 26 })).content.toString();
    return Number(lines.trimEnd().split('\n').pop() || -1);
  } catch {
    return -1; // not made yet
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('checkpoint of a live cell', () => {
  it('freezes a writing cell: the fork sees one point in time, the cell goes on', async () => {
    const cell = await Cell.create({
      policy: resolvePolicy(parsePolicy({})),
      workspace: sb.project,
      stateRoot: sb.stateRoot,
      session: 'live',
    });
    let id: string;
    try {
      const writer = cell.exec(['sh', '-c', WRITER]);
      for (let i = 0; i < 100 && !((await counter(cell)) > 1000); i++) await sleep(50);
      id = await cell.checkpoint();
      // Thawed: the loop goes on after the checkpoint.
      const after = await counter(cell);
      await sleep(200);
      expect(await counter(cell)).toBeGreaterThan(after);
      writer.kill(9);
      await writer.result.catch(() => undefined);
    } finally {
      await cell.destroy();
    }
    const r = nanocell(
      [
        'run',
        '--quiet',
        '--workspace',
        sb.project,
        '--session',
        'live',
        '--from',
        id,
        '--',
        'sh',
        '-c',
        'tail -n 1 b; tail -n 1 a; wc -c < big',
      ],
      { stateRoot: sb.stateRoot },
    );
    expect(r.status).toBe(0);
    const [count, last, big] = r.stdout.trim().split('\n').map(Number);
    expect(count).toBeGreaterThan(1000);
    expect(big).toBe(33554432);
    // One point in time: equal, or `a` one ahead.
    expect(last! - count!).toBeGreaterThanOrEqual(0);
    expect(last! - count!).toBeLessThanOrEqual(1);
    expect(leftovers(sb.stateRoot)).toMatchObject({ cells: [], mounts: [], slots: [] });
  }, 120_000);

  it('thaws the cell when the capture fails', async () => {
    const cell = await Cell.create({
      policy: resolvePolicy(parsePolicy({})),
      workspace: sb.project,
      stateRoot: sb.stateRoot,
    });
    try {
      const writer = cell.exec(['sh', '-c', WRITER]);
      for (let i = 0; i < 100 && !((await counter(cell)) > 0); i++) await sleep(50);
      const frozen: number[] = [];
      await expect(
        withCellFrozen(probeHost().cgroup, cell.id, async () => {
          frozen.push(await counter(cell));
          await sleep(200);
          frozen.push(await counter(cell));
          throw new Error('capture failed');
        }),
      ).rejects.toThrow('capture failed');
      // Nothing moved while frozen.
      expect(frozen[0]).toBeGreaterThan(0);
      expect(frozen[1]).toBe(frozen[0]);
      const before = await counter(cell);
      await sleep(200);
      expect(await counter(cell)).toBeGreaterThan(before);
      writer.kill(9);
      await writer.result.catch(() => undefined);
    } finally {
      await cell.destroy();
    }
  }, 120_000);
});
