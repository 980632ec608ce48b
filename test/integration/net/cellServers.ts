// Local destinations for the real-cell egress tests: an HTTP and an HTTPS server (plain pages,
// bulk bodies, a tiny npm registry and git's smart HTTP protocol through `git http-backend`)
// and a TCP echo server. Everything listens on 127.0.0.x in the test process; cells reach
// them only through their proxy, by pinned names.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import path from 'node:path';
import { Harness } from './harness.js';

export const PACKAGE_NAME = 'nanocell-tiny-pkg';
export const PACKAGE_VERSION = '4.5.6';
export const REPO_FILE = 'greeting.txt';
export const REPO_TEXT = 'hello from a local bare repo\n';

/** Byte counts of one finished server-side connection (what the proxy's upstream moved). */
export interface SocketBytes {
  url: string;
  read: number;
  written: number;
}

export interface WebServer {
  port: number;
  /** Request URLs in arrival order. */
  urls: string[];
  /** One entry per closed connection that served a /big or /sink request. */
  bulk: SocketBytes[];
}

export interface EchoServer {
  port: number;
  connections(): number;
  maxConcurrent(): number;
}

/**
 * Routes shared by the HTTP and HTTPS servers:
 * - `/big?n=N` streams N bytes; `/sink` counts the request body;
 * - `/npm/<name>` is a packument of a one-version package;
 * - `/git/<repo>/...` is git's smart HTTP protocol over `gitRoot`;
 * - anything else answers `hello <method> <url> host=<Host>`.
 */
function handler(server: WebServer, gitRoot: string): http.RequestListener {
  const counted = new WeakSet<net.Socket>();
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://local');
    server.urls.push(req.url ?? '');
    if (url.pathname === '/big' || url.pathname === '/sink') {
      const sock = req.socket;
      if (!counted.has(sock)) {
        counted.add(sock);
        sock.once('close', () =>
          server.bulk.push({
            url: req.url ?? '',
            read: sock.bytesRead,
            written: sock.bytesWritten,
          }),
        );
      }
    }
    if (url.pathname === '/big') {
      const n = Number(url.searchParams.get('n') ?? '0');
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': n });
      const chunk = Buffer.alloc(256 * 1024, 0x61);
      let left = n;
      const pump = () => {
        while (left > 0) {
          const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
          left -= piece.length;
          if (!res.write(piece)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
      return;
    }
    if (url.pathname === '/sink') {
      let n = 0;
      req.on('data', (c: Buffer) => (n += c.length));
      req.on('end', () => res.end(`received ${n}`));
      return;
    }
    if (url.pathname.startsWith('/npm/')) {
      const name = decodeURIComponent(url.pathname.slice('/npm/'.length));
      if (name !== PACKAGE_NAME) {
        res.writeHead(404, { 'content-type': 'application/json' });
        return void res.end('{"error":"not found"}');
      }
      const base = `http://${req.headers.host}/npm`;
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          name,
          'dist-tags': { latest: PACKAGE_VERSION },
          versions: {
            [PACKAGE_VERSION]: {
              name,
              version: PACKAGE_VERSION,
              description: 'served by the nanocell egress test',
              dist: {
                tarball: `${base}/${name}/-/${name}-${PACKAGE_VERSION}.tgz`,
                shasum: '0'.repeat(40),
              },
            },
          },
          time: { [PACKAGE_VERSION]: '2024-01-01T00:00:00.000Z' },
        }),
      );
      return;
    }
    if (url.pathname.startsWith('/git/')) return gitBackend(gitRoot, url, req, res);
    req.resume();
    req.on('end', () => res.end(`hello ${req.method} ${req.url} host=${req.headers.host}`));
  };
}

