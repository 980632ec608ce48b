// The pure parts of transparent egress: the fake-address table, the DNS stub's answers, what
// first bytes claim (a real ClientHello from node's TLS, real HTTP heads), and the constants
// the supervisor and the native monitor must share.
import dnsPacket from 'dns-packet';
import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { CAPTURE_TCP_PORT, captureRuleset, droppedPacketEvent } from '../../../src/net/capture.js';
import { answerQuery, decideName, type DnsDeniedEvent } from '../../../src/net/dnsStub.js';
import { FAKE_V4_CIDR, FAKE_V6_CIDR, FakeAddressTable } from '../../../src/net/fakeAddrs.js';
import { classify, FIRST_BYTES_MAX } from '../../../src/net/firstBytes.js';
import { compileNetRules } from '../../../src/net/rules.js';

const rules = compileNetRules({
  allow: ['web.test', '*.pkg.test:8443'],
  deny: ['bad.pkg.test'],
  cidrs: [],
  hosts: {},
});

describe('FakeAddressTable', () => {
  it('gives each name one v4 and one v6 address from the fake ranges and maps them back', () => {
    const t = new FakeAddressTable();
    const a = t.addressesOf('web.test')!;
    const b = t.addressesOf('x.pkg.test')!;
    expect(a).toEqual({ v4: '198.18.0.1', v6: 'fd6e:616e:6f63::1' });
    expect(b.v4).toBe('198.18.0.2');
    expect(t.addressesOf('web.test')).toEqual(a);
    expect(t.nameOf('198.18.0.1')).toBe('web.test');
    expect(t.nameOf('::ffff:198.18.0.2')).toBe('x.pkg.test');
    expect(t.nameOf('fd6e:616e:6f63:0:0:0:0:1')).toBe('web.test');
    expect(t.nameOf('198.18.0.3')).toBeUndefined();
    expect(FAKE_V4_CIDR).toBe('198.18.0.0/15');
    expect(FAKE_V6_CIDR).toBe('fd6e:616e:6f63::/64');
    for (const ip of ['198.18.0.3', '198.19.255.254', 'fd6e:616e:6f63::ffff'])
      expect(FakeAddressTable.inFakeRange(ip), ip).toBe(true);
    for (const ip of ['198.20.0.1', '127.0.0.1', 'fd6e:616e:6f64::1'])
      expect(FakeAddressTable.inFakeRange(ip), ip).toBe(false);
  });
});

describe('the DNS stub', () => {
  const ask = (name: string, type: 'A' | 'AAAA' | 'TXT') => {
    const denied: DnsDeniedEvent[] = [];
    const table = new FakeAddressTable();
    const q = dnsPacket.encode({
      type: 'query',
      id: 77,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type, name }],
    });
    const res = answerQuery(q, { rules, table, onDenied: (e) => denied.push(e) }, 'udp');
    return { res: dnsPacket.decode(res!) as dnsPacket.DecodedPacket & { rcode?: string }, denied };
  };

  it('answers allowed names with fake addresses and NODATA for other types', () => {
    const a = ask('Web.Test', 'A');
    expect(a.res.id).toBe(77);
    expect(a.res.rcode).toBe('NOERROR');
    expect(a.res.answers).toMatchObject([{ type: 'A', data: '198.18.0.1', ttl: 60 }]);
    expect(ask('x.pkg.test', 'AAAA').res.answers).toMatchObject([
      { type: 'AAAA', data: 'fd6e:616e:6f63::1' },
    ]);
    const txt = ask('web.test', 'TXT');
    expect([txt.res.rcode, txt.res.answers]).toEqual(['NOERROR', []]);
    expect(a.denied).toEqual([]);
  });

  it('refuses other names with NXDOMAIN and one dns.denied each, deny before allow', () => {
    for (const name of ['c2VjcmV0.exfil.example', 'bad.pkg.test', 'pkg.test']) {
      const { res, denied } = ask(name, 'A');
      expect(res.rcode, name).toBe('NXDOMAIN');
      expect(res.answers).toEqual([]);
      expect(denied).toMatchObject([{ name, qtype: 'A', transport: 'udp' }]);
    }
    expect(decideName(rules, 'bad.pkg.test').rule).toBe('deny:bad.pkg.test');
    expect(decideName(rules, 'x.pkg.test')).toMatchObject({ decision: 'allowed' });
  });

  it('ignores what is not a query', () => {
    const ctx = { rules, table: new FakeAddressTable(), onDenied: () => undefined };
    expect(answerQuery(Buffer.from('nonsense'), ctx, 'udp')).toBeUndefined();
  });
});

describe('first bytes', () => {
  it('reads the SNI of a real ClientHello', async () => {
    const hello = await new Promise<Buffer>((resolve) => {
      const srv = net.createServer((s) => {
        s.once('data', (d: Buffer) => {
          resolve(d);
          s.destroy();
          srv.close();
        });
      });
      srv.listen(0, '127.0.0.1', () => {
        const port = (srv.address() as net.AddressInfo).port;
        tls.connect({ host: '127.0.0.1', port, servername: 'secure.test' }).on('error', () => {});
      });
    });
    expect(classify(hello)).toEqual({ kind: 'tls', sni: 'secure.test' });
    expect(classify(hello.subarray(0, 20))).toEqual({ kind: 'more' });
  });

  it('reads the Host of an HTTP/1 head, and refuses two', () => {
    const head = 'GET / HTTP/1.1\r\nHost: web.test:8080\r\nAccept: */*\r\n\r\n';
    expect(classify(Buffer.from(head))).toEqual({ kind: 'http', host: 'web.test:8080' });
    expect(classify(Buffer.from(head.slice(0, 20)))).toEqual({ kind: 'more' });
    expect(classify(Buffer.from('GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n'))).toEqual({
      kind: 'http',
      host: '\0several',
    });
    expect(classify(Buffer.from('SSH-2.0-OpenSSH\r\n'))).toEqual({ kind: 'raw' });
    expect(classify(Buffer.from([0x00, 0x01]))).toEqual({ kind: 'raw' });
    expect(classify(Buffer.alloc(FIRST_BYTES_MAX, 0x41))).toEqual({ kind: 'raw' });
  });
});

describe('capture constants', () => {
  it('the transparent port is the one native/monitor/monitor.h defines', () => {
    const h = fs.readFileSync(
      new URL('../../../native/monitor/monitor.h', import.meta.url),
      'utf8',
    );
    expect(Number(/#define CAPTURE_TCP_PORT (\d+)/.exec(h)?.[1])).toBe(CAPTURE_TCP_PORT);
    expect(captureRuleset()).toContain(`tproxy ip to 127.0.0.1:${CAPTURE_TCP_PORT}`);
  });

  it('turns the monitor drop lines into net.denied events', () => {
    expect(
      droppedPacketEvent({ type: 'net.dropped', proto: 'udp', dst: '8.8.8.8', dport: 53 }),
    ).toMatchObject({ type: 'net.denied', host: '8.8.8.8', port: 53, rule: 'capture:udp' });
    expect(droppedPacketEvent({ type: 'net.dropped.summary', count: 9 }).reason).toMatch(/^9 more/);
  });
});
