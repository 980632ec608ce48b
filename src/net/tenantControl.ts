// The proxy tier's control API, for supervisors only (bearer token, compared in constant time):
//   PUT    /v1/tenants/{claim}         {token, podIPs, network}  register or replace a tenant
//   DELETE /v1/tenants/{claim}                                    remove it, close its connections
//   GET    /v1/tenants/{claim}/events                             its decisions as JSON lines,
//                                                                 backlog first, until deleted
//   GET    /v1/health                                             {"tenants": N}
import { createHash, timingSafeEqual } from 'node:crypto';
import { chmodSync } from 'node:fs';
import http from 'node:http';
import { NanocellError } from '../util/errors.js';
import { tenantSpecSchema, type TenantRegistry } from './tenants.js';

const MAX_BODY = 1024 * 1024;

export interface ControlServer {
  /** `host:port`, or the unix socket path. */
  readonly where: string;
  close(): Promise<void>;
}

export async function startControlServer(
  registry: TenantRegistry,
  opts: { listen: string; token: string },
): Promise<ControlServer> {
  if (opts.token.length < 32) {
    throw new NanocellError(
      'the control token is shorter than 32 characters',
      'generate one with `openssl rand -hex 32`',
      'USAGE',
    );
  }
  const expected = createHash('sha256').update(opts.token).digest();
  const authorized = (req: http.IncomingMessage) => {
    const m = /^Bearer (\S+)$/.exec(req.headers.authorization ?? '');
    return !!m && timingSafeEqual(createHash('sha256').update(m[1]!).digest(), expected);
  };
  const server = http.createServer((req, res) => {
    void route(registry, req, res, authorized(req)).catch((e: unknown) => {
      const status = e instanceof NanocellError ? (e.kind === 'STATE' ? 409 : 422) : 500;
      const message = e instanceof NanocellError ? e.oneLine() : 'internal error';
      if (!res.headersSent) send(res, status, { error: message });
      else res.destroy();
    });
  });
  const unix = opts.listen.startsWith('/');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if (unix) {
      const old = process.umask(0o177);
      server.listen(opts.listen, () => resolve());
      process.umask(old);
    } else {
      const i = opts.listen.lastIndexOf(':');
      server.listen(
        {
          host: opts.listen.slice(0, i).replace(/^\[|\]$/g, ''),
          port: Number(opts.listen.slice(i + 1)),
        },
        () => resolve(),
      );
    }
  });
  if (unix) chmodSync(opts.listen, 0o600);
  return {
    where: opts.listen,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

async function route(
  registry: TenantRegistry,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  authorized: boolean,
): Promise<void> {
  if (!authorized) return send(res, 401, { error: 'missing or wrong control token' });
  const url = new URL(req.url ?? '/', 'http://control');
  if (req.method === 'GET' && url.pathname === '/v1/health') {
    return send(res, 200, { tenants: registry.size() });
  }
  const m = /^\/v1\/tenants\/([^/]+)(\/events)?$/.exec(url.pathname);
  if (!m) return send(res, 404, { error: 'no such endpoint' });
  const id = decodeURIComponent(m[1]!);
  if (m[2]) {
    if (req.method !== 'GET') return send(res, 405, { error: 'GET only' });
    return streamEvents(registry, id, res);
  }
  if (req.method === 'DELETE') {
    return (await registry.delete(id))
      ? send(res, 204)
      : send(res, 404, { error: `no tenant ${id}` });
  }
  if (req.method !== 'PUT') return send(res, 405, { error: 'PUT, DELETE or GET .../events' });
  const body = await readJson(req);
  const spec = tenantSpecSchema.safeParse(body);
  if (!spec.success) {
    const issue = spec.error.issues[0];
    return send(res, 422, { error: `${issue?.path.join('.') || 'body'}: ${issue?.message}` });
  }
  const existed = registry.get(id) !== undefined;
  await registry.put(id, spec.data);
  send(res, existed ? 200 : 201, { tenant: id });
}

function streamEvents(registry: TenantRegistry, id: string, res: http.ServerResponse): void {
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  res.flushHeaders();
  const stop = registry.subscribe(id, (e) => {
    if (e === null) res.end();
    else res.write(`${JSON.stringify(e)}\n`);
  });
  if (!stop) return void res.end();
  res.once('close', stop);
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    n += c.length;
    if (n > MAX_BODY)
      throw new NanocellError(
        'request body larger than 1 MiB',
        'send one tenant per request',
        'USAGE',
      );
    chunks.push(c);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new NanocellError('request body is not JSON', 'send the tenant as JSON', 'USAGE');
  }
}

function send(res: http.ServerResponse, status: number, body?: unknown): void {
  const text = body === undefined ? '' : `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}
