// TLS interception for the hosts a secret is bound to, and only those. A per-cell CA (ECDSA
// P-256, made with @peculiar/x509 over WebCrypto) signs one leaf per bound host; its private
// key stays in this process and is never written anywhere. The cell trusts the CA through its
// CA bundle; the upstream is verified against the host's trust store plus NODE_EXTRA_CA_CERTS
// given to nanocell. Requests are read as HTTP/1.1 (ALPN offers nothing else), rewritten by the
// broker, and sent on over the verified upstream connection.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import tls from 'node:tls';
import { webcrypto } from 'node:crypto';
import type * as X509 from '@peculiar/x509';
import type { SecretBroker } from './secrets.js';

let x509lib: Promise<typeof X509> | undefined;
/** Loaded on the first cell with a secret: most cells never pay for it. */
function loadX509(): Promise<typeof X509> {
  x509lib ??= (async () => {
    // @peculiar/x509's dependency injection (tsyringe) needs the Reflect metadata polyfill.
    await import('reflect-metadata');
    // A CommonJS package: bundled into a chunk, its exports may come as `default` only.
    const mod = (await import('@peculiar/x509')) as typeof X509 & { default?: typeof X509 };
    const lib = mod.cryptoProvider ? mod : mod.default!;
    lib.cryptoProvider.set(webcrypto as unknown as Parameters<typeof lib.cryptoProvider.set>[0]);
    return lib;
  })();
  return x509lib;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
const HOST_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

function pem(der: ArrayBuffer, label: string): string {
  const b64 = Buffer.from(der).toString('base64').replace(/.{64}/g, '$&\n');
  return `-----BEGIN ${label}-----\n${b64}${b64.endsWith('\n') ? '' : '\n'}-----END ${label}-----\n`;
}

export class CellCa {
  private readonly leaves = new Map<string, Promise<tls.SecureContext>>();

  private constructor(
    private readonly keys: webcrypto.CryptoKeyPair,
    private readonly x509: typeof X509,
    private readonly cert: X509.X509Certificate,
    /** The CA certificate, PEM: what the cell trusts. */
    readonly certPem: string,
  ) {}

  static async create(cellId: string): Promise<CellCa> {
    const x509 = await loadX509();
    const keys = (await webcrypto.subtle.generateKey(ALG, false, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: `CN=nanocell cell ${cellId.replace(/[^A-Za-z0-9-]/g, '')} CA`,
      notBefore: new Date(now - DAY_MS),
      notAfter: new Date(now + 30 * DAY_MS),
      keys,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(
          x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
          true,
        ),
      ],
    });
    return new CellCa(keys, x509, cert, pem(cert.rawData, 'CERTIFICATE'));
  }

  /** The serving context for `host`, made once per host. */
  contextFor(host: string): Promise<tls.SecureContext> {
    let ctx = this.leaves.get(host);
    if (!ctx) {
      ctx = this.makeLeaf(host);
      this.leaves.set(host, ctx);
    }
    return ctx;
  }

  private async makeLeaf(host: string): Promise<tls.SecureContext> {
    const x509 = this.x509;
    const keys = (await webcrypto.subtle.generateKey(ALG, true, [
      'sign',
      'verify',
    ])) as webcrypto.CryptoKeyPair;
    const now = Date.now();
    const isIp = /^[0-9.]+$|:/.test(host);
    const leaf = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${host}`,
      issuer: this.cert.subject,
      notBefore: new Date(now - DAY_MS),
      notAfter: new Date(now + 30 * DAY_MS),
      publicKey: keys.publicKey,
      signingKey: this.keys.privateKey,
      signingAlgorithm: ALG,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
        new x509.SubjectAlternativeNameExtension([{ type: isIp ? 'ip' : 'dns', value: host }]),
      ],
    });
    const key = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
    return tls.createSecureContext({
      key: pem(key, 'PRIVATE KEY'),
      cert: pem(leaf.rawData, 'CERTIFICATE') + this.certPem,
    });
  }
}

function serial(): string {
  return Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)))
    .toString('hex')
    .replace(/^./, '4');
}

let trust: string[] | undefined;
/** Node's roots, the host's bundle and NODE_EXTRA_CA_CERTS given to nanocell itself. */
function upstreamTrust(): string[] {
  if (trust) return trust;
  const extra = [HOST_BUNDLE, process.env.NODE_EXTRA_CA_CERTS].flatMap((f) => {
    try {
      return f ? [readFileSync(f, 'utf8')] : [];
    } catch {
      return [];
    }
  });
  trust = [...tls.rootCertificates, ...extra];
  return trust;
}

/** One HTTP/1.1 connection's worth of upstream: the dialled, checked, TLS-verified socket. */
class OneSocketAgent extends http.Agent {
  constructor(private readonly socket: tls.TLSSocket) {
    super({ keepAlive: true, maxSockets: 1 });
  }
  override createConnection(): net.Socket {
    return this.socket;
  }
}

interface Intercepted {
  host: string;
  port: number;
  agent: OneSocketAgent;
  upstream: tls.TLSSocket;
  /** Why the upstream could not be used (its certificate is not trusted, ...). */
  failure?: string;
}

export class TlsInterceptor {
  private readonly server = http.createServer({ maxHeaderSize: 64 * 1024 });
  private readonly conns = new WeakMap<net.Socket, Intercepted>();

  constructor(
    readonly ca: CellCa,
    private readonly broker: SecretBroker,
  ) {
    this.server.on('request', (req, res) => this.onRequest(req, res));
    this.server.on('clientError', (_err, socket: net.Socket) => socket.destroy());
  }

  binds(host: string): boolean {
    return this.broker.binds(host);
  }

  /**
   * Serves a CONNECT whose upstream is dialled and allowed: TLS to the cell with a leaf of
   * this cell's CA, verified TLS to the upstream. `done` runs once both are closed.
   */
  async serve(
    client: net.Socket,
    upstream: net.Socket,
    host: string,
    port: number,
    head: Buffer,
    done: () => void,
  ) {
    if (head.length) client.unshift(head);
    const verified = tls.connect({
      socket: upstream,
      ...(net_isIp(host) ? {} : { servername: host }),
      ca: upstreamTrust(),
      ALPNProtocols: ['http/1.1'],
    });
    // Nothing is sent upstream before its certificate is verified: a failure answers 502.
    const failure = await new Promise<string | undefined>((resolve) => {
      verified.once('secureConnect', () => resolve(undefined));
      verified.once('error', (err) => resolve(err.message));
    });
    verified.on('error', () => undefined);
    const ctx = await this.ca.contextFor(host);
    const cellSide = new tls.TLSSocket(client, {
      isServer: true,
      secureContext: ctx,
      ALPNProtocols: ['http/1.1'],
    });
    cellSide.on('error', () => cellSide.destroy());
    let closed = failure ? 1 : 0;
    const closeOne = () => ++closed === 2 && done();
    cellSide.once('close', () => {
      verified.destroy();
      closeOne();
    });
    if (!failure) {
      verified.once('close', () => {
        cellSide.end();
        closeOne();
      });
    }
    const agent = new OneSocketAgent(verified);
    this.conns.set(cellSide, {
      host,
      port,
      agent,
      upstream: verified,
      ...(failure ? { failure } : {}),
    });
    this.server.emit('connection', cellSide);
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    const c = this.conns.get(req.socket);
    if (!c) return void res.destroy();
    const method = req.method ?? 'GET';
    const target = req.url ?? '/';
    if (c.failure) {
      const body = `nanocell: ${c.host}: the upstream's certificate is not trusted (${c.failure})\n`;
      res.writeHead(502, {
        'content-type': 'text/plain',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
      return;
    }
    const checked = this.broker.rewrite({
      host: c.host,
      method,
      target,
      rawHeaders: req.rawHeaders,
      tls: true,
    });
    if (!checked.ok) {
      const body = `nanocell: refused ${method} https://${c.host}${target.split('?')[0]} (${checked.reason})\n`;
      res.writeHead(403, {
        'content-type': 'text/plain',
        'content-length': Buffer.byteLength(body),
      });
      res.end(body);
      return;
    }
    const up = http.request({
      host: c.host,
      port: c.port,
      method,
      path: target,
      headers: checked.rawHeaders,
      agent: c.agent,
      setHost: false,
    });
    up.on('response', (ur) => {
      this.broker.recordUse(checked.used, c.host, method, target, ur.statusCode ?? 0);
      res.writeHead(ur.statusCode ?? 502, ur.statusMessage, ur.rawHeaders);
      ur.pipe(res);
    });
    up.on('error', (err) => {
      const why =
        c.upstream.authorized === false && c.upstream.authorizationError
          ? `the upstream's certificate is not trusted: ${String(c.upstream.authorizationError)}`
          : err.message;
      this.broker.recordUse(checked.used, c.host, method, target, 502);
      if (!res.headersSent) {
        const body = `nanocell: ${c.host}: ${why}\n`;
        res.writeHead(502, {
          'content-type': 'text/plain',
          'content-length': Buffer.byteLength(body),
        });
        res.end(body);
      } else res.destroy();
    });
    req.pipe(up);
  }
}

function net_isIp(host: string): boolean {
  return /^[0-9.]+$/.test(host) || host.includes(':');
}
