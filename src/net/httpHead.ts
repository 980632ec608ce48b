// Request and response heads of the proxy's plain-HTTP path (pure). The client's request is
// parsed by node's HTTP server; the upstream gets a head rebuilt from it, and the upstream's
// response head is rewritten here while its body is passed through untouched. Every forwarded
// request is the only one on its upstream connection (`Connection: close` both ways), so the
// body needs no framing by the proxy: it ends when the upstream closes.

/** Headers that describe one connection, not the message: never forwarded (RFC 9110 7.6.1). */
const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Field values: visible characters, spaces, tabs and obs-text; never CR, LF or NUL.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** The header names a Connection header lists (they are hop-by-hop too), lowercased. */
function connectionTokens(rawHeaders: readonly string[]): Set<string> {
  const tokens = new Set<string>();
  for (let i = 0; i < rawHeaders.length; i += 2) {
    if (rawHeaders[i]!.toLowerCase() !== 'connection') continue;
    for (const t of rawHeaders[i + 1]!.split(',')) tokens.add(t.trim().toLowerCase());
  }
  return tokens;
}

/**
 * The head sent upstream: the request line with the origin-form target, Host set to the
 * decided authority, the client's end-to-end headers in order, and `Connection: close`.
 * A chunked body is re-framed by the proxy, so it gets `Transfer-Encoding: chunked` and no
 * Content-Length. Undefined if a header could not be written safely.
 */
export function requestHead(
  method: string,
  target: string,
  authority: string,
  rawHeaders: readonly string[],
  chunked: boolean,
): string | undefined {
  if (!TOKEN.test(method) || !/^\/[\x21-\x7e]*$/.test(target)) return undefined;
  const drop = connectionTokens(rawHeaders);
  let head = `${method} ${target} HTTP/1.1\r\nHost: ${authority}\r\n`;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const value = rawHeaders[i + 1]!;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || drop.has(lower) || lower === 'host') continue;
    if (chunked && lower === 'content-length') continue;
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) return undefined;
    head += `${name}: ${value}\r\n`;
  }
  if (chunked) head += 'Transfer-Encoding: chunked\r\n';
  return `${head}Connection: close\r\n\r\n`;
}

export type ResponseHead =
  | { kind: 'more' }
  | { kind: 'bad'; reason: string }
  /** An interim (1xx) response: dropped; the final head follows after `used` bytes. */
  | { kind: 'interim'; used: number }
  /** The final head, rewritten for the client, and where the body starts. */
  | { kind: 'final'; head: string; used: number };

/**
 * Reads the upstream's response head from the start of buf. The rewritten head keeps the
 * status line and the end-to-end headers, and keeps Transfer-Encoding (the body passes
 * through as framed), but drops the other hop-by-hop headers and says `Connection: close`.
 */
export function readResponseHead(buf: Buffer, maxBytes: number): ResponseHead {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) {
    return buf.length > maxBytes
      ? { kind: 'bad', reason: 'response head too large' }
      : { kind: 'more' };
  }
  if (end > maxBytes) return { kind: 'bad', reason: 'response head too large' };
  const lines = buf.toString('latin1', 0, end).split('\r\n');
  const status = /^HTTP\/1\.[01] (\d{3})(?: [\t\x20-\x7e\x80-\xff]*)?$/.exec(lines[0]!);
  if (!status) return { kind: 'bad', reason: 'bad status line' };
  const code = Number(status[1]);
  if (code < 100) return { kind: 'bad', reason: 'bad status code' };
  const used = end + 4;
  // 101 would switch protocols, which the proxy never asked for (Upgrade is not forwarded).
  if (code === 101) return { kind: 'bad', reason: 'unrequested protocol switch' };
  if (code < 200) return { kind: 'interim', used };
  const raw: string[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(':');
    if (colon <= 0) return { kind: 'bad', reason: 'bad header line' };
    const name = line.slice(0, colon);
    const value = line.slice(colon + 1).trim();
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) {
      return { kind: 'bad', reason: 'bad header line' };
    }
    raw.push(name, value);
  }
  const drop = connectionTokens(raw);
  let head = `${lines[0]}\r\n`;
  for (let i = 0; i < raw.length; i += 2) {
    const lower = raw[i]!.toLowerCase();
    if (lower !== 'transfer-encoding' && (HOP_BY_HOP.has(lower) || drop.has(lower))) continue;
    head += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  return { kind: 'final', head: `${head}Connection: close\r\n\r\n`, used };
}

/** One piece of a chunked body. */
export function chunk(data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${data.length.toString(16)}\r\n`), data, CRLF]);
}

const CRLF = Buffer.from('\r\n');
export const LAST_CHUNK = '0\r\n\r\n';
