// Is the process that owns a running task still there? A pid alone is not enough: pids are
// reused, so the owner is identified by pid plus its start time (field 22 of /proc/<pid>/stat,
// clock ticks since boot), which no later process with the same pid can share.
import { readFileSync } from 'node:fs';

export interface ProcStat {
  state: string;
  startTime: number;
}

export function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  return parseProcStat(text);
}

/** Parses /proc/<pid>/stat; the command name may contain spaces and parentheses, so cut at the last ')'. */
function parseProcStat(text: string): ProcStat | undefined {
  const close = text.lastIndexOf(')');
  if (close < 0) return undefined;
  const fields = text.slice(close + 2).split(' ');
  // fields[0] is field 3 (state); field 22 (starttime) is fields[19].
  const state = fields[0];
  const startTime = Number(fields[19]);
  if (!state || !Number.isSafeInteger(startTime)) return undefined;
  return { state, startTime };
}

/**
 * True while the owner runs. A zombie counts as gone: host pid 1 here does not reap, so a
 * SIGKILLed supervisor may linger as a zombie whose work is over.
 */
export function isOwnerAlive(pid: number, startTime: number | null): boolean {
  const stat = readProcStat(pid);
  if (!stat) return false;
  if (stat.state === 'Z' || stat.state === 'X') return false;
  return startTime === null || stat.startTime === startTime;
}
