// Who owns a cell or a running task: a supervisor process identified by pid and start time
// (field 22 of /proc/<pid>/stat, clock ticks since boot), so that a recycled pid is never
// mistaken for a live owner. The one liveness check: cells (gc, ps) and the audit store
// (stale running tasks) both ask it.
import fs from 'node:fs';

export interface OwnerRecord {
  pid: number;
  startTime: string;
  taskId: string;
  createdAt: number;
}

interface ProcStat {
  state: string;
  startTime: number;
}

export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may contain spaces and parentheses, so cut at the last ')'.
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
  const state = fields[0];
  const startTime = Number(fields[19]);
  if (!state || !Number.isSafeInteger(startTime)) return undefined;
  return { state, startTime };
}

export function currentOwner(taskId: string): OwnerRecord {
  return {
    pid: process.pid,
    startTime: String(readProcStat(process.pid)?.startTime ?? ''),
    taskId,
    createdAt: Date.now(),
  };
}

/**
 * True while the owner runs. A zombie counts as gone: host pid 1 here does not reap, so a
 * SIGKILLed supervisor may linger as a zombie whose work is over. `startTime` null means the
 * start time was never recorded; then the pid alone decides.
 */
export function isOwnerAlive(pid: number, startTime: number | null): boolean {
  const stat = readProcStat(pid);
  if (!stat) return false;
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return startTime === null || stat.startTime === startTime;
}

/** isOwnerAlive for an owner file; an empty start time there matches no process. */
export function ownerAlive(o: Pick<OwnerRecord, 'pid' | 'startTime'>): boolean {
  return isOwnerAlive(o.pid, o.startTime === '' ? NaN : Number(o.startTime));
}
