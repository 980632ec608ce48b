// The CONNECT front: `CONNECT host:port` opens a tunnel to exactly the request line's target.
import type http from 'node:http';
import type net from 'node:net';
import type { ProxyCore } from './proxyCore.js';
import { checkedTunnel, DownstreamCopier } from './proxyRelay.js';
import { errorResponse, failureResponse } from './proxyReplies.js';

/** A 'connect' handler for the HTTP front's server; refuseIfBound is that front's rule. */
export function connectFront(
  core: ProxyCore,
  refuseIfBound: (client: net.Socket) => boolean,
): (req: http.IncomingMessage, client: net.Socket, head: Buffer) => void {
  return (req, client, head) => {
    core.handshakeDone(client);
    if (refuseIfBound(client)) return;
    const authority = parseAuthority(req.url ?? '');
    if (!authority) {
      core.refuse('connect', 'bad-request', `bad CONNECT target ${JSON.stringify(req.url)}`);
      client.end(errorResponse(400, 'CONNECT needs host:port'));
      return;
    }
    // The tunnel goes where the request line says; a Host header naming anything else is
    // ignored, so it cannot smuggle a different destination past the decision.
    const a = core.attempt('connect', authority.host, authority.port);
    client.pause();
    const down = new DownstreamCopier();
    // A host a secret is bound to is intercepted (TLS reads its upstream as 'data', so no
    // onread); every other host keeps the plain tunnel.
    const intercept = core.secrets?.interceptor.binds(authority.host) ? core.secrets : undefined;
    void core.reach(a, client, intercept ? {} : { onread: down.onread }).then((r) => {
      if (!r.ok) {
        if (r.failure) {
          if (client.writable) client.end(failureResponse(r.failure, a));
          client.destroy();
        }
        return;
      }
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (intercept) {
        const { host, port } = authority;
        return void intercept.interceptor
          .serve(client, r.socket, host, port, head, r.done)
          .catch(() => client.destroy());
      }
      checkedTunnel(client, head, a, r, down);
    });
  };
}

/** `host:port` or `[v6]:port` of a CONNECT request line. */
function parseAuthority(text: string): { host: string; port: number } | undefined {
  const m = /^(\[[^\]]+\]|[^:[\]]+):(\d{1,5})$/.exec(text);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!, port };
}
