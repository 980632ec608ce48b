// The client end of a task's control socket: what `nanocell exec`, `stop` and `kill` (and
// library users) call. Every failure to reach the supervisor is one line naming why.
import fs from 'node:fs';
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { TtySize } from '../cell/initFrames.js';
import { NanocellError } from '../util/errors.js';
import {
  CHUNK_BYTES,
  DEFAULT_STOP_GRACE_MS,
  encode,
  LineSplitter,
  localError,
  parseReply,
  type ControlReply,
} from './protocol.js';

export interface ExecResultReply {
  exitCode: number;
  endReason: string;
  signal?: number;
}

class Connection {
  private readonly queue: ControlReply[] = [];
  private waiter?: () => void;
  private ended = false;

  constructor(readonly socket: net.Socket) {
    const lines = new LineSplitter(
      (line) => this.push(parseReply(line)),
      () => this.push(localError('reply too long', 'upgrade nanocell')),
    );
    socket.on('data', (d: Buffer) => lines.push(d));
    const end = () => {
      this.ended = true;
      this.waiter?.();
    };
    socket.on('end', end);
    socket.on('close', end);
  }

  private push(r: ControlReply): void {
    this.queue.push(r);
    this.waiter?.();
  }

  /** The next reply, or undefined once the supervisor closed the connection. */
  async next(): Promise<ControlReply | undefined> {
    while (this.queue.length === 0 && !this.ended) {
      await new Promise<void>((resolve) => (this.waiter = resolve));
      this.waiter = undefined;
    }
    return this.queue.shift();
  }

  send(msg: object): boolean {
    return this.socket.write(encode(msg));
  }
}

async function connect(socketPath: string, taskId: string): Promise<Connection> {
  const socket = net.connect(socketPath);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', (e: NodeJS.ErrnoException) => {
      // Nobody listens: its supervisor died (SIGKILL) and left the socket; clear it away.
      if (e.code === 'ECONNREFUSED') fs.rmSync(socketPath, { force: true });
      reject(reachError(e, taskId));
    });
  });
  socket.on('error', () => undefined);
  return new Connection(socket);
}

function reachError(e: NodeJS.ErrnoException, taskId: string): NanocellError {
  if (e.code === 'ENOENT' || e.code === 'ECONNREFUSED') {
    return new NanocellError(
      `task ${taskId} is not running (its supervisor is gone)`,
      'list running tasks with `nanocell ps`',
      'STATE',
    );
  }
  if (e.code === 'EACCES' || e.code === 'EPERM') {
    return new NanocellError(
      `task ${taskId}'s control socket is not yours to use`,
      'run the command as the user who started the cell, or as root',
      'STATE',
    );
  }
  return new NanocellError(
    `cannot reach task ${taskId}: ${e.message}`,
    'see `nanocell ps`',
    'STATE',
  );
}

function replyError(r: ControlReply | undefined, taskId: string): NanocellError {
  if (r?.type === 'error') return new NanocellError(r.error, r.fix, 'STATE');
  return new NanocellError(
    `task ${taskId} ended before it answered`,
    'see `nanocell report` for how it ended',
    'STATE',
  );
}

/** Asks the supervisor to end the task (`stop`: SIGTERM, grace, then as a timeout would). */
export async function endTask(
  socketPath: string,
  taskId: string,
  how: { verb: 'stop'; graceMs?: number } | { verb: 'kill' },
): Promise<void> {
  const c = await connect(socketPath, taskId);
  try {
    const graceMs = how.verb === 'stop' ? (how.graceMs ?? DEFAULT_STOP_GRACE_MS) : undefined;
    c.send({ verb: how.verb, ...(graceMs !== undefined ? { graceMs } : {}) });
    const r = await c.next();
    if (r?.type !== 'ok') throw replyError(r, taskId);
    // `ended` comes once the cell is gone and its change set collected; a supervisor that
    // died meanwhile closes the connection, which ends the task too.
    while ((await c.next()) !== undefined);
  } finally {
    c.socket.destroy();
  }
}

/** The user's answer to a refused destination of the running task (the dashboard). */
export async function decideEgress(
  socketPath: string,
  taskId: string,
  host: string,
  port: number,
  decision: 'once' | 'cell' | 'deny',
): Promise<void> {
  const c = await connect(socketPath, taskId);
  try {
    c.send({ verb: 'egress', host, port, decision });
    const r = await c.next();
    if (r?.type !== 'ok') throw replyError(r, taskId);
  } finally {
    c.socket.destroy();
  }
}

export interface ExecStreams {
  stdin?: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Hooks up signal forwarding (the CLI's Ctrl-C); returns how to unhook it. */
  signals?: (send: (signal: number) => void) => () => void;
  /**
   * Run on a terminal in the cell of this size (stdin is then the user's keys, stdout the
   * terminal's output); `onResize` follows the user's window and returns its unsubscribe.
   */
  tty?: { size: TtySize; onResize(listener: (size: TtySize) => void): () => void };
}

/** Runs a command in the running task's cell, streaming its output; resolves with its exit. */
export async function execInTask(
  socketPath: string,
  taskId: string,
  argv: string[],
  io: ExecStreams,
  opts: { env?: Record<string, string>; cwd?: string } = {},
): Promise<ExecResultReply> {
  const c = await connect(socketPath, taskId);
  let unhook: (() => void) | undefined;
  let unresize: (() => void) | undefined;
  try {
    const tty = io.tty ? { tty: io.tty.size } : {};
    c.send({ verb: 'exec', argv, stdin: io.stdin !== undefined, ...opts, ...tty });
    const first = await c.next();
    if (first?.type !== 'started') throw replyError(first, taskId);
    if (io.stdin) pumpStdin(io.stdin, c);
    unhook = io.signals?.((signal) => c.send({ op: 'signal', signal }));
    unresize = io.tty?.onResize((size) => c.send({ op: 'resize', ...size }));
    for (;;) {
      const r = await c.next();
      if (r === undefined) throw replyError(r, taskId);
      if (r.type === 'stdout' || r.type === 'stderr') {
        const dst = r.type === 'stdout' ? io.stdout : io.stderr;
        dst.write(Buffer.from(r.data, 'base64'));
      } else if (r.type === 'exit') {
        return {
          exitCode: r.exitCode,
          endReason: r.endReason,
          ...(r.signal !== undefined ? { signal: r.signal } : {}),
        };
      } else if (r.type === 'error') {
        io.stderr.write(`nanocell: control: ${r.error}\n`);
      }
    }
  } finally {
    unhook?.();
    unresize?.();
    io.stdin?.unpipe();
    io.stdin?.pause();
    c.socket.destroy();
  }
}

function pumpStdin(stdin: Readable, c: Connection): void {
  stdin.on('data', (d: Buffer) => {
    for (let off = 0; off < d.length; off += CHUNK_BYTES) {
      const data = d.subarray(off, off + CHUNK_BYTES).toString('base64');
      if (!c.send({ op: 'stdin', data })) {
        stdin.pause();
        c.socket.once('drain', () => stdin.resume());
      }
    }
  });
  stdin.once('end', () => c.send({ op: 'eof' }));
}
