// The egress proxy of one cell: an HTTP/1.1 forward proxy (absolute-URI requests for http://
// and CONNECT tunnels) and a SOCKS5 proxy on the same unix socket, told apart by the first
// byte. Every attempt is decided by the cell's rules and reported through onEvent. A plain
// HTTP request has its client connection to itself: its response says `Connection: close`,
// and a further request on that connection is refused (rule `one-request-per-connection`).
import { chmodSync, chownSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { NanocellError } from '../util/errors.js';
import { dial, systemResolver, type DialFailure, type DialResult, type Resolver } from './dial.js';
import { chunk, LAST_CHUNK, readResponseHead, requestHead } from './httpHead.js';
import { parseTarget, type NetRules } from './rules.js';
import { parseGreeting, parseRequest, reply, Reply, SOCKS_VERSION } from './socks5.js';
import type { SecretBroker } from './secrets.js';
import type { TlsInterceptor } from './tlsIntercept.js';

export interface ProxyEvent {
  /** When the attempt started (ISO 8601). */
  time: string;
  /** The destination as the client named it (normalized), '' if the request was unreadable. */
  host: string;
  port: number;
  /** The address connected to, or the resolved address that was refused. */
  ip?: string;
  decision: 'allowed' | 'denied';
  /** The rule that decided, e.g. `allow:*.npmjs.org`, `deny:evil.com`, `special:loopback`. */
  rule: string;
  /** For allowed names: what let the address through (`public-address` or `cidr:<entry>`). */
  addressRule?: string;
  reason?: string;
  /** Allowed by the rules, but the connection failed (DNS, refused, timeout). */
  error?: string;
  protocol: 'http' | 'connect' | 'socks5';
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
}

interface ProxyStats {
  /** Client connections open now. */
  active: number;
  /** Destination attempts so far, by decision. */
  allowed: number;
  denied: number;
  bytesUp: number;
  bytesDown: number;
}

export interface EgressProxy {
  /** The unix socket it listens on; undefined when it serves only adopted sockets. */
  readonly socketPath: string | undefined;
  /** Also listen on a loopback TCP port (benchmarks, tests, tools that cannot use a socket). */
  listen(opts: { host: string; port: number }): Promise<{ host: string; port: number }>;
  /**
   * Serves on a listening socket made elsewhere: the cell's own 127.0.0.1 port, created in the
   * cell's network namespace by the monitor and handed over on its IPC channel.
   */
  adopt(server: net.Server): void;
  close(): Promise<void>;
  stats(): ProxyStats;
}

export interface EgressProxyOptions {
  rules: NetRules;
  /** Unix socket to listen on (init's bridge connects here); omit to serve adopted sockets. */
  socketPath?: string;
  onEvent: (e: ProxyEvent) => void;
  resolver?: (host: string) => Promise<string[]>;
  /** Owner of the socket file: the host uid/gid that the cell's init runs as. */
  socketOwner?: { uid: number; gid: number };
  /** Called if onEvent throws (default: print to stderr); the proxy keeps running. */
  onError?: (err: unknown) => void;
  /** Time a client has to finish a handshake or request head (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Open client connections at most (default 1024); more are refused. */
  maxConnections?: number;
  /** Brokered secrets: CONNECTs to their hosts are intercepted, plain HTTP is checked. */
  secrets?: { broker: SecretBroker; interceptor: TlsInterceptor };
}

/** Request heads and SOCKS handshakes larger than this are refused. */
const MAX_HEADER_BYTES = 64 * 1024;
const MAX_SOCKS_HANDSHAKE = 1024;
/**
 * Tunnels read the upstream in chunks of up to this size into one buffer per tunnel, instead of
 * a new 64 KiB Buffer per read: bulk downloads cost the proxy about half the CPU per byte.
 */
const TUNNEL_READ_BYTES = 256 * 1024;
const DENY_HEADER = 'X-Nanocell-Deny-Reason';

export async function startEgressProxy(opts: EgressProxyOptions): Promise<EgressProxy> {
  const { rules, socketPath } = opts;
  const resolver: Resolver = opts.resolver ?? systemResolver;
  const handshakeTimeoutMs = opts.handshakeTimeoutMs ?? 10_000;
  const sockets = new Set<net.Socket>();
  /** Client connections whose plain-HTTP request is being relayed (see forward). */
  const boundClients = new WeakSet<net.Socket>();
  const servers: net.Server[] = [];
  const stats: ProxyStats = { active: 0, allowed: 0, denied: 0, bytesUp: 0, bytesDown: 0 };
  let closing = false;

  const track = (s: net.Socket) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    if (closing) s.destroy();
  };

  const emit = (e: ProxyEvent) => {
    if (e.decision === 'allowed') stats.allowed++;
    else stats.denied++;
    stats.bytesUp += e.bytesUp;
    stats.bytesDown += e.bytesDown;
    try {
      opts.onEvent(e);
    } catch (err) {
      (opts.onError ?? ((x) => console.error('nanocell proxy: event handler failed:', x)))(err);
    }
  };

  const dialOpts = { resolver, track };

  /** An attempt's bookkeeping: emits one event, once. */
  const attempt = (protocol: ProxyEvent['protocol'], host: string, port: number) => {
    const started = Date.now();
    let done = false;
    return {
      denied(rule: string, reason: string, ip?: string) {
        if (done) return;
        done = true;
        emit({
          time: new Date(started).toISOString(),
          host,
          port,
          ...(ip ? { ip } : {}),
          decision: 'denied',
          rule,
          reason,
          protocol,
          bytesUp: 0,
          bytesDown: 0,
          durationMs: Date.now() - started,
        });
      },
      finished(res: DialResult, bytesUp: number, bytesDown: number) {
        if (done) return;
        done = true;
        const base = {
          time: new Date(started).toISOString(),
          host,
          port,
          ...(res.ip ? { ip: res.ip } : {}),
          decision: res.decision.decision,
          rule: res.decision.rule,
          ...(res.decision.reason ? { reason: res.decision.reason } : {}),
          protocol,
          bytesUp,
          bytesDown,
          durationMs: Date.now() - started,
        };
        if (res.ok) emit({ ...base, addressRule: res.addressRule });
        else emit({ ...base, ...(res.error ? { error: res.error } : {}) });
      },
    };
  };

  // ---- HTTP ----------------------------------------------------------------------------
  const httpServer = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES });

  httpServer.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    if (refuseIfBound(socket, 'http')) return;
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    attempt('http', '', 0).denied('bad-request', `unreadable request (${err.code ?? err.message})`);
    if (socket.writable) {
      socket.end(errorResponse(status, `bad request: ${err.code ?? 'parse error'}`));
    }
    socket.destroy();
  });

  httpServer.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
    clearHandshakeTimer(client);
    if (refuseIfBound(client, 'connect')) return;
    const authority = parseAuthority(req.url ?? '');
    if (!authority) {
      attempt('connect', '', 0).denied(
        'bad-request',
        `bad CONNECT target ${JSON.stringify(req.url)}`,
      );
      client.end(errorResponse(400, 'CONNECT needs host:port'));
      return;
    }
    // The tunnel goes where the request line says; a Host header naming anything else is
    // ignored, so it cannot smuggle a different destination past the decision.
    const a = attempt('connect', displayHost(authority.host), authority.port);
    client.pause();
    const down = new DownstreamCopier();
    // An intercepted upstream is read by TLS as 'data', not into the tunnel's buffer.
    const intercepted = opts.secrets?.interceptor.binds(authority.host) === true;
    const tunnelDialOpts = intercepted ? dialOpts : { ...dialOpts, onread: down.onread };
    void dial(rules, authority.host, authority.port, tunnelDialOpts).then((res) => {
      if (!res.ok) {
        a.finished(res, 0, 0);
        if (client.writable) client.end(failureResponse(res));
        client.destroy();
        return;
      }
      if (client.destroyed) {
        res.socket.destroy();
        a.finished(res, 0, 0);
        return;
      }
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      const finished = () => a.finished(res, res.socket.bytesWritten, res.socket.bytesRead);
      // A host a secret is bound to is intercepted; every other host keeps the plain tunnel.
      if (intercepted) {
        return void opts
          .secrets!.interceptor.serve(
            client,
            res.socket,
            authority.host,
            authority.port,
            head,
            finished,
          )
          .catch(() => client.destroy());
      }
      if (head.length) res.socket.write(head);
      tunnel(client, res.socket, down, finished);
    });
  });

  httpServer.on('upgrade', (req: http.IncomingMessage, client: net.Socket) => {
    clearHandshakeTimer(client);
    if (refuseIfBound(client, 'http')) return;
    attempt('http', '', 0).denied('bad-request', 'protocol upgrade over a forward request');
    client.end(errorResponse(400, 'use CONNECT for WebSocket and other upgrades'));
  });

  httpServer.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    clearHandshakeTimer(req.socket);
    if (refuseIfBound(req.socket, 'http')) return;
    forward(req, res);
  });

  const forward = (req: http.IncomingMessage, res: http.ServerResponse) => {
    let url: URL | undefined;
    try {
      url = new URL(req.url ?? '');
    } catch {
      url = undefined;
    }
    if (!url || url.protocol !== 'http:' || !url.hostname) {
      const why =
        url?.protocol === 'https:'
          ? 'https URLs go through CONNECT'
          : 'a proxy request needs an absolute http:// URL';
      attempt('http', url?.hostname ?? '', 0).denied('bad-request', why);
      sendError(res, 400, why);
      return;
    }
    const port = url.port ? Number(url.port) : 80;
    const a = attempt('http', displayHost(url.hostname), port);
    // The destination is the URL's authority. A Host header naming another host would make a
    // virtual-hosting server (or CDN) serve that other host: refuse rather than rewrite.
    const hostHeader = req.headers.host;
    if (hostHeader !== undefined && !sameAuthority(hostHeader, url.hostname, port)) {
      const why = `Host header ${JSON.stringify(hostHeader)} does not match the request target ${url.host}`;
      a.denied('host-mismatch', why);
      sendDenied(res, why);
      return;
    }
    const chunked = req.headers['transfer-encoding'] !== undefined;
    const target = `${url.pathname}${url.search}`;
    const checked = opts.secrets?.broker.rewrite({
      host: url.hostname,
      method: req.method ?? '',
      target,
      rawHeaders: req.rawHeaders,
      tls: false,
    });
    if (checked && !checked.ok) {
      a.denied('secret-misuse', checked.reason);
      sendDenied(res, `nanocell: refused: ${checked.reason}`);
      return;
    }
    if (checked?.used.length) {
      opts.secrets!.broker.recordUse(checked.used, url.hostname, req.method ?? '', target, 0);
    }
    const head = requestHead(
      req.method ?? '',
      target,
      url.host,
      checked?.rawHeaders ?? req.rawHeaders,
      chunked,
    );
    if (head === undefined) {
      const why = 'the request has a method, target or header that cannot be forwarded';
      a.denied('bad-request', why);
      sendError(res, 400, why);
      return;
    }
    // From here the client connection carries this request's response and nothing else: the
    // response passes through raw and the connection closes after it. A later request on the
    // same connection is refused, so no bytes of it can reach this destination.
    const client = req.socket;
    boundClients.add(client);
    req.pause();
    void dial(rules, url.hostname, port, { ...dialOpts, firstBytes: head }).then((d) => {
      if (!d.ok) {
        a.finished(d, 0, 0);
        req.resume();
        sendFailure(res, d);
        return;
      }
      const upstream = d.socket;
      if (client.destroyed) {
        upstream.destroy();
        a.finished(d, 0, 0);
        return;
      }
      relayHttp(req, client, upstream, chunked, () =>
        a.finished(d, upstream.bytesWritten, upstream.bytesRead),
      );
    });
  };

  /** Refuses a request on a client connection already bound to an earlier request. */
  const refuseIfBound = (client: net.Socket, protocol: ProxyEvent['protocol']): boolean => {
    if (!boundClients.has(client)) return false;
    attempt(protocol, '', 0).denied(
      'one-request-per-connection',
      'a proxy connection carries one plain-HTTP request; open a new connection',
    );
    return true;
  };

  // ---- SOCKS5 ----------------------------------------------------------------------------
  const socks = (client: net.Socket, first: Buffer) => {
    let buf = first;
    let stage: 'greeting' | 'request' | 'dialing' = 'greeting';
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      step();
    };
    const reject = (replyBuf: Buffer, reason: string) => {
      attempt('socks5', '', 0).denied('bad-request', reason);
      client.end(replyBuf);
      client.destroySoon();
    };
    const step = () => {
      if (buf.length > MAX_SOCKS_HANDSHAKE)
        return reject(reply(Reply.generalFailure), 'handshake too long');
      if (stage === 'greeting') {
        const g = parseGreeting(buf);
        if (!g.ok) return g.more ? undefined : reject(g.reply, g.reason);
        client.write(g.value);
        buf = buf.subarray(g.used);
        stage = 'request';
      }
      if (stage === 'request') {
        const r = parseRequest(buf);
        if (!r.ok) return r.more ? undefined : reject(r.reply, r.reason);
        stage = 'dialing';
        client.off('data', onData);
        client.pause();
        clearHandshakeTimer(client);
        const early = buf.subarray(r.used);
        const { host, port } = r.value;
        const a = attempt('socks5', displayHost(host), port);
        const down = new DownstreamCopier();
        void dial(rules, host, port, { ...dialOpts, onread: down.onread }).then((res) => {
          if (!res.ok) {
            a.finished(res, 0, 0);
            if (client.writable) client.end(reply(socksCode(res.failure)));
            client.destroySoon();
            return;
          }
          if (client.destroyed) {
            res.socket.destroy();
            a.finished(res, 0, 0);
            return;
          }
          client.write(reply(Reply.succeeded));
          if (early.length) res.socket.write(early);
          tunnel(client, res.socket, down, () =>
            a.finished(res, res.socket.bytesWritten, res.socket.bytesRead),
          );
        });
      }
    };
    client.on('data', onData);
    step();
  };

  // ---- accepting -------------------------------------------------------------------------
  const handshakeTimers = new WeakMap<net.Socket, NodeJS.Timeout>();
  function clearHandshakeTimer(s: net.Socket) {
    const t = handshakeTimers.get(s);
    if (t) clearTimeout(t);
    handshakeTimers.delete(s);
  }

  const onConnection = (client: net.Socket) => {
    track(client);
    stats.active++;
    client.once('close', () => {
      stats.active--;
      clearHandshakeTimer(client);
    });
    client.on('error', () => client.destroy());
    client.setNoDelay(true);
    handshakeTimers.set(
      client,
      setTimeout(() => {
        attempt('http', '', 0).denied('bad-request', 'handshake timed out');
        client.destroy();
      }, handshakeTimeoutMs),
    );
    client.once('data', (first: Buffer) => {
      if (first[0] === SOCKS_VERSION) {
        socks(client, first);
      } else if (first[0] === 0x04) {
        // SOCKS4 has no remote DNS for IPv6 and no way to report why: refuse it plainly.
        attempt('socks5', '', 0).denied('bad-request', 'SOCKS4 is not supported; use SOCKS5');
        client.end(Buffer.from([0x00, 0x5b, 0, 0, 0, 0, 0, 0]));
      } else {
        client.pause();
        client.unshift(first);
        httpServer.emit('connection', client);
        client.resume();
      }
    });
  };

  const newServer = () => {
    const s = net.createServer({ allowHalfOpen: true }, onConnection);
    s.maxConnections = opts.maxConnections ?? 1024;
    servers.push(s);
    return s;
  };

  if (socketPath !== undefined) await listenUnix(newServer(), socketPath, opts.socketOwner);

  return {
    socketPath,
    async listen({ host, port }) {
      const t = parseTarget(host);
      const loopback = t?.kind === 'ip' && (t.text === '::1' || t.text.startsWith('127.'));
      if (!loopback) {
        throw new NanocellError(
          `the egress proxy may listen only on loopback, not ${host}`,
          'use 127.0.0.1 or ::1',
          'USAGE',
        );
      }
      const s = newServer();
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen({ host, port }, () => resolve());
      });
      const addr = s.address() as net.AddressInfo;
      return { host: addr.address, port: addr.port };
    },
    adopt(server: net.Server) {
      if (closing) {
        server.close();
        return;
      }
      // Read per connection by net.Server; a tunnel's client may half-close its side.
      (server as net.Server & { allowHalfOpen: boolean }).allowHalfOpen = true;
      server.maxConnections = opts.maxConnections ?? 1024;
      server.on('connection', onConnection);
      servers.push(server);
    },
    async close() {
      closing = true;
      const closed = servers.map((s) => new Promise<void>((r) => s.close(() => r())));
      for (const s of sockets) s.destroy();
      await Promise.all(closed);
      if (socketPath !== undefined) removeSocketFile(socketPath);
    },
    stats: () => ({ ...stats }),
  };
}

