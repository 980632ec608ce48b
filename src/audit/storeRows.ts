// The audit store's rows: the tasks table as SQLite holds it (RawTask) and as callers see it
// (TaskRow), the writer's per-task state, and the prepared statements every part of the store
// shares. One owner for the SQL, so the writer, the reader and maintenance cannot drift.
import type Database from 'better-sqlite3';
import type { Db } from './db.js';
import { translateSqliteError, withBusyRetry } from './db.js';
import type { EndReason } from './events.js';

export type TaskStatus = 'running' | 'exited' | 'failed' | 'abnormal';
export const taskStatuses: readonly TaskStatus[] = ['running', 'exited', 'failed', 'abnormal'];

export interface TaskRow {
  id: string;
  session: string;
  command: string[];
  status: TaskStatus;
  endReason: string | null;
  exitCode: number | null;
  createdAt: number;
  endedAt: number | null;
  ownerPid: number;
  ownerStartTime: number | null;
  workspace: string | null;
  report: unknown;
  eventCount: number;
  storedBytes: number;
  droppedEvents: number;
  droppedCounts: Record<string, number>;
  chainHead: string;
}

export interface TaskEnd {
  status: Exclude<TaskStatus, 'running'>;
  endReason: EndReason;
  exitCode: number | null;
  report?: unknown;
}

/** A row of the tasks table. */
export interface RawTask {
  id: string;
  session: string;
  command: string;
  status: TaskStatus;
  end_reason: string | null;
  exit_code: number | null;
  created_at: number;
  ended_at: number | null;
  owner_pid: number;
  owner_start_time: number | null;
  workspace: string | null;
  report: string | null;
  event_count: number;
  stored_bytes: number;
  dropped_events: number;
  dropped_counts: string;
  chain_head: string;
}

/** The open database, its statements, and the one way to run a query (busy retry, errors). */
export interface StoreDb {
  readonly db: Db;
  readonly path: string;
  readonly stmts: Statements;
  run<T>(fn: () => T): T;
}

export function storeDb(db: Db, path: string): StoreDb {
  return {
    db,
    path,
    stmts: prepareStatements(db),
    run<T>(fn: () => T): T {
      try {
        return withBusyRetry(fn);
      } catch (err) {
        throw translateSqliteError(err, path);
      }
    },
  };
}

// Parameters are positional and untyped, as better-sqlite3 declares them by default.
type Stmt = Database.Statement<unknown[]>;
type StatementName =
  | 'insertTask'
  | 'insertEvent'
  | 'updateProgress'
  | 'endTask'
  | 'getTask'
  | 'events'
  | 'chainRows'
  | 'lastEventTime'
  | 'running'
  | 'prefix';
type Statements = Record<StatementName, Stmt>;

function prepareStatements(db: Db): Statements {
  return {
    insertTask: db.prepare(
      `INSERT INTO tasks (id, session, command, status, created_at, owner_pid, owner_start_time,
         workspace, chain_head) VALUES (?, ?, ?, 'running', ?, ?, ?, ?, ?)`,
    ),
    insertEvent: db.prepare(
      'INSERT INTO events (task_id, seq, time, type, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)',
    ),
    updateProgress: db.prepare(
      `UPDATE tasks SET event_count = ?, chain_head = ?, stored_bytes = ?, dropped_events = ?,
         dropped_counts = ? WHERE id = ?`,
    ),
    endTask: db.prepare(
      'UPDATE tasks SET status = ?, end_reason = ?, exit_code = ?, ended_at = ?, report = ? WHERE id = ?',
    ),
    getTask: db.prepare('SELECT * FROM tasks WHERE id = ?'),
    events: db.prepare(
      'SELECT payload FROM events WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?',
    ),
    chainRows: db.prepare(
      `SELECT seq, time, type, payload, prev_hash AS prevHash, hash FROM events
         WHERE task_id = ? ORDER BY seq`,
    ),
    lastEventTime: db.prepare('SELECT MAX(time) AS t FROM events WHERE task_id = ?'),
    running: db.prepare(
      "SELECT id, owner_pid, owner_start_time FROM tasks WHERE status = 'running'",
    ),
    prefix: db.prepare('SELECT id FROM tasks WHERE id >= ? AND id < ? ORDER BY id LIMIT 6'),
  };
}

export function parseCounts(text: string): Record<string, number> {
  try {
    const v = JSON.parse(text) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, number>) : {};
  } catch {
    return {};
  }
}

function parseJson(text: string | null): unknown {
  if (text === null) return null;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return null;
  }
}

export function toTaskRow(r: RawTask): TaskRow {
  const command = parseJson(r.command);
  return {
    id: r.id,
    session: r.session,
    command: Array.isArray(command) ? command.map(String) : [],
    status: r.status,
    endReason: r.end_reason,
    exitCode: r.exit_code,
    createdAt: r.created_at,
    endedAt: r.ended_at,
    ownerPid: r.owner_pid,
    ownerStartTime: r.owner_start_time,
    workspace: r.workspace,
    report: parseJson(r.report),
    eventCount: r.event_count,
    storedBytes: r.stored_bytes,
    droppedEvents: r.dropped_events,
    droppedCounts: parseCounts(r.dropped_counts),
    chainHead: r.chain_head,
  };
}
