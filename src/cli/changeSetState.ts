// What became of a task's change set, for `tasks`, `report` and the dashboard: pending (in
// changes/), partly applied (in changes/ too, with the paths written), applied or discarded
// (the fate record), or none (nothing changed, or not kept).
import fs from 'node:fs';
import path from 'node:path';
import { stateLayout } from '../cell/state.js';
import { describeFate, readFate } from '../workspace/changeFate.js';

export interface ChangeSetState {
  status: 'pending' | 'partly applied' | 'applied' | 'discarded';
  /** partly applied: the paths written so far. */
  paths?: string[];
  /** One line for people. */
  text: string;
}

export function changeSetState(stateRoot: string, taskId: string): ChangeSetState | undefined {
  const fate = readFate(stateRoot, taskId);
  if (fate) {
    const paths = fate.status === 'partly applied' ? { paths: fate.paths ?? [] } : {};
    return { status: fate.status, ...paths, text: describeFate(fate) };
  }
  let dir: string;
  try {
    dir = stateLayout(stateRoot).changeSet(taskId);
  } catch {
    return undefined; // not a task id a change set could be kept under
  }
  return fs.existsSync(path.join(dir, 'manifest.json'))
    ? { status: 'pending', text: 'pending (nanocell diff / apply / discard)' }
    : undefined;
}

/** The short form of the task table's CHANGES column. */
export function changeSetCell(s: ChangeSetState | undefined): string {
  if (!s) return '-';
  return s.status === 'partly applied' ? `partly applied (${s.paths?.length ?? 0})` : s.status;
}
