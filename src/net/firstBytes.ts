// What the first bytes of a captured connection say about where it wants to go: the server
// name of a TLS ClientHello (SNI), or the Host header of a plain HTTP/1 request. Both are
// claims of the task; the proxy only compares them with what it already knows.

export type FirstBytes =
  | { kind: 'more' }
  | { kind: 'tls'; sni: string | undefined }
  | { kind: 'http'; host: string | undefined }
  | { kind: 'raw' };

/** Bytes read at most before deciding; a ClientHello or request head must fit. */
export const FIRST_BYTES_MAX = 16 * 1024;

const HTTP_START = /^[A-Z]{3,10} [^ \r\n]+ HTTP\/1\.[01]\r\n/;

export function classify(buf: Buffer): FirstBytes {
  if (buf.length === 0) return { kind: 'more' };
  if (buf[0] === 0x16) return tls(buf);
  if (buf[0]! >= 0x41 && buf[0]! <= 0x5a) return http(buf);
  return { kind: 'raw' };
}

function http(buf: Buffer): FirstBytes {
  const end = buf.indexOf('\r\n\r\n');
  const text = buf.toString('latin1', 0, end < 0 ? buf.length : end + 2);
  if (text.indexOf('\r\n') < 0) {
    // Not yet a full request line, and it may still become one.
    return buf.length < FIRST_BYTES_MAX && /^[A-Z]{1,10}(?: [^\r\n]*)?$/.test(text)
      ? { kind: 'more' }
      : { kind: 'raw' };
  }
  if (!HTTP_START.test(text)) return { kind: 'raw' };
  if (end < 0) return buf.length < FIRST_BYTES_MAX ? { kind: 'more' } : { kind: 'raw' };
  const hosts = text
    .split('\r\n')
    .slice(1)
    .filter((l) => /^host[ \t]*:/i.test(l))
    .map((l) => l.slice(l.indexOf(':') + 1).trim());
  // Two Host headers are a request smuggling trick: treat them as naming nothing we accept.
  if (hosts.length > 1) return { kind: 'http', host: '\0several' };
  return { kind: 'http', host: hosts[0] };
}

/** A ClientHello's server_name (RFC 6066), read from the first handshake message. */
function tls(buf: Buffer): FirstBytes {
  if (buf.length < 5) return { kind: 'more' };
  if (buf[1] !== 0x03) return { kind: 'raw' };
  // The handshake message may span records; gather their fragments.
  const frags: Buffer[] = [];
  let off = 0;
  let have = 0;
  let need = -1;
  while (off + 5 <= buf.length) {
    if (buf[off] !== 0x16) return { kind: 'raw' };
    const len = buf.readUInt16BE(off + 3);
    if (off + 5 + len > buf.length) break;
    frags.push(buf.subarray(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    const hs = Buffer.concat(frags);
    if (need < 0 && hs.length >= 4) {
      if (hs[0] !== 0x01) return { kind: 'raw' };
      need = 4 + hs.readUIntBE(1, 3);
    }
    if (need >= 0 && have >= need) return { kind: 'tls', sni: sniOf(hs.subarray(4, need)) };
  }
  return buf.length < FIRST_BYTES_MAX ? { kind: 'more' } : { kind: 'raw' };
}

function sniOf(hello: Buffer): string | undefined {
  try {
    let p = 2 + 32; // version, random
    p += 1 + hello[p]!; // session id
    p += 2 + hello.readUInt16BE(p); // cipher suites
    p += 1 + hello[p]!; // compression methods
    if (p + 2 > hello.length) return undefined;
    const extEnd = p + 2 + hello.readUInt16BE(p);
    p += 2;
    while (p + 4 <= extEnd && extEnd <= hello.length) {
      const type = hello.readUInt16BE(p);
      const len = hello.readUInt16BE(p + 2);
      const body = hello.subarray(p + 4, p + 4 + len);
      p += 4 + len;
      if (type !== 0) continue;
      // server_name_list: length, then entries of type(1) length(2) name.
      let q = 2;
      while (q + 3 <= body.length) {
        const nameType = body[q]!;
        const nameLen = body.readUInt16BE(q + 1);
        const name = body.subarray(q + 3, q + 3 + nameLen);
        if (nameType === 0) return name.toString('latin1');
        q += 3 + nameLen;
      }
    }
  } catch {
    return undefined;
  }
  return undefined;
}
