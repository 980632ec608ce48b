// Every verb that takes a task resolves it here, through the one resolver in audit/taskId.ts:
// the whole id or a unique prefix, a one-line error listing the candidates on ambiguity.
import fs from 'node:fs';
import path from 'node:path';
import type { AuditStore } from '../audit/store.js';
import { resolveTaskIdPrefix, TASK_ID_PATTERN } from '../audit/taskId.js';
import { ensureStateRoot } from '../cell/state.js';

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
