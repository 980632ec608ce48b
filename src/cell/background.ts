// A cell's background processes (Cell.spawn): commands that keep running between calls, with
// what they write kept in a capped buffer until it is read (attach), so a caller that polls
// once a minute loses nothing but what a cap cuts, and is told when it does. One owner for the
// library, the MCP server's start/poll/kill and the server's clients.
import { randomBytes } from 'node:crypto';
import { NanocellError } from '../util/errors.js';
import { CappedBuffer } from '../util/cappedBuffer.js';
import { onceEnded } from './exec.js';
import type { CellExec, EndReason, ExecOptions, ExecOutcome } from './types.js';

/** Output kept per stream between two reads, by default. */
const DEFAULT_PROCESS_BUFFER_BYTES = 1024 * 1024;
/** Ended processes listed after their end; older ones are forgotten (their output with them). */
const ENDED_KEPT = 256;

export interface SpawnOptions extends ExecOptions {
  /** Bytes kept per stream (stdout, stderr) between two attach calls; default 1 MiB. */
  bufferBytes?: number;
  /** Keep stdin open, for writing through attach(id).exec.stdin (default: closed at once). */
  stdin?: boolean;
}

export interface ProcessInfo {
  id: string;
  argv: string[];
  running: boolean;
  /** null while it runs. */
  exitCode: number | null;
  endReason?: EndReason;
  /** Epoch ms. */
  startedAt: number;
  endedAt?: number;
}

export interface AttachResult {
  running: boolean;
  exitCode: number | null;
  /** Written since the last attach (UTF-8). */
  stdout: string;
  stderr: string;
  /** Some output since the last attach was dropped past the buffer's cap. */
  truncated: boolean;
  /** Bytes dropped since the last attach, per stream. */
  dropped: { stdout: number; stderr: number };
  /** The live process: its streams carry output from now on; stdin, kill and resize. */
  exec: CellExec;
}

interface Proc {
  info: ProcessInfo;
  exec: CellExec;
  stdout: CappedBuffer;
  stderr: CappedBuffer;
  outcome?: ExecOutcome;
}

export class BackgroundProcesses {
  private readonly procs = new Map<string, Proc>();

  constructor(private readonly exec: (argv: string[], o: ExecOptions) => CellExec) {}

  spawn(argv: string[], o: SpawnOptions = {}): { id: string } {
    const { bufferBytes = DEFAULT_PROCESS_BUFFER_BYTES, stdin = false, ...execOpts } = o;
    if (!Number.isSafeInteger(bufferBytes) || bufferBytes < 0) {
      throw new NanocellError(
        `spawn: bufferBytes ${bufferBytes} is not a byte count`,
        'pass a non-negative integer (default 1 MiB)',
        'USAGE',
      );
    }
    const exec = this.exec(argv, execOpts);
    if (!stdin) exec.stdin.end();
    const id = `p-${randomBytes(4).toString('hex')}`;
    const p: Proc = {
      info: { id, argv: [...argv], running: true, exitCode: null, startedAt: Date.now() },
      exec,
      stdout: new CappedBuffer(bufferBytes).attach(exec.stdout),
      stderr: new CappedBuffer(bufferBytes).attach(exec.stderr),
    };
    // Ended only once its output is all in the buffers: a read after the end then has it all.
    void exec.result.then(async (r) => {
      await Promise.all([onceEnded(exec.stdout), onceEnded(exec.stderr)]);
      p.outcome = r;
      Object.assign(p.info, {
        running: false,
        exitCode: r.exitCode,
        endReason: r.endReason,
        endedAt: Date.now(),
      });
      this.forgetOld();
    });
    this.procs.set(id, p);
    return { id };
  }

  /** Every process spawned and not forgotten, oldest first. */
  list(): ProcessInfo[] {
    return [...this.procs.values()].map((p) => ({ ...p.info, argv: [...p.info.argv] }));
  }

  attach(id: string): AttachResult {
    const p = this.get(id);
    // Read the state first: output written before the end is in the buffers once it ended.
    const ended = p.outcome;
    const a = p.stdout.take(ended !== undefined);
    const b = p.stderr.take(ended !== undefined);
    return {
      running: ended === undefined,
      exitCode: ended?.exitCode ?? null,
      stdout: a.text,
      stderr: b.text,
      truncated: a.truncated || b.truncated || (ended?.outputTruncated ?? false),
      dropped: { stdout: a.dropped, stderr: b.dropped },
      exec: p.exec,
    };
  }

  /** Signals the process's group (default SIGTERM); a process that ended is left alone. */
  kill(id: string, signal = 15): void {
    const p = this.get(id);
    if (!p.outcome) p.exec.kill(signal);
  }

  private get(id: string): Proc {
    const p = this.procs.get(id);
    if (!p) {
      throw new NanocellError(
        `no background process ${JSON.stringify(id)} in this cell`,
        'pass an id that spawn returned (cell.processes() lists them)',
        'USAGE',
      );
    }
    return p;
  }

  private forgetOld(): void {
    const ended = [...this.procs.values()].filter((p) => p.outcome);
    for (const p of ended.slice(0, Math.max(0, ended.length - ENDED_KEPT)))
      this.procs.delete(p.info.id);
  }
}
