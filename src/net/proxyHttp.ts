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

/** The HTTP server of the proxy; connections are handed to it with emit('connection'). */
export function httpFront(core: ProxyCore): http.Server {
  const server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES });
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

  server.on('upgrade', (_req: http.IncomingMessage, client: net.Socket) => {
    core.handshakeDone(client);
    if (refuseIfBound(client, 'http')) return;
    core.refuse('http', 'bad-request', 'protocol upgrade over a forward request');
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
    core.attempt('http', url?.hostname ?? '', 0).denied('bad-request', why);
    sendError(res, 400, why);
    return;
  }
  const port = url.port ? Number(url.port) : 80;
  const a = core.attempt('http', url.hostname, port);
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
  const head = requestHead(
    req.method ?? '',
    `${url.pathname}${url.search}`,
    url.host,
    req.rawHeaders,
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
        sendFailure(res, r.failure);
      }
      return;
    }
    relayHttp(req, client, r.socket, chunked, r.done);
  });
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
