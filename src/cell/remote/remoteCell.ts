// A cell that lives in a running `nanocell serve` and is driven from this process: the SDK's
// `Cell.list`, `Cell.connect(id)` and `RemoteCell.create(...)`. Its methods carry the same
// names and results as Cell's (exec, run, files, previewChanges, destroy) over the server's
// protocol; the cell itself outlives this process and dies with the server. One connection per
// server is shared by every RemoteCell of the process, and idle it keeps no process alive.
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { collectRun } from '../exec.js';
import type { FileEntry, FileStat, ReadResult } from '../files.js';
import { defaultStateRoot, stateLayout } from '../state.js';
import type { TtySize } from '../initFrames.js';
import type {
  CellExec,
  CellOptions,
  CellSummary,
  ExecOptions,
  ExecOutcome,
  RunOptions,
  RunResult,
} from '../types.js';
import { NanocellError } from '../../util/errors.js';
import type { CellInfo } from './protocol.js';
import { noServer, ServerConnection } from './client.js';
import { MAX_FILE_BYTES } from './protocol.js';

/** Stdin bytes per frame. */
const STDIN_CHUNK = 256 * 1024;

export interface ServerLocation {
  /** The state root the server serves (default: the CLI's, as for Cell.create). */
  stateRoot?: string;
}

/** What a server-owned cell is made of: CellOptions' serialisable part. */
export type RemoteCellOptions = Pick<
  CellOptions,
  'policy' | 'workspace' | 'session' | 'taskId' | 'extraAllowNet' | 'stateRoot'
>;

export interface RemoteExecOptions extends ExecOptions {
  /** Milliseconds; past it the command is killed (exit 124, endReason 'timeout'). */
  timeoutMs?: number;
}

const shared = new Map<string, ServerConnection>();

async function connection(o: ServerLocation): Promise<ServerConnection> {
  const socket = stateLayout(path.resolve(o.stateRoot ?? defaultStateRoot())).serverSocket;
  const have = shared.get(socket);
  if (have && !have.closed) return have;
  const c = await ServerConnection.open(socket);
  if (!c) throw noServer(socket);
  shared.set(socket, c);
  return c;
}

export class RemoteCell {
  readonly id: string;
  readonly taskId: string;
  readonly session: string;
  readonly workspace: string;
  readonly startedAt: number;
  /** The argv of each command that ran in it when this handle was made. */
  readonly commands: string[][];
  /** The workspace as the task sees it, over the server (at most 4 MiB a call). */
  readonly files: RemoteFiles;

  private constructor(
    private readonly conn: ServerConnection,
    info: CellInfo,
  ) {
    this.id = info.id;
    this.taskId = info.taskId;
    this.session = info.session;
    this.workspace = info.workspace;
    this.startedAt = info.startedAt;
    this.commands = info.commands;
    this.files = new RemoteFiles((type, body) => this.call(type, body));
  }

  /** Starts a cell in the server; it lives on after this process, until destroyed. */
  static async create(o: RemoteCellOptions): Promise<RemoteCell> {
    const c = await connection(o);
    const info = await c.request<CellInfo>('create', {
      policy: o.policy,
      workspace: path.resolve(o.workspace),
      ...(o.session ? { session: o.session } : {}),
      ...(o.taskId ? { taskId: o.taskId } : {}),
      ...(o.extraAllowNet ? { extraAllowNet: o.extraAllowNet } : {}),
    }).result;
    return new RemoteCell(c, info);
  }

  /** The server's cells, oldest first. */
  static async list(o: ServerLocation = {}): Promise<RemoteCell[]> {
    const c = await connection(o);
    const { cells } = await c.request<{ cells: CellInfo[] }>('list').result;
    return cells.map((i) => new RemoteCell(c, i)).sort((a, b) => a.startedAt - b.startedAt);
  }

  /** The server's cell `id`; a NanocellError when the server has none of that id. */
  static async connect(id: string, o: ServerLocation = {}): Promise<RemoteCell> {
    const c = await connection(o);
    return new RemoteCell(c, await c.request<CellInfo>('info', { cell: id }).result);
  }

  private call<T>(type: string, body: Record<string, unknown> = {}): Promise<T> {
    return this.conn.request<T>(type, { cell: this.id, ...body }).result;
  }