/**
 * Relays one plain-HTTP request and its response, then closes the client connection; calls
 * done once after both sockets are closed. The request goes up as the rebuilt head plus the
 * body as node's parser delimited it (re-chunked if it came chunked), so bytes after it on
 * the client connection never reach this upstream. The response comes back with a rewritten
 * head and its body as the upstream sent it.
 */
function relayHttp(
  req: http.IncomingMessage,
  client: net.Socket,
  upstream: net.Socket,
  chunked: boolean,
  done: () => void,
) {
  let open = 2;
  const closed = () => {
    if (--open === 0) done();
  };
  client.once('close', () => {
    upstream.destroy();
    closed();
  });
  upstream.on('error', () => upstream.destroy());

  req.on('data', (data: Buffer) => {
    if (!upstream.write(chunked ? chunk(data) : data)) req.pause();
  });
  upstream.on('drain', () => req.resume());
  req.once('end', () => {
    if (chunked) upstream.write(LAST_CHUNK);
  });
  req.resume();

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
 * Relays a tunnel both ways and calls done once after both sockets are closed. Client to
 * upstream is a plain pipe; upstream to client goes through the tunnel's DownstreamCopier.
 */
function tunnel(
  client: net.Socket,
  upstream: net.Socket,
  down: DownstreamCopier,
  done: () => void,
) {
  let open = 2;
  const closed = () => {
    if (--open === 0) done();
  };
  client.once('close', () => {
    upstream.destroy();
    closed();
  });
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
class DownstreamCopier {
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

async function listenUnix(
  server: net.Server,
  path: string,
  owner?: { uid: number; gid: number },
): Promise<void> {
  if (existsSync(path)) {
    throw new NanocellError(
      `egress proxy socket ${path} already exists`,
      'another proxy owns it, or a cell was not cleaned up: run nanocell gc',
      'STATE',
    );
  }
  // bind() creates the socket file with the process umask; a umask of 0177 makes it 0600
  // from the first instant, so nobody can connect before the chmod below.
  const old = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
  } finally {
    process.umask(old);
  }
  chmodSync(path, 0o600);
  if (owner) chownSync(path, owner.uid, owner.gid);
  const st = lstatSync(path);
  if (!st.isSocket() || (st.mode & 0o777) !== 0o600) {
    server.close();
    throw new NanocellError(
      `egress proxy socket ${path} has unexpected mode`,
      'report a bug',
      'INTERNAL',
    );
  }
}

function removeSocketFile(path: string) {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // already gone
  }
}

/** `host:port` or `[v6]:port` of a CONNECT request line. */
function parseAuthority(text: string): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!, port };
}

