// GET /api/sessions and /api/sessions/:name: the sessions with unapplied change sets (what
// `nanocell sessions` lists, from cell/session.ts), and one session's tasks oldest first: each
// with its end, denials and what became of its change set, and for a pending one the tasks it
// stacked on.
import type { AuditStore } from '../audit/store.js';
import { sessionChangeSets } from '../cell/session.js';
import { checkedSessionName, ensureStateRoot } from '../cell/state.js';
import { changeSetState } from '../cli/changeSetState.js';
import { deniedCount } from './taskApi.js';

export function sessionList(stateRoot: string) {
  const bySession = new Map<string, string[]>();
  for (const cs of sessionChangeSets(ensureStateRoot(stateRoot))) {
    const s = cs.manifest.session ?? 'default';
    bySession.set(s, [...(bySession.get(s) ?? []), cs.manifest.taskId]);
  }
  return [...bySession].map(([name, tasks]) => ({ name, tasks }));
}

export function sessionPage(stateRoot: string, store: AuditStore, name: string) {
  checkedSessionName(name);
  const pending = new Map(
    sessionChangeSets(ensureStateRoot(stateRoot), name).map((cs) => [cs.manifest.taskId, cs]),
  );
  const rows = store.listTasks({ session: name, limit: 5000 }).reverse();
  return {
    name,
    /** The unapplied chain `apply --session` takes, lowest first. */
    chain: [...pending.keys()],
    tasks: rows.map((t) => ({
      id: t.id,
      command: t.command,
      status: t.status,
      endReason: t.endReason,
      exitCode: t.exitCode,
      createdAt: t.createdAt,
      denied: deniedCount(t.report),
      changeSet: changeSetState(stateRoot, t.id) ?? null,
      stack: pending.get(t.id)?.manifest.stack ?? [],
    })),
  };
}
