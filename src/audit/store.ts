// The audit store: tasks and their hash-chained events in SQLite (WAL) under the state root.
// This class is the facade; the parts are storeWriter (appends, batching, caps, task end),
// storeReader (rows, events, verification), storeMaintenance (recovery, gc) and storeRows
// (row types and the SQL they share).
//
// Nothing inside a cell can reach it: the database lives in the state root, which is never
// mounted into a cell, and only the supervisor (outside the cell) holds it open. Events from the
// cell arrive through the monitor's stdout and the proxy, both read by the supervisor.
//
// Writers: one process owns a task (the supervisor that created it) and is its only writer;
// any number of processes may write different tasks at once (WAL, busy_timeout, retries).
// Appends are queued in memory and written in one transaction every ~50 ms or 256 events, and
// synchronously at task end and at process exit. A SIGKILL can lose at most that last batch.
//
// Flood bounding: past `maxEventsPerTask` stored events (or `maxBytesPerTask` of payload), the
// task's events are only counted per type in the tasks row (an aggregated event counts as
// the occurrences it stands for). Lifecycle events (task.*) are always
// stored, so the end of a flooded task is still recorded.
import { readProcStat } from '../host/owner.js';
import { NanocellError } from '../util/errors.js';
import type { ChainVerdict } from './chain.js';
import { openDatabase } from './db.js';
import type { AuditEvent, AuditEventInput } from './events.js';
import { gcTasks, recoverAbandoned } from './storeMaintenance.js';
import {
  getTask,
  listTasks,
  taskEvents,
  taskIdsWithPrefix,
  verifyTask,
  type TaskFilter,
} from './storeReader.js';
import { storeDb, type StoreDb, type TaskEnd, type TaskRow } from './storeRows.js';
import { StoreWriter } from './storeWriter.js';
import { resolveTaskIdPrefix } from './taskId.js';

export { newTaskId } from './taskId.js';
export { taskStatuses, type TaskEnd, type TaskRow } from './storeRows.js';

export interface AuditStoreOptions {
  /** Stored events per task before only counts are kept (default 10,000). */
  maxEventsPerTask?: number;
  /** Stored payload bytes per task before only counts are kept (default 16 MiB). */
  maxBytesPerTask?: number;
  readonly?: boolean;
}

/** Stores open in this process, flushed when it exits so the last batch is not lost. */
const openStores = new Set<AuditStore>();
let exitHookInstalled = false;
function flushAllOnExit(): void {
  for (const store of openStores) {
    try {
      store.flush();
    } catch {
      // Exiting anyway: a failed last flush must not mask the real exit status.
    }
  }
}

export class AuditStore {
  private closed = false;
  private readonly writer: StoreWriter;

  private constructor(
    private readonly s: StoreDb,
    readonly path: string,
    maxEvents: number,
    maxBytes: number,
    readonly readonly: boolean,
  ) {
    this.writer = new StoreWriter(s, maxEvents, maxBytes);
  }

  static open(dbPath: string, opts: AuditStoreOptions = {}): AuditStore {
    const maxEvents = opts.maxEventsPerTask ?? 10_000;
    const maxBytes = opts.maxBytesPerTask ?? 16 * 1024 * 1024;
    if (!Number.isSafeInteger(maxEvents) || maxEvents < 1) {
      throw new NanocellError(
        `maxEventsPerTask must be a positive integer (got ${maxEvents})`,
        'pass a positive event cap',
        'USAGE',
      );
    }
    const readonly = opts.readonly ?? false;
    const db = storeDb(openDatabase(dbPath, readonly), dbPath);
    const store = new AuditStore(db, dbPath, maxEvents, maxBytes, readonly);
    if (!store.readonly) {
      openStores.add(store);
      if (!exitHookInstalled) {
        process.on('exit', flushAllOnExit);
        exitHookInstalled = true;
      }
    }
    return store;
  }

