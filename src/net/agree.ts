// Names that must agree. A connection's destination is already known by name (the fake
// address the DNS stub gave out, or the host of an explicit CONNECT); the first bytes the
// client sends make their own claim (a TLS ClientHello's SNI, a plain HTTP Host header). When
// the two differ the connection is domain fronting or SNI spoofing, and it is refused before
// a byte reaches the upstream.
import type net from 'node:net';
import { classify, type FirstBytes } from './firstBytes.js';
import { normalizeHostName } from './patterns.js';
import { parseTarget } from './rules.js';

/**
 * How long a client may stay silent, or ambiguous, before the connection is treated as one
 * whose server speaks first (SSH, SMTP) or as raw bytes: TLS and HTTP clients send at once.
 */
const SILENT_CLIENT_MS = 800;
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Collects the first bytes until they say what they are, or the client stays silent. */
export function readFirstBytes(
  client: net.Socket,
  early: Buffer,
  done: (first: Buffer, seen: FirstBytes) => void,
) {
  let buf: Buffer = early;
  let finished = false;
  const finish = (seen: FirstBytes) => {
    if (finished) return;
    finished = true;
    clearTimeout(silent);
    clearTimeout(giveUp);
    client.off('data', onData);
    client.pause();
    done(buf, seen);
  };
  // Silent, or still ambiguous (an uppercase word that is not yet a request line): raw.
  const silent = setTimeout(() => finish({ kind: 'raw' }), SILENT_CLIENT_MS);
  const giveUp = setTimeout(() => finish({ kind: 'raw' }), HANDSHAKE_TIMEOUT_MS);
  const onData = (d: Buffer) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    const seen = classify(buf);
    if (seen.kind !== 'more') finish(seen);
  };
  client.on('data', onData);
  client.resume();
  if (buf.length) onData(Buffer.alloc(0));
  // A client that hangs up before saying anything is still an attempt, decided and recorded.
  client.once('end', () => finish({ kind: 'raw' }));
  client.once('close', () => finish({ kind: 'raw' }));
}

/** Why the task's own claims disagree with the name its fake address stands for, if they do. */
export function disagreement(
  name: string,
  port: number,
  seen: FirstBytes,
): { rule: string; reason: string } | undefined {
  if (seen.kind === 'tls' && seen.sni !== undefined && normalizeHostName(seen.sni) !== name) {
    return {
      rule: 'sni-mismatch',
      reason: `TLS server name ${JSON.stringify(seen.sni.slice(0, 255))} is not ${name}, the name this address was looked up as`,
    };
  }
  if (seen.kind === 'http' && seen.host !== undefined && !hostHeaderNames(seen.host, name, port)) {
    return {
      rule: 'host-mismatch',
      reason: `Host header ${JSON.stringify(seen.host.slice(0, 255))} does not name ${name}:${port}, the name this address was looked up as`,
    };
  }
  return undefined;
}

function hostHeaderNames(header: string, name: string, port: number): boolean {
  let u: URL;
  try {
    u = new URL(`http://${header}`);
  } catch {
    return false;
  }
  if (u.pathname !== '/' || u.username || u.password || u.search || u.hash) return false;
  const t = parseTarget(u.hostname);
  return t?.kind === 'name' && t.name === name && (u.port ? Number(u.port) : 80) === port;
}

/**
 * For a tunnel to a named host (explicit CONNECT or SOCKS5): reads the first bytes, then calls
 * back with the disagreement, if any, and the bytes read, for the upstream.
 */
export function checkTunnel(
  client: net.Socket,
  early: Buffer,
  host: string,
  port: number,
  cb: (bad: { rule: string; reason: string } | undefined, first: Buffer) => void,
): void {
  readFirstBytes(client, early, (first, seen) => {
    const t = parseTarget(host);
    cb(t?.kind === 'name' ? disagreement(t.name, port, seen) : undefined, first);
  });
}
