// Where the proxy accepts: its unix socket (created 0600 from the first instant), loopback TCP
// ports, and sockets adopted from the monitor; and the first-byte split of each connection
// between the SOCKS5 and HTTP fronts.
import { chmodSync, chownSync, existsSync, lstatSync, unlinkSync } from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import { NanocellError } from '../util/errors.js';
import type { ProxyCore } from './proxyCore.js';
import { serveSocks } from './proxySocks.js';
import { parseTarget } from './rules.js';
import { SOCKS_VERSION } from './socks5.js';

/** Accepts a client connection: SOCKS5 by its version byte, SOCKS4 refused, else HTTP. */
export function connectionHandler(core: ProxyCore, httpServer: http.Server) {
  return (client: net.Socket) => {
    core.accept(client);
    client.once('data', (first: Buffer) => {
      if (first[0] === SOCKS_VERSION) {
        serveSocks(core, client, first);
      } else if (first[0] === 0x04) {
        // SOCKS4 has no remote DNS for IPv6 and no way to report why: refuse it plainly.
        core.refuse('socks5', 'bad-request', 'SOCKS4 is not supported; use SOCKS5');
        client.end(Buffer.from([0x00, 0x5b, 0, 0, 0, 0, 0, 0]));
      } else {
        client.pause();
        client.unshift(first);
        httpServer.emit('connection', client);
        client.resume();
      }
    });
  };
}

/** Listens on a loopback TCP port; anything else would open the proxy to other hosts. */
export async function listenLoopback(
  newServer: () => net.Server,
  host: string,
  port: number,
): Promise<{ host: string; port: number }> {
  const t = parseTarget(host);
  const loopback = t?.kind === 'ip' && (t.text === '::1' || t.text.startsWith('127.'));
  if (!loopback) {
    throw new NanocellError(
      `the egress proxy may listen only on loopback, not ${host}`,
      'use 127.0.0.1 or ::1',
      'USAGE',
    );
  }
  const server = newServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => resolve());
  });
  const addr = server.address() as net.AddressInfo;
  return { host: addr.address, port: addr.port };
}

export async function listenUnix(
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

export function removeSocketFile(path: string) {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // already gone
  }
}