  /** Events waiting for the next flush (bounded by the flush threshold). */
  get pending(): number {
    return this.writer.pending;
  }

  createTask(t: {
    id: string;
    session: string;
    command: string[];
    workspace?: string;
    ownerPid: number;
    /** Metadata labels, recorded in task.created (hash-chained, so they cannot be altered). */
    labels?: Record<string, string>;
    /** Summary of the effective policy, recorded in task.created. */
    policy?: Record<string, unknown>;
  }): void {
    this.assertWritable();
    const ownerStart = readProcStat(t.ownerPid)?.startTime ?? null;
    // The task row and its first event are visible to other processes right away.
    this.writer.createTask(t, ownerStart, t.policy ?? {});
  }

  /** Queues one event; cheap. Throws for an event that does not match its schema (a bug). */
  append(taskId: string, e: AuditEventInput): void {
    this.assertWritable();
    if (e.type === 'task.created') {
      throw new NanocellError(
        'task.created is recorded by createTask',
        'do not append task.created yourself',
        'INTERNAL',
      );
    }
    this.writer.enqueue(taskId, e);
  }

  /** Writes every queued event and count in one transaction. */
  flush(): void {
    if (this.readonly || this.closed) return;
    this.writer.flush();
  }

  /**
   * Records the end: appends task.exited (unless the caller already did), then writes
   * everything queued and the end status in one fully synced transaction. Idempotent.
   */
  endTask(taskId: string, end: TaskEnd): void {
    this.assertWritable();
    this.writer.endTask(taskId, end);
  }

  getTask(id: string): TaskRow | undefined {
    this.flushIfWriter();
    return getTask(this.s, id);
  }

  /** Newest first. `sinceMs` is an epoch-ms lower bound on the creation time. */
  listTasks(f: TaskFilter = {}): TaskRow[] {
    this.flushIfWriter();
    return listTasks(this.s, f);
  }

  events(taskId: string, opts: { afterSeq?: number; limit?: number } = {}): AuditEvent[] {
    this.flushIfWriter();
    return taskEvents(this.s, taskId, opts);
  }

  /** Recomputes the task's chain; reports the first seq that does not hold. */
  verifyTask(id: string): ChainVerdict {
    this.flushIfWriter();
    return verifyTask(this.s, id);
  }

  /** See storeMaintenance.recoverAbandoned; returns the ids it ended. */
  recoverAbandoned(): string[] {
    this.assertWritable();
    this.flush();
    const ids = recoverAbandoned(this.s);
    for (const id of ids) this.writer.forget(id);
    return ids;
  }

  /** Deletes ended tasks (and their events) that ended more than `olderThanMs` ago. */
  gc(opts: { olderThanMs: number }): { tasks: number; events: number } {
    this.assertWritable();
    this.flush();
    return gcTasks(this.s, opts.olderThanMs);
  }

  /** Full id for a unique prefix; a NanocellError (exit 125) for none or several. */
  resolveTaskId(prefix: string): string {
    return resolveTaskIdPrefix(prefix, (p) => this.taskIdsWithPrefix(p));
  }

  /** A few recorded task ids that start with `prefix` (already normalised). */
  taskIdsWithPrefix(prefix: string): string[] {
    this.flushIfWriter();
    return taskIdsWithPrefix(this.s, prefix);
  }

  close(): void {
    if (this.closed) return;
    try {
      if (!this.readonly) this.writer.close();
    } finally {
      this.closed = true;
      openStores.delete(this);
      this.s.db.close();
    }
  }

  private flushIfWriter(): void {
    if (!this.readonly) this.flush();
  }

  private assertWritable(): void {
    if (this.closed) {
      throw new NanocellError('the audit store is closed', 'open it again', 'INTERNAL');
    }
    if (this.readonly) {
      throw new NanocellError(
        `the audit store ${this.path} was opened read-only`,
        'open it without readonly to record tasks',
        'INTERNAL',
      );
    }
  }
}
