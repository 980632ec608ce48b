// The control socket a cell's supervisor serves while the task runs: `nanocell exec`, `stop`
// and `kill` from another terminal reach the running cell through it. Only the user who
// started the cell (the supervisor's uid) or root may use it: the socket is 0600 in a 0700
// directory, and every connection's SO_PEERCRED is checked before a byte of it is read.
import fs from 'node:fs';
import net from 'node:net';
import type { AuditEventInput } from '../audit/events.js';
import type { CellExec, ExecOptions } from '../cell/types.js';
import type { EgressDecision } from '../net/grants.js';
import { stateLayout } from '../cell/state.js';
import { NanocellError } from '../util/errors.js';
import { peerCredentials, type PeerCredentials } from '../host/peerCred.js';
import {
  DEFAULT_STOP_GRACE_MS,
  encode,
  LineSplitter,
  MAX_LINE_BYTES,
  parseRequest,
  ProtocolError,
  type ControlRequest,
} from './protocol.js';
import { ExecSession } from './execSession.js';

/** What the control socket acts on: a running cell (Cell satisfies it). */
export interface ControlTarget {
  readonly taskId: string;
  readonly session: string;
  readonly startedAt: number;
  exec(argv: string[], opts?: ExecOptions): CellExec;
  stop(graceMs: number): Promise<void>;
  kill(reason: 'killed'): Promise<void>;
  decideEgress(host: string, port: number, decision: EgressDecision): void;
}

export interface ControlServerOptions {
  /** The state root the cell runs under; the socket's path is StateLayout.controlSocket. */
  stateRoot: string;
  target: ControlTarget;
  /** Audit events: who used the socket for what, and refused connections. */
  onEvent?: (e: AuditEventInput) => void;
}

// A unix socket path is at most 107 bytes (sun_path is 108 with the NUL).
const MAX_SOCKET_PATH = 107;
/** Peer checks in flight at once; more connections wait in the kernel's backlog. */
const MAX_PENDING_CHECKS = 8;

export class ControlServer {
  private readonly sockets = new Set<net.Socket>();
  private readonly waiting = new Set<net.Socket>();
  private pending = 0;
  private closed = false;
  private readonly allowedUid = process.geteuid!();

  private constructor(
    private readonly server: net.Server,
    private readonly o: ControlServerOptions,
    readonly socketPath: string,
  ) {}

