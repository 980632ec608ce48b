// GET /api/cells: the live cells with CPU and memory against their cgroup's limits. CPU is a
// rate, so the server keeps each cell's last CPU reading and turns two into a share of one
// CPU over the time between them (the page polls every second).
import { listLiveCells, type LiveCell } from '../cli/ps.js';

export interface CpuReadings {
  /** cellId -> the last cumulative CPU time (ns) and when it was read (ms). */
  last: Map<string, { ns: number; atMs: number }>;
}

export type LiveCellView = LiveCell & {
  /** Percent of one CPU used since the previous reading (null: the first reading). */
  cpuPercent: number | null;
};

export function liveCells(stateRoot: string, cpu: CpuReadings): LiveCellView[] {
  const now = Date.now();
  const cells = listLiveCells(stateRoot);
  const seen = new Set<string>();
  const out = cells.map((c) => {
    seen.add(c.cellId);
    const prev = cpu.last.get(c.cellId);
    let cpuPercent: number | null = null;
    if (c.cpuNs !== null) {
      if (prev && now > prev.atMs && c.cpuNs >= prev.ns)
        cpuPercent = Math.round(((c.cpuNs - prev.ns) / ((now - prev.atMs) * 1e6)) * 1000) / 10;
      cpu.last.set(c.cellId, { ns: c.cpuNs, atMs: now });
    }
    return { ...c, cpuPercent };
  });
  for (const id of cpu.last.keys()) if (!seen.has(id)) cpu.last.delete(id);
  return out;
}