function displayHost(host: string): string {
  const t = parseTarget(host);
  if (!t) return host.slice(0, 255);
  return t.kind === 'name' ? t.name : t.text;
}

function sameAuthority(hostHeader: string, hostname: string, port: number): boolean {
  let h: URL;
  try {
    h = new URL(`http://${hostHeader}`);
  } catch {
    return false;
  }
  if (h.pathname !== '/' || h.username || h.password || h.search || h.hash) return false;
  const a = parseTarget(h.hostname);
  const b = parseTarget(hostname);
  const same =
    a !== undefined &&
    b !== undefined &&
    (a.kind === 'name'
      ? b.kind === 'name' && a.name === b.name
      : b.kind === 'ip' && a.text === b.text);
  return same && (h.port ? Number(h.port) : 80) === port;
}

function socksCode(f: DialFailure): number {
  switch (f) {
    case 'denied':
      return Reply.notAllowed;
    case 'unresolvable':
      return Reply.hostUnreachable;
    case 'refused':
      return Reply.connectionRefused;
    case 'timeout':
      return Reply.ttlExpired;
    case 'unreachable':
      return Reply.networkUnreachable;
  }
}

function httpStatus(f: DialFailure): number {
  return f === 'denied' ? 403 : f === 'timeout' ? 504 : 502;
}

