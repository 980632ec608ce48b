// The client's side of the cell server: one connection carries many requests at once, each
// with its own id; replies are matched to their request by it. A server that goes away (even
// SIGKILLed: the kernel closes its end) fails every open request with one clear error, so no
// caller waits forever. `nanocell run` and the SDK's RemoteCell both talk through this.
import net from 'node:net';
import { LineSplitter } from '../../util/lines.js';
import { NanocellError } from '../../util/errors.js';
import {
  encode,
  fromWireError,
  MAX_LINE_BYTES,
  PROTOCOL_VERSION,
  protocolError,
  versionMismatch,
  type ServerMessage,
} from './protocol.js';

/** The frames a streaming request (exec, run) gets before its answer. */
export type StreamFrame = Extract<ServerMessage, { type: 'stdout' | 'stderr' | 'event' | 'cell' }>;

interface Pending {
  resolve(result: unknown): void;
  reject(e: Error): void;
  onFrame?: (f: StreamFrame) => void;
}

export class ServerConnection {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failed?: Error;

  private constructor(
    private readonly socket: net.Socket,
    readonly socketPath: string,
  ) {
    const splitter = new LineSplitter(
      (l) => this.onLine(l),
      () => this.fail(protocolError('the server sent a line that is too long')),
      MAX_LINE_BYTES,
    );
    socket.on('data', (d: Buffer) => splitter.push(d));
    socket.on('error', (e) => this.fail(serverGone(socketPath, e)));
    socket.on('close', () => this.fail(serverGone(socketPath)));
    // Idle, the connection does not keep the process alive: a script that is done exits.
    socket.unref();
  }

  /** Connects to the server on `socketPath`, or undefined when none listens there. */
  static open(socketPath: string): Promise<ServerConnection | undefined> {
    return new Promise((resolve) => {
      const s = net.connect(socketPath);
      s.once('connect', () => {
        s.removeAllListeners('error');
        resolve(new ServerConnection(s, socketPath));
      });
      // No socket, a stale one, or a server of another user.
      s.once('error', () => resolve(undefined));
    });
  }

  get closed(): boolean {
    return this.failed !== undefined;
  }

  /** Sends one request; resolves with its `result`, rejects with its `error`. */
  request<T = unknown>(
    type: string,
    body: Record<string, unknown> = {},
    onFrame?: (f: StreamFrame) => void,
  ): { id: number; result: Promise<T> } {
    const id = this.nextId++;
    const result = new Promise<T>((resolve, reject) => {
      if (this.failed) return reject(this.failed);
      this.pending.set(id, { resolve: resolve as (r: unknown) => void, reject, onFrame });
      this.socket.ref();
      this.socket.write(encode({ ...body, id, type }));
    });
    return { id, result };
  }

  /** An input to an open stream (stdin, signal, resize, cancel); dropped once it has ended. */
  input(id: number, type: string, body: Record<string, unknown> = {}): void {
    if (!this.failed && this.pending.has(id)) this.socket.write(encode({ ...body, id, type }));
  }

  close(): void {
    this.fail(new NanocellError('the connection to the cell server was closed', '', 'STATE'));
  }

  private onLine(line: string): void {
    let m: ServerMessage;
    try {
      m = JSON.parse(line) as ServerMessage;
    } catch {
      return this.fail(protocolError('the server sent a line that is not JSON'));
    }
    if (m?.v !== PROTOCOL_VERSION) return this.fail(versionMismatch(m?.v, 'server'));
    const p = typeof m.id === 'number' ? this.pending.get(m.id) : undefined;
    if (!p) {
      // An error for no request of ours (a line we sent could not be read): every open
      // request is in doubt.
      if (m.type === 'error') this.fail(fromWireError(m.error));
      return;
    }
    if (m.type === 'result' || m.type === 'error') {
      this.pending.delete(m.id as number);
      if (this.pending.size === 0) this.socket.unref();
      if (m.type === 'result') p.resolve(m.result);
      else p.reject(fromWireError(m.error));
    } else if (
      m.type === 'stdout' ||
      m.type === 'stderr' ||
      m.type === 'event' ||
      m.type === 'cell'
    ) {
      p.onFrame?.(m);
    }
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = e;
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
    this.socket.destroy();
  }
}

function serverGone(socketPath: string, e?: Error): NanocellError {
  return new NanocellError(
    `the cell server on ${socketPath} went away${e ? ` (${e.message})` : ''}; its cells are gone with it`,
    'start it again with nanocell serve, and create new cells',
    'STATE',
  );
}

/** No server listens where the caller looked. */
export function noServer(socketPath: string): NanocellError {
  return new NanocellError(
    `no cell server is running on ${socketPath}`,
    'start it with nanocell serve (with the same --state-root)',
    'STATE',
  );
}

/** The server's hello: who it is (its nanocell version and pid). */
export function helloServer(c: ServerConnection): Promise<{ version: string; pid: number }> {
  return c.request<{ version: string; pid: number }>('hello').result;
}
