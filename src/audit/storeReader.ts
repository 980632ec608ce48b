// Reading the audit store: task rows, a task's events in order, chain verification and task id
// prefixes. Pure queries; the facade flushes its own writes first so a reader sees them.
import { verifyChain, type ChainRow, type ChainVerdict } from './chain.js';
import type { AuditEvent } from './events.js';
import { toTaskRow, type RawTask, type StoreDb, type TaskRow } from './storeRows.js';

export function getTask(s: StoreDb, id: string): TaskRow | undefined {
  const raw = s.run(() => s.stmts.getTask.get(id)) as RawTask | undefined;
  return raw && toTaskRow(raw);
}

export interface TaskFilter {
  session?: string;
  status?: string;
  sinceMs?: number;
  limit?: number;
  /** Tasks whose task.created event carries every one of these labels. */
  labels?: Record<string, string>;
}

/** Newest first. `sinceMs` is an epoch-ms lower bound on the creation time. */
export function listTasks(s: StoreDb, f: TaskFilter): TaskRow[] {
  const where: string[] = [];
  const args: (string | number)[] = [];
  if (f.session !== undefined) {
    where.push('session = ?');
    args.push(f.session);
  }
  if (f.status !== undefined) {
    where.push('status = ?');
    args.push(f.status);
  }
  if (f.sinceMs !== undefined) {
    where.push('created_at >= ?');
    args.push(f.sinceMs);
  }
  // Labels live in the first, hash-chained event (not a column): no migration, and what is
  // matched is what `verify` vouches for. Keys are checked label keys, so quoting is safe.
  for (const [k, v] of Object.entries(f.labels ?? {})) {
    where.push(
      'EXISTS (SELECT 1 FROM events e WHERE e.task_id = tasks.id AND e.seq = 0 AND json_extract(e.payload, ?) = ?)',
    );
    args.push(`$.labels."${k}"`, v);
  }
  const sql = `SELECT * FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at DESC, id DESC LIMIT ?`;
  args.push(f.limit ?? -1);
  const raws = s.run(() => s.db.prepare(sql).all(...args)) as RawTask[];
  return raws.map(toTaskRow);
}

export function taskEvents(
  s: StoreDb,
  taskId: string,
  opts: { afterSeq?: number; limit?: number },
): AuditEvent[] {
  const rows = s.run(() => s.stmts.events.all(taskId, opts.afterSeq ?? -1, opts.limit ?? -1)) as {
    payload: string;
  }[];
  return rows.map((r) => JSON.parse(r.payload) as AuditEvent);
}

/** Recomputes the task's chain; reports the first seq that does not hold. */
export function verifyTask(s: StoreDb, id: string): ChainVerdict {
  const raw = s.run(() => s.stmts.getTask.get(id)) as RawTask | undefined;
  if (!raw) return { ok: false, checked: 0, brokenAt: 0, reason: `task ${id} is not recorded` };
  return s.run(() =>
    verifyChain(id, s.stmts.chainRows.iterate(id) as Iterable<ChainRow>, {
      count: raw.event_count,
      head: raw.chain_head,
    }),
  );
}

/** A few recorded task ids that start with `prefix` (already normalised). */
export function taskIdsWithPrefix(s: StoreDb, prefix: string): string[] {
  return (s.run(() => s.stmts.prefix.all(prefix, `${prefix}~`)) as { id: string }[]).map(
    (r) => r.id,
  );
}
