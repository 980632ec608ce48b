// The types a cell's users see: its options, events, exec handles and summary. They live
// apart from the Cell class so that the modules the cell wires in (network, workspace) and
// the task's audit sink can name them without importing the lifecycle.
import type { Readable, Writable } from 'node:stream';
import type { CgroupTotals } from '../host/cgroups.js';
import type { AppliedLimits, Degradation } from '../plan/plan.js';
import type { Policy } from '../policy/defaults.js';
import type { TtySize } from './initFrames.js';
import type { CellEvent } from '../audit/cellEvents.js';
import type { WorkspaceStack } from './stackMount.js';

export type EndReason = 'exited' | 'signaled' | 'timeout' | 'oom' | 'killed' | 'stopped' | 'error';

/** An event for the audit trail (the type lives in src/audit); the sink adds the envelope. */
export type { CellEvent } from '../audit/cellEvents.js';

export interface CellOptions {
  policy: Policy;
  /** The project directory; it appears in the cell at the same absolute path. */
  workspace: string;
  taskId?: string;
  session?: string;
  stateRoot?: string;
  /** The session layers the task starts from (`--from`), from resolveStack. */
  stack?: WorkspaceStack;
  /**
   * Metadata labels (up to 32; keys of letters, digits and ._/-, up to 63 characters; one-line
   * values up to 256), recorded with the task and matched by `nanocell tasks --label k=v`.
   */
  labels?: Record<string, string>;
  /** Extra `network.allow` entries (the CLI's --allow-net). */
  extraAllowNet?: string[];
  onEvent?: (e: CellEvent) => void;
  /**
   * Record the cell in the state root's audit store as a task (default true): its row, its
   * events, its end and its change set's fate, for `nanocell tasks/report/verify/diff`.
   * false: the caller keeps the record (runTask does, with its command and exit status).
   */
  record?: boolean;
  /**
   * false: refusals are not told on commands' stderr (src/cell/denialNotes.ts); they are still
   * recorded. Default: the policy's `denialNotes`, which defaults to true.
   */
  denialNotes?: boolean;
  /** Skip parts of the cell, for benchmarks that show what each part costs. Not for users. */
  benchOff?: { seccomp?: boolean; workspace?: boolean; cgroups?: boolean; startCheck?: boolean };
  /** Breaks a control on purpose, for tests that the start check catches it. Not for users. */
  testFaults?: { closeProxyListener?: boolean };
}

/** What a task brings to a warm pool's cell (`pool.claim`); the rest is the pool's. */
export interface ClaimRequest {
  /** Must share the pool's fixed parts (src/plan/poolKey.ts); default: the pool's policy. */
  policy?: Policy;
  /** The pool's project (a pool serves one); checked when given. */
  workspace?: string;
  taskId?: string;
  session?: string;
  stack?: WorkspaceStack;
  extraAllowNet?: string[];
  onEvent?: (e: CellEvent) => void;
  record?: boolean;
}

/**
 * Where `Cell.create` runs the cell when not on this host: a backend object (for example
 * `k8sBackend()` from the Kubernetes backend) that makes its own kind of cell from the same
 * options. Passed in, so that src/cell never imports a backend.
 */
export interface CellBackend<T> {
  readonly name: string;
  create(opts: CellOptions): Promise<T>;
}

export interface ExecOptions {
  env?: Record<string, string>;
  cwd?: string;
  /**
   * Run on a pseudo-terminal allocated in the cell (its own devpts), of this size: stdout
   * carries the terminal's output, stderr is empty, stdin is typed input (^C is a SIGINT to
   * the terminal's foreground group).
   */
  tty?: TtySize;
  /** false: no denial notes on this command's stderr (default: the cell's setting). */
  denialNotes?: boolean;
}

export interface RunOptions extends ExecOptions {
  input?: string | Buffer;
  /** 'buffer': stdout and stderr as the exact bytes; default: UTF-8 text. */
  encoding?: 'utf8' | 'buffer';
}

export type RunResult<T extends string | Buffer> = ExecOutcome & { stdout: T; stderr: T };

export interface ExecOutcome {
  /** Exit status with Docker's conventions (124 timeout, 125 nanocell, 126/127 exec, 137 kill). */
  exitCode: number;
  endReason: EndReason;
  signal?: number;
  outputTruncated: boolean;
}

export interface CellExec {
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly stdin: Writable;
  readonly result: Promise<ExecOutcome>;
  kill(signal?: number): void;
  /** Sets the size of a `tty` exec's terminal (SIGWINCH in the cell); ignored otherwise. */
  resize(size: TtySize): void;
}

export interface CellSummary {
  taskId: string;
  cellId: string;
  startedAt: number;
  endedAt: number;
  durationMs: number;
  endReason: EndReason | null;
  resources: CgroupTotals;
  limits: AppliedLimits;
  degradations: Degradation[];
  runtime: { name: string; version: string };
  changeSet?: unknown;
}
