// Commands in a running cell: started through init's control channel with the cell's
// environment, their output capped by the policy (the rest drained and dropped with a note),
// and their end mapped onto Docker's exit-status conventions.
import fs from 'node:fs';
import { PassThrough, type Readable } from 'node:stream';
import type { CellEvent } from '../audit/cellEvents.js';
import { CELL_PROXY_PORT } from '../plan/layout.js';
import { cellEnv } from '../plan/env.js';
import type { Policy } from '../policy/defaults.js';
import { NanocellError } from '../util/errors.js';
import type { ExecResult, InitClient } from './initClient.js';
import type { DenialNotes } from './denialNotes.js';
import type { CellNetwork } from './networkSetup.js';
import type { CellExec, EndReason, ExecOptions, ExecOutcome, RunResult } from './types.js';

const SIGKILL = 9;

export interface ExecContext {
  client: InitClient;
  policy: Policy;
  net: CellNetwork | undefined;
  /** Toolchain presets' PATH and cache variables (below the policy's env). */
  toolchainEnv?: Record<string, string>;
  /** The working directory when the caller names none: the workspace in the cell. */
  cwd: string;
  emit: (e: CellEvent) => void;
  /** Where the cell's refusals become lines on the command's stderr (denialNotes.ts). */
  notes?: DenialNotes;
  /** Resolves once the monitor's events so far are handled (monitorSync.ts). */
  monitorEventsRead?: () => Promise<void>;
  /** Why the cell ended, if it did (decides a killed command's outcome). */
  endReason: () => EndReason | null;
  /** OOM kills the cgroup counted so far. */
  oomKills: () => number;
  /** A command started (id, argv) or ended (id): the cell's status file follows these. */
  started: (id: number, argv: string[]) => void;
  ended: (id: number) => void;
}

/** Starts a command in the cell. Output past the policy's cap is dropped with a note. */
export function startExec(c: ExecContext, argv: string[], opts: ExecOptions): CellExec {
  if (argv.length === 0)
    throw new NanocellError('no command given', 'pass a command after --', 'USAGE');
  const env = cellEnv({
    hostEnv: process.env,
    policyEnv: c.policy.env,
    proxyEnv: c.net?.enabled ? c.net.env(CELL_PROXY_PORT) : undefined,
    toolchainEnv: c.toolchainEnv,
    execEnv: opts.env,
  });
  const cwd = opts.cwd ?? c.cwd;
  const handle = c.client.exec({ argv, env, cwd, ...(opts.tty ? { tty: opts.tty } : {}) });
  handle.started.then(() => c.started(handle.id, argv)).catch(() => undefined);

  const cap = new OutputCap(c.policy.limits.output, c.emit);
  const stdout = cap.wrap(handle.stdout);
  let detachNotes: (() => void) | undefined;
  // Notes bypass the output cap: they are few (bounded per command) and the agent needs them.
  // Its stderr ends after a barrier on the monitor's events: a denial the command met is read
  // by then, and its note is on the stream before the end.
  const stderr = cap.wrap(handle.stderr, async () => {
    if (detachNotes && c.monitorEventsRead) await c.monitorEventsRead();
    detachNotes?.();
  });
  if (c.notes && opts.denialNotes !== false) {
    const notes = c.notes;
    handle.started
      .then((pid) => {
        if (stderr.writableEnded) return;
        detachNotes = notes.attach(pid, (line) => {
          // A terminal's user side is in raw mode: a line ends with CR LF there.
          if (!stderr.writableEnded) stderr.write(opts.tty ? line.replace(/\n/g, '\r\n') : line);
        });
      })
      .catch(() => undefined);
  }
  const result = handle.result.then(
    (r) => outcomeOf(c, r, cap.truncated),
    () => outcomeOf(c, { kind: 'signaled', signal: SIGKILL }, cap.truncated),
  );
  void result.finally(() => c.ended(handle.id));
  return {
    stdout,
    stderr,
    stdin: handle.stdin,
    result,
    kill: (signal = 15) => handle.kill(signal),
    resize: (size) => handle.resize(size),
  };
}

/** One command's output budget, shared by its stdout and stderr. */
class OutputCap {
  private used = 0;
  truncated = false;

