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

export async function startUi(o: { stateRoot: string; port?: number }): Promise<UiServer> {
  // The URL's token works once: it is exchanged for the session cookie, then burnt, so a
  // copy of the URL (shell history, a screen share) opens nothing later.
  let token: string | undefined = randomBytes(24).toString('hex');
  const session = randomBytes(24).toString('hex');
  const assetsDir = path.join(packageRoot(), 'dist', 'ui');
  if (!fs.existsSync(path.join(assetsDir, 'app.js'))) {
    throw new NanocellError(
      `the dashboard's assets are missing in ${assetsDir}`,
      'run `npm run build`',
      'HOST',
    );
  }
  let origin = '';
  const ctx: ApiContext = { stateRoot: o.stateRoot };
  const server = http.createServer((req, res) => {
    try {
      serve(req, res);
    } catch (e) {
      const n = e as NanocellError;
      send(res, n instanceof NanocellError ? 400 : 500, json({ error: n.message, fix: n.fix }));
    }
  });
  const serve = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = new URL(req.url ?? '/', origin);
    // DNS rebinding: a page on another name that resolves here names that name as Host.
    if (req.headers.host !== new URL(origin).host) return send(res, 403, text('wrong Host'));
    if (req.headers.origin !== undefined && req.headers.origin !== origin)
      return send(res, 403, text('requests from another origin are refused'));
    const given = url.searchParams.get('token');
    if (
      given !== null &&
      token &&
      same(given, token) &&
      req.method === 'GET' &&
      url.pathname === '/'
    ) {
      token = undefined;
      res.writeHead(303, {
        ...SECURITY_HEADERS,
        'Set-Cookie': `${COOKIE}=${session}; HttpOnly; SameSite=Strict; Path=/`,
        Location: '/',
      });
      return res.end();
    }
    if (!same(cookieOf(req) ?? '', session))
      return send(res, 401, text('the dashboard needs the token printed by `nanocell ui`'));
    if (
      req.method === 'POST' &&
      (req.headers['x-nanocell-ui'] !== '1' || req.headers.origin !== origin)
    )
      return send(res, 403, text('actions come only from the dashboard page'));
    if (req.method !== 'GET' && req.method !== 'POST')
      return send(res, 405, text('method not allowed'));
    if (req.method === 'GET' && url.pathname === '/')
      return send(res, 200, { type: 'text/html; charset=utf-8', body: INDEX });
    const asset = ASSETS[url.pathname];
    if (asset && req.method === 'GET') {
      const body = fs.readFileSync(path.join(assetsDir, url.pathname.slice(1)));
      return send(res, 200, { type: asset, body });
    }
    if (req.method === 'POST' && /^\/api\/tasks\/[^/]+\/egress$/.test(url.pathname)) {
      void handleEgress(ctx, url).then(
        (r) => send(res, r.status, r.body),
        (e: Error) => send(res, 500, json({ error: e.message })),
      );
      return;
    }
    if (url.pathname.startsWith('/api/')) {
      const r = handleApi(ctx, req.method, url);
      if (r.download) res.setHeader('Content-Disposition', `attachment; filename="${r.download}"`);
      return send(res, r.status, r.body);
    }
    send(res, 404, text('not found'));
  };
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as { port: number }).port;
  origin = `http://127.0.0.1:${port}`;
  return {
    url: `${origin}/?token=${token!}`,
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
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