  /** Starts a command in the cell, as Cell.exec; `timeoutMs` kills it (exit 124). */
  exec(argv: string[], opts: RemoteExecOptions = {}): CellExec {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const { id, result } = this.conn.request<ExecOutcome>(
      'exec',
      { cell: this.id, argv, ...opts },
      (f) => {
        if (f.type === 'stdout') stdout.write(Buffer.from(f.data, 'base64'));
        else if (f.type === 'stderr') stderr.write(Buffer.from(f.data, 'base64'));
      },
    );
    const conn = this.conn;
    const stdin = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (let off = 0; off < chunk.length; off += STDIN_CHUNK)
          conn.input(id, 'stdin', {
            data: chunk.subarray(off, off + STDIN_CHUNK).toString('base64'),
          });
        cb();
      },
      final(cb) {
        conn.input(id, 'stdin', { end: true });
        cb();
      },
    });
    const ended = result.finally(() => {
      stdout.end();
      stderr.end();
    });
    return {
      stdout,
      stderr,
      stdin,
      result: ended,
      kill: (signal = 15) => conn.input(id, 'signal', { signal }),
      resize: (size: TtySize) => conn.input(id, 'resize', { cols: size.cols, rows: size.rows }),
    };
  }

  /** Runs a command to completion, as Cell.run (text, or bytes with `encoding: 'buffer'`). */
  run(
    argv: string[],
    opts: RunOptions & RemoteExecOptions & { encoding: 'buffer' },
  ): Promise<RunResult<Buffer>>;
  run(
    argv: string[],
    opts?: RunOptions & RemoteExecOptions & { encoding?: 'utf8' },
  ): Promise<RunResult<string>>;
  async run(
    argv: string[],
    opts: RunOptions & RemoteExecOptions = {},
  ): Promise<RunResult<string | Buffer>> {
    const { input, encoding, ...execOpts } = opts;
    return collectRun(this.exec(argv, execOpts), input, encoding);
  }

  /** The change set so far, collected into `outDir` (a path on the server's host). */
  async previewChanges(outDir: string): Promise<string | undefined> {
    const r = await this.call<{ dir: string | null }>('previewChanges', {
      dir: path.resolve(outDir),
    });
    return r.dir ?? undefined;
  }

  /** The change set so far as a unified diff (capped at `maxBytes`, default 4 MiB). */
  diff(
    o: { maxBytes?: number } = {},
  ): Promise<{ diff: string; truncated: boolean; changed: boolean }> {
    return this.call('diff', o.maxBytes !== undefined ? { maxBytes: o.maxBytes } : {});
  }

  /** Ends the cell in the server: stops everything, collects the change set, returns the summary. */
  destroy(): Promise<CellSummary> {
    return this.call<CellSummary>('destroy');
  }
}

type Call = <T>(type: string, body: Record<string, unknown>) => Promise<T>;

/** `cell.files` over the server: CellFiles' methods and results, 4 MiB a read or write. */
export class RemoteFiles {
  constructor(private readonly call: Call) {}

  async read(p: string, o: { maxBytes?: number } = {}): Promise<ReadResult> {
    const r = await this.call<{ content: string; size: number; truncated: boolean }>('files.read', {
      path: p,
      maxBytes: Math.min(o.maxBytes ?? MAX_FILE_BYTES, MAX_FILE_BYTES),
    });
    return { content: Buffer.from(r.content, 'base64'), size: r.size, truncated: r.truncated };
  }

  async write(p: string, data: string | Buffer, o: { parents?: boolean } = {}): Promise<void> {
    const buf = typeof data === 'string' ? Buffer.from(data) : data;
    if (buf.length > MAX_FILE_BYTES) {
      throw new NanocellError(
        `a write of ${buf.length} bytes is over the cell server's ${MAX_FILE_BYTES} per call`,
        'write it with a command in the cell (cell.exec with stdin), or in smaller files',
        'USAGE',
      );
    }
    await this.call('files.write', {
      path: p,
      data: buf.toString('base64'),
      ...(o.parents ? { parents: true } : {}),
    });
  }

  list(
    p?: string,
    o: { maxEntries?: number } = {},
  ): Promise<{ entries: FileEntry[]; truncated: boolean }> {
    return this.call('files.list', { ...(p !== undefined ? { path: p } : {}), ...o });
  }

  stat(p: string): Promise<FileStat> {
    return this.call('files.stat', { path: p });
  }

  async remove(p: string, o: { recursive?: boolean } = {}): Promise<void> {
    await this.call('files.remove', { path: p, ...o });
  }

  async mkdir(p: string, o: { parents?: boolean } = {}): Promise<void> {
    await this.call('files.mkdir', { path: p, ...o });
  }
}
