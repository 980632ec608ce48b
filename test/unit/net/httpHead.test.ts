import { describe, expect, it } from 'vitest';
import { readResponseHead, requestHead } from '../../../src/net/httpHead.js';

describe('requestHead', () => {
  it('sets Host to the decided authority and drops hop-by-hop and Connection-listed headers', () => {
    const head = requestHead(
      'GET',
      '/a?b=1',
      'web.test:8080',
      ['Host', 'web.test:8080', 'Connection', 'keep-alive, X-Hop', 'X-Hop', '1', 'Accept', '*/*'],
      false,
    );
    expect(head).toBe(
      'GET /a?b=1 HTTP/1.1\r\nHost: web.test:8080\r\nAccept: */*\r\nConnection: close\r\n\r\n',
    );
  });

  it('re-frames a chunked body: Transfer-Encoding chunked, no Content-Length', () => {
    const head = requestHead('POST', '/', 'h.test', ['Content-Length', '5', 'X', 'y'], true);
    expect(head).toBe(
      'POST / HTTP/1.1\r\nHost: h.test\r\nX: y\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n',
    );
  });

  it('refuses what it cannot write safely', () => {
    expect(requestHead('GET /x', '/', 'h', [], false)).toBeUndefined();
    expect(requestHead('GET', '/a b', 'h', [], false)).toBeUndefined();
    expect(requestHead('GET', '/', 'h', ['X', 'a\r\nHost: evil'], false)).toBeUndefined();
    expect(requestHead('GET', '/', 'h', ['Bad Name', 'v'], false)).toBeUndefined();
  });
});

describe('readResponseHead', () => {
  const read = (s: string) => readResponseHead(Buffer.from(s, 'latin1'), 1024);

  it('waits for the whole head, and refuses one that grows past the limit', () => {
    expect(read('HTTP/1.1 200 OK\r\nA: b\r\n')).toEqual({ kind: 'more' });
    expect(readResponseHead(Buffer.alloc(2000, 97), 1024).kind).toBe('bad');
  });

  it('skips interim responses and refuses a protocol switch', () => {
    expect(read('HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK')).toEqual({
      kind: 'interim',
      used: 25,
    });
    expect(read('HTTP/1.1 101 Switching Protocols\r\n\r\n').kind).toBe('bad');
  });

  it('keeps Transfer-Encoding, drops other hop-by-hop headers and says Connection: close', () => {
    const r = read(
      'HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\nKeep-Alive: 5\r\nX: 1\r\n\r\nbody',
    );
    expect(r).toEqual({
      kind: 'final',
      head: 'HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nX: 1\r\nConnection: close\r\n\r\n',
      used: 99,
    });
  });

  it('refuses malformed status and header lines', () => {
    for (const bad of [
      'HTTP/2 200 OK\r\n\r\n',
      'HTTP/1.1 20 OK\r\n\r\n',
      'HTTP/1.1 200 OK\r\nNoColon\r\n\r\n',
      'HTTP/1.1 200 OK\r\n Folded: x\r\n\r\n',
      'HTTP/1.1 200 OK\r\nA: b\nInjected: c\r\n\r\n',
    ]) {
      expect(read(bad).kind, bad).toBe('bad');
    }
  });
});
