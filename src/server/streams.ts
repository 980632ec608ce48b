// The two streaming requests: `exec` (one command in a server-owned cell) and `run` (v1's
// whole task for `nanocell run`). Each registers its input sink on the connection before it
// returns, so a `stdin` line right behind the request finds it; its answer is the outcome.
import { PassThrough, Writable } from 'node:stream';
import type { Cell } from '../cell/cell.js';
import type { CellExec, CellOptions, ExecOutcome } from '../cell/types.js';
import type { Policy } from '../policy/defaults.js';
import { runTask, type TaskReport } from '../task/task.js';
import type { Conn } from './conn.js';
import type { RequestId } from '../cell/remote/protocol.js';
import type { RunTask } from './requests.js';

const SIGKILL = 9;
const SIGTERM = 15;

export function execStream(
  conn: Conn,
  id: RequestId,
  x: CellExec,
  timeoutMs: number | undefined,
): Promise<ExecOutcome> {
  x.stdin.on('error', () => undefined);
  let timedOut = false;
  const timer =
    timeoutMs === undefined
      ? undefined
      : setTimeout(() => {
          timedOut = true;
          x.kill(SIGKILL);
        }, timeoutMs);
  conn.streams.set(id, {
    input(m) {
      if (m.type === 'stdin') {
        if (x.stdin.writableEnded) return;
        if (m.data) x.stdin.write(Buffer.from(m.data, 'base64'));
        if (m.end) x.stdin.end();
      } else if (m.type === 'signal') x.kill(m.signal);
      else if (m.type === 'resize') x.resize({ cols: m.cols, rows: m.rows });
      else x.kill(SIGTERM);
    },
    // Nobody is left to read it or type into it: as a closed terminal, the command goes.
    abandon: () => x.kill(SIGKILL),
  });
  const out = conn.forward(id, x.stdout, 'stdout');
  const err = conn.forward(id, x.stderr, 'stderr');
  return Promise.all([x.result, out, err])
    .then(([r]) =>
      timedOut && r.endReason !== 'timeout'
        ? { ...r, exitCode: 124, endReason: 'timeout' as const }
        : r,
    )
    .finally(() => {
      clearTimeout(timer);
      conn.streams.delete(id);
    });
}

/** How a run's output and news reach its client: JSON frames (`run`), or the native front's. */
export interface RunEmitter {
  /** False when the socket is full: the task's output waits for it to drain. */
  output(type: 'stdout' | 'stderr', chunk: Buffer): boolean;
  event?(e: object): void;
  cell(c: { id: string; warmPool?: string }): void;
  /** A second cancel gave the change set up. */
  abandoned?(): void;
}

const jsonFrames = (conn: Conn, id: RequestId): RunEmitter => ({
  output: (type, chunk) => conn.send({ id, type, data: chunk.toString('base64') }),
  event: (e) => conn.send({ id, type: 'event', event: e }),
  cell: (c) =>
    conn.send({ id, type: 'cell', cell: c.id, ...(c.warmPool ? { warmPool: c.warmPool } : {}) }),
});

/** A whole task as `nanocell run` gives it; the answer is its report. */
export function runStream(
  conn: Conn,
  id: RequestId,
  t: RunTask,
  o: {
    stateRoot: string;
    running: Set<AbortController>;
    startCell?: ((c: CellOptions) => Promise<Cell>) | undefined;
  },
  emit: RunEmitter = jsonFrames(conn, id),
): Promise<TaskReport> {
  const abort = new AbortController();
  const abandon = new AbortController();
  const stdin = t.stdin ? new PassThrough() : undefined;
  o.running.add(abort);
  const frames = (type: 'stdout' | 'stderr') =>
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        if (emit.output(type, chunk)) cb();
        else conn.whenDrained(() => cb());
      },
    });
  conn.streams.set(id, {
    input(m) {
      if (m.type === 'stdin' && stdin) {
        if (m.data) stdin.write(Buffer.from(m.data, 'base64'));
        if (m.end) stdin.end();
      } else if (m.type === 'cancel' || (m.type === 'signal' && m.signal === 2)) {
        if (!abort.signal.aborted) abort.abort();
        else if (!abandon.signal.aborted) {
          abandon.abort();
          emit.abandoned?.();
        }
      }
    },
    // The client went away: stop its task as Ctrl-C would; the change set is still kept.
    abandon: () => abort.abort(),
  });
  return runTask({
    policy: t.policy as Policy,
    workspace: t.workspace,
    command: t.command,
    session: t.session,
    stateRoot: o.stateRoot,
    extraAllowNet: t.extraAllowNet,
    stdin: stdin ?? null,
    stdout: frames('stdout'),
    stderr: frames('stderr'),
    abort: abort.signal,
    abandonChanges: abandon.signal,
    changes: t.changes ?? 'keep',
    ...(o.startCell ? { startCell: o.startCell } : {}),
    ...(emit.event ? { onEvent: emit.event } : {}),
    onCell: (c) => emit.cell(c),
  }).finally(() => {
    o.running.delete(abort);
    conn.streams.delete(id);
  });
}
