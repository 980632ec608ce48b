// Maintenance of the audit store: ending tasks whose owner died without ending them, and
// deleting old ended tasks. Each runs in one immediate transaction.
import { canonicalJson } from './canonical.js';
import { chainHash } from './chain.js';
import { AUDIT_EVENT_VERSION, type AuditEvent } from './events.js';
import { isOwnerAlive } from '../host/owner.js';
import type { RawTask, StoreDb } from './storeRows.js';

/**
 * Ends tasks whose owner died without ending them (SIGKILL, power loss): status `abnormal`,
 * end reason `killed` (the cell dies with its supervisor: init sees the control socket close
 * and kills everything), and a task.exited event whose duration runs to the last recorded
 * event. What was recorded stays. Returns the ids it ended.
 */
export function recoverAbandoned(s: StoreDb): string[] {
  const candidates = s.run(() => s.stmts.running.all()) as {
    id: string;
    owner_pid: number;
    owner_start_time: number | null;
  }[];
  const recovered: string[] = [];
  for (const c of candidates) {
    if (isOwnerAlive(c.owner_pid, c.owner_start_time)) continue;
    const done = s.run(() => s.db.transaction(() => endAbandoned(s, c.id)).immediate());
    if (done) recovered.push(c.id);
  }
  return recovered;
}

/** Appends the recovery's task.exited and ends the task, if it is still running. */
function endAbandoned(s: StoreDb, id: string): boolean {
  const raw = s.stmts.getTask.get(id) as RawTask | undefined;
  if (!raw || raw.status !== 'running') return false;
  const last = (s.stmts.lastEventTime.get(id) as { t: number | null }).t;
  const now = Date.now();
  const event = {
    type: 'task.exited',
    exitCode: null,
    endReason: 'killed',
    durationMs: Math.max(0, (last ?? raw.created_at) - raw.created_at),
    detail: `owner process ${raw.owner_pid} vanished without ending the task; recovered by process ${process.pid}; duration is up to the last recorded event`,
    v: AUDIT_EVENT_VERSION,
    taskId: id,
    session: raw.session,
    time: now,
    seq: raw.event_count,
  } satisfies AuditEvent;
  const payload = canonicalJson(event);
  const hash = chainHash(raw.chain_head, event);
  s.stmts.insertEvent.run(id, event.seq, now, event.type, payload, raw.chain_head, hash);
  s.stmts.updateProgress.run(
    raw.event_count + 1,
    hash,
    raw.stored_bytes + payload.length,
    raw.dropped_events,
    raw.dropped_counts,
    id,
  );
  s.stmts.endTask.run('abnormal', 'killed', null, now, raw.report, id);
  return true;
}

/** Deletes ended tasks (and their events) that ended more than `olderThanMs` ago. */
export function gcTasks(s: StoreDb, olderThanMs: number): { tasks: number; events: number } {
  const cutoff = Date.now() - olderThanMs;
  const old = "status != 'running' AND COALESCE(ended_at, created_at) < ?";
  const result = s.run(() =>
    s.db
      .transaction(() => {
        const events = s.db
          .prepare(`DELETE FROM events WHERE task_id IN (SELECT id FROM tasks WHERE ${old})`)
          .run(cutoff).changes;
        const tasks = s.db.prepare(`DELETE FROM tasks WHERE ${old}`).run(cutoff).changes;
        return { tasks, events };
      })
      .immediate(),
  );
  // Give freed pages back to the filesystem (the file was created with auto_vacuum).
  s.run(() => s.db.pragma('incremental_vacuum'));
  return result;
}
