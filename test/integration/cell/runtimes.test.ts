// The alternative OCI runtimes run real cells: crun (on this hybrid-cgroup host, after
// setup's controller binding) and runsc (gVisor). Each must run commands with their exit
// status and output, hold the memory limit, send workspace edits to the change set, and leave
// nothing behind. What a runtime cannot enforce must be refused or reported, never skipped.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Cell } from '../../../src/cell/cell.js';
import type { CellEvent, CellSummary } from '../../../src/cell/types.js';
import { runtimeHostProblem } from '../../../src/runtime/runtime.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { NanocellError } from '../../../src/util/errors.js';
import {
  leftovers,
  makeSandbox,
  mountsUnder,
  seenCellIds,
  type Sandbox,
} from '../../helpers/cells.js';

let sb: Sandbox;
beforeEach(() => {
  sb = makeSandbox({ 'notes.txt': 'before\n' });
});
afterEach(() => sb.cleanup());

type Name = 'crun' | 'runsc';

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

async function withCell(
  runtime: Name,
  doc: Record<string, unknown>,
  fn: (cell: Cell, events: CellEvent[]) => Promise<void>,
): Promise<{ summary: CellSummary; uidBase: number | undefined; id: string }> {
  const events: CellEvent[] = [];
  const cell = await Cell.create({
    policy: resolvePolicy(
      parsePolicy({
        runtime: { name: runtime },
        // gVisor has no Landlock: the opt-in is required (see the refusal test below).
        ...(runtime === 'runsc' ? { allowDegraded: ['landlock'] } : {}),
        ...doc,
      }),
    ),
    workspace: sb.project,
    stateRoot: sb.stateRoot,
    onEvent: (e) => events.push(e),
  });
  seenCellIds.add(cell.id);
  const uidBase = cell.hostUidBase;
  try {
    await fn(cell, events);
  } finally {
    await cell.destroy().catch(() => undefined);
  }
  const summary = await cell.destroy();
  return { summary, uidBase, id: cell.id };
}

function expectNothingLeft(id: string, uidBase: number | undefined): void {
  expect(leftovers(sb.stateRoot, uidBase === undefined ? [] : [uidBase])).toEqual({
    cells: [],
    runtime: [],
    slots: [],
    mounts: [],
    cgroups: [],
    processes: [],
  });
  for (const rt of ['crun', 'runsc']) {
    const dir = path.join(sb.stateRoot, rt);
    expect(fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.includes(id)) : []).toEqual([]);
  }
  const hierarchies = fs.readdirSync('/sys/fs/cgroup');
  const cgroups = hierarchies.filter((h) => fs.existsSync(`/sys/fs/cgroup/${h}/nanocell/${id}`));
  expect(cgroups).toEqual([]);
}

