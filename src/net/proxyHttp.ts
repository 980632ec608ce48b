// The HTTP front: absolute-form requests for http:// URLs, relayed one per client connection
// (the response says `Connection: close`, and a further request on that connection is refused
// under rule `one-request-per-connection`), and the server CONNECT arrives on (proxyConnect).
import http from 'node:http';
import type net from 'node:net';
import { requestHead } from './httpHead.js';
import { connectFront } from './proxyConnect.js';
import type { ProxyCore, ProxyProtocol } from './proxyCore.js';
import { MAX_HEADER_BYTES, relayHttp } from './proxyRelay.js';
import { errorResponse, sendDenied, sendError, sendFailure } from './proxyReplies.js';
import { parseTarget } from './rules.js';
import { egressDenialLine } from '../policy/denialText.js';

/** The HTTP server of the proxy; connections are handed to it with emit('connection'). */
export function httpFront(core: ProxyCore): http.Server {
  // requireHostHeader off: node would answer an HTTP/1.1 request without Host itself, with no
  // event; absolute-form names its destination without one, and every request is recorded.
  const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES, requireHostHeader: false });
  /** Client connections whose plain-HTTP request is being relayed (see forward). */
  const boundClients = new WeakSet<net.Socket>();

  /** Refuses a request on a client connection already bound to an earlier request. */
  const refuseIfBound = (client: net.Socket, protocol: ProxyProtocol): boolean => {
    if (!boundClients.has(client)) return false;
    core.refuse(
      protocol,
      'one-request-per-connection',
      'a proxy connection carries one plain-HTTP request; open a new connection',
    );
    return true;
  };

  server.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    if (refuseIfBound(socket, 'http')) return;
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
    core.refuse('http', 'bad-request', `unreadable request (${err.code ?? err.message})`);
    if (socket.writable) {
      socket.end(errorResponse(status, `bad request: ${err.code ?? 'parse error'}`));
    }
    socket.destroy();
  });

  server.on(
    'connect',
    connectFront(core, (c) => refuseIfBound(c, 'connect')),
  );

  server.on('upgrade', (req: http.IncomingMessage, client: net.Socket) => {
    core.handshakeDone(client);
    if (refuseIfBound(client, 'http')) return;
    const t = readTarget(req);
    const why = 'protocol upgrade over a forward request';
    refuseTarget(core, t.kind === 'http' ? { ...toNamed(t.url), why } : { ...t, why });
    client.end(errorResponse(400, 'use CONNECT for WebSocket and other upgrades'));
  });

  server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
    core.handshakeDone(req.socket);
    if (refuseIfBound(req.socket, 'http')) return;
    forward(core, req, res, boundClients);
  });
  return server;
}