  constructor(
    private readonly cap: number,
    private readonly emit: (e: CellEvent) => void,
  ) {}

  /** `ending` runs (and is awaited) just before the copy ends. */
  wrap(src: Readable, ending?: () => Promise<void>): PassThrough {
    const out = new PassThrough();
    src.on('data', (chunk: Buffer) => {
      if (this.truncated) return;
      const room = this.cap - this.used;
      if (chunk.length <= room) {
        this.used += chunk.length;
        if (!out.write(chunk)) {
          src.pause();
          out.once('drain', () => src.resume());
        }
        return;
      }
      if (room > 0) out.write(chunk.subarray(0, room));
      this.used = this.cap;
      this.truncated = true;
      // Keep draining the source so the task is never blocked on a full pipe.
      src.resume();
      out.write(`\n[nanocell: output truncated after ${this.cap} bytes]\n`);
      this.emit({
        type: 'limit.hit',
        limit: 'output',
        detail: `output cap of ${this.cap} bytes reached`,
      });
    });
    // One turn later: a refusal by the proxy (this process) seen in the same poll as init's end
    // of stream still lands before the stream's end; the monitor's, after `ending`'s barrier.
    src.on('end', () =>
      setImmediate(() => {
        void (ending?.() ?? Promise.resolve()).then(() => out.end());
      }),
    );
    src.on('error', (e) => out.destroy(e));
    return out;
  }
}

function outcomeOf(c: ExecContext, r: ExecResult, outputTruncated: boolean): ExecOutcome {
  const endReason = c.endReason();
  if (endReason === 'timeout') return { exitCode: 124, endReason: 'timeout', outputTruncated };
  if (r.kind === 'exited') {
    // A command that handled `nanocell stop`'s SIGTERM still ended because of the stop.
    return {
      exitCode: r.code,
      endReason: endReason === 'stopped' ? 'stopped' : 'exited',
      outputTruncated,
    };
  }
  if (r.kind === 'spawn-failed') return { exitCode: r.code, endReason: 'error', outputTruncated };
  if (r.signal === SIGKILL && c.oomKills() > 0) {
    c.emit({
      type: 'limit.hit',
      limit: 'oom',
      detail: 'the memory limit was reached and the kernel killed the task',
    });
    return { exitCode: 137, endReason: 'oom', signal: r.signal, outputTruncated };
  }
  if (endReason === 'killed')
    return { exitCode: 137, endReason: 'killed', signal: r.signal, outputTruncated };
  if (endReason === 'stopped')
    return { exitCode: 128 + r.signal, endReason: 'stopped', signal: r.signal, outputTruncated };
  return { exitCode: 128 + r.signal, endReason: 'signaled', signal: r.signal, outputTruncated };
}

/** Runs a started command to completion, collecting its output (library convenience). */
export async function collectRun(
  x: CellExec,
  input: string | Buffer | undefined,
  encoding: 'utf8' | 'buffer' = 'utf8',
): Promise<RunResult<string | Buffer>> {
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  x.stdout.on('data', (d: Buffer) => out.push(d));
  x.stderr.on('data', (d: Buffer) => err.push(d));
  x.stdin.end(input ?? '');
  const outcome = await x.result;
  await Promise.all([onceEnded(x.stdout), onceEnded(x.stderr)]);
  const text = (b: Buffer[]) =>
    encoding === 'buffer' ? Buffer.concat(b) : Buffer.concat(b).toString('utf8');
  return { ...outcome, stdout: text(out), stderr: text(err) };
}

/** What `nanocell ps` shows: written on every exec start and end, best effort. */
export function writeCellStatus(
  dir: string,
  status: { taskId: string; session: string; startedAt: number; commands: string[][] },
): void {
  try {
    fs.writeFileSync(`${dir}/status.json`, JSON.stringify(status));
  } catch {
    // best effort: the cell may be tearing down
  }
}

/** Resolves once a stream has delivered all it will (the result can come before that). */
export function onceEnded(s: Readable): Promise<void> {
  if (s.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    s.once('end', () => resolve());
    s.once('close', () => resolve());
  });
}
