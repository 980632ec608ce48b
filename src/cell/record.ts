// A task's audit record, the same for `nanocell run` (runTask) and for a cell made with the
// library API: its row in the audit store, its events (raw cell events mapped, tallied and
// stored), its end, its report file and what became of its change set. One owner, so that
// `nanocell tasks`, `report`, `verify`, `diff` and `apply` see both kinds of task alike.
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { CellEvent } from '../audit/cellEvents.js';
import type { AuditEventInput } from '../audit/events.js';
import { DenialSummaries, TaskTally, toAuditEvents } from '../audit/sink.js';
import { AuditStore } from '../audit/store.js';
import type { Policy } from '../policy/defaults.js';
import { NanocellError } from '../util/errors.js';
import { applyChangeSet, discardChangeSet } from '../workspace/index.js';
import { defaultStateRoot, ensureStateRoot, type StateLayout } from './state.js';
import type { CellOptions, CellSummary, EndReason } from './types.js';

export interface RecordedReport {
  version: 1;
  taskId: string;
  session: string;
  /** The task's command; empty for a library cell, whose commands are its exec events. */
  command: string[];
  workspace: string;
  /** The command's exit status; null for a library cell (it has no one command). */
  exitCode: number | null;
  endReason: EndReason;
  error?: string;
  startedAt: string;
  endedAt: string;
  durationMs: number;
  resources: {
    peakMemoryBytes: number | null;
    peakPids: number | null;
    cpuTimeMs: number | null;
  };
  limits: CellSummary['limits'] | null;
  degradations: { control: string; reason: string }[];
  runtime: { name: string; version: string } | null;
  outputTruncated: boolean;
  events: {
    execs: number;
    syscallDenied: number;
    netAllowed: number;
    netDenied: number;
    deniedBySyscall: Record<string, number>;
  };
  denials: AuditEventInput[];
  network: AuditEventInput[];
  limitHits: { limit: string; detail: string }[];
  /** Names of the variables the policy and flags set; values are never written down. */
  envNames: string[];
  /** Host paths bound read-only into the cell, as the policy named them. */
  mounts: Policy['mounts'];
  changes?: unknown;
  /** What happened to the change set after the task (--apply / --discard). */
  changeSetFate?: {
    action: 'none' | 'kept' | 'applied' | 'discarded';
    applied?: number;
    error?: string;
  };
}

export interface TaskRecordOptions {
  stateRoot: string;
  taskId: string;
  session: string;
  command: string[];
  workspace: string;
  policy: Policy;
  /** Names only: a value may be a token passed with --env NAME or --env-file. */
  envNames: string[];
  /** Metadata labels, already checked (labels.ts). */
  labels?: Record<string, string>;
  /** Called for every audit event, after it is recorded (live view). */
  onEvent?: (e: AuditEventInput) => void;
  /** A failure to write the store is reported here; the task goes on. */
  onError: (message: string) => void;
}

export interface TaskEnding {
  exitCode: number | null;
  endReason: EndReason;
  /** Set when the task failed to start or to end (status `failed`). */
  error?: NanocellError | Error;
  summary?: CellSummary;
  outputTruncated?: boolean;
  /** What to do with a non-empty change set. */
  changes: 'keep' | 'apply' | 'discard';
}