function forward(
  core: ProxyCore,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  boundClients: WeakSet<net.Socket>,
) {
  const target = readTarget(req);
  if (target.kind !== 'http') {
    refuseTarget(core, target);
    sendError(res, 400, target.why);
    return;
  }
  const { url } = target;
  const port = url.port ? Number(url.port) : 80;
  const a = core.attempt('http', url.hostname, port);
  // The destination is the URL's authority. A Host header naming another host would make a
  // virtual-hosting server (or CDN) serve that other host: refuse rather than rewrite.
  const hostHeader = req.headers.host;
  if (hostHeader !== undefined && !sameAuthority(hostHeader, url.hostname, port)) {
    const why = `Host header ${JSON.stringify(hostHeader)} does not match the request target ${url.host}`;
    a.denied('host-mismatch', why);
    sendDenied(
      res,
      egressDenialLine({ host: url.hostname, port, rule: 'host-mismatch', reason: why }),
    );
    return;
  }
  const chunked = req.headers['transfer-encoding'] !== undefined;
  const rawHeaders = checkSecrets(core, req, url, a);
  if (typeof rawHeaders === 'string') return void sendDenied(res, rawHeaders);
  const head = requestHead(
    req.method ?? '',
    `${url.pathname}${url.search}`,
    url.host,
    rawHeaders,
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
  void core.reach(a, client, { firstBytes: head }).then((r) => {
    if (!r.ok) {
      if (r.failure) {
        req.resume();
        sendFailure(res, r.failure, a);
      }
      return;
    }
    relayHttp(req, client, r.socket, chunked, r.done);
  });
}

/**
 * Placeholders of brokered secrets in a plain-HTTP request: the headers to send (with values
 * where the secret allows plain HTTP to this host), or the text of the refusal.
 */
function checkSecrets(
  core: ProxyCore,
  req: http.IncomingMessage,
  url: URL,
  a: { denied(rule: string, reason: string): void },
): string[] | string {
  const broker = core.secrets?.broker;
  if (!broker) return req.rawHeaders;
  const method = req.method ?? '';
  const target = `${url.pathname}${url.search}`;
  const host = url.hostname;
  const checked = broker.rewrite({ host, method, target, rawHeaders: req.rawHeaders, tls: false });
  if (!checked.ok) {
    a.denied('secret-misuse', checked.reason);
    return `nanocell: refused: ${checked.reason}`;
  }
  // A plain relay's status is not read: recorded as 0.
  if (checked.used.length) broker.recordUse(checked.used, host, method, target, 0);
  return checked.rawHeaders;
}

/**
 * How a request names its destination: an absolute http:// URL (forwarded); another absolute
 * URL, or origin-form with a Host header (named, but not served in that form); or nothing.
 */
type RequestTarget =
  | { kind: 'http'; url: URL }
  | { kind: 'named'; host: string; port: number; why: string }
  | { kind: 'none'; why: string };

const NEEDS_ABSOLUTE = 'a proxy request needs an absolute http:// URL';

function readTarget(req: http.IncomingMessage): RequestTarget {
  let url: URL | undefined;
  try {
    url = new URL(req.url ?? '');
  } catch {
    url = undefined;
  }
  if (url?.protocol === 'http:' && url.hostname) return { kind: 'http', url };
  if (url?.hostname) {
    const why = url.protocol === 'https:' ? 'https URLs go through CONNECT' : NEEDS_ABSOLUTE;
    return { ...toNamed(url), why };
  }
  // Origin-form (`GET /path`): the proxy is no transparent proxy and does not forward it, but
  // the Host header names a destination, which is decided and recorded like any other.
  const host = req.headers.host === undefined ? undefined : parseHostHeader(req.headers.host);
  const why = `${NEEDS_ABSOLUTE}, not origin-form`;
  return host
    ? { kind: 'named', host: host.hostname, port: host.port, why }
    : { kind: 'none', why };
}

function toNamed(url: URL): { kind: 'named'; host: string; port: number } {
  const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
  return { kind: 'named', host: url.hostname, port };
}

function refuseTarget(core: ProxyCore, t: Exclude<RequestTarget, { kind: 'http' }>) {
  if (t.kind === 'none') core.refuse('http', 'bad-request', t.why);
  else core.refuseNamed(core.attempt('http', t.host, t.port), 'bad-request', t.why);
}

/** A Host header's name and port (default 80); undefined unless it is only an authority. */
function parseHostHeader(hostHeader: string): { hostname: string; port: number } | undefined {
  let h: URL;
  try {
    h = new URL(`http://${hostHeader}`);
  } catch {
    return undefined;
  }
  if (h.pathname !== '/' || h.username || h.password || h.search || h.hash) return undefined;
  return { hostname: h.hostname, port: h.port ? Number(h.port) : 80 };
}

function sameAuthority(hostHeader: string, hostname: string, port: number): boolean {
  const h = parseHostHeader(hostHeader);
  if (!h) return false;
  const a = parseTarget(h.hostname);
  const b = parseTarget(hostname);
  const same =
    a !== undefined &&
    b !== undefined &&
    (a.kind === 'name'
      ? b.kind === 'name' && a.name === b.name
      : b.kind === 'ip' && a.text === b.text);
  return same && h.port === port;
}
