// Request forms: a task asks the cell's proxy for the host's loopback or a private range in
// every way a client can spell a request: HTTP/1.0 and 1.1, with and without Host,
// absolute-form and origin-form, CONNECT, SOCKS5 by name and by address, in every IPv4
// notation (decimal, octal, hex, short forms) and as IPv4-mapped or NAT64 IPv6. Each attempt
// must be refused, and the task's audit trail must hold its net.denied record naming the
// address the request stood for (the canonical literal, whatever the notation) and a decision
// on that destination (not a parse error): every form reached the same decision. The loopback
// targets count connections, so "refused" also means nothing arrived.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from '../../src/audit/events.js';
import { AttackCell, HostSentinels } from './harness.js';
import { webTarget, type Target } from './servers.js';

let ac: AttackCell;
let host: HostSentinels;
let web: Target; // allowed: web.test → 127.0.0.2 (the control)
let hostLo: Target; // the host's own 127.0.0.1
let hostLo6: Target; // the host's ::1

beforeAll(async () => {
  host = new HostSentinels();
  [web, hostLo, hostLo6] = await Promise.all([
    webTarget('127.0.0.2'),
    webTarget('127.0.0.1'),
    webTarget('::1'),
  ]);
  ac = await AttackCell.start({
    policy: {
      network: {
        // localhost is allowed by name: the host's resolver answers loopback, refused by address.
        allow: [`web.test:${web.port}`, `localhost:${hostLo.port}`],
        cidrs: [`127.0.0.2/32:${web.port}`],
        hosts: { 'web.test': '127.0.0.2' },
      },
    },
  });
});
afterAll(async () => {
  await ac?.dispose();
  await Promise.all([web, hostLo, hostLo6].map((t) => t?.close()));
  host?.cleanup();
});

type Protocol = 'http' | 'connect' | 'socks5';
interface Case {
  /** How the attempt is made: atk.py's action and its arguments. */
  atk: string[];
  /** The destination the record must name: canonical literal (or the name) and port. */
  host: string;
  port: number;
  protocol: Protocol;
}

const lastSeq = () => ac.events().at(-1)?.seq ?? -1;

/** Each case is refused, recorded with its canonical destination and a decision on it. */
async function refusedAndRecorded(cases: Case[]) {
  expect(cases.length).toBeGreaterThanOrEqual(5);
  for (const c of cases) {
    const since = lastSeq();
    const [r] = await ac.atk(...c.atk);
    expect(r!.ok, c.atk.join(' ')).toBe(false);
    const e = await ac.recorded(
      (x) =>
        x.seq > since &&
        x.type === 'net.denied' &&
        x.host === c.host &&
        x.port === c.port &&
        x.protocol === c.protocol,
    );
    expect(decidedRule(e), c.atk.join(' ')).toMatch(/^(ip-literal|special:[a-z0-9-]+)$/);
  }
  expect(hostLo.connections()).toBe(0);
  expect(hostLo6.connections()).toBe(0);
  expect(host.changes()).toEqual([]);
}

const decidedRule = (e: AuditEvent) => (e.type === 'net.denied' ? e.rule : undefined);

const L = () => hostLo.port;
const L6 = () => hostLo6.port;
const http11 = (target: string, hostHeader?: string) =>
  `GET ${target} HTTP/1.1\\r\\n${hostHeader === undefined ? '' : `Host: ${hostHeader}\\r\\n`}\\r\\n`;
const http10 = (target: string, hostHeader?: string) =>
  `GET ${target} HTTP/1.0\\r\\n${hostHeader === undefined ? '' : `Host: ${hostHeader}\\r\\n`}\\r\\n`;
const proxy = (raw: string) => ['proxy', raw];

/** Loopback and private destinations, each as a notation and the address it names. */
const loopbackForms = () => [
  { text: `127.0.0.1:${L()}`, host: '127.0.0.1', port: L() },
  { text: `127.1:${L()}`, host: '127.0.0.1', port: L() },
  { text: `2130706433:${L()}`, host: '127.0.0.1', port: L() },
  { text: `0x7f.0.0.1:${L()}`, host: '127.0.0.1', port: L() },
  { text: `0177.0.0.01:${L()}`, host: '127.0.0.1', port: L() },
  { text: `[::1]:${L6()}`, host: '::1', port: L6() },
  { text: `[::ffff:127.0.0.1]:${L()}`, host: '::ffff:127.0.0.1', port: L() },
  { text: '10.0.0.1:80', host: '10.0.0.1', port: 80 },
  { text: '192.168.0x1.1:80', host: '192.168.1.1', port: 80 },
  { text: '172.16.1:80', host: '172.16.0.1', port: 80 },
];

