// Client for the init control protocol (docs/architecture.md) over the supervisor's end of the
// control socket, typically `child.stdio[3]` of the monitor spawned with
// `stdio: ['ignore', 'pipe', 'pipe', 'pipe']`.
//
// Backpressure: when a consumer stops reading an exec's stdout or stderr, the client stops
// reading the channel; init then stops reading the command's pipes and the command blocks on
// write. This pauses every exec of the cell, not just the slow one (one channel, in order).
//
// Channel loss: when the channel closes, every unfinished exec's `started` and `result` reject
// with an Error (they do not pretend the command was killed), and its streams end.

import { EventEmitter } from 'node:events';
import { Readable, Writable, type Duplex } from 'node:stream';
import {
  encodeExecPayload,
  encodeFrame,
  encodeU32,
  encodeWinsize,
  FrameDecoder,
  parseReadyPayload,
  type Frame,
  type TtySize,
} from './initFrames.js';

export interface ExecRequest {
  argv: string[];
  env: string[];
  cwd: string;
  /** Run on a pseudo-terminal of the cell's own devpts, of this size (a `T` request). */
  tty?: TtySize;
}

export type ExecResult =
  | { kind: 'exited'; code: number }
  | { kind: 'signaled'; signal: number }
  | { kind: 'spawn-failed'; errno: number; code: 126 | 127 };

export interface ExecHandle {
  readonly id: number;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly stdin: Writable;
  /** The command's pid in the cell's pid namespace. */
  readonly started: Promise<number>;
  readonly result: Promise<ExecResult>;
  kill(signal: number): void;
  /** Sets the terminal size of a `tty` exec (its foreground group gets SIGWINCH). */
  resize(size: TtySize): void;
}

const ENOENT = 2;

/** Decodes a raw wait(2) status as sent in an `X` frame. */
export function decodeWaitStatus(status: number): ExecResult {
  const low = status & 0x7f;
  if (low === 0) return { kind: 'exited', code: (status >> 8) & 0xff };
  return { kind: 'signaled', signal: low };
}

export function spawnFailure(errno: number): ExecResult {
  return { kind: 'spawn-failed', errno, code: errno === ENOENT ? 127 : 126 };
}

interface Deferred<T> {
  promise: Promise<T>;
  resolve(value: T): void;
  reject(err: Error): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  // Callers often await only `result`; an unobserved rejection must not crash the process.
  promise.catch(() => undefined);
  return { promise, resolve, reject };
}

class Exec implements ExecHandle {
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly stdin: Writable;
  private readonly startedD = deferred<number>();
  private readonly resultD = deferred<ExecResult>();
  readonly started = this.startedD.promise;
  readonly result = this.resultD.promise;
  private finished = false;

  constructor(
    readonly id: number,
    private readonly client: InitClient,
  ) {
    this.stdout = this.makeReadable();
    this.stderr = this.makeReadable();
    this.stdin = new Writable({
      write: (chunk: Buffer, _enc, cb) => {
        if (this.finished) return cb();
        this.client.send('I', id, chunk, cb);
      },
      final: (cb) => {
        if (this.finished) return cb();
        this.client.send('I', id, Buffer.alloc(0), cb);
      },
    });
    // A command that exits without reading stdin is not an error of the caller.
    this.stdin.on('error', () => undefined);
  }

  private makeReadable(): Readable {
    const stream: Readable = new Readable({ read: () => this.client.unblock(stream) });
    return stream;
  }

  kill(signal: number): void {
    if (!this.finished) this.client.send('K', this.id, encodeU32(signal));
  }

  resize(size: TtySize): void {
    const payload = encodeWinsize(size);
    if (!this.finished) this.client.send('W', this.id, payload);
  }

  onFrame(frame: Frame): void {
    switch (frame.type) {
      case 'S':
        this.startedD.resolve(frame.payload.readUInt32LE(0));
        break;
      case 'O':
      case 'e': {
        const stream = frame.type === 'O' ? this.stdout : this.stderr;
        if (frame.payload.length === 0) stream.push(null);
        else if (!stream.push(frame.payload)) this.client.block(stream);
        break;
      }
      case 'X':
        this.finish(decodeWaitStatus(frame.payload.readInt32LE(0)));
        break;
      case 'F': {
        const errno = frame.payload.readUInt32LE(0);
        this.startedD.reject(new Error(`exec ${this.id} could not start (errno ${errno})`));
        this.finish(spawnFailure(errno));
        break;
      }
    }
  }

