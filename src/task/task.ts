// One task = one cell: create it, run a command with the caller's streams, destroy it, and
// write down what happened. The CLI's `run` is this function plus argument parsing.
import fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { AuditStore } from '../audit/store.js';
import type { AuditEventInput } from '../audit/events.js';
import { newTaskId } from '../audit/taskId.js';
import type { Policy } from '../policy/defaults.js';
import { NanocellError } from '../util/errors.js';
import { applyChangeSet, discardChangeSet } from '../workspace/index.js';
import { DenialSummaries, toAuditEvents, TaskTally } from './auditSink.js';
import { Cell } from '../cell/cell.js';
import type { CellEvent, CellSummary, EndReason, ExecOutcome } from '../cell/types.js';
import type { WorkspaceStack } from '../cell/stackMount.js';
import type { TtySize } from '../cell/initFrames.js';
import { defaultStateRoot, ensureStateRoot } from '../cell/state.js';
import { ControlServer } from '../control/server.js';

export interface TaskOptions {
  policy: Policy;
  workspace: string;
  command: string[];
  session?: string;
  /** The session layers the task starts from (resolveStack). */
  stack?: WorkspaceStack;
  stateRoot?: string;
  extraAllowNet?: string[];
  env?: Record<string, string>;
  stdin?: Readable | null;
  /** Run the command on a terminal in the cell; `onResize` returns its unsubscribe. */
  tty?: { size: TtySize; onResize(listener: (size: TtySize) => void): () => void };
  stdout: Writable;
  stderr: Writable;
  /** Resolves when the task should be killed (Ctrl-C, SIGTERM). */
  abort?: AbortSignal;
  /** Resolves when a change-set collection in progress should be given up (a second Ctrl-C). */
  abandonChanges?: AbortSignal;
  /** What to do with the change set after the task. */
  changes?: 'keep' | 'apply' | 'discard';
  /** Called for every audit event, after it is recorded (live view). */
  onEvent?: (e: AuditEventInput) => void;
}

