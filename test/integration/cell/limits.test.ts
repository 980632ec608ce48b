// Hard limits: memory, pids, CPU, wall time, output. Each test runs its own small cell.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { Cell } from '../../../src/cell/cell.js';
import type { CellEvent } from '../../../src/cell/types.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { makeSandbox, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
beforeEach(() => {
  sb = makeSandbox();
});
afterEach(() => sb.cleanup());

async function withCell<T>(
  doc: object,
  fn: (cell: Cell, events: CellEvent[]) => Promise<T>,
): Promise<T> {
  const events: CellEvent[] = [];
  const cell = await Cell.create({
    policy: resolvePolicy(parsePolicy(doc)),
    workspace: sb.project,
    stateRoot: sb.stateRoot,
    onEvent: (e) => events.push(e),
  });
  try {
    return await fn(cell, events);
  } finally {
    await cell.destroy();
  }
}

describe('limits', () => {
  it('enforces the memory limit through the cgroup and reports oom', async () => {
    await withCell({ limits: { memory: '64m' } }, async (cell, events) => {
      const cg = `/sys/fs/cgroup/memory/nanocell/${cell.id}/memory.limit_in_bytes`;
      expect(Number(fs.readFileSync(cg, 'utf8'))).toBe(64 * 1024 * 1024);
      const r = await cell.run([
        'python3',
        '-c',
        'b = bytearray(512 * 1024 * 1024); print(len(b))',
      ]);
      expect(r).toMatchObject({ exitCode: 137, endReason: 'oom' });
      expect(events.some((e) => e.type === 'limit.hit' && e.limit === 'oom')).toBe(true);
    });
  });

  it('bounds a fork bomb with the pids limit', async () => {
    await withCell({ limits: { pids: 32, timeout: '20s' } }, async (cell) => {
      expect(
        Number(fs.readFileSync(`/sys/fs/cgroup/pids/nanocell/${cell.id}/pids.max`, 'utf8')),
      ).toBe(32);
      const r = await cell.run([
        'bash',
        '-c',
        'for i in $(seq 100); do sleep 5 & done 2>/dev/null; jobs -r | wc -l',
      ]);
      expect(Number(r.stdout.trim())).toBeLessThan(32);
      const after = await cell.run(['echo', 'still alive']);
      expect(after.stdout).toBe('still alive\n');
    });
  });

  it('applies the CPU quota', async () => {
    await withCell({ limits: { cpus: 0.5 } }, async (cell) => {
      const q = Number(
        fs.readFileSync(`/sys/fs/cgroup/cpu/nanocell/${cell.id}/cpu.cfs_quota_us`, 'utf8'),
      );
      const p = Number(
        fs.readFileSync(`/sys/fs/cgroup/cpu/nanocell/${cell.id}/cpu.cfs_period_us`, 'utf8'),
      );
      expect(q / p).toBeCloseTo(0.5);
      // A spinning loop for 1 s of wall time gets about half a CPU-second.
      const r = await cell.run([
        'python3',
        '-c',
        'import time,os\nt=time.time()\nwhile time.time()-t<1: pass\nprint(os.times().user+os.times().system)',
      ]);
      expect(Number(r.stdout)).toBeLessThan(0.8);
    });
  });

  it('kills the whole cell at the wall-clock timeout with exit 124', async () => {
    await withCell({ limits: { timeout: '1s' } }, async (cell, events) => {
      const t0 = Date.now();
      const r = await cell.run(['sleep', '30']);
      expect(r).toMatchObject({ exitCode: 124, endReason: 'timeout' });
      expect(Date.now() - t0).toBeLessThan(10_000);
      expect(events.some((e) => e.type === 'limit.hit' && e.limit === 'timeout')).toBe(true);
      expect(() => cell.exec(['true'])).toThrow(/ended/);
    });
  });

  it('truncates output past the cap with a note without blocking the task', async () => {
    await withCell({ limits: { output: '64k' } }, async (cell, events) => {
      const r = await cell.run([
        'bash',
        '-c',
        'head -c 10m /dev/zero | tr "\\0" x; echo done >&2; exit 7',
      ]);
      expect(r.exitCode).toBe(7);
      expect(r.outputTruncated).toBe(true);
      expect(r.stdout.length).toBeLessThan(64 * 1024 + 200);
      expect(r.stdout).toMatch(/\[nanocell: output truncated after 65536 bytes\]/);
      expect(events.some((e) => e.type === 'limit.hit' && e.limit === 'output')).toBe(true);
    });
  });

  it('caps what the task may write to the workspace', async () => {
    await withCell({ limits: { disk: '8m' } }, async (cell) => {
      const r = await cell.run(['bash', '-c', 'head -c 20m /dev/zero > big.bin']);
      expect(r.exitCode).not.toBe(0);
      expect(r.stderr).toMatch(/No space left/);
    });
  });
});
