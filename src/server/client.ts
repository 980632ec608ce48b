// The CLI's side of the cell server: `nanocell run` hands its task to a running server
// (found by its socket under the state root) and falls back to running it in-process.
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { AuditEventInput } from '../audit/events.js';
import type { TaskReport } from '../task/task.js';
import {
  fromWireError,
  line,
  LineReader,
  PROTOCOL_VERSION,
  type ClientMessage,
  type RunRequest,
  type ServerMessage,
} from './protocol.js';

const v = PROTOCOL_VERSION;

/** A connection to the server, or undefined when none is listening (or NANOCELL_NO_SERVER). */
export function connectServer(socketPath: string): Promise<net.Socket | undefined> {
  if (process.env.NANOCELL_NO_SERVER) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => resolve(s));
    // No socket, a stale one, or a server of another user: run in-process instead.
    s.once('error', () => resolve(undefined));
  });
}

export interface RemoteIo {
  stdin: Readable | null;
  stdout: Writable;
  stderr: Writable;
  onEvent?: (e: AuditEventInput) => void;
  abort?: AbortSignal;
  abandonChanges?: AbortSignal;
}

/** One exchange: `hello` or `run`, then the server's messages until it closes. */
function exchange(
  s: net.Socket,
  first: ClientMessage,
  on: (m: ServerMessage) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    let failed: Error | undefined;
    const reader = new LineReader(
      (raw) => {
        const m = raw as ServerMessage;
        if (m.type === 'error') failed = fromWireError(m.error);
        else on(m);
      },
      (e) => (failed = e),
    );
    s.on('data', (d: Buffer) => reader.push(d));
    s.on('error', (e) => (failed ??= e));
    s.on('close', () => (failed ? reject(failed) : resolve()));
    s.write(line(first));
  });
}

export async function helloServer(s: net.Socket): Promise<{ version: string; pid: number }> {
  let hello: { version: string; pid: number } | undefined;
  await exchange(s, { v, type: 'hello' }, (m) => {
    if (m.type === 'hello') hello = { version: m.version, pid: m.pid };
  });
  if (!hello) throw new Error('the cell server closed without a hello');
  return hello;
}

export async function runRemote(
  s: net.Socket,
  task: RunRequest,
  io: RemoteIo,
): Promise<TaskReport> {
  let report: TaskReport | undefined;
  const cancel = () => s.writable && s.write(line({ v, type: 'cancel' }));
  io.abort?.addEventListener('abort', cancel);
  io.abandonChanges?.addEventListener('abort', cancel);
  if (task.stdin && io.stdin) {
    io.stdin.on('data', (d: Buffer) =>
      s.write(line({ v, type: 'stdin', data: d.toString('base64') })),
    );
    io.stdin.on('end', () => s.writable && s.write(line({ v, type: 'stdin', end: true })));
  }
  try {
    await exchange(s, { v, type: 'run', task }, (m) => {
      if (m.type === 'stdout') io.stdout.write(Buffer.from(m.data, 'base64'));
      else if (m.type === 'stderr') io.stderr.write(Buffer.from(m.data, 'base64'));
      else if (m.type === 'event') io.onEvent?.(m.event as unknown as AuditEventInput);
      else if (m.type === 'report') report = m.report as TaskReport;
    });
  } finally {
    io.abort?.removeEventListener('abort', cancel);
    io.abandonChanges?.removeEventListener('abort', cancel);
  }
  if (!report) throw new Error('the cell server closed before the task ended');
  return report;
}
