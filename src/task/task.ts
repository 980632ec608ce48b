// One task = one cell: create it, run a command with the caller's streams, destroy it, and
// write down what happened (src/cell/record.ts). The CLI's `run` is this function plus
// argument parsing.
import type { Readable, Writable } from 'node:stream';
import type { AuditEventInput } from '../audit/events.js';
import { newTaskId } from '../audit/taskId.js';
import type { Policy } from '../policy/defaults.js';
import { NanocellError } from '../util/errors.js';
import { Cell } from '../cell/cell.js';
import { TaskRecord, type RecordedReport } from '../cell/record.js';
import type { CellOptions, CellSummary, ExecOutcome } from '../cell/types.js';
import type { WorkspaceStack } from '../cell/stackMount.js';
import type { TtySize } from '../cell/initFrames.js';
import { defaultStateRoot } from '../cell/state.js';
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
  /** How the task's cell starts: `Cell.create` unless the cell server claims one from a pool. */
  startCell?: (o: CellOptions) => Promise<Cell>;
  /** Once the task's cell runs: its id, and the warm pool it was claimed from (if it was). */
  onCell?: (c: { id: string; warmPool?: string }) => void;
}

/** A task's report: as every recorded task's, with the command's exit status. */
export type TaskReport = RecordedReport & { exitCode: number };

interface Ran {
  outcome?: ExecOutcome;
  summary?: CellSummary;
  error?: NanocellError | Error;
}

export async function runTask(o: TaskOptions): Promise<TaskReport> {
  const rec = TaskRecord.open({
    stateRoot: o.stateRoot ?? defaultStateRoot(),
    taskId: newTaskId(),
    session: o.session ?? 'default',
    command: o.command,
    workspace: o.workspace,
    policy: o.policy,
    envNames: envNames(o),
    ...(o.onEvent ? { onEvent: o.onEvent } : {}),
    onError: (message) => o.stderr.write(`${message}\n`),
  });
  const { outcome, summary, error } = await runInCell(o, rec);
  const report = rec.finish({
    exitCode: error ? 125 : (outcome?.exitCode ?? 125),
    endReason: error ? 'error' : (outcome?.endReason ?? summary?.endReason ?? 'error'),
    ...(error ? { error } : {}),
    ...(summary ? { summary } : {}),
    outputTruncated: outcome?.outputTruncated ?? false,
    changes: o.changes ?? 'keep',
  }) as TaskReport;
  if (error && !(error instanceof NanocellError)) throw error;
  if (error) {
    (error as NanocellError & { report?: TaskReport }).report = report;
    throw error;
  }
  return report;
}

/** The cell's life around the command: create, serve the control socket, run, destroy. */
async function runInCell(o: TaskOptions, rec: TaskRecord): Promise<Ran> {
  const ran: Ran = {};
  let cell: Cell | undefined;
  let control: ControlServer | undefined;
  const onAbort = () => void cell?.kill('killed');
  o.abort?.addEventListener('abort', onAbort);
  try {
    cell = await (o.startCell ?? ((c: CellOptions) => Cell.create(c)))({
      policy: o.policy,
      workspace: o.workspace,
      taskId: rec.taskId,
      session: rec.session,
      ...(o.stack ? { stack: o.stack } : {}),
      stateRoot: rec.layout.root,
      extraAllowNet: o.extraAllowNet,
      // This task's record is kept here, with its command and exit status.
      record: false,
      onEvent: rec.cellEvent,
    });
    o.onCell?.({ id: cell.id, ...(cell.warmPool ? { warmPool: cell.warmPool } : {}) });
    if (o.abort?.aborted) await cell.kill('killed');
    // `nanocell exec/stop/kill TASK` from another terminal reach the cell through this.
    control = await ControlServer.listen({
      stateRoot: rec.layout.root,
      target: cell,
      onEvent: rec.record,
    });
    ran.outcome = await runCommand(cell, o, rec);
  } catch (e) {
    ran.error = e as Error;
  } finally {
    o.abort?.removeEventListener('abort', onAbort);
    if (cell) {
      try {
        ran.summary = await cell.destroy({ abandonChanges: o.abandonChanges });
      } catch (e) {
        ran.error ??= e as Error;
      }
    }
    // After the collection: a waiting `nanocell stop` returns once the change set is kept.
    await control?.close();
  }
  return ran;
}

async function runCommand(cell: Cell, o: TaskOptions, rec: TaskRecord): Promise<ExecOutcome> {
  const x = cell.exec(o.command, { env: o.env, ...(o.tty ? { tty: o.tty.size } : {}) });
  const stopResize = o.tty?.onResize((size) => x.resize(size));
  try {
    x.stdout.pipe(o.stdout, { end: false });
    x.stderr.pipe(o.stderr, { end: false });
    if (o.stdin) o.stdin.pipe(x.stdin);
    else x.stdin.end();
    x.stdin.on('error', () => undefined);
    const outcome = await x.result;
    if (outcome.signal === SIGSYS) rec.record(foreignAbiDenial(o.command));
    await Promise.all([ended(x.stdout), ended(x.stderr)]);
    o.stdin?.unpipe(x.stdin);
    return outcome;
  } finally {
    stopResize?.();
  }
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