  static async listen(o: ControlServerOptions): Promise<ControlServer> {
    const socketPath = stateLayout(o.stateRoot).controlSocket(o.target.taskId);
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
      throw new NanocellError(
        `control socket path ${socketPath} is longer than ${MAX_SOCKET_PATH} bytes`,
        'use a shorter --state-root',
        'STATE',
      );
    }
    // A socket left by a supervisor that was SIGKILLed names the same task id only by
    // accident of a reused id, which newTaskId makes negligible; it is stale either way.
    fs.rmSync(socketPath, { force: true });
    const server = net.createServer({ pauseOnConnect: true });
    const cs = new ControlServer(server, o, socketPath);
    server.on('connection', (s) => cs.onConnection(s));
    // Bound under another name, outside the control dir that clients and `ps` list, and
    // renamed in once it listens: a client that finds the socket finds it listening (one
    // refused between bind and listen would clear it away as stale). Not longer than the path.
    const bound = socketPath.replace(/\/([^/]+)\.sock$/, '.$1.tmp');
    fs.rmSync(bound, { force: true });
    // The mask makes the socket 0600 from its creation: there is no moment it is wider.
    const mask = process.umask(0o177);
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(bound, () => {
          server.off('error', reject);
          resolve();
        });
      });
      fs.renameSync(bound, socketPath);
    } catch (e) {
      server.close();
      fs.rmSync(bound, { force: true });
      throw e;
    } finally {
      process.umask(mask);
    }
    server.on('error', () => undefined);
    return cs;
  }

  /** Stops accepting, tells waiting stop/kill clients the task ended, removes the socket. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    fs.rmSync(this.socketPath, { force: true });
    for (const s of this.waiting) s.end(encode({ type: 'ended' }));
    for (const s of this.sockets) if (!this.waiting.has(s)) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private onConnection(socket: net.Socket): void {
    if (this.closed || this.pending >= MAX_PENDING_CHECKS) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.on('close', () => {
      this.sockets.delete(socket);
      this.waiting.delete(socket);
    });
    socket.on('error', () => undefined);
    this.pending++;
    peerCredentials(socket)
      .then(
        (peer) => this.admit(socket, peer),
        (e: Error) =>
          refuse(
            socket,
            `could not check who connected: ${e.message}`,
            'rebuild the native helpers (make -C native)',
          ),
      )
      .finally(() => this.pending--);
  }

  private admit(socket: net.Socket, peer: PeerCredentials): void {
    if (peer.uid !== this.allowedUid && peer.uid !== 0) {
      this.o.onEvent?.({
        type: 'control',
        verb: 'connect',
        uid: peer.uid,
        pid: peer.pid,
        refused: true,
      });
      refuse(
        socket,
        `uid ${peer.uid} did not start task ${this.o.target.taskId}; only uid ${this.allowedUid} or root may control it`,
        'run the command as the user who started the cell',
      );
      return;
    }
    let session: ExecSession | undefined;
    const lines = new LineSplitter(
      (line) => {
        if (session) return session.input(line);
        this.onRequest(socket, peer, line, (s) => (session = s));
      },
      () => {
        const error = `a line longer than ${MAX_LINE_BYTES} bytes was skipped`;
        const fix = 'send stdin in smaller chunks';
        if (session) session.fail(error, fix);
        else socket.write(encode({ type: 'error', error, fix }));
      },
    );
    socket.on('data', (d: Buffer) => lines.push(d));
    socket.resume();
  }

  private onRequest(
    socket: net.Socket,
    peer: PeerCredentials,
    line: string,
    startSession: (s: ExecSession) => void,
  ): void {
    let req: ControlRequest;
    try {
      req = parseRequest(line);
    } catch (e) {
      const p = e as ProtocolError;
      socket.write(encode({ type: 'error', error: p.message, fix: p.fix ?? 'see the protocol' }));
      return;
    }
    const t = this.o.target;
    const record = (extra: Partial<AuditEventInput & { type: 'control' }> = {}) =>
      this.o.onEvent?.({ type: 'control', verb: req.verb, uid: peer.uid, pid: peer.pid, ...extra });
    switch (req.verb) {
      case 'hello':
        socket.write(
          encode({ type: 'hello', taskId: t.taskId, session: t.session, startedAt: t.startedAt }),
        );
        return;
      case 'exec': {
        let x: CellExec;
        try {
          x = t.exec(req.argv, {
            ...(req.env ? { env: req.env } : {}),
            ...(req.cwd ? { cwd: req.cwd } : {}),
            ...(req.tty ? { tty: req.tty } : {}),
          });
        } catch (e) {
          const n = e as NanocellError;
          socket.write(
            encode({ type: 'error', error: n.message, fix: n.fix ?? 'start a new task' }),
          );
          return;
        }
        record({ ...(req.tty ? { verb: 'exec -t' } : {}), argv: req.argv.slice(0, 64) });
        // A terminal's stdin is the user's keys: a tty exec always has one.
        const mode = { stdin: req.stdin === true || req.tty !== undefined, tty: !!req.tty };
        startSession(new ExecSession(socket, x, mode));
        return;
      }
      case 'egress':
        try {
          t.decideEgress(req.host, req.port, req.decision);
        } catch (e) {
          const n = e as NanocellError;
          socket.write(encode({ type: 'error', error: n.message, fix: n.fix ?? 'see the policy' }));
          return;
        }
        this.o.onEvent?.({
          type: 'net.decision',
          host: req.host,
          port: req.port,
          decision: req.decision,
          uid: peer.uid,
          pid: peer.pid,
        });
        socket.write(encode({ type: 'ok', verb: 'egress' }));
        return;
      case 'stop':
      case 'kill':
        record();
        socket.write(encode({ type: 'ok', verb: req.verb }));
        // The client waits for `ended` (sent by close(), once the task is collected).
        this.waiting.add(socket);
        void (req.verb === 'stop'
          ? t.stop(req.graceMs ?? DEFAULT_STOP_GRACE_MS)
          : t.kill('killed'));
        return;
    }
  }
}

function refuse(socket: net.Socket, error: string, fix: string): void {
  socket.resume();
  socket.end(encode({ type: 'error', error, fix }));
  // A refused peer that keeps its end open does not keep an fd here.
  setTimeout(() => socket.destroy(), 1000).unref();
}
