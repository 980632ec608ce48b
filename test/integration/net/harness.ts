// Local servers, proxy and tiny clients for the egress proxy tests. Everything listens on
// 127.0.0.0/8 or ::1 only.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compileNetRules } from '../../../src/net/rules.js';
import { startEgressProxy, type EgressProxy, type ProxyEvent } from '../../../src/net/proxy.js';
import type { Policy } from '../../../src/policy/defaults.js';

type Closer = () => Promise<void> | void;

/** Collects things to close; call cleanup() in afterEach. */
export class Harness {
  private closers: Closer[] = [];
  readonly events: ProxyEvent[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), 'nanocell-net-'));

  defer(c: Closer) {
    this.closers.push(c);
  }

  async cleanup() {
    for (const c of this.closers.reverse()) {
      try {
        await c();
      } catch {
        // keep closing the rest
      }
    }
    this.closers = [];
    rmSync(this.dir, { recursive: true, force: true });
  }

  async proxy(
    network: Partial<Policy['network']>,
    extra: Partial<Parameters<typeof startEgressProxy>[0]> = {},
  ): Promise<EgressProxy> {
    const rules = compileNetRules({ allow: [], deny: [], cidrs: [], hosts: {}, ...network });
    const p = await startEgressProxy({
      rules,
      socketPath: join(this.dir, `proxy-${this.closers.length}.sock`),
      onEvent: (e) => this.events.push(e),
      ...extra,
    });
    this.defer(() => p.close());
    return p;
  }

  /** Waits until an event matching pred has been emitted. */
  async event(pred: (e: ProxyEvent) => boolean, timeoutMs = 5000): Promise<ProxyEvent> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const e = this.events.find(pred);
      if (e) return e;
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error(`no matching event; have ${JSON.stringify(this.events)}`);
  }

  async httpServer(host: string): Promise<{ port: number; requests: http.IncomingMessage[] }> {
    const requests: http.IncomingMessage[] = [];
    const srv = http.createServer((req, res) => {
      requests.push(req);
      let body = 0;
      req.on('data', (c: Buffer) => (body += c.length));
      req.on('end', () =>
        res.end(`hello ${req.method} ${req.url} host=${req.headers.host} body=${body}`),
      );
    });
    return { port: await this.listen(srv, host), requests };
  }

  async httpsServer(host: string, name: string): Promise<{ port: number; ca: Buffer }> {
    const key = join(this.dir, `${name}.key`);
    const cert = join(this.dir, `${name}.crt`);
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-keyout',
        key,
        '-out',
        cert,
        '-days',
        '1',
        '-subj',
        `/CN=${name}`,
        '-addext',
        `subjectAltName=DNS:${name}`,
      ],
      { stdio: 'ignore' },
    );
    const srv = https.createServer(
      { key: readFileSync(key), cert: readFileSync(cert) },
      (req, res) => res.end(`secure ${req.url}`),
    );
    return { port: await this.listen(srv, host), ca: readFileSync(cert) };
  }

  /** A TCP server that echoes; counts connections. */
  async echoServer(host: string): Promise<{ port: number; connections: () => number }> {
    let n = 0;
    const srv = net.createServer((s) => {
      n++;
      s.on('error', () => s.destroy());
      s.pipe(s);
    });
    return { port: await this.listen(srv, host), connections: () => n };
  }

  async listen(srv: net.Server, host: string): Promise<number> {
    const sockets = new Set<net.Socket>();
    srv.on('connection', (s: net.Socket) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    });
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject);
      srv.listen(0, host, () => resolve());
    });
    this.defer(
      () =>
        new Promise<void>((r) => {
          for (const s of sockets) s.destroy();
          srv.close(() => r());
        }),
    );
    return (srv.address() as net.AddressInfo).port;
  }

  /** A raw connection to the proxy's unix socket. */
  async connectProxy(p: EgressProxy): Promise<net.Socket> {
    const s = net.connect({ path: p.socketPath! });
    this.defer(() => void s.destroy());
    await new Promise<void>((resolve, reject) => {
      s.once('connect', resolve);
      s.once('error', reject);
    });
    return s;
  }
}

/** Reads from s until pred(buffer) or end; resolves with what was read. */
export function readUntil(
  s: net.Socket,
  pred: (b: Buffer) => boolean,
  timeoutMs = 5000,
): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(
      () => done(new Error(`timeout; got ${JSON.stringify(buf.toString('latin1'))}`)),
      timeoutMs,
    );
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (pred(buf)) done();
    };
    const onEnd = () => done();
    const done = (err?: Error) => {
      clearTimeout(timer);
      s.off('data', onData);
      s.off('end', onEnd);
      s.off('close', onEnd);
      if (err) reject(err);
      else resolve(buf);
    };
    s.on('data', onData);
    s.once('end', onEnd);
    s.once('close', onEnd);
  });
}

export const headEnd = (b: Buffer) => b.includes('\r\n\r\n');

/** Sends CONNECT and returns the response head (the socket is then a tunnel if 200). */
export async function httpConnect(s: net.Socket, target: string, extra = ''): Promise<string> {
  s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${extra}\r\n`);
  return (await readUntil(s, headEnd)).toString('latin1');
}

/** A minimal SOCKS5 client: no auth, CONNECT. Returns the reply code. */
export async function socksConnect(
  s: net.Socket,
  target: { name: string } | { ipv4: number[] } | { ipv6: number[] },
  port: number,
): Promise<number> {
  s.write(Buffer.from([5, 1, 0]));
  const g = await readUntil(s, (b) => b.length >= 2);
  if (g[0] !== 5 || g[1] !== 0) throw new Error(`bad greeting reply ${[...g]}`);
  let addr: Buffer;
  if ('name' in target) {
    const n = Buffer.from(target.name);
    addr = Buffer.concat([Buffer.from([3, n.length]), n]);
  } else if ('ipv4' in target) {
    addr = Buffer.from([1, ...target.ipv4]);
  } else {
    addr = Buffer.from([4, ...target.ipv6]);
  }
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  s.write(Buffer.concat([Buffer.from([5, 1, 0]), addr, p]));
  const r = await readUntil(s, (b) => b.length >= 10);
  return r[1]!;
}

export async function echo(s: net.Socket, text: string): Promise<string> {
  s.write(text);
  return (await readUntil(s, (b) => b.length >= text.length)).toString();
}
