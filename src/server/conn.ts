// One client connection of the cell server: its frames out (with back-pressure shared by
// every stream on it) and the streams it opened (exec, run), which take its stdin, signals
// and resizes by request id. A connection that goes away takes its streams with it (as a
// closed terminal would its commands); the cells it created stay on the server.
import type net from 'node:net';
import type { Readable } from 'node:stream';
import type { PeerCredentials } from '../host/peerCred.js';
import { CHUNK_BYTES, encode, type RequestId } from '../cell/remote/protocol.js';
import type { StreamInput } from './requests.js';

export interface StreamSink {
  input(m: StreamInput): void;
  /** The connection closed while the stream was open. */
  abandon(): void;
}

export class Conn {
  readonly streams = new Map<RequestId, StreamSink>();
  /** Requests answered or not yet: an id may not be reused while its request is open. */
  readonly open = new Set<RequestId>();
  private drainWaiters: Array<() => void> = [];

  constructor(
    readonly socket: net.Socket,
    readonly peer: PeerCredentials,
  ) {
    socket.on('drain', () => {
      const w = this.drainWaiters;
      this.drainWaiters = [];
      for (const f of w) f();
    });
    socket.once('close', () => {
      this.abandonStreams();
      for (const f of this.drainWaiters) f();
    });
  }

  /**
   * The client's side ended: it closed or died (on a unix socket the two look alike until a
   * write fails, and an idle command writes nothing), so no one types into its streams again.
   */
  abandonStreams(): void {
    for (const s of this.streams.values()) s.abandon();
    this.streams.clear();
  }

  get closed(): boolean {
    return this.socket.destroyed || !this.socket.writable;
  }

  private corked = false;

  /**
   * Writes one message; false when the socket's buffer is full (wait with whenDrained). The
   * messages of one tick go out in one write: a busy task's events and output come in bursts
   * (a monitor read holds many lines), and one syscall per line cost more than the rest of the
   * server's work for them.
   */
  send(m: object): boolean {
    return this.sendRaw(encode(m));
  }

  /** Bytes as they are: the frames of a runCli reply (cliRun.ts), or an encoded message. */
  sendRaw(data: string | Buffer): boolean {
    if (this.closed) return true;
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    return this.socket.write(data);
  }

  whenDrained(f: () => void): void {
    if (this.closed) f();
    else this.drainWaiters.push(f);
  }

  /**
   * Sends a stream's output as base64 frames; the source is paused while the socket is full,
   * so a slow client slows the command as a full pipe would. Drained unread once the
   * connection is gone, so the command is never blocked on it.
   */
  forward(id: RequestId, src: Readable, type: 'stdout' | 'stderr'): Promise<void> {
    return new Promise((resolve) => {
      src.on('data', (chunk: Buffer) => {
        if (this.closed) return;
        let full = false;
        for (let off = 0; off < chunk.length; off += CHUNK_BYTES) {
          const data = chunk.subarray(off, off + CHUNK_BYTES).toString('base64');
          if (!this.send({ id, type, data })) full = true;
        }
        if (full) {
          src.pause();
          this.whenDrained(() => src.resume());
        }
      });
      src.once('end', () => resolve());
      src.once('close', () => resolve());
      src.once('error', () => resolve());
    });
  }
}