describe('proxy request forms', () => {
  it('PF-00 control: the allowed destination is reachable through every form', async () => {
    const W = `web.test:${web.port}`;
    const ok = [
      await ac.atk('proxy', http11(`http://${W}/abs11`, W)),
      await ac.atk('proxy', http11(`http://${W}/abs11-nohost`)),
      await ac.atk('proxy', http10(`http://${W}/abs10`)),
      await ac.atk('proxy', `CONNECT ${W} HTTP/1.1\\r\\n\\r\\n`),
      await ac.atk('socksname', 'web.test', String(web.port)),
      await ac.atk('socks', '127.0.0.2', String(web.port)),
    ].flat();
    for (const r of ok) expect(r.ok, r.t).toBe(true);
    expect(web.urls).toEqual(['/abs11', '/abs11-nohost', '/abs10']);
  });

  it('PF-01 HTTP/1.1 absolute-form with a matching Host header', async () => {
    await refusedAndRecorded(
      loopbackForms().map((f) => ({
        atk: proxy(http11(`http://${f.text}/pf01`, f.text)),
        host: f.host,
        port: f.port,
        protocol: 'http',
      })),
    );
  });

  it('PF-02 HTTP/1.1 absolute-form without a Host header', async () => {
    await refusedAndRecorded(
      loopbackForms().map((f) => ({
        atk: proxy(http11(`http://${f.text}/pf02`)),
        host: f.host,
        port: f.port,
        protocol: 'http',
      })),
    );
  });

  it('PF-03 HTTP/1.0 absolute-form, with and without Host', async () => {
    await refusedAndRecorded(
      loopbackForms().map((f, i) => ({
        atk: proxy(http10(`http://${f.text}/pf03`, i % 2 ? f.text : undefined)),
        host: f.host,
        port: f.port,
        protocol: 'http' as const,
      })),
    );
  });

  it('PF-04 origin-form: the Host header names the destination (HTTP/1.1 and 1.0)', async () => {
    await refusedAndRecorded(
      loopbackForms().map((f, i) => ({
        atk: proxy((i % 2 ? http10 : http11)('/pf04', f.text)),
        host: f.host,
        port: f.port,
        protocol: 'http',
      })),
    );
    // Origin-form that names nothing is refused and recorded as unreadable.
    const since = lastSeq();
    const [r] = await ac.atk('proxy', http10('/pf04-nohost'));
    expect(r!.ok).toBe(false);
    const e = await ac.recorded((x) => x.seq > since && x.type === 'net.denied');
    expect(e).toMatchObject({ host: '', rule: 'bad-request' });
  });

  it('PF-05 CONNECT in every notation, and an https:// absolute-form naming loopback', async () => {
    await refusedAndRecorded([
      ...loopbackForms().map((f) => ({
        atk: proxy(`CONNECT ${f.text} HTTP/1.1\\r\\n\\r\\n`),
        host: f.host,
        port: f.port,
        protocol: 'connect' as const,
      })),
      {
        atk: proxy(`CONNECT [64:ff9b::7f00:1]:${L()} HTTP/1.1\\r\\nHost: web.test\\r\\n\\r\\n`),
        host: '64:ff9b::7f00:1',
        port: L(),
        protocol: 'connect',
      },
      {
        atk: proxy(http11(`https://127.1:${L()}/`, `127.1:${L()}`)),
        host: '127.0.0.1',
        port: L(),
        protocol: 'http',
      },
    ]);
  });

  it('PF-06 SOCKS5 by name, the proxy reading each notation', async () => {
    const byName = (name: string, h: string, port: number): Case => ({
      atk: ['socksname', name, String(port)],
      host: h,
      port,
      protocol: 'socks5',
    });
    await refusedAndRecorded([
      byName('127.0.0.1', '127.0.0.1', L()),
      byName('127.1', '127.0.0.1', L()),
      byName('2130706433', '127.0.0.1', L()),
      byName('0x7f000001', '127.0.0.1', L()),
      byName('017700000001', '127.0.0.1', L()),
      byName('127.0.0.1.', '127.0.0.1', L()),
      byName('::1', '::1', L6()),
      byName('::ffff:127.0.0.1', '::ffff:127.0.0.1', L()),
      byName('10.1', '10.0.0.1', 80),
      byName('0xc0a80001', '192.168.0.1', 80),
      // Allowed by name, refused by the address the host's resolver gives.
      byName('localhost', 'localhost', L()),
    ]);
    const ev = await ac.recorded((e) => e.type === 'net.denied' && e.host === 'localhost');
    expect(ev).toMatchObject({ rule: 'special:loopback' });
  });

  it('PF-07 SOCKS5 by address: IPv4, IPv6, IPv4-mapped and NAT64', async () => {
    const byAddr = (addr: string, h: string, port: number): Case => ({
      atk: ['socks', addr, String(port)],
      host: h,
      port,
      protocol: 'socks5',
    });
    await refusedAndRecorded([
      byAddr('127.0.0.1', '127.0.0.1', L()),
      byAddr('127.1', '127.0.0.1', L()), // the client packs it into four bytes itself
      byAddr('10.0.0.1', '10.0.0.1', 80),
      byAddr('192.168.1.1', '192.168.1.1', 80),
      byAddr('172.16.0.1', '172.16.0.1', 80),
      byAddr('::1', '::1', L6()),
      byAddr('::ffff:127.0.0.1', '::ffff:127.0.0.1', L()),
      byAddr('::ffff:10.0.0.1', '::ffff:10.0.0.1', 80),
      byAddr('64:ff9b::7f00:1', '64:ff9b::7f00:1', L()),
    ]);
  });
});
