import { lstatSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { echo, Harness, headEnd, httpConnect, readUntil, socksConnect } from './harness.js';

let h: Harness;
beforeEach(() => {
  h = new Harness();
});
afterEach(async () => {
  await h.cleanup();
});

describe('HTTP forward proxy (absolute-URI)', () => {
  it('forwards an allowed request to the pinned address and records it at close', async () => {
    const web = await h.httpServer('127.0.0.2');
    const p = await h.proxy({
      allow: [`web.test:${web.port}`],
      hosts: { 'web.test': '127.0.0.2' },
      cidrs: ['127.0.0.2/32'],
    });
    const s = await h.connectProxy(p);
    s.write(
      `GET http://web.test:${web.port}/a?b=1 HTTP/1.1\r\nHost: web.test:${web.port}\r\nProxy-Connection: keep-alive\r\n\r\n`,
    );
    const res = (await readUntil(s, (b) => b.includes(`body=0`))).toString();
    expect(res).toMatch(/^HTTP\/1\.1 200/);
    expect(res).toContain(`hello GET /a?b=1 host=web.test:${web.port}`);
    expect(web.requests[0]!.headers['proxy-connection']).toBeUndefined();
    const e = await h.event((x) => x.protocol === 'http');
    expect(e).toMatchObject({
      host: 'web.test',
      port: web.port,
      ip: '127.0.0.2',
      decision: 'allowed',
      rule: `allow:web.test:${web.port}`,
      addressRule: 'cidr:127.0.0.2/32',
    });
    expect(e.bytesUp).toBeGreaterThan(0);
    expect(e.bytesDown).toBeGreaterThan(0);
    expect(Date.parse(e.time)).not.toBeNaN();
  });

  it('binds a client connection to its first request: a second one is refused, never forwarded', async () => {
    const web = await h.httpServer('127.0.0.2');
    const p = await h.proxy({
      allow: [`web.test:${web.port}`],
      hosts: { 'web.test': '127.0.0.2', 'other.test': '127.0.0.2' },
      cidrs: ['127.0.0.2/32'],
    });
    const s = await h.connectProxy(p);
    // Pipelined: the second request is on the wire before the first response.
    s.write(
      `GET http://web.test:${web.port}/1 HTTP/1.1\r\nHost: web.test:${web.port}\r\n\r\n` +
        `GET http://web.test:${web.port}/2 HTTP/1.1\r\nHost: web.test:${web.port}\r\n\r\n`,
    );
    const res = (await readUntil(s, () => false).catch((e: Error) => e.message)).toString();
    expect(res).toMatch(/^HTTP\/1\.1 200/);
    expect(res).toMatch(/\r\nConnection: close\r\n/i);
    expect(res).toContain('hello GET /1');
    expect(res).not.toContain('/2');
    expect(web.requests.map((r) => r.url)).toEqual(['/1']);
    const refused = await h.event((x) => x.rule === 'one-request-per-connection');
    expect(refused.decision).toBe('denied');
  });

  it('re-chunks a chunked upload and passes a chunked response through', async () => {
    let upstreamSaw = '';
    const raw = net.createServer((c) => {
      c.on('data', (d: Buffer) => {
        upstreamSaw += d.toString('latin1');
        if (!upstreamSaw.endsWith('0\r\n\r\n')) return;
        c.end(
          'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n3\r\n!!!\r\n0\r\n\r\n',
        );
      });
    });
    const port = await h.listen(raw, '127.0.0.2');
    const p = await h.proxy({
      allow: [`raw.test:${port}`],
      hosts: { 'raw.test': '127.0.0.2' },
      cidrs: ['127.0.0.2/32'],
    });
    const s = await h.connectProxy(p);
    s.write(
      `POST http://raw.test:${port}/c HTTP/1.1\r\nHost: raw.test:${port}\r\n` +
        `Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n`,
    );
    const res = (await readUntil(s, () => false).catch(() => '')).toString();
    expect(upstreamSaw).toMatch(/^POST \/c HTTP\/1\.1\r\nHost: raw\.test:\d+\r\n/);
    expect(upstreamSaw).toMatch(/\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n/);
    let rest = upstreamSaw.slice(upstreamSaw.indexOf('\r\n\r\n') + 4);
    let body = '';
    for (let n = -1; n !== 0;) {
      const eol = rest.indexOf('\r\n');
      n = parseInt(rest.slice(0, eol), 16);
      body += rest.slice(eol + 2, eol + 2 + n);
      rest = rest.slice(eol + 2 + n + 2);
    }
    expect(body).toBe('helloabc');
    expect(rest).toBe('');
    expect(res).toBe(
      'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n' +
        '2\r\nok\r\n3\r\n!!!\r\n0\r\n\r\n',
    );
  });

  it('drops interim responses and hop-by-hop headers of the upstream', async () => {
    const raw = net.createServer((c) => {
      c.once('data', () =>
        c.end(
          'HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n' +
            'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nKeep-Alive: timeout=5\r\n' +
            'Connection: keep-alive, X-Secret\r\nX-Secret: 1\r\nX-Kept: yes\r\n\r\nok',
        ),
      );
    });
    const port = await h.listen(raw, '127.0.0.2');
    const p = await h.proxy({
      allow: [`raw.test:${port}`],
      hosts: { 'raw.test': '127.0.0.2' },
      cidrs: ['127.0.0.2/32'],
    });
    const s = await h.connectProxy(p);
    s.write(`GET http://raw.test:${port}/ HTTP/1.1\r\nHost: raw.test:${port}\r\n\r\n`);
    const res = (await readUntil(s, () => false).catch(() => '')).toString();
    expect(res).toBe(
      'HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Kept: yes\r\nConnection: close\r\n\r\nok',
    );
  });

  it('answers 502 to a response head it cannot read', async () => {
    const raw = net.createServer((c) => {
      c.once('data', () => c.end('HTTP/1.1 200 OK\r\nBad Header\r\n\r\nok'));
    });
    const port = await h.listen(raw, '127.0.0.2');
    const p = await h.proxy({
      allow: [`raw.test:${port}`],
      hosts: { 'raw.test': '127.0.0.2' },
      cidrs: ['127.0.0.2/32'],
    });
    const s = await h.connectProxy(p);
    s.write(`GET http://raw.test:${port}/ HTTP/1.1\r\nHost: raw.test:${port}\r\n\r\n`);
    const res = (await readUntil(s, () => false).catch(() => '')).toString();
    expect(res).toMatch(/^HTTP\/1\.1 502/);
    const e = await h.event((x) => x.protocol === 'http');
    expect(e.decision).toBe('allowed');
  });

  it('denies with 403, a reason header and a body, and records it at once', async () => {
    const web = await h.httpServer('127.0.0.2');
    const p = await h.proxy({
      allow: ['web.test'],
      hosts: { 'web.test': '127.0.0.2' },
      cidrs: ['127.0.0.2/32'],
    });
    const s = await h.connectProxy(p);
    s.write(`GET http://evil.test:${web.port}/ HTTP/1.1\r\nHost: evil.test:${web.port}\r\n\r\n`);
    const res = (await readUntil(s, (b) => b.includes('network.allow\n'))).toString();
    expect(res).toMatch(/^HTTP\/1\.1 403 Forbidden/);
    expect(res).toMatch(
      /X-Nanocell-Deny-Reason: nanocell: blocked connect to evil\.test:\d+ \(not in network\.allow\)/i,
    );
    const e = await h.event((x) => x.decision === 'denied');
    expect(e).toMatchObject({
      host: 'evil.test',
      port: web.port,
      rule: 'default-deny',
      protocol: 'http',
      bytesUp: 0,
      bytesDown: 0,
    });
    expect(web.requests).toHaveLength(0);
  });

  it('decides by the request target and refuses a Host header naming another host', async () => {
    const web = await h.httpServer('127.0.0.2');
    const p = await h.proxy({
      allow: [`web.test:${web.port}`],
      hosts: { 'web.test': '127.0.0.2' },
      cidrs: ['127.0.0.2/32'],
    });
    const s = await h.connectProxy(p);
    s.write(`GET http://web.test:${web.port}/ HTTP/1.1\r\nHost: evil.test\r\n\r\n`);
    const res = (await readUntil(s, (b) => b.includes('\n', b.indexOf('\r\n\r\n') + 4))).toString();
    expect(res).toMatch(/^HTTP\/1\.1 403/);
    expect(res).toMatch(
      /X-Nanocell-Deny-Reason: nanocell: blocked connect to web\.test:\d+ \(Host header "evil\.test" does not match/,
    );
    expect((await h.event((x) => x.decision === 'denied')).rule).toBe('host-mismatch');
    expect(web.requests).toHaveLength(0);
  });

  it('refuses origin-form and https:// requests with 400', async () => {
    const p = await h.proxy({});
    for (const line of ['GET /foo HTTP/1.1', 'GET https://web.test/ HTTP/1.1']) {
      const s = await h.connectProxy(p);
      s.write(`${line}\r\nHost: web.test\r\n\r\n`);
      expect((await readUntil(s, headEnd)).toString()).toMatch(/^HTTP\/1\.1 400/);
    }
  });

  it('streams a request body upstream', async () => {
    const web = await h.httpServer('127.0.0.2');
    const p = await h.proxy({
      allow: [`web.test:${web.port}`],
      hosts: { 'web.test': '127.0.0.2' },
      cidrs: ['127.0.0.2/32'],
    });
    const s = await h.connectProxy(p);
    const body = 'x'.repeat(100_000);
    s.write(
      `POST http://web.test:${web.port}/up HTTP/1.1\r\nHost: web.test:${web.port}\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    expect((await readUntil(s, (b) => b.includes('body=100000'))).toString()).toContain(
      'hello POST /up',
    );
    const e = await h.event((x) => x.decision === 'allowed');
    expect(e.bytesUp).toBeGreaterThan(100_000);
  });
});

describe('CONNECT tunnels', () => {
  it('tunnels to an allowed host:port and counts bytes exactly', async () => {
    const ec = await h.echoServer('127.0.0.4');
    const p = await h.proxy({
      allow: [`echo.test:${ec.port}`],
      hosts: { 'echo.test': '127.0.0.4' },
      cidrs: ['127.0.0.4/32'],
    });
    const s = await h.connectProxy(p);
    expect(await httpConnect(s, `echo.test:${ec.port}`)).toMatch(/^HTTP\/1\.1 200/);
    expect(await echo(s, 'ping-12345')).toBe('ping-12345');
    expect(h.events).toHaveLength(0); // allowed attempts are recorded at close
    s.destroy();
    const e = await h.event((x) => x.protocol === 'connect');
    expect(e).toMatchObject({ decision: 'allowed', ip: '127.0.0.4', bytesUp: 10, bytesDown: 10 });
  });

  it('denies a port the host is not allowed on', async () => {
    const ec = await h.echoServer('127.0.0.4');
    const p = await h.proxy({
      allow: ['echo.test'],
      hosts: { 'echo.test': '127.0.0.4' },
      cidrs: ['127.0.0.4/32'],
    });
    const s = await h.connectProxy(p);
    const res = await httpConnect(s, `echo.test:${ec.port}`);
    expect(res).toMatch(/^HTTP\/1\.1 403/);
    expect(res).toMatch(
      new RegExp(
        `X-Nanocell-Deny-Reason: nanocell: blocked connect to echo\\.test:${ec.port} \\(port not in network\\.allow\\)`,
      ),
    );
    expect(ec.connections()).toBe(0);
  });

  it('goes to the CONNECT target whatever the Host header says', async () => {
    const ec = await h.echoServer('127.0.0.4');
    const trap = await h.echoServer('127.0.0.5');
    const p = await h.proxy({
      allow: [`echo.test:${ec.port}`],
      hosts: { 'echo.test': '127.0.0.4', 'evil.test': '127.0.0.5' },
      cidrs: ['127.0.0.4/32', '127.0.0.5/32'],
    });
    const a = await h.connectProxy(p);
    a.write(`CONNECT echo.test:${ec.port} HTTP/1.1\r\nHost: evil.test:${trap.port}\r\n\r\n`);
    expect((await readUntil(a, headEnd)).toString()).toMatch(/^HTTP\/1\.1 200/);
    expect(await echo(a, 'x')).toBe('x');
    const b = await h.connectProxy(p);
    b.write(`CONNECT evil.test:${trap.port} HTTP/1.1\r\nHost: echo.test:${ec.port}\r\n\r\n`);
    expect((await readUntil(b, headEnd)).toString()).toMatch(/^HTTP\/1\.1 403/);
    expect(ec.connections()).toBe(1);
    expect(trap.connections()).toBe(0);
  });

  it('carries TLS end to end to a local HTTPS server', async () => {
    const sec = await h.httpsServer('127.0.0.3', 'secure.test');
    const p = await h.proxy({
      allow: [`secure.test:${sec.port}`],
      hosts: { 'secure.test': '127.0.0.3' },
      cidrs: ['127.0.0.3/32'],
    });
    const s = await h.connectProxy(p);
    expect(await httpConnect(s, `secure.test:${sec.port}`)).toMatch(/^HTTP\/1\.1 200/);
    const t = tls.connect({ socket: s, servername: 'secure.test', ca: sec.ca });
    h.defer(() => void t.destroy());
    await new Promise<void>((resolve, reject) => {
      t.once('secureConnect', resolve);
      t.once('error', reject);
    });
    t.write(`GET /tls HTTP/1.1\r\nHost: secure.test\r\nConnection: close\r\n\r\n`);
    const body = (
      await readUntil(t as unknown as net.Socket, (b) => b.includes('secure /tls'))
    ).toString();
    expect(body).toMatch(/^HTTP\/1\.1 200/);
  });

  it('moves 50 MiB down and 8 MiB up with exact byte counts', async () => {
    const down = 50 * 1024 * 1024;
    const up = 8 * 1024 * 1024;
    let received = 0;
    const srv = net.createServer((c) => {
      c.on('error', () => c.destroy());
      c.on('data', (d: Buffer) => {
        received += d.length;
        if (received === up) {
          const chunk = Buffer.alloc(1024 * 1024, 7);
          for (let i = 0; i < down / chunk.length; i++) c.write(chunk);
          c.end();
        }
      });
    });
    const port = await h.listen(srv, '127.0.0.4');
    const p = await h.proxy({
      allow: [`bulk.test:${port}`],
      hosts: { 'bulk.test': '127.0.0.4' },
      cidrs: ['127.0.0.4/32'],
    });
    const s = await h.connectProxy(p);
    expect(await httpConnect(s, `bulk.test:${port}`)).toMatch(/^HTTP\/1\.1 200/);
    let got = 0;
    const done = new Promise<void>((resolve) => {
      s.on('data', (d: Buffer) => (got += d.length));
      s.once('end', () => resolve());
    });
    const chunk = Buffer.alloc(1024 * 1024, 3);
    for (let i = 0; i < up / chunk.length; i++) s.write(chunk);
    await done;
    s.end();
    expect(got).toBe(down);
    expect(received).toBe(up);
    const e = await h.event((x) => x.protocol === 'connect');
    expect(e).toMatchObject({ decision: 'allowed', bytesUp: up, bytesDown: down });
    expect(p.stats()).toMatchObject({ bytesUp: up, bytesDown: down, allowed: 1 });
  });
});

describe('SOCKS5', () => {
  it('connects by name with remote DNS and by allowed literal; refuses others with 0x02', async () => {
    const ec = await h.echoServer('127.0.0.4');
    const p = await h.proxy({
      allow: [`echo.test:${ec.port}`],
      hosts: { 'echo.test': '127.0.0.4' },
      cidrs: [`127.0.0.4/32:${ec.port}`],
    });
    const a = await h.connectProxy(p);
    expect(await socksConnect(a, { name: 'echo.test' }, ec.port)).toBe(0);
    expect(await echo(a, 'hello')).toBe('hello');
    const b = await h.connectProxy(p);
    expect(await socksConnect(b, { ipv4: [127, 0, 0, 4] }, ec.port)).toBe(0);
    expect(await echo(b, 'v4')).toBe('v4');
    const c = await h.connectProxy(p);
    expect(await socksConnect(c, { name: 'evil.test' }, ec.port)).toBe(0x02);
    const d = await h.connectProxy(p);
    expect(await socksConnect(d, { ipv4: [127, 0, 0, 5] }, ec.port)).toBe(0x02);
    const denied = await h.event((x) => x.protocol === 'socks5' && x.rule === 'ip-literal');
    expect(denied.host).toBe('127.0.0.5');
  });

  it('reaches an IPv6 literal only through a CIDR rule', async () => {
    const ec = await h.echoServer('::1');
    const p = await h.proxy({ cidrs: [`[::1/128]:${ec.port}`] });
    const a = await h.connectProxy(p);
    const v6 = [...Array(15).fill(0), 1];
    expect(await socksConnect(a, { ipv6: v6 }, ec.port)).toBe(0);
    expect(await echo(a, 'six')).toBe('six');
    const b = await h.connectProxy(p);
    expect(await socksConnect(b, { ipv6: v6 }, ec.port + 1 > 65535 ? 1 : ec.port + 1)).toBe(0x02);
    a.destroy();
    expect((await h.event((x) => x.decision === 'allowed')).ip).toBe('::1');
  });

  it('answers unresolvable names with 0x04 and refused connections with 0x05', async () => {
    const p = await h.proxy(
      {
        allow: ['nx.test:9', 'closed.test:1'],
        hosts: { 'closed.test': '127.0.0.9' },
        cidrs: ['127.0.0.9/32'],
      },
      {
        resolver: async () => Promise.reject(Object.assign(new Error('nx'), { code: 'ENOTFOUND' })),
      },
    );
    const a = await h.connectProxy(p);
    expect(await socksConnect(a, { name: 'nx.test' }, 9)).toBe(0x04);
    const b = await h.connectProxy(p);
    expect(await socksConnect(b, { name: 'closed.test' }, 1)).toBe(0x05);
    const e = await h.event((x) => x.host === 'closed.test');
    expect(e.decision).toBe('allowed');
    expect(e.error).toMatch(/ECONNREFUSED/);
  });
});

describe('rules through the proxy', () => {
  it('applies wildcards, ports and deny-over-allow', async () => {
    const ec = await h.echoServer('127.0.0.4');
    const p = await h.proxy({
      allow: [`*.svc.test:${ec.port}`],
      deny: ['bad.svc.test'],
      hosts: { 'a.svc.test': '127.0.0.4', 'bad.svc.test': '127.0.0.4', 'svc.test': '127.0.0.4' },
      cidrs: ['127.0.0.4/32'],
    });
    const codes: Record<string, number> = {};
    for (const name of ['a.svc.test', 'bad.svc.test', 'svc.test']) {
      codes[name] = await socksConnect(await h.connectProxy(p), { name }, ec.port);
    }
    expect(codes).toEqual({ 'a.svc.test': 0, 'bad.svc.test': 2, 'svc.test': 2 });
    expect((await h.event((x) => x.host === 'bad.svc.test')).rule).toBe('deny:bad.svc.test');
    expect(ec.connections()).toBe(1);
  });

  for (const [label, answer, rule] of [
    ['RFC 1918', ['10.0.0.1'], 'special:private'],
    ['the metadata address', ['169.254.169.254'], 'special:cloud-metadata'],
    ['an IPv4-mapped loopback', ['::ffff:127.0.0.5'], 'special:ipv4-mapped'],
    ['loopback', ['127.0.0.5'], 'special:loopback'],
    ['a mix of public and private', ['93.184.216.34', '127.0.0.5'], 'special:loopback'],
  ] as const) {
    it(`refuses a name resolving to ${label} without connecting`, async () => {
      const trap = await h.echoServer('127.0.0.5');
      const p = await h.proxy(
        { allow: [`app.test:${trap.port}`] },
        { resolver: async () => [...answer] },
      );
      const s = await h.connectProxy(p);
      const res = await httpConnect(s, `app.test:${trap.port}`);
      expect(res).toMatch(/^HTTP\/1\.1 403/);
      const e = await h.event((x) => x.decision === 'denied');
      expect(e.rule).toBe(rule);
      expect(e.ip).toBeDefined();
      expect(trap.connections()).toBe(0);
    });
  }

  it('resolves once per connection and connects to the checked address (rebinding)', async () => {
    const good = await h.echoServer('127.0.0.4');
    const trap = await h.listen(
      net.createServer((c) => c.destroy()),
      '127.0.0.5',
    );
    let calls = 0;
    // First answer is the allowed address; every later answer is the "rebound" one.
    const resolver = async () => (calls++ === 0 ? ['127.0.0.4'] : ['127.0.0.5']);
    const p = await h.proxy(
      { allow: [`rebind.test:${good.port}`], cidrs: ['127.0.0.4/32'] },
      { resolver },
    );
    const s = await h.connectProxy(p);
    expect(await httpConnect(s, `rebind.test:${good.port}`)).toMatch(/^HTTP\/1\.1 200/);
    expect(await echo(s, 'safe')).toBe('safe');
    expect(calls).toBe(1);
    expect(good.connections()).toBe(1);
    // A second connection sees the rebound answer and is refused before connecting.
    const s2 = await h.connectProxy(p);
    expect(await httpConnect(s2, `rebind.test:${good.port}`)).toMatch(/^HTTP\/1\.1 403/);
    expect(calls).toBe(2);
    expect(trap).toBeGreaterThan(0);
    const e = await h.event((x) => x.decision === 'denied');
    expect(e).toMatchObject({ ip: '127.0.0.5', rule: 'special:loopback' });
  });

  it('never resolves a denied name (no DNS exfiltration)', async () => {
    const asked: string[] = [];
    const p = await h.proxy(
      { allow: ['ok.test'] },
      { resolver: async (n) => (asked.push(n), ['93.184.216.34']) },
    );
    const s = await h.connectProxy(p);
    expect(await httpConnect(s, 'secret-data.evil.test:443')).toMatch(/^HTTP\/1\.1 403/);
    expect(asked).toEqual([]);
  });
});

describe('robustness', () => {
  it('answers garbage with an error and keeps serving other clients', async () => {
    const ec = await h.echoServer('127.0.0.4');
    const p = await h.proxy({
      allow: [`echo.test:${ec.port}`],
      hosts: { 'echo.test': '127.0.0.4' },
      cidrs: ['127.0.0.4/32'],
    });
    const good = await h.connectProxy(p);
    expect(await socksConnect(good, { name: 'echo.test' }, ec.port)).toBe(0);

    const g1 = await h.connectProxy(p);
    g1.write(Buffer.from('\x00\xff\xfe garbage \r\n\r\n'));
    expect((await readUntil(g1, headEnd)).toString()).toMatch(/^HTTP\/1\.1 400/);
    const g2 = await h.connectProxy(p);
    g2.write(`GET http://echo.test/ HTTP/1.1\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\n\r\n`);
    expect((await readUntil(g2, headEnd)).toString()).toMatch(/^HTTP\/1\.1 431/);
    const g3 = await h.connectProxy(p);
    g3.write(Buffer.from([5, 1, 0]));
    await readUntil(g3, (b) => b.length >= 2);
    g3.write(Buffer.from([5, 9, 0, 1, 1, 2, 3, 4, 0, 80]));
    expect((await readUntil(g3, (b) => b.length >= 10))[1]).toBe(0x07);
    const g4 = await h.connectProxy(p);
    g4.write(Buffer.from([5, 1, 2])); // only username/password offered
    expect([...(await readUntil(g4, (b) => b.length >= 2))]).toEqual([5, 0xff]);
    const g5 = await h.connectProxy(p);
    g5.write(Buffer.from([4, 1, 0, 80, 127, 0, 0, 1, 0]));
    expect((await readUntil(g5, (b) => b.length >= 8))[1]).toBe(0x5b);

    expect(await echo(good, 'still fine')).toBe('still fine');
    const fresh = await h.connectProxy(p);
    expect(await socksConnect(fresh, { name: 'echo.test' }, ec.port)).toBe(0);
    expect(h.events.filter((e) => e.rule === 'bad-request').length).toBeGreaterThanOrEqual(5);
  });

  it('drops clients that do not finish the handshake in time', async () => {
    const p = await h.proxy({}, { handshakeTimeoutMs: 200 });
    const s = await h.connectProxy(p);
    s.write('GET http://x.test/ HTTP/1.1\r\n');
    const closed = await new Promise<boolean>((r) => {
      s.once('close', () => r(true));
      setTimeout(() => r(false), 3000);
    });
    expect(closed).toBe(true);
  });

  it('serves 100 concurrent connections', async () => {
    const ec = await h.echoServer('127.0.0.4');
    const p = await h.proxy({
      allow: [`echo.test:${ec.port}`],
      hosts: { 'echo.test': '127.0.0.4' },
      cidrs: ['127.0.0.4/32'],
    });
    const clients = await Promise.all(
      Array.from({ length: 100 }, async (_, i) => {
        const s = await h.connectProxy(p);
        if (i % 2) expect(await socksConnect(s, { name: 'echo.test' }, ec.port)).toBe(0);
        else expect(await httpConnect(s, `echo.test:${ec.port}`)).toMatch(/^HTTP\/1\.1 200/);
        return s;
      }),
    );
    expect(p.stats().active).toBe(100);
    const replies = await Promise.all(clients.map((s, i) => echo(s, `msg-${i}-`.padEnd(64, '.'))));
    replies.forEach((r, i) => expect(r).toBe(`msg-${i}-`.padEnd(64, '.')));
    for (const s of clients) s.destroy();
    await h.event(() => h.events.length === 100);
    expect(
      h.events.every((e) => e.decision === 'allowed' && e.bytesUp === 64 && e.bytesDown === 64),
    ).toBe(true);
  });
});

describe('the socket', () => {
  it('is a 0600 unix socket, refuses to replace a file, and is removed on close', async () => {
    const p = await h.proxy({});
    const st = lstatSync(p.socketPath!);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    const taken = `${h.dir}/taken.sock`;
    writeFileSync(taken, '');
    const { startEgressProxy } = await import('../../../src/net/proxy.js');
    const { compileNetRules } = await import('../../../src/net/rules.js');
    const rules = compileNetRules({ allow: [], deny: [], cidrs: [], hosts: {} });
    await expect(startEgressProxy({ rules, socketPath: taken, onEvent: () => {} })).rejects.toThrow(
      /already exists/,
    );
    await p.close();
    expect(() => lstatSync(p.socketPath!)).toThrow();
  });

  it('listens on TCP only when asked, and only on loopback', async () => {
    const p = await h.proxy({});
    await expect(p.listen({ host: '0.0.0.0', port: 0 })).rejects.toThrow(/only on loopback/);
    await expect(p.listen({ host: '192.168.1.1', port: 0 })).rejects.toThrow(/only on loopback/);
    const a = await p.listen({ host: '127.0.0.1', port: 0 });
    expect(a.host).toBe('127.0.0.1');
    const s = net.connect(a.port, '127.0.0.1');
    h.defer(() => void s.destroy());
    await new Promise((r) => s.once('connect', r));
    expect(await httpConnect(s, 'x.test:443')).toMatch(/^HTTP\/1\.1 403/);
  });

  it('keeps each cell to its own allowances', async () => {
    const ec = await h.echoServer('127.0.0.4');
    const net1 = {
      allow: [`one.test:${ec.port}`],
      hosts: { 'one.test': '127.0.0.4' },
      cidrs: ['127.0.0.4/32'],
    };
    const net2 = {
      allow: [`two.test:${ec.port}`],
      hosts: { 'two.test': '127.0.0.4' },
      cidrs: ['127.0.0.4/32'],
    };
    const p1 = await h.proxy(net1);
    const p2 = await h.proxy(net2);
    expect(await socksConnect(await h.connectProxy(p1), { name: 'two.test' }, ec.port)).toBe(2);
    expect(await socksConnect(await h.connectProxy(p2), { name: 'one.test' }, ec.port)).toBe(2);
    expect(await socksConnect(await h.connectProxy(p2), { name: 'two.test' }, ec.port)).toBe(0);
  });
});
