// Writing to the user's stdout and stderr. Writes are synchronous on the file descriptor, so a
// closed pipe (`nanocell logs X | head`) is seen at the write that hit it, as an EPIPE we can
// act on: views stop and exit with their status, `run` stops the cell like SIGPIPE would stop
// a host process. Node's own EPIPE on process.stdout would arrive later as an unhandled 'error'
// event with a stack trace.
import fs from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { Writable } from 'node:stream';
import type { OutStream } from './format.js';
import type { LiveStatus } from './liveStatus.js';
import { TerminalFilter } from './termFilter.js';

/** The reader of our stdout (or stderr) went away. */
export class BrokenPipe extends Error {
  constructor(readonly fd: number) {
    super(`fd ${fd}: broken pipe`);
  }
}

const pause = new Int32Array(new SharedArrayBuffer(4));

/** Writes all of `data` to `fd`; a non-blocking descriptor that is full is waited on. */
export function writeAllSync(fd: number, data: string | Uint8Array): void {
  const buf = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN') {
        Atomics.wait(pause, 0, 0, 2);
        continue;
      }
      if (code === 'EPIPE') throw new BrokenPipe(fd);
      throw e;
    }
  }
}

/** process.stdout as the views use it: synchronous writes that throw BrokenPipe. */
export function stdoutSink(): OutStream {
  return {
    write: (s: string) => writeAllSync(1, s),
    isTTY: process.stdout.isTTY === true,
    columns: process.stdout.columns,
  };
}

export interface TaskOutputOptions {
  fd: 1 | 2;
  /** Drop escape sequences beyond colour (the stream is a terminal and --raw-output is off). */
  filter: boolean;
  /** The status line to clear and redraw around output that reaches the terminal. */
  live?: LiveStatus;
  toTerminal: boolean;
  /** The reader went away: the task is stopped, as SIGPIPE would stop it on the host. */
  onBroken: () => void;
}

/**
 * A task's stdout or stderr on its way to ours. Never errors (an error on a piped destination
 * would stop draining the cell): after a broken pipe the rest is read and dropped.
 */
export class TaskOutput extends Writable {
  private broken = false;
  private readonly filter: TerminalFilter | undefined;
  private readonly decoder = new StringDecoder('utf8');

  constructor(private readonly o: TaskOutputOptions) {
    super();
    this.filter = o.filter ? new TerminalFilter() : undefined;
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.broken) return cb();
    const data = this.filter ? this.filter.push(this.decoder.write(chunk)) : chunk;
    const write = () => writeAllSync(this.o.fd, data);
    try {
      if (this.o.live && this.o.toTerminal) this.o.live.around(write, endsLine(data));
      else write();
    } catch (e) {
      if (!(e instanceof BrokenPipe)) return cb(e as Error);
      this.broken = true;
      this.o.onBroken();
    }
    cb();
  }
}

/** Whether the output leaves the cursor at a line start; undefined when nothing was written. */
function endsLine(data: string | Buffer): boolean | undefined {
  if (data.length === 0) return undefined;
  return typeof data === 'string' ? data.endsWith('\n') : data[data.length - 1] === 0x0a;
}
