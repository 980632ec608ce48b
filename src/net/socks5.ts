// SOCKS5 (RFC 1928) wire format, pure: the proxy supports no authentication and the CONNECT
// command only; names are resolved by the proxy (socks5h), which is the only resolver a cell has.

export const SOCKS_VERSION = 0x05;

export const Reply = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

/** A parse step: the value and the bytes it used, 'more' if incomplete, or an error reply. */
export type Step<T> =
  | { ok: true; value: T; used: number }
  | { ok: false; more: true }
  | { ok: false; more: false; reply: Buffer; reason: string };

const more = { ok: false, more: true } as const;

/** The client's greeting: version, methods. Answer: version + chosen method (0xff: none). */
export function parseGreeting(buf: Buffer): Step<Buffer> {
  if (buf.length < 2) return more;
  if (buf[0] !== SOCKS_VERSION) {
    return {
      ok: false,
      more: false,
      reply: Buffer.from([SOCKS_VERSION, 0xff]),
      reason: 'not SOCKS5',
    };
  }
  const n = buf[1]!;
  if (buf.length < 2 + n) return more;
  const methods = buf.subarray(2, 2 + n);
  if (!methods.includes(0x00)) {
    return {
      ok: false,
      more: false,
      reply: Buffer.from([SOCKS_VERSION, 0xff]),
      reason: 'client offers no method without authentication',
    };
  }
  return { ok: true, value: Buffer.from([SOCKS_VERSION, 0x00]), used: 2 + n };
}

export interface SocksRequest {
  /** A name, a dotted quad, or a bracketed IPv6 literal, as for decideHost. */
  host: string;
  port: number;
}

/** The CONNECT request: ver, cmd, rsv, atyp, address, port. */
export function parseRequest(buf: Buffer): Step<SocksRequest> {
  if (buf.length < 5) return more;
  if (buf[0] !== SOCKS_VERSION) return fail(Reply.generalFailure, 'bad version in request');
  if (buf[1] !== 0x01) return fail(Reply.commandNotSupported, `command ${buf[1]} not supported`);
  const atyp = buf[3];
  let host: string;
  let end: number;
  if (atyp === 0x01) {
    end = 4 + 4;
    if (buf.length < end + 2) return more;
    host = [...buf.subarray(4, 8)].join('.');
  } else if (atyp === 0x04) {
    end = 4 + 16;
    if (buf.length < end + 2) return more;
    const groups: string[] = [];
    for (let i = 0; i < 8; i++) groups.push(buf.readUInt16BE(4 + 2 * i).toString(16));
    host = `[${groups.join(':')}]`;
  } else if (atyp === 0x03) {
    const len = buf[4]!;
    end = 5 + len;
    if (buf.length < end + 2) return more;
    if (len === 0) return fail(Reply.hostUnreachable, 'empty host name');
    host = buf.subarray(5, end).toString('latin1');
    // A name is never bracketed or an address in brackets; keep it from passing as a literal.
    if (host.includes('[') || host.includes(']'))
      return fail(Reply.hostUnreachable, 'bad host name');
  } else {
    return fail(Reply.addressTypeNotSupported, `address type ${atyp} not supported`);
  }
  return { ok: true, value: { host, port: buf.readUInt16BE(end) }, used: end + 2 };
}

/** A reply; the bound address is always 0.0.0.0:0 so nothing about the host leaks. */
export function reply(code: number): Buffer {
  return Buffer.from([SOCKS_VERSION, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
}

function fail(code: number, reason: string): Step<never> {
  return { ok: false, more: false, reply: reply(code), reason };
}