/** A cell id: sortable by creation time; short enough for unix socket paths under the state root. */
export function newCellId(): string {
  return `${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
}

/** The record of a library cell (Cell.create without `record: false`). */
export function openCellRecord(
  cell: { taskId: string; session: string; labels: Readonly<Record<string, string>> },
  opts: CellOptions,
  onError: (message: string) => void,
): TaskRecord {
  return TaskRecord.open({
    stateRoot: path.resolve(opts.stateRoot ?? defaultStateRoot()),
    taskId: cell.taskId,
    session: cell.session,
    // A library cell runs many commands: they are its exec events, not one command line.
    command: [],
    workspace: opts.workspace,
    policy: opts.policy,
    envNames: Object.keys(opts.policy.env).sort(),
    labels: { ...cell.labels },
    onError,
  });
}

export class TaskRecord {
  readonly tally = new TaskTally();
  readonly startedAt = Date.now();
  private readonly summaries = new DenialSummaries();
  private finished?: RecordedReport;

  private constructor(
    private readonly store: AuditStore,
    readonly layout: StateLayout,
    private readonly o: TaskRecordOptions,
  ) {}

  get taskId(): string {
    return this.o.taskId;
  }

  get session(): string {
    return this.o.session;
  }

  /** Creates the task's row (visible to `nanocell ps/tasks` at once). */
  static open(o: TaskRecordOptions): TaskRecord {
    const layout = ensureStateRoot(o.stateRoot);
    const store = AuditStore.open(layout.db);
    // Tasks whose supervisor died (even by SIGKILL) are marked as ended abnormally.
    store.recoverAbandoned();
    store.createTask({
      id: o.taskId,
      session: o.session,
      command: o.command,
      workspace: o.workspace,
      ownerPid: process.pid,
      ...(o.labels ? { labels: o.labels } : {}),
      policy: {
        limits: o.policy.limits,
        network: o.policy.network,
        exec: o.policy.exec,
        allowDegraded: o.policy.allowDegraded,
        mounts: o.policy.mounts,
        envNames: o.envNames,
      },
    });
    return new TaskRecord(store, layout, o);
  }

  readonly record = (e: AuditEventInput): void => {
    this.tally.add(e);
    try {
      this.store.append(this.o.taskId, e);
    } catch (err) {
      this.o.onError(`nanocell: audit: ${(err as Error).message}`);
    }
    this.o.onEvent?.(e);
  };

  readonly cellEvent = (e: CellEvent): void => {
    for (const a of toAuditEvents(e, this.summaries)) this.record(a);
  };

  /**
   * Ends the record: the report, the change set's fate, `task.exited`, the task's end status
   * and the report file. Idempotent: a second call returns the first report.
   */
  finish(end: TaskEnding): RecordedReport {
    if (this.finished) return this.finished;
    const report = this.report(end);
    const changeDir = this.layout.changeSet(this.o.taskId);
    if (fs.existsSync(changeDir)) report.changeSetFate = settle(changeDir, end, this.o.workspace);
    this.record({
      type: 'task.exited',
      exitCode: report.exitCode,
      endReason: report.endReason,
      durationMs: report.durationMs,
      ...(report.error ? { detail: report.error.slice(0, 1000) } : {}),
    });
    this.store.endTask(this.o.taskId, {
      status: end.error ? 'failed' : 'exited',
      endReason: report.endReason,
      exitCode: report.exitCode,
      report,
    });
    this.store.close();
    fs.writeFileSync(this.layout.report(this.o.taskId), JSON.stringify(report, null, 2), {
      mode: 0o600,
    });
    this.finished = report;
    return report;
  }

  private report(end: TaskEnding): RecordedReport {
    const { o, tally } = this;
    const { summary, error } = end;
    const endedAt = Date.now();
    return {
      version: 1,
      taskId: o.taskId,
      session: o.session,
      command: o.command,
      workspace: o.workspace,
      exitCode: end.exitCode,
      endReason: end.endReason,
      ...(error ? { error: error instanceof NanocellError ? error.oneLine() : error.message } : {}),
      startedAt: new Date(this.startedAt).toISOString(),
      endedAt: new Date(endedAt).toISOString(),
      durationMs: endedAt - this.startedAt,
      resources: {
        peakMemoryBytes: summary?.resources.peakMemoryBytes ?? null,
        peakPids: summary?.resources.peakPids ?? null,
        cpuTimeMs: summary?.resources.cpuMs ?? null,
      },
      limits: summary?.limits ?? null,
      degradations: tally.degradations,
      runtime: summary?.runtime ?? null,
      outputTruncated: end.outputTruncated ?? false,
      events: {
        execs: tally.execs,
        syscallDenied: tally.syscallDenied,
        netAllowed: tally.netAllowed,
        netDenied: tally.netDenied,
        deniedBySyscall: Object.fromEntries(tally.deniedBySyscall),
      },
      denials: tally.firstDenials,
      network: tally.firstNet,
      limitHits: tally.limitHits,
      envNames: o.envNames,
      mounts: o.policy.mounts,
      ...(summary?.changeSet !== undefined ? { changes: summary.changeSet } : {}),
    };
  }
}

/**
 * An empty change set is removed (fate `none`). Otherwise --apply writes it only if it applies
 * cleanly (no conflict, nothing refused), or it stays for review; --discard removes it.
 */
function settle(
  dir: string,
  end: TaskEnding,
  workspace: string,
): NonNullable<RecordedReport['changeSetFate']> {
  const counts = (end.summary?.changeSet as { counts?: Record<string, number> } | undefined)
    ?.counts;
  if (counts !== undefined && Object.values(counts).every((n) => n === 0)) {
    discardChangeSet(dir, { record: false });
    return { action: 'none' };
  }
  if (end.changes === 'discard') {
    discardChangeSet(dir);
    return { action: 'discarded' };
  }
  if (end.changes === 'apply') {
    try {
      // apply records the change set as applied; it is removed without a second record.
      const r = applyChangeSet(dir, fs.realpathSync(workspace), { force: false });
      discardChangeSet(dir, { record: false });
      return { action: 'applied', applied: r.applied };
    } catch (e) {
      const msg = e instanceof NanocellError ? e.oneLine() : (e as Error).message;
      return { action: 'kept', error: `not applied: ${msg}` };
    }
  }
  return { action: 'kept' };
}
