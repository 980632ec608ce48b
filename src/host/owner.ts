// Who owns a cell: a supervisor process identified by pid and start time, so that a recycled
// pid is never mistaken for a live owner.
import fs from 'node:fs';

export interface OwnerRecord {
  pid: number;
  startTime: string;
  taskId: string;
  createdAt: number;
}

function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime) follows the command name, which may contain spaces and parens.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return rest[19];
  } catch {
    return undefined;
  }
}

export function currentOwner(taskId: string): OwnerRecord {
  return {
    pid: process.pid,
    startTime: processStartTime(process.pid) ?? '',
    taskId,
    createdAt: Date.now(),
  };
}

export function ownerAlive(o: Pick<OwnerRecord, 'pid' | 'startTime'>): boolean {
  const st = processStartTime(o.pid);
  return st !== undefined && st === o.startTime;
}
