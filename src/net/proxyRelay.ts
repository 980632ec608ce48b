// Moving bytes once a destination was reached: a plain-HTTP request and its response, and a
// tunnel (CONNECT, SOCKS5) both ways. Dialing itself is src/net/dial.ts, reached through the
// proxy core's one decision.
import type http from 'node:http';
import type net from 'node:net';
import { checkTunnel } from './agree.js';
import { chunk, LAST_CHUNK, readResponseHead } from './httpHead.js';
import { errorResponse } from './proxyReplies.js';

/** Response heads larger than this are refused (the request side's bound is the same). */
export const MAX_HEADER_BYTES = 64 * 1024;
/**
 * Tunnels read the upstream in chunks of up to this size into one buffer per tunnel, instead of
 * a new 64 KiB Buffer per read: bulk downloads cost the proxy about half the CPU per byte.
 */
const TUNNEL_READ_BYTES = 256 * 1024;

/**
 * The close accounting of a relay: the client's close tears the upstream down, and done runs
 * once after both sockets closed. Returns what the upstream's close handler must call.
 */
function closeBoth(client: net.Socket, upstream: net.Socket, done: () => void): () => void {
  let open = 2;
  const closed = () => {
    if (--open === 0) done();
  };
  client.once('close', () => {
    upstream.destroy();
    closed();
  });
  return closed;
}

/**
 * Relays one plain-HTTP request and its response, then closes the client connection; calls
 * done once after both sockets are closed. The request goes up as the rebuilt head plus the
 * body as node's parser delimited it (re-chunked if it came chunked), so bytes after it on
 * the client connection never reach this upstream. The response comes back with a rewritten
 * head and its body as the upstream sent it.
 */
export function relayHttp(
  req: http.IncomingMessage,
  client: net.Socket,
  upstream: net.Socket,
  chunked: boolean,
  done: () => void,
) {
  const closed = closeBoth(client, upstream, done);
  upstream.on('error', () => upstream.destroy());

  req.on('data', (data: Buffer) => {
    if (!upstream.write(chunked ? chunk(data) : data)) req.pause();
  });
  upstream.on('drain', () => req.resume());
  req.once('end', () => {
    if (chunked) upstream.write(LAST_CHUNK);
  });
  req.resume();
  relayResponse(client, upstream, closed);
}

/** The response half of relayHttp: head rewritten, body passed through, errors as 502. */
function relayResponse(client: net.Socket, upstream: net.Socket, closed: () => void) {
  // Bytes of the response head received so far; undefined once the head went to the client.
  let pending: Buffer | undefined = Buffer.alloc(0);
  // The upstream's side is over: ended cleanly, or failed and already handled.
  let ended = false;
  const fail = (why: string) => {
    ended = true;
    if (pending !== undefined && client.writable) {
      client.end(errorResponse(502, `upstream error: ${why}`));
      client.destroySoon();
    } else {
      client.destroy();
    }
    pending = undefined;
    upstream.destroy();
  };
  upstream.on('data', (data: Buffer) => {
    if (pending === undefined) {
      if (!client.write(data)) upstream.pause();
      return;
    }
    let buf = pending.length ? Buffer.concat([pending, data]) : data;
    for (;;) {
      const r = readResponseHead(buf, MAX_HEADER_BYTES);
      if (r.kind === 'more') {
        pending = buf;
        return;
      }
      if (r.kind === 'bad') return fail(`invalid response (${r.reason})`);
      if (r.kind === 'interim') {
        buf = buf.subarray(r.used);
        continue;
      }
      pending = undefined;
      const body = buf.subarray(r.used);
      client.cork();
      client.write(r.head, 'latin1');
      const room = body.length ? client.write(body) : true;
      client.uncork();
      if (!room) upstream.pause();
      return;
    }
  });
  client.on('drain', () => upstream.resume());
  upstream.once('end', () => {
    if (pending !== undefined) return fail('closed before a response');
    ended = true;
    client.destroySoon();
  });
  // Closed without an end (reset, error): the client must not take a cut response for whole.
  upstream.once('close', () => {
    if (!ended) fail(pending === undefined ? 'connection lost' : 'closed before a response');
    closed();
  });
}

/**
 * Opens a CONNECT or SOCKS5 tunnel once what its first bytes name (SNI, Host) is its target
 * (agree.ts); a mismatch is denied on the attempt, and both sockets are closed.
 */
export function checkedTunnel(
  client: net.Socket,
  early: Buffer,
  a: { host: string; port: number; denied(rule: string, reason: string): void },
  up: { socket: net.Socket; done: () => void },
  down: DownstreamCopier,
) {
  checkTunnel(client, early, a.host, a.port, (bad, first) => {
    if (bad || client.destroyed) {
      up.socket.destroy();
      if (bad) a.denied(bad.rule, bad.reason);
      else up.done();
      client.destroy();
      return;
    }
    if (first.length) up.socket.write(first);
    tunnel(client, up.socket, down, up.done);
  });
}

/**
 * Relays a tunnel both ways and calls done once after both sockets are closed. Client to
 * upstream is a plain pipe; upstream to client goes through the tunnel's DownstreamCopier.
 */
export function tunnel(
  client: net.Socket,
  upstream: net.Socket,
  down: DownstreamCopier,
  done: () => void,
) {
  const closed = closeBoth(client, upstream, done);
  upstream.once('close', () => {
    client.destroy();
    closed();
  });
  client.on('error', () => client.destroy());
  upstream.on('error', () => upstream.destroy());
  // Half-close passes through, as pipe() does: the upstream's EOF ends the client's side.
  upstream.once('end', () => client.end());
  client.pipe(upstream);
  down.start(upstream, client);
  client.resume();
}

/**
 * Copies an upstream socket to the client through one reusable buffer (the upstream is dialed
 * with `onread`). The buffer is read into again only once the client's socket has taken every
 * byte of the previous read; until then the upstream is paused, which is also the backpressure.
 */
export class DownstreamCopier {
  private buffer: Buffer | undefined;
  private source: net.Socket | undefined;
  private target: net.Socket | undefined;
  /** Bytes read before the tunnel started (copied: the buffer is reused). */
  private early: Buffer[] = [];
  private waiting = false;

  readonly onread: net.OnReadOpts = {
    // A function, so that only a connecting upstream allocates the buffer.
    buffer: () => (this.buffer ??= Buffer.allocUnsafeSlow(TUNNEL_READ_BYTES)),
    callback: (n) => this.forward(this.buffer!.subarray(0, n)),
  };

  start(source: net.Socket, target: net.Socket) {
    this.source = source;
    this.target = target;
    for (const chunk of this.early) target.write(chunk);
    this.early = [];
    source.resume();
  }

  /** Returns whether the upstream may be read again at once. */
  private forward(chunk: Buffer): boolean {
    const target = this.target;
    if (!target) {
      this.early.push(Buffer.from(chunk));
      return false;
    }
    if (target.destroyed) return false;
    target.write(chunk, this.written);
    if (target.writableLength === 0) return true;
    this.waiting = true;
    return false;
  }

  // Write callbacks run in order; an earlier write's callback can run while a later one is
  // still pending, so resume only when nothing is left.
  private readonly written = () => {
    if (this.waiting && this.target!.writableLength === 0) {
      this.waiting = false;
      this.source!.resume();
    }
  };
}
