// Collecting a stopped cell: its cgroup's totals (and a pids limit it reached), and the change
// set of its workspace, written under StateLayout.changeSet(taskId). The release of what was
// acquired is cleanup.ts; the order of a cell's end, and its summary, are teardown.ts's.
import type { CellEvent } from '../audit/cellEvents.js';
import type { CgroupReader, CgroupTotals } from '../host/cgroups.js';
import type { StateLayout } from './state.js';
import type { CellWorkspace } from './workspaceMount.js';

const NO_CGROUP: CgroupTotals = {
  peakMemoryBytes: null,
  peakPids: null,
  cpuMs: null,
  oomKills: 0,
  pidsLimitHits: 0,
};

/** The cgroup's totals; a pids limit that was reached is reported as a limit.hit event. */
export function collectResources(
  cgroup: CgroupReader | undefined,
  pidsCap: number | null | undefined,
  emit: (e: CellEvent) => void,
): CgroupTotals {
  const resources = cgroup?.totals() ?? { ...NO_CGROUP };
  // cgroup v1 does not count refusals in pids.events when RLIMIT_NPROC (same cap, on the
  // cell's uids) refuses the fork first, so reaching the cap counts as hitting it too.
  const atCap = pidsCap != null && (resources.peakPids ?? 0) >= pidsCap;
  if (resources.pidsLimitHits > 0 || atCap) {
    emit({
      type: 'limit.hit',
      limit: 'pids',
      detail:
        resources.pidsLimitHits > 0
          ? `the pids limit refused ${resources.pidsLimitHits} forks`
          : `the task reached the pids limit of ${pidsCap}`,
    });
  }
  return resources;
}

/** The workspace's change set, or `{ error }` if collecting it failed (or was abandoned). */
export async function collectChanges(
  ws: CellWorkspace | undefined,
  o: {
    layout: StateLayout;
    taskId: string;
    startedAt: number;
    emit: (e: CellEvent) => void;
    abandon: AbortSignal | undefined;
  },
): Promise<unknown> {
  try {
    return await ws?.collect(o.layout, o.taskId, o.startedAt, o.emit, o.abandon);
  } catch (e) {
    // Never silent: the audit trail and the report say the change set was not kept, and why.
    const detail = `the change set could not be collected: ${(e as Error).message}`;
    o.emit({ type: 'limit.hit', limit: 'changes', detail });
    return { error: (e as Error).message };
  }
}
