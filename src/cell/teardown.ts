// Ending a cell, in order: stop its processes (launch.ts), collect its cgroup totals and its
// change set (collect.ts), release what was acquired (cleanup.ts, through the cell's unwind),
// then the summary its report is made of. Apart from cell.ts so that the Cell holds the state
// and this file the order of its end.
import type { CellEvent } from '../audit/cellEvents.js';
import type { CgroupReader } from '../host/cgroups.js';
import type { RuntimeInfo } from '../runtime/runtime.js';
import type { Acquired } from './acquire.js';
import { trace } from './cleanup.js';
import { collectChanges, collectResources } from './collect.js';
import type { CellProcess } from './launch.js';
import type { CellSummary, EndReason } from './types.js';

interface TeardownInput {
  cellId: string;
  taskId: string;
  startedAt: number;
  /** Settled before teardown starts: nothing after it can change how the cell ended. */
  endReason: EndReason;
  got: Acquired;
  proc: CellProcess | undefined;
  cgroup: CgroupReader | undefined;
  runtime: RuntimeInfo;
  emit: (e: CellEvent) => void;
  /** Aborting it drops a change-set collection in progress (nothing of it is kept). */
  abandon: AbortSignal | undefined;
  /** Runs the cell's releases (its Cleanups) and stops its timers. */
  unwind: () => Promise<void>;
}

export async function teardownCell(c: TeardownInput): Promise<CellSummary> {
  const { got } = c;
  let t = performance.now();
  await c.proc?.stop();
  trace('stop', t);
  const resources = collectResources(c.cgroup, got.plan.limits.pids, c.emit);
  t = performance.now();
  const changeSet = await collectChanges(got.ws, {
    layout: got.layout,
    taskId: c.taskId,
    startedAt: c.startedAt,
    emit: c.emit,
    abandon: c.abandon,
  });
  trace('collect', t);
  t = performance.now();
  await c.unwind();
  trace('unwind', t);
  const endedAt = Date.now();
  return {
    taskId: c.taskId,
    cellId: c.cellId,
    startedAt: c.startedAt,
    endedAt,
    durationMs: endedAt - c.startedAt,
    endReason: c.endReason,
    resources,
    limits: got.plan.limits,
    degradations: got.plan.degradations,
    runtime: { name: c.runtime.name, version: c.runtime.version },
    ...(changeSet !== undefined ? { changeSet } : {}),
  };
}
