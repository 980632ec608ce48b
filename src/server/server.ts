// `nanocell serve`: a long-lived supervisor that runs tasks for the CLI over a unix socket
// under the state root. The socket is 0600 and every connection's peer (SO_PEERCRED) must be
// the server's own uid: the server runs tasks with its privileges, so only its owner may ask.
import fs from 'node:fs';
import net from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import { ensureStateRoot } from '../cell/state.js';
import type { Cell } from '../cell/cell.js';
import type { CellOptions } from '../cell/types.js';
import type { ServerPools } from './pools.js';
import type { Policy } from '../policy/defaults.js';
import { runTask } from '../task/task.js';
import { NanocellError } from '../util/errors.js';
import { peerCredentials as peerCred, type PeerCredentials as PeerCred } from '../host/peerCred.js';
import {
  line,
  LineReader,
  PROTOCOL_VERSION,
  protocolError,
  toWireError,
  type ClientMessage,
  type RunRequest,
  type ServerMessage,
} from './protocol.js';

const v = PROTOCOL_VERSION;

export interface ServerOptions {
  stateRoot: string;
  version: string;
  /** Told about each connection refused or served (the foreground log). */
  log?: (msg: string) => void;
  /** Warm pools (`--config`); a task one fits is claimed from it. */
  pools?: ServerPools;
}

export class CellServer {
  private readonly running = new Set<AbortController>();

  private constructor(
    private readonly server: net.Server,
    readonly socketPath: string,
  ) {}

  static async listen(o: ServerOptions): Promise<CellServer> {
    const socketPath = ensureStateRoot(o.stateRoot).serverSocket;
    await removeStaleSocket(socketPath);
    const srv = net.createServer();
    const cell = new CellServer(srv, socketPath);
    srv.on('connection', (s) => void cell.accept(s, o));
    // The socket is created 0600: no moment exists in which another user could connect.
    const umask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        srv.once('error', reject);
        srv.listen(socketPath, () => resolve());
      });
    } finally {
      process.umask(umask);
    }
    return cell;
  }

  /** Stops accepting; running tasks are stopped (their change sets still collected). */
  async close(): Promise<void> {
    for (const a of this.running) a.abort();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    fs.rmSync(this.socketPath, { force: true });
  }

  private async accept(s: net.Socket, o: ServerOptions): Promise<void> {
    const send = (m: ServerMessage) => s.writable && s.write(line(m));
    s.on('error', () => undefined);
    // A refused peer's bytes are discarded (resume), so its EOF is read and the socket closes.
    const refuse = () => {
      s.end();
      s.resume();
    };
    let peer: PeerCred;
    try {
      peer = await peerCred(s);
      if (peer.uid !== process.getuid!()) {
        o.log?.(`refused pid ${peer.pid} uid ${peer.uid}: not the server's uid`);
        send({ v, type: 'error', error: toWireError(notOwner(peer.uid)) });
        return void refuse();
      }
    } catch (e) {
      send({ v, type: 'error', error: toWireError(e) });
      return void refuse();
    }
    let task: { stdin?: PassThrough; abort: AbortController; abandon: AbortController } | undefined;
    const reader = new LineReader(
      (raw) => {
        const m = raw as ClientMessage;
        if (m?.v !== PROTOCOL_VERSION) {
          send({
            v,
            type: 'error',
            error: toWireError(protocolError(`version ${String(m?.v)} is not spoken here`)),
          });
          return void s.end();
        }
        if (m.type === 'hello') {
          send({ v, type: 'hello', server: 'nanocell', version: o.version, pid: process.pid });
          return void s.end();
        }
        if (m.type === 'run' && !task) {
          const pool = o.pools?.find(m.task.policy as Policy, m.task.workspace);
          const from = pool ? ` (warm pool "${pool.name}")` : '';
          o.log?.(`run for pid ${peer.pid}: ${JSON.stringify(m.task.command)}${from}`);
          return void (task = this.run(s, m.task, send, o.pools?.starter(pool)));
        }
        if (m.type === 'stdin' && task?.stdin) {
          if (m.data) task.stdin.write(Buffer.from(m.data, 'base64'));
          if (m.end) task.stdin.end();
          return;
        }
        if (m.type === 'cancel' && task) {
          if (task.abort.signal.aborted) task.abandon.abort();
          else task.abort.abort();
          return;
        }
        send({
          v,
          type: 'error',
          error: toWireError(protocolError(`unexpected message ${String(m.type)}`)),
        });
        s.end();
      },
      (e) => {
        send({ v, type: 'error', error: toWireError(e) });
        s.end();
      },
    );
    s.on('data', (d: Buffer) => reader.push(d));
    // Handing the socket to the helper as its stdin paused it (Node does so for a stream it
    // shares with a child); nothing was read meanwhile, so resuming loses nothing.
    s.resume();
    // The client went away: stop its task as Ctrl-C would; the change set is still kept.
    s.on('close', () => task?.abort.abort());
  }

  private run(
    s: net.Socket,
    t: RunRequest,
    send: (m: ServerMessage) => unknown,
    startCell?: (o: CellOptions) => Promise<Cell>,
  ) {
    const abort = new AbortController();
    const abandon = new AbortController();
    const stdin = t.stdin ? new PassThrough() : undefined;
    this.running.add(abort);
    const frames = (type: 'stdout' | 'stderr') =>
      new Writable({
        write(chunk: Buffer, _enc, cb) {
          if (s.write(line({ v, type, data: chunk.toString('base64') }))) cb();
          else s.once('drain', () => cb());
        },
      });
    runTask({
      policy: t.policy as Policy,
      workspace: t.workspace,
      command: t.command,
      session: t.session,
      stateRoot: stateRootOf(this.socketPath),
      extraAllowNet: t.extraAllowNet,
      stdin: stdin ?? null,
      stdout: frames('stdout'),
      stderr: frames('stderr'),
      abort: abort.signal,
      abandonChanges: abandon.signal,
      changes: t.changes ?? 'keep',
      ...(startCell ? { startCell } : {}),
      onEvent: (e) => send({ v, type: 'event', event: e as unknown as Record<string, unknown> }),
    })
      .then(
        (report) => send({ v, type: 'report', report }),
        (e: unknown) => send({ v, type: 'error', error: toWireError(e) }),
      )
      .finally(() => {
        this.running.delete(abort);
        s.end();
      });
    return { stdin, abort, abandon };
  }
}

const stateRootOf = (socketPath: string) => socketPath.slice(0, socketPath.lastIndexOf('/'));

function notOwner(uid: number): NanocellError {
  return new NanocellError(
    `uid ${uid} may not use this cell server (it serves uid ${process.getuid!()} only)`,
    "run nanocell as the server's user, or start your own server with --state-root",
    'USAGE',
  );
}

/** A socket left by a crashed server is removed; a live server's is refused. */
async function removeStaleSocket(p: string): Promise<void> {
  if (!fs.existsSync(p)) return;
  const live = await new Promise<boolean>((resolve) => {
    const c = net.connect(p);
    c.once('connect', () => (c.destroy(), resolve(true)));
    c.once('error', () => resolve(false));
  });
  if (live) {
    throw new NanocellError(
      `a cell server is already listening on ${p}`,
      'stop it first (systemctl stop nanocell, or kill its pid), or pass another --state-root',
      'STATE',
    );
  }
  fs.rmSync(p, { force: true });
}
