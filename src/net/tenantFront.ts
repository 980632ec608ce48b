// The proxy tier's front door: one listener for every tenant. It reads only as far as the
// credentials (Proxy-Authorization on an HTTP request or CONNECT; SOCKS5 username/password,
// RFC 1929), checks the token and the source address with the TenantRegistry, and hands the
// connection to that tenant's own egress proxy over its unix socket. Everything after the
// credentials is the per-cell proxy's business, so every rule and record is the local one.
import net from 'node:net';
import { normalizeSource, type Tenant, type TenantRegistry } from './tenants.js';

const SOCKS = 0x05;
/** The front reads at most this much before it knows who is calling (as the proxy's head cap). */
const MAX_HEADER_BYTES = 64 * 1024;
const AUTH_USERPASS = 0x02;

export interface TenantFront {
  address(): net.AddressInfo;
  close(): Promise<void>;
}

export async function startTenantFront(
  registry: TenantRegistry,
  opts: { host: string; port: number; handshakeTimeoutMs?: number; maxConnections?: number },
): Promise<TenantFront> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: false }, (client) => {
    sockets.add(client);
    client.once('close', () => sockets.delete(client));
    client.on('error', () => client.destroy());
    const timer = setTimeout(() => client.destroy(), opts.handshakeTimeoutMs ?? 10_000);
    client.once('close', () => clearTimeout(timer));
    const source = normalizeSource(client.remoteAddress);
    let buf = Buffer.alloc(0);
    let stage: 'first' | 'socks-auth' = 'first';
    const finish = (
      protocol: 'http' | 'connect' | 'socks5',
      token: string | undefined,
      rest: Buffer,
    ) => {
      client.off('data', onData);
      client.pause();
      const tenant = registry.authenticate(token, source, protocol);
      if (!tenant) {
        client.end(protocol === 'socks5' ? Buffer.from([0x01, 0x01]) : proxyAuthRequired());
        return;
      }
      clearTimeout(timer);
      if (protocol === 'socks5') client.write(Buffer.from([0x01, 0x00]));
      handOff(client, tenant, rest, protocol === 'socks5');
    };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > MAX_HEADER_BYTES) return void client.destroy();
      if (stage === 'first' && buf[0] === SOCKS) {
        const g = socksGreeting(buf);
        if (!g) return;
        if (!g.offersAuth) {
          client.off('data', onData);
          registry.authenticate(undefined, source, 'socks5');
          return void client.end(Buffer.from([SOCKS, 0xff]));
        }
        client.write(Buffer.from([SOCKS, AUTH_USERPASS]));
        buf = buf.subarray(g.used);
        stage = 'socks-auth';
      }
      if (stage === 'socks-auth') {
        const a = socksAuth(buf);
        if (a) finish('socks5', a.token, buf.subarray(a.used));
        return;
      }
      const h = httpCredentials(buf);
      if (h) finish(h.connect ? 'connect' : 'http', h.token, buf);
    };
    client.on('data', onData);
  });
  server.maxConnections = opts.maxConnections ?? 4096;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.host, port: opts.port }, () => resolve());
  });
  return {
    address: () => server.address() as net.AddressInfo,
    async close() {
      const closed = new Promise<void>((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

/** The SOCKS5 greeting: version, methods. Undefined until it is complete. */
function socksGreeting(buf: Buffer): { offersAuth: boolean; used: number } | undefined {
  if (buf.length < 2) return undefined;
  const n = buf[1]!;
  if (buf.length < 2 + n) return undefined;
  return { offersAuth: buf.subarray(2, 2 + n).includes(AUTH_USERPASS), used: 2 + n };
}

/** RFC 1929: `01 ulen user plen pass`; the password is the token. */
function socksAuth(buf: Buffer): { token: string | undefined; used: number } | undefined {
  if (buf.length >= 1 && buf[0] !== 0x01) return { token: undefined, used: buf.length };
  if (buf.length < 2) return undefined;
  const ulen = buf[1]!;
  if (buf.length < 3 + ulen) return undefined;
  const plen = buf[2 + ulen]!;
  if (buf.length < 3 + ulen + plen) return undefined;
  const token = buf.subarray(3 + ulen, 3 + ulen + plen).toString('latin1');
  return { token: token || undefined, used: 3 + ulen + plen };
}

/** HTTP: the request head up to its blank line; the token is the Basic password or Bearer. */
function httpCredentials(buf: Buffer): { token: string | undefined; connect: boolean } | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const connect = /^CONNECT /i.test(lines[0] ?? '');
  const auth = lines.filter((l) => /^proxy-authorization\s*:/i.test(l));
  // Two credentials would leave it to the next hop which one counts: accept exactly one.
  if (auth.length !== 1) return { token: undefined, connect };
  const value = auth[0]!.slice(auth[0]!.indexOf(':') + 1).trim();
  const [scheme = '', cred = ''] = value.split(/\s+/, 2);
  let token: string | undefined;
  if (/^bearer$/i.test(scheme)) token = cred;
  else if (/^basic$/i.test(scheme)) {
    const plain = Buffer.from(cred, 'base64').toString('latin1');
    token = plain.includes(':') ? plain.slice(plain.indexOf(':') + 1) : undefined;
  }
  return { token: token || undefined, connect };
}

function proxyAuthRequired(): string {
  const body = "nanocell proxy tier: present this claim's token as Proxy-Authorization\n";
  return (
    'HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="nanocell"\r\n' +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`
  );
}

/**
 * Joins the client to its tenant's proxy. For SOCKS5 the tenant's proxy gets a no-auth
 * greeting of its own and its 2-byte answer is swallowed: the client already had its answer.
 */
function handOff(client: net.Socket, tenant: Tenant, rest: Buffer, socks: boolean): void {
  const inner = net.connect(tenant.socketPath);
  const fail = () => {
    inner.destroy();
    client.destroy();
  };
  inner.on('error', fail);
  client.on('error', fail);
  client.once('close', () => inner.destroy());
  inner.once('close', () => client.destroy());
  const join = () => {
    if (rest.length) inner.write(rest);
    client.pipe(inner);
    inner.pipe(client);
    client.resume();
  };
  if (!socks) {
    inner.once('connect', join);
    return;
  }
  inner.once('connect', () => inner.write(Buffer.from([SOCKS, 0x01, 0x00])));
  let greeting = Buffer.alloc(0);
  const onGreeting = (chunk: Buffer) => {
    greeting = Buffer.concat([greeting, chunk]);
    if (greeting.length < 2) return;
    inner.off('data', onGreeting);
    inner.pause();
    if (greeting[0] !== SOCKS || greeting[1] !== 0x00) return fail();
    const extra = greeting.subarray(2);
    if (extra.length) client.write(extra);
    join();
    inner.resume();
  };
  inner.on('data', onGreeting);
}
