// `nanocell ui`: the review dashboard, served on 127.0.0.1 only. Every request must carry the
// one-time token printed with the URL (first as ?token=, which becomes a SameSite=Strict,
// HttpOnly cookie) and come from the page's own origin: a request naming another Origin or
// Host is refused, actions need a custom header (so a cross-origin form or fetch cannot send
// one without a preflight, which is never answered), and no CORS header is ever sent. The
// audit store and the change sets on disk are the only sources; assets ship in dist/ui.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { packageRoot } from '../util/packageRoot.js';
import { NanocellError } from '../util/errors.js';
import { handleApi, handleEgress, type ApiContext } from './api.js';
import { json, text, type Body } from './http.js';

const COOKIE = 'nanocell_ui';
const SECURITY_HEADERS = {
  'Content-Security-Policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-store',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'X-Frame-Options': 'DENY',
} as const;

const ASSETS: Record<string, string> = {
  '/app.js': 'text/javascript; charset=utf-8',
  '/app.css': 'text/css; charset=utf-8',
};

const INDEX = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>nanocell</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/app.css"></head>
<body><header><a href="#/">nanocell</a></header><main id="app">loading…</main>
<script src="/app.js"></script></body></html>
`;

export interface UiServer {
  url: string;
  close(): Promise<void>;
}

/** What one running dashboard holds: its credentials, its origin and where its assets are. */
interface UiState {
  /** The URL's one-time token, until it is exchanged for the cookie. */
  token: string | undefined;
  session: string;
  origin: string;
  assetsDir: string;
  ctx: ApiContext;
}

export async function startUi(o: { stateRoot: string; port?: number }): Promise<UiServer> {
  // The URL's token works once: it is exchanged for the session cookie, then burnt, so a
  // copy of the URL (shell history, a screen share) opens nothing later.
  const st: UiState = {
    token: randomBytes(24).toString('hex'),
    session: randomBytes(24).toString('hex'),
    origin: '',
    assetsDir: assetsDir(),
    ctx: { stateRoot: o.stateRoot, cpu: { last: new Map() } },
  };
  const token = st.token!;
  const server = http.createServer((req, res) => {
    try {
      const url = new URL(req.url ?? '/', st.origin);
      if (admit(st, req, res, url)) dispatch(st, req, res, url);
    } catch (e) {
      const n = e as NanocellError;
      send(res, n instanceof NanocellError ? 400 : 500, json({ error: n.message, fix: n.fix }));
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  st.origin = `http://127.0.0.1:${port}`;
  return {
    url: `${st.origin}/?token=${token}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function assetsDir(): string {
  const dir = path.join(packageRoot(), 'dist', 'ui');
  if (!fs.existsSync(path.join(dir, 'app.js'))) {
    throw new NanocellError(
      `the dashboard's assets are missing in ${dir}`,
      'run `npm run build`',
      'HOST',
    );
  }
  return dir;
}

/**
 * The gate every request passes: the right Host and Origin, the session cookie (or the
 * one-time token, exchanged for it here), and for actions the page's own header. Answers and
 * returns false for a request it refuses.
 */
function admit(
  st: UiState,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
): boolean {
  const refuse = (status: number, why: string) => (send(res, status, text(why)), false);
  // DNS rebinding: a page on another name that resolves here names that name as Host.
  if (req.headers.host !== new URL(st.origin).host) return refuse(403, 'wrong Host');
  if (req.headers.origin !== undefined && req.headers.origin !== st.origin)
    return refuse(403, 'requests from another origin are refused');
  const given = url.searchParams.get('token');
  if (
    given !== null &&
    st.token &&
    same(given, st.token) &&
    req.method === 'GET' &&
    url.pathname === '/'
  ) {
    st.token = undefined;
    res.writeHead(303, {
      ...SECURITY_HEADERS,
      'Set-Cookie': `${COOKIE}=${st.session}; HttpOnly; SameSite=Strict; Path=/`,
      Location: '/',
    });
    res.end();
    return false;
  }
  if (!same(cookieOf(req) ?? '', st.session))
    return refuse(401, 'the dashboard needs the token printed by `nanocell ui`');
  if (
    req.method === 'POST' &&
    (req.headers['x-nanocell-ui'] !== '1' || req.headers.origin !== st.origin)
  )
    return refuse(403, 'actions come only from the dashboard page');
  if (req.method !== 'GET' && req.method !== 'POST') return refuse(405, 'method not allowed');
  return true;
}

/** An admitted request: the page, its assets, or the API. */
function dispatch(
  st: UiState,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  url: URL,
): void {
  if (req.method === 'GET' && url.pathname === '/')
    return send(res, 200, { type: 'text/html; charset=utf-8', body: INDEX });
  const asset = ASSETS[url.pathname];
  if (asset && req.method === 'GET') {
    const body = fs.readFileSync(path.join(st.assetsDir, url.pathname.slice(1)));
    return send(res, 200, { type: asset, body });
  }
  if (req.method === 'POST' && /^\/api\/tasks\/[^/]+\/egress$/.test(url.pathname)) {
    void handleEgress(st.ctx, url).then(
      (r) => send(res, r.status, r.body),
      (e: Error) => send(res, 500, json({ error: e.message })),
    );
    return;
  }
  if (url.pathname.startsWith('/api/')) {
    const r = handleApi(st.ctx, req.method!, url);
    if (r.download) res.setHeader('Content-Disposition', `attachment; filename="${r.download}"`);
    return send(res, r.status, r.body);
  }
  send(res, 404, text('not found'));
}

function send(res: http.ServerResponse, status: number, b: Body): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': b.type });
  res.end(b.body);
}

function same(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function cookieOf(req: http.IncomingMessage): string | undefined {
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const [k, v] = part.trim().split('=');
    if (k === COOKIE) return v;
  }
  return undefined;
}
