// The audit store: tasks and their hash-chained events in SQLite (WAL) under the state root.
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
import { NanocellError } from '../util/errors.js';
import { canonicalJson } from './canonical.js';
import { chainHash, GENESIS_HASH, verifyChain, type ChainRow, type ChainVerdict } from './chain.js';
import { openDatabase, translateSqliteError, withBusyRetry, type Db } from './db.js';
import {
  AUDIT_EVENT_VERSION,
  auditEventInputSchema,
  auditEventTypes,
  boundEventSize,
  lifecycleEventTypes,
  type AuditEvent,
  type AuditEventInput,
  type AuditEventType,
  type EndReason,
} from './events.js';
import { isOwnerAlive, readProcStat } from '../host/owner.js';
import { TASK_ID_PREFIX_PATTERN } from './taskId.js';

export { newTaskId } from './taskId.js';

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

export interface AuditStoreOptions {
  /** Stored events per task before only counts are kept (default 10,000). */
  maxEventsPerTask?: number;
  /** Stored payload bytes per task before only counts are kept (default 16 MiB). */
  maxBytesPerTask?: number;
  readonly?: boolean;
}

export interface TaskEnd {
  status: Exclude<TaskStatus, 'running'>;
  endReason: EndReason;
  exitCode: number | null;
  report?: unknown;
}

interface TaskState {
  session: string;
  createdAt: number;
  nextSeq: number;
  head: string;
  bytes: number;
  dropped: number;
  droppedCounts: Record<string, number>;
  exitedSeen: boolean;
  ended: boolean;
  dirty: boolean;
}

interface PendingRow {
  taskId: string;
  seq: number;
  time: number;
  type: string;
  payload: string;
  prevHash: string;
  hash: string;
}

interface RawTask {
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

const FLUSH_EVERY_MS = 50;
const FLUSH_AT_EVENTS = 256;

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
  private readonly states = new Map<string, TaskState>();
  private queue: PendingRow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly stmts: ReturnType<typeof prepareStatements>;
  private readonly pendingEnds = new Map<string, { end: TaskEnd; now: number }>();

  private constructor(
    private readonly db: Db,
    readonly path: string,
    private readonly maxEvents: number,
    private readonly maxBytes: number,
    readonly readonly: boolean,
  ) {
    this.stmts = prepareStatements(db);
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
    const db = openDatabase(dbPath, opts.readonly ?? false);
    const store = new AuditStore(db, dbPath, maxEvents, maxBytes, opts.readonly ?? false);
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
    return this.queue.length;
  }

  createTask(t: {
    id: string;
    session: string;
    command: string[];
    workspace?: string;
    ownerPid: number;
    /** Summary of the effective policy, recorded in task.created. */
    policy?: Record<string, unknown>;
  }): void {
    this.assertWritable();
    const now = Date.now();
    const ownerStart = readProcStat(t.ownerPid)?.startTime ?? null;
    this.run(() =>
      this.stmts.insertTask.run(
        t.id,
        t.session,
        JSON.stringify(t.command),
        now,
        t.ownerPid,
        ownerStart,
        t.workspace ?? null,
        GENESIS_HASH,
      ),
    );
    this.states.set(t.id, {
      session: t.session,
      createdAt: now,
      nextSeq: 0,
      head: GENESIS_HASH,
      bytes: 0,
      dropped: 0,
      droppedCounts: {},
      exitedSeen: false,
      ended: false,
      dirty: false,
    });
    this.enqueue(t.id, {
      type: 'task.created',
      command: t.command,
      policy: t.policy ?? {},
      ...(t.workspace !== undefined ? { workspace: t.workspace } : {}),
    });
    // The task row and its first event are visible to other processes right away.
    this.flush();
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
    this.enqueue(taskId, e);
  }

