// One `nanocell exec` on the control socket: the connection becomes the command's stream.
// Output goes out as base64 chunks with back-pressure (a slow client pauses the command's
// output, as a full pipe would); stdin and signals come in; a client that goes away takes
// its command with it, as a closed terminal would. So does a client that sends a bad line:
// the stream is out of step, and a terminal session must not go on typing into the unknown.
import type net from 'node:net';
import type { Readable } from 'node:stream';
import type { CellExec } from '../cell/types.js';
import { CHUNK_BYTES, encode, parseExecInput, ProtocolError } from './protocol.js';

const SIGKILL = 9;
const STDIN_FIX = 'open the exec with "stdin": true';
const TTY_FIX = 'open the exec with "tty": {"cols", "rows"}';

export class ExecSession {
  private done = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly x: CellExec,
    private readonly mode: { stdin: boolean; tty: boolean },
  ) {
    x.stdin.on('error', () => undefined);
    if (!mode.stdin) x.stdin.end();
    socket.write(encode({ type: 'started' }));
    const out = this.forward(x.stdout, 'stdout');
    const err = this.forward(x.stderr, 'stderr');
    socket.once('close', () => {
      if (!this.done) x.kill(SIGKILL);
    });
    void Promise.all([x.result, out, err]).then(([r]) => {
      this.done = true;
      socket.end(
        encode({
          type: 'exit',
          exitCode: r.exitCode,
          endReason: r.endReason,
          ...(r.signal !== undefined ? { signal: r.signal } : {}),
          outputTruncated: r.outputTruncated,
        }),
      );
    });
  }

  /** A line from the client while the command runs. */
  input(line: string): void {
    let m;
    try {
      m = parseExecInput(line);
    } catch (e) {
      const p = e as ProtocolError;
      return this.fail(p.message, p.fix);
    }
    if (m.op === 'stdin') {
      if (!this.mode.stdin) return this.fail('stdin sent to an exec opened without it', STDIN_FIX);
      if (!this.x.stdin.writableEnded) this.x.stdin.write(Buffer.from(m.data, 'base64'));
    } else if (m.op === 'eof') {
      this.x.stdin.end();
    } else if (m.op === 'resize') {
      if (!this.mode.tty) return this.fail('resize sent to an exec without a terminal', TTY_FIX);
      this.x.resize({ cols: m.cols, rows: m.rows });
    } else {
      this.x.kill(m.signal);
    }
  }

  /** Ends the stream with one error line; the close kills the command. */
  fail(error: string, fix: string): void {
    if (this.socket.destroyed) return;
    this.socket.end(encode({ type: 'error', error, fix }));
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }

  private forward(src: Readable, type: 'stdout' | 'stderr'): Promise<void> {
    return new Promise((resolve) => {
      // Nobody reads any more: drain the command's output so it is never blocked on it.
      this.socket.once('close', () => src.resume());
      src.on('data', (chunk: Buffer) => {
        for (let off = 0; off < chunk.length; off += CHUNK_BYTES) {
          const data = chunk.subarray(off, off + CHUNK_BYTES).toString('base64');
          if (!this.socket.destroyed && !this.socket.write(encode({ type, data }))) {
            src.pause();
            this.socket.once('drain', () => src.resume());
          }
        }
      });
      src.once('end', () => resolve());
      src.once('close', () => resolve());
      src.once('error', () => resolve());
    });
  }
}
