import { describe, expect, it } from 'vitest';
import { parseGreeting, parseRequest, reply, Reply } from '../../../src/net/socks5.js';

describe('SOCKS5 wire format', () => {
  it('accepts a greeting offering no-auth and asks for more bytes when short', () => {
    expect(parseGreeting(Buffer.from([5]))).toEqual({ ok: false, more: true });
    expect(parseGreeting(Buffer.from([5, 2, 2]))).toEqual({ ok: false, more: true });
    const g = parseGreeting(Buffer.from([5, 2, 2, 0, 9]));
    expect(g).toMatchObject({ ok: true, used: 4 });
    expect(g.ok && [...g.value]).toEqual([5, 0]);
  });

  it('refuses a greeting without no-auth with method 0xff', () => {
    const g = parseGreeting(Buffer.from([5, 1, 2]));
    expect(g.ok === false && !g.more && [...g.reply]).toEqual([5, 0xff]);
  });

  it('parses domain, IPv4 and IPv6 CONNECT requests', () => {
    const name = Buffer.from('example.com');
    const d = parseRequest(
      Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([1, 187, 9])]),
    );
    expect(d).toEqual({
      ok: true,
      value: { host: 'example.com', port: 443 },
      used: 7 + name.length,
    });
    const v4 = parseRequest(Buffer.from([5, 1, 0, 1, 127, 0, 0, 2, 0, 80]));
    expect(v4).toMatchObject({ ok: true, value: { host: '127.0.0.2', port: 80 } });
    const v6 = parseRequest(Buffer.from([5, 1, 0, 4, ...Array(15).fill(0), 1, 0x1f, 0x90]));
    expect(v6).toMatchObject({ ok: true, value: { host: '[0:0:0:0:0:0:0:1]', port: 8080 } });
    expect(parseRequest(Buffer.from([5, 1, 0, 1, 127, 0]))).toEqual({ ok: false, more: true });
  });

  it('answers unsupported commands and address types with their codes', () => {
    const bind = parseRequest(Buffer.from([5, 2, 0, 1, 1, 2, 3, 4, 0, 80]));
    expect(!bind.ok && !bind.more && bind.reply[1]).toBe(Reply.commandNotSupported);
    const udp = parseRequest(Buffer.from([5, 3, 0, 1, 1, 2, 3, 4, 0, 80]));
    expect(!udp.ok && !udp.more && udp.reply[1]).toBe(Reply.commandNotSupported);
    const atyp = parseRequest(Buffer.from([5, 1, 0, 9, 1, 2, 3, 4, 0, 80]));
    expect(!atyp.ok && !atyp.more && atyp.reply[1]).toBe(Reply.addressTypeNotSupported);
    const bracket = Buffer.from('[::1]');
    const b = parseRequest(
      Buffer.concat([Buffer.from([5, 1, 0, 3, bracket.length]), bracket, Buffer.from([0, 80])]),
    );
    expect(!b.ok && !b.more && b.reply[1]).toBe(Reply.hostUnreachable);
  });

  it('replies never reveal a bound address', () => {
    expect([...reply(Reply.notAllowed)]).toEqual([5, 2, 0, 1, 0, 0, 0, 0, 0, 0]);
  });
});