  private enqueue(taskId: string, e: AuditEventInput, time = Date.now()): void {
    const state = this.state(taskId);
    const type = e.type as AuditEventType;
    if (!auditEventTypes.includes(type)) {
      throw new NanocellError(
        `unknown audit event type ${String(e.type)}`,
        'fix the producer',
        'INTERNAL',
      );
    }
    const lifecycle = lifecycleEventTypes.has(type);
    if (state.ended || (!lifecycle && state.nextSeq >= this.maxEvents)) {
      // Past the cap (or after the end): count, do not store. Counting needs no validation, so
      // a flood costs a map increment per event.
      this.drop(state, type, aggregateOf(e));
      return;
    }
    const parsed = auditEventInputSchema.safeParse(e);
    if (!parsed.success) {
      throw new NanocellError(
        `invalid ${type} audit event: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
        'fix the event producer',
        'INTERNAL',
      );
    }
    const input = parsed.data;
    if (
      (input.taskId !== undefined && input.taskId !== taskId) ||
      (input.session !== undefined && input.session !== state.session)
    ) {
      throw new NanocellError(
        `audit event for task ${String(input.taskId)} appended to task ${taskId}`,
        'append events to the task they belong to',
        'INTERNAL',
      );
    }
    const event = {
      ...boundEventSize(input),
      type,
      v: AUDIT_EVENT_VERSION,
      taskId,
      session: state.session,
      time,
      seq: state.nextSeq,
    } as AuditEvent;
    const payload = canonicalJson(event);
    if (!lifecycle && state.bytes + payload.length > this.maxBytes) {
      this.drop(state, type, aggregateOf(e));
      return;
    }
    const hash = chainHash(state.head, event);
    this.queue.push({
      taskId,
      seq: event.seq,
      time: event.time,
      type,
      payload,
      prevHash: state.head,
      hash,
    });
    state.head = hash;
    state.nextSeq++;
    state.bytes += payload.length;
    state.dirty = true;
    if (type === 'task.exited') state.exitedSeen = true;
    if (this.queue.length >= FLUSH_AT_EVENTS) this.flush();
    else this.scheduleFlush();
  }

  /** `n` is what the event stands for: an aggregated summary counts as its `count`. */
  private drop(state: TaskState, type: string, n: number): void {
    state.dropped += n;
    state.droppedCounts[type] = (state.droppedCounts[type] ?? 0) + n;
    state.dirty = true;
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.timer || this.closed) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      try {
        this.flush();
      } catch (err) {
        // A timer has no caller to throw to; the next append, flush or endTask retries the
        // batch (it stays queued) and throws there.
        process.emitWarning(`nanocell audit flush failed: ${(err as Error).message}`);
      }
    }, FLUSH_EVERY_MS);
    this.timer.unref();
  }

  /** Writes every queued event and count in one transaction. */
  flush(): void {
    this.writeBatch();
  }

  private writeBatch(): void {
    if (this.readonly || this.closed) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const rows = this.queue;
    const dirty = [...this.states].filter(([, s]) => s.dirty);
    const ends = [...this.pendingEnds];
    if (rows.length === 0 && dirty.length === 0 && ends.length === 0) return;
    const write = this.db.transaction(() => {
      for (const r of rows) {
        this.stmts.insertEvent.run(r.taskId, r.seq, r.time, r.type, r.payload, r.prevHash, r.hash);
      }
      for (const [id, s] of dirty) {
        this.stmts.updateProgress.run(
          s.nextSeq,
          s.head,
          s.bytes,
          s.dropped,
          JSON.stringify(s.droppedCounts),
          id,
        );
      }
      for (const [id, { end, now }] of ends) {
        this.stmts.endTask.run(
          end.status,
          end.endReason,
          end.exitCode,
          now,
          end.report === undefined ? null : JSON.stringify(end.report),
          id,
        );
      }
    });
    this.run(() => write.immediate());
    this.queue = [];
    this.pendingEnds.clear();
    for (const [, s] of dirty) s.dirty = false;
    // Ended tasks get no more events; forget them so a long-lived supervisor stays small.
    for (const [id, s] of this.states) if (s.ended) this.states.delete(id);
  }

  /**
   * Records the end: appends task.exited (unless the caller already did), then writes
   * everything queued and the end status in one fully synced transaction. Idempotent.
   */
  endTask(taskId: string, end: TaskEnd): void {
    this.assertWritable();
    const state = this.state(taskId);
    if (state.ended) return;
    const now = Date.now();
    if (!state.exitedSeen) {
      this.enqueue(
        taskId,
        {
          type: 'task.exited',
          exitCode: end.exitCode,
          endReason: end.endReason,
          durationMs: Math.max(0, now - state.createdAt),
        },
        now,
      );
    }
    state.ended = true;
    state.dirty = true;
    this.pendingEnds.set(taskId, { end, now });
    this.db.pragma('synchronous = FULL');
    try {
      this.writeBatch();
    } finally {
      this.db.pragma('synchronous = NORMAL');
    }
  }

  getTask(id: string): TaskRow | undefined {
    this.flushIfWriter();
    const raw = this.run(() => this.stmts.getTask.get(id)) as RawTask | undefined;
    return raw && toTaskRow(raw);
  }

  /** Newest first. `sinceMs` is an epoch-ms lower bound on the creation time. */
  listTasks(
    f: { session?: string; status?: string; sinceMs?: number; limit?: number } = {},
  ): TaskRow[] {
    this.flushIfWriter();
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
    const sql = `SELECT * FROM tasks ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY created_at DESC, id DESC LIMIT ?`;
    args.push(f.limit ?? -1);
    const raws = this.run(() => this.db.prepare(sql).all(...args)) as RawTask[];
    return raws.map(toTaskRow);
  }

  events(taskId: string, opts: { afterSeq?: number; limit?: number } = {}): AuditEvent[] {
    this.flushIfWriter();
    const rows = this.run(() =>
      this.stmts.events.all(taskId, opts.afterSeq ?? -1, opts.limit ?? -1),
    ) as { payload: string }[];
    return rows.map((r) => JSON.parse(r.payload) as AuditEvent);
  }

  /** Recomputes the task's chain; reports the first seq that does not hold. */
  verifyTask(id: string): ChainVerdict {
    this.flushIfWriter();
    const raw = this.run(() => this.stmts.getTask.get(id)) as RawTask | undefined;
    if (!raw) return { ok: false, checked: 0, brokenAt: 0, reason: `task ${id} is not recorded` };
    return this.run(() =>
      verifyChain(id, this.stmts.chainRows.iterate(id) as Iterable<ChainRow>, {
        count: raw.event_count,
        head: raw.chain_head,
      }),
    );
  }

  /**
   * Ends tasks whose owner died without ending them (SIGKILL, power loss): status `abnormal`,
   * end reason `killed` (the cell dies with its supervisor: init sees the control socket close
   * and kills everything), and a task.exited event whose duration runs to the last recorded
   * event. What was recorded stays. Returns the ids it ended.
   */
  recoverAbandoned(): string[] {
    this.assertWritable();
    this.flush();
    const candidates = this.run(() => this.stmts.running.all()) as {
      id: string;
      owner_pid: number;
      owner_start_time: number | null;
    }[];
    const recovered: string[] = [];
    for (const c of candidates) {
      if (isOwnerAlive(c.owner_pid, c.owner_start_time)) continue;
      const done = this.run(() =>
        this.db
          .transaction(() => {
            const raw = this.stmts.getTask.get(c.id) as RawTask | undefined;
            if (!raw || raw.status !== 'running') return false;
            const last = (this.stmts.lastEventTime.get(c.id) as { t: number | null }).t;
            const now = Date.now();
            const event = {
              type: 'task.exited',
              exitCode: null,
              endReason: 'killed',
              durationMs: Math.max(0, (last ?? raw.created_at) - raw.created_at),
              detail: `owner process ${raw.owner_pid} vanished without ending the task; recovered by process ${process.pid}; duration is up to the last recorded event`,
              v: AUDIT_EVENT_VERSION,
              taskId: c.id,
              session: raw.session,
              time: now,
              seq: raw.event_count,
            } satisfies AuditEvent;
            const payload = canonicalJson(event);
            const hash = chainHash(raw.chain_head, event);
            this.stmts.insertEvent.run(
              c.id,
              event.seq,
              now,
              event.type,
              payload,
              raw.chain_head,
              hash,
            );
            this.stmts.updateProgress.run(
              raw.event_count + 1,
              hash,
              raw.stored_bytes + payload.length,
              raw.dropped_events,
              raw.dropped_counts,
              c.id,
            );
            this.stmts.endTask.run('abnormal', 'killed', null, now, raw.report, c.id);
            return true;
          })
          .immediate(),
      );
      if (done) {
        this.states.delete(c.id);
        recovered.push(c.id);
      }
    }
    return recovered;
  }

  /** Deletes ended tasks (and their events) that ended more than `olderThanMs` ago. */
  gc(opts: { olderThanMs: number }): { tasks: number; events: number } {
    this.assertWritable();
    this.flush();
    const cutoff = Date.now() - opts.olderThanMs;
    const old = "status != 'running' AND COALESCE(ended_at, created_at) < ?";
    const result = this.run(() =>
      this.db
        .transaction(() => {
          const events = this.db
            .prepare(`DELETE FROM events WHERE task_id IN (SELECT id FROM tasks WHERE ${old})`)
            .run(cutoff).changes;
          const tasks = this.db.prepare(`DELETE FROM tasks WHERE ${old}`).run(cutoff).changes;
          return { tasks, events };
        })
        .immediate(),
    );
    // Give freed pages back to the filesystem (the file was created with auto_vacuum).
    this.run(() => this.db.pragma('incremental_vacuum'));
    return result;
  }

  /** Full id for a unique prefix; a NanocellError (exit 125) for none or several. */
  resolveTaskId(prefix: string): string {
    const p = prefix.trim().toLowerCase();
    const none = new NanocellError(
      `no task ${JSON.stringify(prefix)} in the audit trail`,
      'list recorded tasks with `nanocell tasks`',
      'USAGE',
    );
    if (!TASK_ID_PREFIX_PATTERN.test(p)) throw none;
    this.flushIfWriter();
    const ids = (this.run(() => this.stmts.prefix.all(p, `${p}~`)) as { id: string }[]).map(
      (r) => r.id,
    );
    if (ids.includes(p)) return p;
    if (ids.length === 0) throw none;
    if (ids.length > 1) {
      throw new NanocellError(
        `task id prefix ${p} is ambiguous (${ids.slice(0, 5).join(', ')}${ids.length > 5 ? ', ...' : ''})`,
        'give more characters of the task id',
        'USAGE',
      );
    }
    return ids[0]!;
  }

  close(): void {
    if (this.closed) return;
    try {
      this.flush();
    } finally {
      this.closed = true;
      openStores.delete(this);
      this.db.close();
    }
  }

  private flushIfWriter(): void {
    if (!this.readonly) this.flush();
  }

  private state(taskId: string): TaskState {
    const cached = this.states.get(taskId);
    if (cached) return cached;
    const raw = this.run(() => this.stmts.getTask.get(taskId)) as RawTask | undefined;
    if (!raw) {
      throw new NanocellError(
        `audit event for unknown task ${taskId}`,
        'create the task with createTask first',
        'INTERNAL',
      );
    }
    const state: TaskState = {
      session: raw.session,
      createdAt: raw.created_at,
      nextSeq: raw.event_count,
      head: raw.chain_head,
      bytes: raw.stored_bytes,
      dropped: raw.dropped_events,
      droppedCounts: parseCounts(raw.dropped_counts),
      exitedSeen: raw.status !== 'running',
      ended: raw.status !== 'running',
      dirty: false,
    };
    this.states.set(taskId, state);
    return state;
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

  private run<T>(fn: () => T): T {
    try {
      return withBusyRetry(fn);
    } catch (err) {
      throw translateSqliteError(err, this.path);
    }
  }
}

function prepareStatements(db: Db) {
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

/** How many occurrences an event stands for (aggregated summaries carry a count). */
function aggregateOf(e: AuditEventInput): number {
  const n = (e as { count?: unknown }).count;
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : 1;
}

function parseCounts(text: string): Record<string, number> {
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

function toTaskRow(r: RawTask): TaskRow {
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