  private finish(result: ExecResult): void {
    this.endStreams();
    this.resultD.resolve(result);
  }

  fail(err: Error): void {
    this.endStreams();
    this.startedD.reject(err);
    this.resultD.reject(err);
  }

  private endStreams(): void {
    this.finished = true;
    for (const s of [this.stdout, this.stderr]) {
      if (!s.readableEnded) s.push(null);
      this.client.unblock(s);
    }
  }
}

export class InitClient extends EventEmitter {
  readonly closed: Promise<void>;
  private readonly decoder = new FrameDecoder();
  private readonly execs = new Map<number, Exec>();
  private readonly blocked = new Set<Readable>();
  private readonly readyD = deferred<Record<string, string>>();
  private nextId = 1;
  private isClosed = false;
  private resolveClosed!: () => void;

  constructor(private readonly channel: Duplex) {
    super();
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    channel.on('data', (chunk: Buffer) => this.onData(chunk));
    channel.on('end', () => this.onClose());
    channel.on('close', () => this.onClose());
    channel.on('error', (err: Error) => this.onClose(err));
  }

  /** Resolves with the `R` key/values once init is set up; rejects with the `Z` text or on EOF. */
  ready(): Promise<Record<string, string>> {
    return this.readyD.promise;
  }

  exec(req: ExecRequest): ExecHandle {
    const id = this.nextId++;
    const exec = new Exec(id, this);
    if (this.isClosed) {
      exec.fail(new Error('init channel is closed'));
      return exec;
    }
    this.execs.set(id, exec);
    const request = encodeExecPayload(req.argv, req.env, req.cwd);
    if (req.tty) this.send('T', id, Buffer.concat([encodeWinsize(req.tty), request]));
    else this.send('E', id, request);
    return exec;
  }

  /**
   * A warm cell's claim: init (started with --landlock-deferred) applies Landlock now that the
   * workspace is attached; it refuses every command before.
   */
  applyLandlock(): Promise<void> {
    if (this.isClosed) return Promise.reject(new Error('init channel is closed'));
    this.landlockD = deferred<void>();
    this.send('A', 0);
    return this.landlockD.promise;
  }

  private landlockD?: Deferred<void>;

  /** Asks init to kill everything in the cell and exit. */
  shutdown(): void {
    this.send('Q', 0);
  }

  /** @internal */
  send(
    type: 'E' | 'T' | 'W' | 'I' | 'K' | 'Q' | 'A',
    id: number,
    payload?: Buffer,
    cb?: () => void,
  ): void {
    if (this.isClosed || this.channel.destroyed || this.channel.writableEnded) {
      cb?.();
      return;
    }
    this.channel.write(encodeFrame(type, id, payload), () => cb?.());
  }

  /** @internal A stream's consumer is behind: stop reading the channel. */
  block(stream: Readable): void {
    this.blocked.add(stream);
    this.channel.pause();
  }

  /** @internal */
  unblock(stream: Readable): void {
    if (this.blocked.delete(stream) && this.blocked.size === 0 && !this.isClosed) {
      this.channel.resume();
    }
  }

  private onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (err) {
      this.onClose(err as Error);
      this.channel.destroy();
      return;
    }
    for (const frame of frames) this.dispatch(frame);
  }

  private dispatch(frame: Frame): void {
    switch (frame.type) {
      case 'R':
        this.readyD.resolve(parseReadyPayload(frame.payload));
        return;
      case 'a':
        this.landlockD?.resolve();
        return;
      case 'Z':
        this.readyD.reject(new Error(`init failed: ${frame.payload.toString('utf8')}`));
        this.landlockD?.reject(new Error(`init failed: ${frame.payload.toString('utf8')}`));
        this.emit('log', `fatal: ${frame.payload.toString('utf8')}`);
        return;
      case 'L':
        this.emit('log', frame.payload.toString('utf8'));
        return;
    }
    const exec = this.execs.get(frame.id);
    if (!exec) return;
    exec.onFrame(frame);
    if (frame.type === 'X' || frame.type === 'F') this.execs.delete(frame.id);
  }

  private onClose(err?: Error): void {
    if (this.isClosed) return;
    this.isClosed = true;
    const reason = new Error(`init channel closed${err ? `: ${err.message}` : ''}`);
    this.readyD.reject(reason);
    this.landlockD?.reject(reason);
    for (const exec of this.execs.values()) exec.fail(reason);
    this.execs.clear();
    this.blocked.clear();
    this.emit('closed');
    this.resolveClosed();
  }
}
