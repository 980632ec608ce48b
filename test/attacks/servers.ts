// Loopback servers the network attacks aim at. Each counts connections and request paths, so a
// test can prove nothing reached it. They listen on 127.0.0.0/8 or ::1 only.
import http from 'node:http';
import net from 'node:net';

export interface Target {
  host: string;
  port: number;
  connections(): number;
  urls: string[];
  close(): Promise<void>;
}

async function listen(srv: net.Server, host: string): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, host, () => resolve());
  });
  return (srv.address() as net.AddressInfo).port;
}

function track(srv: net.Server, host: string, port: number, urls: string[]): Target {
  let n = 0;
  const sockets = new Set<net.Socket>();
  srv.on('connection', (s: net.Socket) => {
    n++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return {
    host,
    port,
    urls,
    connections: () => n,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        srv.close(() => r());
      }),
  };
}

/** An HTTP server answering `ok <url>`. */
export async function webTarget(host: string): Promise<Target> {
  const urls: string[] = [];
  const srv = http.createServer((req, res) => {
    urls.push(req.url ?? '');
    res.end(`ok ${req.url}`);
  });
  const port = await listen(srv, host);
  // Connections are counted from the moment we listen.
  const t = track(srv, host, port, urls);
  return t;
}

/** A TCP server that reads and says nothing (a canary for exfiltration). */
export async function tcpTarget(host: string): Promise<Target> {
  const urls: string[] = [];
  const srv = net.createServer((s) => {
    s.on('data', (d) => urls.push(d.toString('latin1').slice(0, 200)));
    s.on('error', () => s.destroy());
  });
  const port = await listen(srv, host);
  return track(srv, host, port, urls);
}

/** An abstract-namespace unix socket server on the host (name without the leading NUL). */
export async function abstractTarget(name: string): Promise<Target> {
  const urls: string[] = [];
  const srv = net.createServer((s) => s.on('error', () => s.destroy()));
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(`\0${name}`, () => resolve());
  });
  return track(srv, `@${name}`, 0, urls);
}

/** A unix socket server at a path on the host. */
export async function unixTarget(file: string): Promise<Target> {
  const urls: string[] = [];
  const srv = net.createServer((s) => s.on('error', () => s.destroy()));
  await new Promise<void>((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(file, () => resolve());
  });
  return track(srv, file, 0, urls);
}