/** A CGI bridge to `git http-backend` (smart HTTP: info/refs, upload-pack). */
function gitBackend(root: string, url: URL, req: http.IncomingMessage, res: http.ServerResponse) {
  const child = spawn('git', ['http-backend'], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      GIT_PROJECT_ROOT: root,
      GIT_HTTP_EXPORT_ALL: '1',
      PATH_INFO: url.pathname.slice('/git'.length),
      QUERY_STRING: url.search.slice(1),
      REQUEST_METHOD: req.method ?? 'GET',
      CONTENT_TYPE: req.headers['content-type'] ?? '',
      REMOTE_ADDR: '127.0.0.1',
      ...(req.headers['content-encoding']
        ? { HTTP_CONTENT_ENCODING: req.headers['content-encoding'] }
        : {}),
      ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
    },
    stdio: ['pipe', 'pipe', 'ignore'],
  });
  req.pipe(child.stdin);
  child.stdin.on('error', () => undefined);
  let head = Buffer.alloc(0);
  let headDone = false;
  child.stdout.on('data', (c: Buffer) => {
    if (headDone) return void res.write(c);
    head = Buffer.concat([head, c]);
    const end = head.indexOf('\r\n\r\n');
    if (end < 0) return;
    headDone = true;
    let status = 200;
    for (const line of head.subarray(0, end).toString('latin1').split('\r\n')) {
      const i = line.indexOf(':');
      const k = line.slice(0, i).trim();
      const v = line.slice(i + 1).trim();
      if (k.toLowerCase() === 'status') status = Number(v.split(' ')[0]);
      else res.setHeader(k, v);
    }
    res.writeHead(status);
    res.write(head.subarray(end + 4));
  });
  child.stdout.on('end', () => res.end());
  child.on('error', () => res.destroy());
}

/** A bare repo with one commit, under dir; returns the directory served as GIT_PROJECT_ROOT. */
export function makeBareRepo(dir: string): string {
  const root = path.join(dir, 'git');
  const work = path.join(dir, 'work');
  fs.mkdirSync(work, { recursive: true });
  const git = (cwd: string, ...args: string[]) =>
    execFileSync('git', ['-c', 'init.defaultBranch=main', ...args], {
      cwd,
      stdio: 'ignore',
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: dir,
        GIT_AUTHOR_NAME: 't',
        GIT_AUTHOR_EMAIL: 't@t',
        GIT_COMMITTER_NAME: 't',
        GIT_COMMITTER_EMAIL: 't@t',
      },
    });
  git(dir, 'init', '--bare', path.join(root, 'repo.git'));
  git(work, 'init');
  fs.writeFileSync(path.join(work, REPO_FILE), REPO_TEXT);
  git(work, 'add', REPO_FILE);
  git(work, 'commit', '-m', 'first');
  git(work, 'push', path.join(root, 'repo.git'), 'HEAD:refs/heads/main');
  return root;
}

export async function startWebServer(
  h: Harness,
  host: string,
  gitRoot: string,
): Promise<WebServer> {
  const server: WebServer = { port: 0, urls: [], bulk: [] };
  server.port = await h.listen(http.createServer(handler(server, gitRoot)), host);
  return server;
}

/** HTTPS with a fresh self-signed certificate for `name`; the CA (the cert) is returned. */
export async function startSecureServer(
  h: Harness,
  host: string,
  name: string,
  gitRoot: string,
): Promise<WebServer & { ca: string }> {
  const key = path.join(h.dir, `${name}.key`);
  const cert = path.join(h.dir, `${name}.crt`);
  execFileSync(
    'openssl',
    ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
      .concat(['-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${name}`])
      .concat(['-addext', `subjectAltName=DNS:${name}`]),
    { stdio: 'ignore' },
  );
  const server: WebServer = { port: 0, urls: [], bulk: [] };
  const srv = https.createServer(
    { key: fs.readFileSync(key), cert: fs.readFileSync(cert) },
    handler(server, gitRoot),
  );
  server.port = await h.listen(srv, host);
  return Object.assign(server, { ca: fs.readFileSync(cert, 'utf8') });
}

/** TCP echo; counts connections and the most open at once. */
export async function startEchoServer(h: Harness, host: string): Promise<EchoServer> {
  let total = 0;
  let open = 0;
  let max = 0;
  const srv = net.createServer((s) => {
    total++;
    max = Math.max(max, ++open);
    s.on('close', () => open--);
    s.on('error', () => s.destroy());
    s.pipe(s);
  });
  const port = await h.listen(srv, host);
  return { port, connections: () => total, maxConcurrent: () => max };
}

/** Polls until pred holds for the collected items (proxy events arrive when a connection closes). */
export async function waitFor<T>(
  items: T[],
  pred: (all: T[]) => boolean,
  what: string,
  ms = 10_000,
): Promise<void> {
  const end = Date.now() + ms;
  while (!pred(items)) {
    if (Date.now() > end)
      throw new Error(
        `timed out waiting for ${what}; have ${JSON.stringify(items).slice(0, 2000)}`,
      );
    await new Promise((r) => setTimeout(r, 20));
  }
}
