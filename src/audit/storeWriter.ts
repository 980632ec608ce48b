// Writing the audit store. One process owns a task (the supervisor that created it) and is its
// only writer. Appends are validated, bounded, hash-chained and queued in memory, then written
// in one transaction every ~50 ms or 256 events, and synchronously at task end. Past the
// store's caps a task's events are only counted per type (lifecycle events always stored).
import { NanocellError } from '../util/errors.js';
import { canonicalJson } from './canonical.js';
import { chainHashOf, GENESIS_HASH, type ChainRow } from './chain.js';
import {
  AUDIT_EVENT_VERSION,
  auditEventInputSchema,
  auditEventTypes,
  boundEventSize,
  lifecycleEventTypes,
  type AuditEvent,
  type AuditEventInput,
  type AuditEventType,
} from './events.js';
import { parseCounts, type RawTask, type StoreDb, type TaskEnd } from './storeRows.js';

const FLUSH_EVERY_MS = 50;
const FLUSH_AT_EVENTS = 256;

/** What the writer knows of a task it writes: where its chain and counts stand. */
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

/** A chained row waiting for the next batch insert. */
interface PendingRow extends ChainRow {
  taskId: string;
}

export class StoreWriter {
  private readonly states = new Map<string, TaskState>();
  private queue: PendingRow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly pendingEnds = new Map<string, { end: TaskEnd; now: number }>();

  constructor(
    private readonly s: StoreDb,
    private readonly maxEvents: number,
    private readonly maxBytes: number,
  ) {}

  get pending(): number {
    return this.queue.length;
  }

  /** Inserts the task row, queues task.created and flushes, so others see both at once. */
  createTask(
    t: {
      id: string;
      session: string;
      command: string[];
      workspace?: string;
      ownerPid: number;
      labels?: Record<string, string>;
    },
    ownerStart: number | null,
    policy: Record<string, unknown>,
  ): void {
    const now = Date.now();
    const { s } = this;
    s.run(() =>
      s.stmts.insertTask.run(
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
      policy,
      ...(t.workspace !== undefined ? { workspace: t.workspace } : {}),
      ...(t.labels && Object.keys(t.labels).length ? { labels: t.labels } : {}),
    });
    this.flush();
  }

  /** Queues one event; cheap. Throws for an event that does not match its schema (a bug). */
  enqueue(taskId: string, e: AuditEventInput, time = Date.now()): void {
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
    const event = this.stamped(taskId, state, e, time);
    const payload = canonicalJson(event);
    if (!lifecycle && state.bytes + payload.length > this.maxBytes) {
      this.drop(state, type, aggregateOf(e));
      return;
    }
    const hash = chainHashOf(state.head, payload);
    this.queue.push({ taskId, seq: event.seq, time, type, payload, prevHash: state.head, hash });
    state.head = hash;
    state.nextSeq++;
    state.bytes += payload.length;
    state.dirty = true;
    if (type === 'task.exited') state.exitedSeen = true;
    if (this.queue.length >= FLUSH_AT_EVENTS) this.flush();
    else this.scheduleFlush();
  }

  /** The validated, bounded event with its envelope (v, taskId, session, time, seq). */
  private stamped(taskId: string, state: TaskState, e: AuditEventInput, time: number) {
    const parsed = auditEventInputSchema.safeParse(e);
    if (!parsed.success) {
      throw new NanocellError(
        `invalid ${e.type} audit event: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
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
    return {
      ...boundEventSize(input),
      type: e.type,
      v: AUDIT_EVENT_VERSION,
      taskId,
      session: state.session,
      time,
      seq: state.nextSeq,
    } as AuditEvent;
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

  /** Writes every queued event, count and end in one transaction. */
  flush(): void {
    if (this.closed) return;
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    const rows = this.queue;
    const dirty = [...this.states].filter(([, st]) => st.dirty);
    const ends = [...this.pendingEnds];
    if (rows.length === 0 && dirty.length === 0 && ends.length === 0) return;
    const { stmts, db } = this.s;
    const write = db.transaction(() => {
      for (const r of rows) {
        stmts.insertEvent.run(r.taskId, r.seq, r.time, r.type, r.payload, r.prevHash, r.hash);
      }
      for (const [id, st] of dirty) {
        const counts = JSON.stringify(st.droppedCounts);
        stmts.updateProgress.run(st.nextSeq, st.head, st.bytes, st.dropped, counts, id);
      }
      for (const [id, { end, now }] of ends) {
        const report = end.report === undefined ? null : JSON.stringify(end.report);
        stmts.endTask.run(end.status, end.endReason, end.exitCode, now, report, id);
      }
    });
    this.s.run(() => write.immediate());
    this.queue = [];
    this.pendingEnds.clear();
    for (const [, st] of dirty) st.dirty = false;
    // Ended tasks get no more events; forget them so a long-lived supervisor stays small.
    for (const [id, st] of this.states) if (st.ended) this.states.delete(id);
  }

  /**
   * Records the end: appends task.exited (unless the caller already did), then writes
   * everything queued and the end status in one fully synced transaction. Idempotent.
   */
  endTask(taskId: string, end: TaskEnd): void {
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
    this.s.db.pragma('synchronous = FULL');
    try {
      this.flush();
    } finally {
      this.s.db.pragma('synchronous = NORMAL');
    }
  }

  /** A task another writer may have ended (recovery): its state is read again next time. */
  forget(taskId: string): void {
    this.states.delete(taskId);
  }

  /** Flushes what is queued; later flushes do nothing. */
  close(): void {
    try {
      this.flush();
    } finally {
      this.closed = true;
    }
  }

  private state(taskId: string): TaskState {
    const cached = this.states.get(taskId);
    if (cached) return cached;
    const raw = this.s.run(() => this.s.stmts.getTask.get(taskId)) as RawTask | undefined;
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
}

/** How many occurrences an event stands for (aggregated summaries carry a count). */
function aggregateOf(e: AuditEventInput): number {
  const n = (e as { count?: unknown }).count;
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : 1;
}
