// `nanocell serve`: a long-lived supervisor on a unix socket under the state root. It runs
// whole tasks for the CLI (`run`) and owns cells that clients create, drive and destroy by id
// (docs/architecture.md, "Cell server"). The socket is 0600 and every connection's peer
// (SO_PEERCRED) must be the server's own uid: the server acts with its privileges, so only
// its owner may ask. A bad line is answered with an error and the connection keeps serving;
// only a client of another protocol version is cut off (nothing it sends can be read).
import fs from 'node:fs';
import net from 'node:net';
import { ensureStateRoot } from '../cell/state.js';
import { LineSplitter } from '../util/lines.js';
import { NanocellError } from '../util/errors.js';
import { peerCredentials, type PeerCredentials } from '../host/peerCred.js';
import { ServerCells } from './cells.js';
import { Conn } from './conn.js';
import { handlers } from './handlers.js';
import { serveCliRun } from './cliRun.js';
import {
  encode,
  MAX_FILE_BYTES,
  MAX_LINE_BYTES,
  protocolError,
  toWireError,
  type RequestId,
} from '../cell/remote/protocol.js';
import { parseLine, type Request } from './requests.js';
import type { ServerPools } from './pools.js';

export interface ServerOptions {
  stateRoot: string;
  version: string;
  /** Told about each connection refused or served (the foreground log). */
  log?: (msg: string) => void;
  /** Warm pools (`--config`); a task one fits is claimed from it. */
  pools?: ServerPools;
}

/** What every request handler may reach (handlers.ts). */
export interface CellServerState {
  readonly stateRoot: string;
  readonly version: string;
  readonly cells: ServerCells;
  /** Running `run` tasks, stopped when the server stops. */
  readonly running: Set<AbortController>;
  readonly maxFileBytes: number;
  readonly log?: (msg: string) => void;
  readonly pools?: ServerPools;
}

export class CellServer {
  private readonly sockets = new Set<net.Socket>();
  /** Requests being handled, awaited when the server stops. */
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly state: CellServerState;

  private constructor(
    private readonly server: net.Server,
    readonly socketPath: string,
    o: ServerOptions,
  ) {
    this.state = {
      stateRoot: stateRootOf(socketPath),
      version: o.version,
      cells: new ServerCells(stateRootOf(socketPath), o.log),
      running: new Set(),
      maxFileBytes: MAX_FILE_BYTES,
      ...(o.log ? { log: o.log } : {}),
      ...(o.pools ? { pools: o.pools } : {}),
    };
  }

  static async listen(o: ServerOptions): Promise<CellServer> {
    const socketPath = ensureStateRoot(o.stateRoot).serverSocket;
    await removeStaleSocket(socketPath);
    // Half-open: a client that ends its side still gets the answers to what it sent.
    const srv = net.createServer({ allowHalfOpen: true });
    const cell = new CellServer(srv, socketPath, o);
    srv.on('connection', (s) => void cell.accept(s));
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

  /**
   * Stops accepting; running tasks are stopped (their change sets still collected) and every
   * server-owned cell is destroyed (its change set collected), then connections are closed.
   */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const a of this.state.running) a.abort();
    await this.state.cells.destroyAll();
    await Promise.allSettled([...this.inFlight]);
    for (const s of this.sockets) s.end();
    setTimeout(() => {
      for (const s of this.sockets) s.destroy();
    }, 1000).unref();
    await closed;
    fs.rmSync(this.socketPath, { force: true });
  }

  private async accept(s: net.Socket): Promise<void> {
    this.sockets.add(s);
    s.once('close', () => this.sockets.delete(s));
    s.on('error', () => undefined);
    const { log } = this.state;
    // A refused peer's bytes are discarded (resume), so its EOF is read and the socket closes.
    const refuse = (e: unknown) => {
      s.end(encode({ id: null, type: 'error', error: toWireError(e) }));
      s.resume();
    };
    let peer: PeerCredentials;
    try {
      peer = await peerCredentials(s);
    } catch (e) {
      return refuse(e);
    }
    if (peer.uid !== process.getuid!()) {
      log?.(`refused pid ${peer.pid} uid ${peer.uid}: not the server's uid`);
      return refuse(notOwner(peer.uid));
    }
    const conn = new Conn(s, peer);
    let ended = false;
    /** A client of another protocol version: nothing more it sends is read. */
    let cutOff = false;
    /** Whether a request came yet, and whether the first was the native front's runCli. */
    let requested = false;
    let cli = false;
    const maybeEnd = () => {
      if (ended && conn.open.size === 0) s.end();
    };
    const splitter = new LineSplitter(
      (line) => {
        if (cutOff) return;
        const p = parseLine(line);
        if (p.kind === 'bad') {
          conn.send({ id: p.id, type: 'error', error: toWireError(p.error) });
          if (p.fatal) {
            cutOff = true;
            s.end();
          }
        } else if (p.kind === 'input') {
          // An input for a stream that has ended (or never was) is dropped: the client may
          // have typed while the command exited.
          conn.streams.get(p.msg.id)?.input(p.msg);
        } else if (cli) {
          // Its answers are binary frames: a request on it cannot be answered in lines.
          log?.(`dropped a ${p.msg.type} request on a runCli connection (pid ${peer.pid})`);
        } else if (p.msg.type === 'runCli' && !requested) {
          requested = cli = true;
          this.track(serveCliRun(conn, p.msg, this.state));
        } else {
          requested = true;
          this.dispatch(conn, p.msg, maybeEnd);
        }
      },
      () =>
        conn.send({
          id: null,
          type: 'error',
          error: toWireError(protocolError(`a line is longer than ${MAX_LINE_BYTES} bytes`)),
        }),
      MAX_LINE_BYTES,
    );
    s.on('data', (d: Buffer) => splitter.push(d));
    s.on('end', () => {
      ended = true;
      conn.abandonStreams();
      maybeEnd();
    });
    // Handing the socket to the helper paused it (Node does so for a stream it shares with a
    // child); nothing was read meanwhile, so resuming loses nothing.
    s.resume();
  }

  private dispatch(conn: Conn, m: Request, done: () => void): void {
    const id: RequestId = m.id;
    if (conn.open.has(id)) {
      conn.send({
        id,
        type: 'error',
        error: toWireError(protocolError(`request id ${JSON.stringify(id)} is still open`)),
      });
      return;
    }
    conn.open.add(id);
    const handler = handlers[m.type] as (r: Request, c: unknown) => unknown;
    const p = (async () => handler(m, { conn, id, server: this.state }))()
      .then(
        (result) => conn.send({ id, type: 'result', result: result ?? {} }),
        (e: unknown) => conn.send({ id, type: 'error', error: toWireError(e) }),
      )
      .finally(() => {
        conn.open.delete(id);
        this.inFlight.delete(p);
        done();
      });
    this.inFlight.add(p);
  }

  private track(p: Promise<unknown>): void {
    const q = p.catch(() => undefined).finally(() => this.inFlight.delete(q));
    this.inFlight.add(q);
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
