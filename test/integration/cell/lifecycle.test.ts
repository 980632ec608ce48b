// A cell through the library: several commands with streams and statuses, then nothing left.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { Cell } from '../../../src/cell/cell.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { leftovers, makeSandbox, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
beforeEach(() => {
  sb = makeSandbox({ 'src/main.c': 'int main(void){return 0;}\n', 'notes.txt': 'one\n' });
});
afterEach(() => sb.cleanup());

const policy = (doc: object = {}) => resolvePolicy(parsePolicy(doc));

describe('cell lifecycle', () => {
  it('runs several commands in one cell with stdin, stdout, stderr and exit status', async () => {
    const cell = await Cell.create({
      policy: policy(),
      workspace: sb.project,
      stateRoot: sb.stateRoot,
    });
    const base = cell.hostUidBase!;
    try {
      const a = await cell.run(['sh', '-c', 'echo out; echo err >&2; exit 3']);
      expect(a).toMatchObject({
        exitCode: 3,
        endReason: 'exited',
        stdout: 'out\n',
        stderr: 'err\n',
      });

      const b = await cell.run(['tr', 'a-z', 'A-Z'], { input: 'shout\n' });
      expect(b.stdout).toBe('SHOUT\n');

      // State persists between commands of one task: same cell, same /tmp and workspace.
      await cell.run(['sh', '-c', 'echo kept > /tmp/x; echo two >> notes.txt']);
      const c = await cell.run(['sh', '-c', 'cat /tmp/x notes.txt; pwd']);
      expect(c.stdout).toBe(`kept\none\ntwo\n${sb.project}\n`);

      const missing = await cell.run(['no-such-command-xyz']);
      expect(missing.exitCode).toBe(127);
      const notExec = await cell.run(['./notes.txt']);
      expect(notExec.exitCode).toBe(126);

      const killed = cell.exec(['sleep', '30']);
      setTimeout(() => killed.kill(9), 200);
      expect(await killed.result).toMatchObject({
        exitCode: 137,
        endReason: 'signaled',
        signal: 9,
      });
    } finally {
      const summary = await cell.destroy();
      expect(summary.durationMs).toBeGreaterThan(0);
    }
    expect(leftovers(sb.stateRoot, [base])).toEqual({
      cells: [],
      runtime: [],
      slots: [],
      mounts: [],
      cgroups: [],
      processes: [],
    });
    // The project itself was never written: the edit lives in the change set.
    expect(fs.readFileSync(`${sb.project}/notes.txt`, 'utf8')).toBe('one\n');
  });

  it('kills background processes when the task ends', async () => {
    const cell = await Cell.create({
      policy: policy(),
      workspace: sb.project,
      stateRoot: sb.stateRoot,
    });
    const base = cell.hostUidBase!;
    try {
      const r = await cell.run([
        'sh',
        '-c',
        '(setsid sleep 1000 &); (nohup sleep 999 >/dev/null 2>&1 &); echo started',
      ]);
      expect(r.stdout).toBe('started\n');
      const ps = await cell.run(['sh', '-c', 'ls /proc | grep -c "^[0-9]"']);
      expect(Number(ps.stdout)).toBeGreaterThanOrEqual(3);
    } finally {
      await cell.destroy();
    }
    expect(leftovers(sb.stateRoot, [base]).processes).toEqual([]);
  });

  it('cleans up after a failed start and reports the runtime error in one line', async () => {
    await expect(
      Cell.create({
        policy: policy({ runtime: { path: '/bin/false' } }),
        workspace: sb.project,
        stateRoot: sb.stateRoot,
      }),
    ).rejects.toThrow(/runtime/);
    expect(leftovers(sb.stateRoot)).toMatchObject({
      cells: [],
      runtime: [],
      slots: [],
      mounts: [],
    });
  });
});
