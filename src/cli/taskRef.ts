// Every verb that takes a task resolves it here, through the one resolver in audit/taskId.ts:
// the whole id or a unique prefix, a one-line error listing the candidates on ambiguity.
import fs from 'node:fs';
import path from 'node:path';
import type { AuditStore } from '../audit/store.js';
import { resolveTaskIdPrefix, TASK_ID_PATTERN } from '../audit/taskId.js';
import { ensureStateRoot, stateLayout } from '../cell/state.js';
import { NanocellError } from '../util/errors.js';

/** A recorded task (logs, report, export, verify). */
export function resolveTask(store: AuditStore, input: string): string {
  return store.resolveTaskId(input);
}

/** A task that has a change set waiting (diff, apply, discard), and the change set's dir. */
export function resolveChangeSet(stateRoot: string, input: string): { id: string; dir: string } {
  const changes = ensureStateRoot(stateRoot).changes;
  const id = resolveTaskIdPrefix(
    input,
    (p) =>
      fs.readdirSync(changes).filter((name) => TASK_ID_PATTERN.test(name) && name.startsWith(p)),
    'with a change set (applied, discarded, or nothing changed: see `nanocell tasks`)',
  );
  return { id, dir: path.join(changes, id) };
}

/** A running task (exec, stop, kill), and its control socket. */
export function resolveLiveTask(stateRoot: string, input: string): { id: string; socket: string } {
  const layout = stateLayout(stateRoot);
  const id = resolveTaskIdPrefix(
    input,
    (p) => liveTaskIds(layout.control).filter((id) => id.startsWith(p)),
    'running under this state root (see `nanocell ps`)',
  );
  return { id, socket: layout.controlSocket(id) };
}

function liveTaskIds(controlDir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(controlDir);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return [];
    if (code === 'EACCES' || code === 'EPERM') {
      throw new NanocellError(
        `the running tasks in ${controlDir} are not yours to control`,
        'run the command as the user who started the cell, or as root',
        'STATE',
      );
    }
    throw e;
  }
  return names
    .filter((n) => n.endsWith('.sock'))
    .map((n) => n.slice(0, -'.sock'.length))
    .filter((id) => TASK_ID_PATTERN.test(id));
}