describe.each(['crun', 'runsc'] as const)('%s cells', (runtime) => {
  it('runs commands with exit status, output and stdin, and sends edits to the change set', async () => {
    const { summary, uidBase, id } = await withCell(runtime, {}, async (cell) => {
      const r = await cell.run(['sh', '-c', 'cat; echo out; echo err >&2; exit 7'], {
        input: 'in\n',
      });
      expect(r).toMatchObject({ exitCode: 7, endReason: 'exited', stdout: 'in\nout\n' });
      expect(r.stderr).toBe('err\n');
      expect((await cell.run(['id', '-u'])).stdout).toBe('1000\n');
      expect((await cell.run(['no-such-command'])).exitCode).toBe(127);
      const edit = await cell.run(['sh', '-c', 'echo after > notes.txt && echo new > added.txt']);
      expect(edit.exitCode).toBe(0);
    });
    expect(summary.runtime.name).toBe(runtime);
    // The project is untouched; the edits wait in the change set.
    expect(fs.readFileSync(path.join(sb.project, 'notes.txt'), 'utf8')).toBe('before\n');
    expect(fs.existsSync(path.join(sb.project, 'added.txt'))).toBe(false);
    const changes = (summary.changeSet as { changes: { path: string; kind: string }[] }).changes;
    expect(changes.map((c) => `${c.kind} ${c.path}`).sort()).toEqual([
      'add added.txt',
      'modify notes.txt',
    ]);
    // Contents are stored by hash in the change set.
    const files = path.join(sb.stateRoot, 'changes', summary.taskId, 'files');
    expect(fs.readFileSync(path.join(files, sha256('after\n')), 'utf8')).toBe('after\n');
    expect(fs.readFileSync(path.join(files, sha256('new\n')), 'utf8')).toBe('new\n');
    expectNothingLeft(id, uidBase);
  });

  it('holds the memory limit through the cgroup and reports oom', async () => {
    const { summary, uidBase, id } = await withCell(
      runtime,
      { limits: { memory: '128m' } },
      async (cell, events) => {
        const cg = `/sys/fs/cgroup/memory/nanocell/${cell.id}/memory.limit_in_bytes`;
        expect(Number(fs.readFileSync(cg, 'utf8'))).toBe(128 * 1024 * 1024);
        const r = await cell.run(['python3', '-c', 'b = bytearray(512 * 1024 * 1024)']);
        expect(r).toMatchObject({ exitCode: 137, endReason: 'oom' });
        expect(events.some((e) => e.type === 'limit.hit' && e.limit === 'oom')).toBe(true);
      },
    );
    expect(summary.limits.memoryBytes).toBe(128 * 1024 * 1024);
    expect(summary.resources.peakMemoryBytes).toBeLessThanOrEqual(128 * 1024 * 1024);
    expectNothingLeft(id, uidBase);
  });
});

describe('crun on this host', () => {
  it('has no stray cgroup v2 controller (setup bound them to v1) and runs without degradations', async () => {
    expect(runtimeHostProblem({ name: 'crun' })).toBeUndefined();
    const { summary } = await withCell('crun', {}, async (cell) => {
      expect((await cell.run(['true'])).exitCode).toBe(0);
    });
    expect(summary.degradations).toEqual([]);
    expect(summary.limits).toMatchObject({ pids: 512, cpus: 1 });
  });
});

describe('runsc degradations', () => {
  it('refuses to run without the Landlock opt-in, and leaves nothing', async () => {
    const err = await Cell.create({
      policy: resolvePolicy(parsePolicy({ runtime: { name: 'runsc' } })),
      workspace: sb.project,
      stateRoot: sb.stateRoot,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NanocellError);
    expect((err as NanocellError).message).toMatch(/does not implement Landlock/);
    expect((err as NanocellError).fix).toMatch(/--allow-degraded landlock/);
    expect(mountsUnder(sb.stateRoot)).toEqual([]);
    // The refusal comes in the resolve step, before the state root is even created.
    const cells = path.join(sb.stateRoot, 'cells');
    expect(fs.existsSync(cells) ? fs.readdirSync(cells) : []).toEqual([]);
  });

  it('reports the lost Landlock and syscall audit, and still denies forbidden syscalls', async () => {
    const events: CellEvent[] = [];
    const { summary } = await withCell('runsc', {}, async (cell, ev) => {
      events.push(...ev);
      // keyctl (250) and unshare (272) are forbidden by the profile; gVisor alone allows unshare.
      const r = await cell.run([
        'python3',
        '-c',
        'import ctypes,os\nc=ctypes.CDLL(None,use_errno=True)\n' +
          'for nr in (250,272):\n r=c.syscall(nr,0,0,0,0); print(r, os.strerror(ctypes.get_errno()))',
      ]);
      expect(r.stdout).toBe('-1 Operation not permitted\n-1 Operation not permitted\n');
    });
    expect(summary.degradations.map((d) => d.control).sort()).toEqual([
      'landlock',
      'syscall-audit',
    ]);
    expect(events.filter((e) => e.type === 'policy.degraded').length).toBe(2);
  });
});
