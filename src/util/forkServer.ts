// The supervisor's children start from nanocell-forkserver (native/forkserver/), not from this
// process. Node forks itself for every spawn, and a fork copies the page tables of everything
// the process touched: at the 150 MB a supervisor holds, each spawn stops the event loop for 4
// to 5 ms (1.7 ms at 50 MB), while the fork server's own fork costs microseconds. A cold cell
// runs five helpers between its start and its end, so that was a quarter of its start, and in a
// server every other cell's commands waited through it.
//
// One fork server per process, started at the first spawn and kept (unreferenced, so it never
// keeps the process alive; it dies with this process). Each request is one line on its IPC
// channel; the child's stdio come back as sockets on the same channel, then its pid, then,
// once reaped, its wait status. If the fork server goes away, what it was starting fails, what
// it had started ends with no status, and the next spawn starts a new one.
import { spawn, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net, { type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { nativeDir } from './packageRoot.js';

interface ForkedExit {
  /** The exit status, or null when a signal ended it (or its end could not be seen). */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Forked {
  pid: number;
  /** Its stdio, by fd number: a socket for each 'p' of the request ('i' and 'n' have none). */
  stdio: Socket[];
  /**
   * Per stdio socket, its 'close', watched from its arrival: a child that writes nothing and
   * exits at once has closed them before the caller could listen.
   */
  closed: Promise<void>[];
  exited: Promise<ForkedExit>;
  /** Signals it unless it has been reaped (its pid may be another process's by then). */
  kill(signal?: NodeJS.Signals): boolean;
  /** What it sent on its own IPC channel ('i'), each message with its handle, in order. */
  onMessage(listener: (msg: unknown, handle: unknown) => void): void;
}

/** A spawn that failed as Node's would: `code` is the errno's name (ENOENT, EACCES, ...). */
export class SpawnError extends Error {
  constructor(
    file: string,
    readonly code: string,
  ) {
    super(`spawn ${file} ${code}`);
  }
}

interface Pending {
  file: string;
  fds: Socket[];
  closed: Promise<void>[];
  /** IPC messages that came before a listener did. */
  early: [unknown, unknown][];
  listener?: (msg: unknown, handle: unknown) => void;
  started?: { resolve(f: Forked): void; reject(e: Error): void };
  exit?: (e: ForkedExit) => void;
  reaped: boolean;
}

interface Reply {
  fs?: unknown;
  /** A relayed IPC message's child (native/forkserver/wire.c, relay). */
  fsid?: unknown;
  id?: unknown;
  fd?: unknown;
  pid?: unknown;
  errno?: unknown;
  status?: unknown;
}

/** Below the fork server's line buffer (MAX_LINE in native/forkserver/forkserver.h). */
const MAX_REQUEST = 6 * 1024 * 1024;

const nameOf = (table: Record<string, number>, n: number) =>
  Object.entries(table).find(([, v]) => v === n)?.[0];

function decodeStatus(status: number): ForkedExit {
  const sig = status & 0x7f;
  if (sig === 0) return { code: (status >> 8) & 0xff, signal: null };
  return { code: null, signal: (nameOf(os.constants.signals, sig) ?? null) as NodeJS.Signals };
}

/** execvp's search, done here: the fork server runs exactly the path it is given. */
function resolveFile(file: string, env: NodeJS.ProcessEnv, cwd: string): string | undefined {
  if (file.includes('/')) return path.resolve(cwd, file);
  for (const dir of (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':')) {
    const p = path.resolve(cwd, dir || '.', file);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Releases a handle nobody will take: a socket, or a server or dgram socket (they close). */
function drop(handle: unknown): void {
  const h = handle as { destroy?: () => void; close?: () => void } | undefined;
  if (typeof h?.destroy === 'function') h.destroy();
  else if (typeof h?.close === 'function') h.close();
}

function noNul(s: string): string {
  if (s.includes('\0')) throw new TypeError('an argument or environment entry contains NUL');
  return s;
}

class ForkServer {
  private readonly pending = new Map<number, Pending>();
  private next = 1;
  gone = false;

  constructor(private readonly child: ChildProcess) {
    child.on('message', (m: Reply, handle?: unknown) =>
      typeof m?.fsid === 'number' ? this.onRelayed(m, handle) : this.onReply(m, handle),
    );
    child.once('exit', () => this.onGone());
    child.on('error', () => this.onGone());
    child.unref();
    child.channel?.unref();
  }

  spawn(o: Request) {
    try {
      return this.request(o);
    } catch (e) {
      return Promise.reject(e instanceof Error ? e : new Error(String(e)));
    }
  }

  private request({ file, args, cwd, env, stdio }: Request) {
    if (!/^[pin]{1,8}$/.test(stdio)) throw new TypeError(`bad stdio ${stdio}`);
    const entries = Object.entries(env).flatMap(([k, v]) =>
      v === undefined ? [] : [noNul(`${k}=${v}`)],
    );
    const argv = [file, ...args].map(noNul);
    const exe = resolveFile(file, env, cwd);
    if (!exe) return Promise.reject(new SpawnError(file, 'ENOENT'));
    const id = this.next++;
    const fields = [String(id), noNul(cwd), stdio, exe, String(argv.length), ...argv];
    fields.push(String(entries.length), ...entries);
    const p: Pending = { file, fds: [], closed: [], early: [], reaped: false };
    this.pending.set(id, p);
    if (this.pending.size === 1) this.child.channel?.ref();
    const started = new Promise<Forked>((resolve, reject) => (p.started = { resolve, reject }));
    const line = Buffer.from(fields.map((f) => `${f}\0`).join('')).toString('base64');
    // The fork server drops longer lines unanswered; execve refuses far less (ARG_MAX).
    if (line.length > MAX_REQUEST) {
      this.done(id);
      return Promise.reject(new SpawnError(file, 'E2BIG'));
    }
    this.child.send(line);
    return started;
  }

  private done(id: number): void {
    this.pending.delete(id);
    if (this.pending.size === 0) this.child.channel?.unref();
  }

  private onReply(m: Reply, received: unknown): void {
    const id = typeof m?.id === 'number' ? m.id : -1;
    const p = this.pending.get(id);
    if (!p || (received !== undefined && !(received instanceof net.Socket))) {
      drop(received);
      if (!p) return;
    }
    const handle = received instanceof net.Socket ? received : undefined;
    if (m.fs === 'fd' && handle && typeof m.fd === 'number') {
      p.fds[m.fd] = handle;
      p.closed[m.fd] = new Promise((resolve) => handle.once('close', () => resolve()));
      // Until the caller listens: a reset must not be an unhandled 'error'.
      handle.on('error', () => undefined);
    } else if (m.fs === 'error') {
      for (const s of p.fds) s?.destroy();
      this.done(id);
      const errno = typeof m.errno === 'number' ? m.errno : 0;
      p.started?.reject(new SpawnError(p.file, nameOf(os.constants.errno, errno) ?? `E${errno}`));
    } else if (m.fs === 'spawned' && typeof m.pid === 'number') {
      const pid = m.pid;
      const exited = new Promise<ForkedExit>((resolve) => (p.exit = resolve));
      p.started?.resolve({
        pid,
        stdio: p.fds,
        closed: p.closed,
        exited,
        kill: (signal = 'SIGTERM') => {
          if (p.reaped) return false;
          try {
            process.kill(pid, signal);
            return true;
          } catch {
            return false;
          }
        },
        onMessage: (listener) => {
          p.listener = listener;
          for (const [msg, h] of p.early.splice(0)) listener(msg, h);
        },
      });
      p.started = undefined;
    } else if (m.fs === 'exit' && typeof m.status === 'number') {
      p.reaped = true;
      this.done(id);
      p.exit?.(decodeStatus(m.status));
    }
  }

  private onRelayed(m: Reply, handle: unknown): void {
    const p = this.pending.get(m.fsid as number);
    if (!p) {
      drop(handle);
      return;
    }
    const { fsid: _, ...msg } = m;
    if (p.listener) p.listener(msg, handle);
    else p.early.push([msg, handle]);
  }

  private onGone(): void {
    if (this.gone) return;
    this.gone = true;
    for (const [, p] of this.pending) {
      p.reaped = true;
      for (const s of p.fds) if (p.started) s?.destroy();
      p.started?.reject(new Error('the fork server exited'));
      p.exit?.({ code: null, signal: null });
    }
    this.pending.clear();
  }
}

interface Request {
  file: string;
  args: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  /** One letter per fd from 0: 'p' a socket, 'n' /dev/null, 'i' an IPC channel (NODE_CHANNEL_FD). */
  stdio: string;
}

let server: ForkServer | undefined;

/**
 * Spawns `file` (searched on env.PATH when it has no slash), by default with stdin, stdout and
 * stderr as sockets; undefined when this install has no fork server (then spawn as usual).
 */
export function forkServerSpawn(
  file: string,
  args: readonly string[],
  o: { cwd?: string; env?: NodeJS.ProcessEnv; stdio?: string },
): Promise<Forked> | undefined {
  if (!server || server.gone) {
    const bin = path.join(nativeDir(), 'nanocell-forkserver');
    try {
      fs.accessSync(bin, fs.constants.X_OK);
    } catch {
      return undefined;
    }
    server = new ForkServer(
      spawn(bin, [], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env: {}, cwd: '/' }),
    );
  }
  return server.spawn({
    file,
    args,
    cwd: o.cwd ?? process.cwd(),
    env: o.env ?? process.env,
    stdio: o.stdio ?? 'ppp',
  });
}

/**
 * A forked child as the ChildProcess its callers knew (the monitor's): its stdio, 'exit' once
 * reaped, 'close' once its stdio closed too, 'message' for what came on its IPC channel.
 */
export class ForkedProcess extends EventEmitter {
  exitCode: number | null = null;
  signalCode: NodeJS.Signals | null = null;
  readonly pid: number;
  readonly stdio: Socket[];
  /** The channel is the fork server's, shared; nothing of it is this child's to release. */
  readonly channel = { unref: () => undefined };

  private readonly queued: [unknown, unknown][] = [];
  private scheduled = false;

  /*
   * Events go out from a later turn of the loop, and messages only to a listener: the fork
   * server's replies can come in one read (a busy supervisor reads late), so its handles or
   * its exit can be here before the caller that awaited this child has attached anything.
   */
  constructor(private readonly f: Forked) {
    super();
    this.pid = f.pid;
    this.stdio = f.stdio;
    f.onMessage((m, h) => {
      this.queued.push([m, h]);
      this.deliverSoon();
    });
    this.on('newListener', (event) => {
      if (event === 'message') this.deliverSoon();
    });
    void f.exited.then((e) =>
      setImmediate(() => {
        this.exitCode = e.code;
        this.signalCode = e.signal;
        this.emit('exit', e.code, e.signal);
        void Promise.all(f.closed).then(() => this.emit('close', e.code, e.signal));
      }),
    );
  }

  private deliverSoon(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      while (this.queued.length && this.listenerCount('message') > 0) {
        const [m, h] = this.queued.shift()!;
        this.emit('message', m, h);
      }
    });
  }

  get stdin(): Socket {
    return this.stdio[0]!;
  }
  get stdout(): Socket {
    return this.stdio[1]!;
  }
  get stderr(): Socket {
    return this.stdio[2]!;
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    return this.f.kill(signal);
  }
}
