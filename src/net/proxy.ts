// The egress proxy of one cell: an HTTP/1.1 forward proxy (absolute-URI requests for http://
// and CONNECT tunnels) and a SOCKS5 proxy on the same unix socket, told apart by the first
// byte. Every front reaches the same decision (ProxyCore.reach, src/net/proxyCore.ts) and every
// attempt is reported through onEvent. This file only puts the pieces together:
//   proxyCore     decision, attempt events, connection accounting
//   proxyHttp     absolute-form http:// requests     proxyConnect  CONNECT tunnels
//   proxySocks    SOCKS5                             proxyRelay    piping after the dial
//   proxyListen   unix socket, loopback ports, adopted sockets, first-byte split
import net from 'node:net';
import type { Resolver } from './dial.js';
import {
  createProxyCore,
  type ProxyEvent,
  type ProxySecrets,
  type ProxyStats,
} from './proxyCore.js';
import { httpFront } from './proxyHttp.js';
import { connectionHandler, listenLoopback, listenUnix, removeSocketFile } from './proxyListen.js';
import type { NetRules } from './rules.js';

export type { ProxyEvent } from './proxyCore.js';

export interface EgressProxy {
  /** The unix socket it listens on; undefined when it serves only adopted sockets. */
  readonly socketPath: string | undefined;
  /** Also listen on a loopback TCP port (benchmarks, tests, tools that cannot use a socket). */
  listen(opts: { host: string; port: number }): Promise<{ host: string; port: number }>;
  /**
   * Serves on a listening socket made elsewhere: the cell's own 127.0.0.1 port, created in the
   * cell's network namespace by the monitor and handed over on its IPC channel. `accepted`:
   * connections it accepted before it was adopted (served now).
   */
  adopt(server: net.Server, accepted?: readonly net.Socket[]): void;
  /** Replaces the rules for connections decided from now on (the user's egress grants). */
  setRules(next: NetRules): void;
  close(): Promise<void>;
  stats(): ProxyStats;
}

export interface EgressProxyOptions {
  rules: NetRules;
  /** Unix socket to listen on (init's bridge connects here); omit to serve adopted sockets. */
  socketPath?: string;
  onEvent: (e: ProxyEvent) => void;
  resolver?: Resolver;
  /** Owner of the socket file: the host uid/gid that the cell's init runs as. */
  socketOwner?: { uid: number; gid: number };
  /** Called if onEvent throws (default: print to stderr); the proxy keeps running. */
  onError?: (err: unknown) => void;
  /** Time a client has to finish a handshake or request head (default 10 s). */
  handshakeTimeoutMs?: number;
  /** Open client connections at most (default 1024); more are refused. */
  maxConnections?: number;
  /** Brokered secrets: CONNECTs to their hosts are intercepted, plain HTTP is checked. */
  secrets?: ProxySecrets;
}

export async function startEgressProxy(opts: EgressProxyOptions): Promise<EgressProxy> {
  const { socketPath } = opts;
  const core = createProxyCore(opts);
  const onConnection = connectionHandler(core, httpFront(core));
  const maxConnections = opts.maxConnections ?? 1024;
  const servers: net.Server[] = [];

  const newServer = () => {
    const s = net.createServer({ allowHalfOpen: true }, onConnection);
    s.maxConnections = maxConnections;
    servers.push(s);
    return s;
  };

  if (socketPath !== undefined) await listenUnix(newServer(), socketPath, opts.socketOwner);

  return {
    socketPath,
    listen: ({ host, port }) => listenLoopback(newServer, host, port),
    adopt(server: net.Server, accepted: readonly net.Socket[] = []) {
      if (core.closing) {
        server.close();
        for (const s of accepted) s.destroy();
        return;
      }
      // Read per connection by net.Server; a tunnel's client may half-close its side.
      (server as net.Server & { allowHalfOpen: boolean }).allowHalfOpen = true;
      server.maxConnections = maxConnections;
      server.on('connection', onConnection);
      servers.push(server);
      for (const s of accepted) onConnection(s);
    },
    async close() {
      const closed = servers.map((s) => new Promise<void>((r) => s.close(() => r())));
      core.closeAll();
      await Promise.all(closed);
      if (socketPath !== undefined) removeSocketFile(socketPath);
    },
    stats: core.stats,
    setRules: core.setRules,
  };
}