export interface TaskReport {
  version: 1;
  taskId: string;
  session: string;
  command: string[];
  workspace: string;
  exitCode: number;
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

export async function runTask(o: TaskOptions): Promise<TaskReport> {
  const layout = ensureStateRoot(o.stateRoot ?? defaultStateRoot());
  const store = AuditStore.open(layout.db);
  // Tasks whose supervisor died (even by SIGKILL) are marked as ended abnormally.
  store.recoverAbandoned();
  const taskId = newTaskId();
  const session = o.session ?? 'default';
  const tally = new TaskTally();
  const startedAt = Date.now();
  const record = (e: AuditEventInput) => {
    tally.add(e);
    try {
      store.append(taskId, e);
    } catch (err) {
      o.stderr.write(`nanocell: audit: ${(err as Error).message}\n`);
    }
    o.onEvent?.(e);
  };
  const summaries = new DenialSummaries();
  const onCellEvent = (e: CellEvent) => {
    for (const a of toAuditEvents(e, summaries)) record(a);
  };

  store.createTask({
    id: taskId,
    session,
    command: o.command,
    workspace: o.workspace,
    ownerPid: process.pid,
    policy: {
      limits: o.policy.limits,
      network: o.policy.network,
      exec: o.policy.exec,
      allowDegraded: o.policy.allowDegraded,
      mounts: o.policy.mounts,
      envNames: envNames(o),
    },
  });

  let cell: Cell | undefined;
  let control: ControlServer | undefined;
  let outcome: ExecOutcome | undefined;
  let summary: CellSummary | undefined;
  let error: NanocellError | Error | undefined;
  let stopResize: (() => void) | undefined;
  const onAbort = () => void cell?.kill('killed');
  o.abort?.addEventListener('abort', onAbort);
  try {
    cell = await Cell.create({
      policy: o.policy,
      workspace: o.workspace,
      taskId,
      session,
      ...(o.stack ? { stack: o.stack } : {}),
      stateRoot: layout.root,
      extraAllowNet: o.extraAllowNet,
      onEvent: onCellEvent,
    });
    if (o.abort?.aborted) await cell.kill('killed');
    // `nanocell exec/stop/kill TASK` from another terminal reach the cell through this.
    control = await ControlServer.listen({
      stateRoot: layout.root,
      target: cell,
      onEvent: record,
    });
    const x = cell.exec(o.command, { env: o.env, ...(o.tty ? { tty: o.tty.size } : {}) });
    stopResize = o.tty?.onResize((size) => x.resize(size));
    x.stdout.pipe(o.stdout, { end: false });
    x.stderr.pipe(o.stderr, { end: false });
    if (o.stdin) o.stdin.pipe(x.stdin);
    else x.stdin.end();
    x.stdin.on('error', () => undefined);
    outcome = await x.result;
    if (outcome.signal === SIGSYS) record(foreignAbiDenial(o.command));
    await Promise.all([ended(x.stdout), ended(x.stderr)]);
    o.stdin?.unpipe(x.stdin);
  } catch (e) {
    error = e as Error;
  } finally {
    stopResize?.();
    o.abort?.removeEventListener('abort', onAbort);
    if (cell) {
      try {
        summary = await cell.destroy({ abandonChanges: o.abandonChanges });
      } catch (e) {
        error ??= e as Error;
      }
    }
    // After the collection: a waiting `nanocell stop` returns once the change set is kept.
    await control?.close();
  }

  const endReason: EndReason = error
    ? 'error'
    : (outcome?.endReason ?? summary?.endReason ?? 'error');
  const exitCode = error ? 125 : (outcome?.exitCode ?? 125);
  const endedAt = Date.now();
  const report: TaskReport = {
    version: 1,
    taskId,
    session,
    command: o.command,
    workspace: o.workspace,
    exitCode,
    endReason,
    ...(error ? { error: error instanceof NanocellError ? error.oneLine() : error.message } : {}),
    startedAt: new Date(startedAt).toISOString(),
    endedAt: new Date(endedAt).toISOString(),
    durationMs: endedAt - startedAt,
    resources: {
      peakMemoryBytes: summary?.resources.peakMemoryBytes ?? null,
      peakPids: summary?.resources.peakPids ?? null,
      cpuTimeMs: summary?.resources.cpuMs ?? null,
    },
    limits: summary?.limits ?? null,
    degradations: tally.degradations,
    runtime: summary?.runtime ?? null,
    outputTruncated: outcome?.outputTruncated ?? false,
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
    envNames: envNames(o),
    mounts: o.policy.mounts,
    ...(summary?.changeSet !== undefined ? { changes: summary.changeSet } : {}),
  };
  const changeDir = layout.changeSet(taskId);
  if (fs.existsSync(changeDir)) {
    const counts = (summary?.changeSet as { counts?: Record<string, number> } | undefined)?.counts;
    const empty = counts !== undefined && Object.values(counts).every((n) => n === 0);
    report.changeSetFate = empty
      ? (discardChangeSet(changeDir, { record: false }), { action: 'none' })
      : settleChangeSet(changeDir, o.workspace, o.changes ?? 'keep');
  }
  record({
    type: 'task.exited',
    exitCode,
    endReason: report.endReason,
    durationMs: report.durationMs,
    ...(report.error ? { detail: report.error.slice(0, 1000) } : {}),
  });
  store.endTask(taskId, {
    status: error ? 'failed' : 'exited',
    endReason: report.endReason,
    exitCode,
    report,
  });
  store.close();
  fs.writeFileSync(layout.report(taskId), JSON.stringify(report, null, 2), {
    mode: 0o600,
  });
  if (error && !(error instanceof NanocellError)) throw error;
  if (error) {
    (error as NanocellError & { report?: TaskReport }).report = report;
    throw error;
  }
  return report;
}

const SIGSYS = 31;

/**
 * The filter kills a process that makes an i386 (`int 0x80`) or x32 syscall instead of
 * notifying the monitor, so its SIGSYS death is the only trace: record it as a denial.
 */
function foreignAbiDenial(command: string[]): AuditEventInput {
  return {
    type: 'syscall.denied',
    name: 'foreign-abi',
    nr: -1,
    arch: 'i386/x32',
    pid: 0,
    exe: command[0] ?? '',
    errno: 0,
  };
}

/**
 * --apply writes the change set only if it applies cleanly (no conflict, nothing refused);
 * otherwise it stays for review. --discard removes it.
 */
function settleChangeSet(
  dir: string,
  workspace: string,
  action: 'keep' | 'apply' | 'discard',
): NonNullable<TaskReport['changeSetFate']> {
  if (action === 'discard') {
    discardChangeSet(dir);
    return { action: 'discarded' };
  }
  if (action === 'apply') {
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

function ended(s: Readable): Promise<void> {
  if (s.readableEnded || s.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    s.once('end', resolve);
    s.once('close', resolve);
    s.once('error', () => resolve());
  });
}

/** Variable names only: a value may be a token passed with --env NAME or --env-file. */
function envNames(o: TaskOptions): string[] {
  return [...new Set([...Object.keys(o.policy.env), ...Object.keys(o.env ?? {})])].sort();
}