function failureText(res: Extract<DialResult, { ok: false }>): string {
  return res.failure === 'denied'
    ? `denied by nanocell (${res.decision.rule}): ${res.decision.reason ?? ''}`
    : `nanocell could not reach the destination: ${res.error ?? res.failure}`;
}

function failureResponse(res: Extract<DialResult, { ok: false }>): string {
  if (res.failure === 'denied') return deniedResponse(failureText(res));
  return errorResponse(httpStatus(res.failure), failureText(res));
}

function headerSafe(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 500);
}

function deniedResponse(reason: string): string {
  const body = `${reason}\n`;
  return (
    `HTTP/1.1 403 Forbidden\r\n${DENY_HEADER}: ${headerSafe(reason)}\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`
  );
}

function errorResponse(status: number, text: string): string {
  const body = `${text}\n`;
  return (
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`
  );
}

function sendDenied(res: http.ServerResponse, reason: string) {
  const body = `${reason}\n`;
  res.writeHead(403, {
    [DENY_HEADER]: headerSafe(reason),
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(body);
}

function sendError(res: http.ServerResponse, status: number, text: string) {
  const body = `${text}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(body);
}

function sendFailure(res: http.ServerResponse, d: Extract<DialResult, { ok: false }>) {
  if (d.failure === 'denied') sendDenied(res, failureText(d));
  else sendError(res, httpStatus(d.failure), failureText(d));
}
