// The Cell library API without the CLI (issue 13 D): a normal destroy() reports `exited`, and
// run() returns the exact bytes when asked for a buffer.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { makeSandbox, type Sandbox } from '../../helpers/cells.js';

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
