// Egress from real cells: no network by default; with an allowlist, real tools reach local
// servers only through the cell's own proxy, and every attempt is decided and recorded.
import { egressDenialLine } from '../../../src/policy/denialText.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import type { NetCellEvent } from '../../../src/audit/cellEvents.js';
import type { CellEvent } from '../../../src/cell/types.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { makeSandbox, type Sandbox } from '../../helpers/cells.js';
import {
  makeBareRepo,
  PACKAGE_NAME,
  PACKAGE_VERSION,
  REPO_FILE,
  REPO_TEXT,
  startEchoServer,
  startSecureServer,
  startWebServer,
  waitFor,
  type EchoServer,
  type WebServer,
} from './cellServers.js';
import { Harness } from './harness.js';

const h = new Harness();
let web: WebServer;
let sec: WebServer & { ca: string };
let echo: EchoServer;
/** Listens on the host's 127.0.0.1: no cell may ever reach it. */
let canary: EchoServer;
let sbNone: Sandbox;
let sbNet: Sandbox;
let none: Cell;
let cell: Cell;
const events: CellEvent[] = [];
const noneEvents: CellEvent[] = [];

const MiB = 1024 * 1024;

beforeAll(async () => {
  const gitRoot = makeBareRepo(h.dir);
  [web, sec, echo, canary] = await Promise.all([
    startWebServer(h, '127.0.0.2', gitRoot),
    startSecureServer(h, '127.0.0.3', 'secure.test', gitRoot),
    startEchoServer(h, '127.0.0.4'),
    startEchoServer(h, '127.0.0.1'),
  ]);
  const W = web.port;
  sbNone = makeSandbox();
  sbNet = makeSandbox({ 'local-ca.txt': sec.ca });
  const network = {
    allow: [
      `web.test:${W}`,
      `secure.test:${sec.port}`,
      `*.wild.test:${W}`,
      `echo.test:${echo.port}`,
      // The host's resolver answers 127.0.0.1 for localhost: allowed by name, refused by address.
      `localhost:${canary.port}`,
    ],
    deny: ['bad.wild.test'],
    cidrs: [
      `127.0.0.2/32:${W}`,
      '127.0.0.3/32',
      '127.0.0.4/32',
      `[::ffff:0:0/96]:${W}`,
      // A broad link-local range does not unlock the metadata address.
      '169.254.0.0/16',
    ],
    hosts: {
      'web.test': '127.0.0.2',
      'evil.test': '127.0.0.2',
      'wild.test': '127.0.0.2',
      'a.wild.test': '127.0.0.2',
      'deep.b.wild.test': '127.0.0.2',
      'bad.wild.test': '127.0.0.2',
      'secure.test': '127.0.0.3',
      'echo.test': '127.0.0.4',
    },
  };
  [none, cell] = await Promise.all([
    Cell.create({
      policy: resolvePolicy(parsePolicy({})),
      workspace: sbNone.project,
      stateRoot: sbNone.stateRoot,
      onEvent: (e) => noneEvents.push(e),
    }),
    Cell.create({
      policy: resolvePolicy(parsePolicy({ network })),
      workspace: sbNet.project,
      stateRoot: sbNet.stateRoot,
      onEvent: (e) => events.push(e),
    }),
  ]);
});

afterAll(async () => {
  await Promise.all([none, cell].map((c) => c?.destroy().catch(() => undefined)));
  sbNone?.cleanup();
  sbNet?.cleanup();
  await h.cleanup();
});

const sh = (c: Cell, script: string, env?: Record<string, string>) =>
  c.run(['bash', '-c', script], env ? { env } : {});
const isNet = (e: CellEvent): e is NetCellEvent => e.type.startsWith('net.');
const net = (type: 'net.allowed' | 'net.denied') =>
  events.filter((e): e is NetCellEvent => e.type === type);
const netFor = (type: 'net.allowed' | 'net.denied', host: string, port?: number) =>
  net(type).filter((e) => e.host === host && (port === undefined || e.port === port));

describe('a cell without network.allow', () => {
  it('has only loopback, no proxy, no proxy env, and fails outside connects and DNS at once', async () => {
    const probe = [
      'import json, socket, time',
      'out = {}',
      'def timed(name, f):',
      '    t = time.monotonic()',
      '    try:',
      '        f(); out[name] = ["ok", 0]',
      '    except OSError as e:',
      '        out[name] = [type(e).__name__ + ":" + str(e.errno), 0]',
      '    out[name][1] = time.monotonic() - t',
      // 192.0.2.1 is TEST-NET-1: nothing leaves the cell anyway, there is no route.
      'timed("connect", lambda: socket.create_connection(("192.0.2.1", 80), timeout=10))',
      'timed("connect6", lambda: socket.create_connection(("2001:db8::1", 80), timeout=10))',
      'timed("dns", lambda: socket.getaddrinfo("example.com", 80))',
      'timed("dns2", lambda: socket.getaddrinfo("registry.npmjs.org", 443))',
      `timed("hostLoopback", lambda: socket.create_connection(("127.0.0.1", ${canary.port}), timeout=10))`,
      `timed("hostAlias", lambda: socket.create_connection(("127.0.0.2", ${web.port}), timeout=10))`,
      'timed("proxyPort", lambda: socket.create_connection(("127.0.0.1", 3128), timeout=10))',
      'print(json.dumps(out))',
    ].join('\n');
    const [py, env, curl] = await Promise.all([
      none.run(['python3', '-c', probe]),
      sh(none, 'env | grep -ic proxy; ls -A /.nanocell; tail -n +3 /proc/net/dev | cut -d: -f1'),
      sh(
        none,
        'start=$(date +%s%N); curl -sS http://example.com/ 2>&1; echo "rc=$? ms=$(( ($(date +%s%N) - start) / 1000000 ))"',
      ),
    ]);
    const out = JSON.parse(py.stdout) as Record<string, [string, number]>;
    expect(out.connect![0]).toBe('OSError:101'); // ENETUNREACH: no route, no hang
    expect(out.connect6![0]).toBe('OSError:101');
    expect(out.dns![0]).toMatch(/^gaierror/);
    expect(out.dns2![0]).toMatch(/^gaierror/);
    // The cell's loopback is its own: the host's 127.0.0.x services are not there.
    expect(out.hostLoopback![0]).toBe('ConnectionRefusedError:111');
    expect(out.hostAlias![0]).toBe('ConnectionRefusedError:111');
    expect(out.proxyPort![0]).toBe('ConnectionRefusedError:111');
    for (const [name, [, secs]] of Object.entries(out)) expect(secs, name).toBeLessThan(1);
    const lines = env.stdout.trim().split('\n');
    expect(lines[0]).toBe('0'); // no *_PROXY variables at all
    expect(lines.slice(1).map((l) => l.trim())).toEqual(['init', 'lo']); // no proxy.sock; only lo
    expect(curl.stdout).toMatch(/Could not resolve host: example\.com/);
    const ms = Number(/ms=(\d+)/.exec(curl.stdout)?.[1]);
    expect(ms).toBeLessThan(1000);
    expect(canary.connections()).toBe(0);
    expect(noneEvents.filter((e) => e.type.startsWith('net.'))).toEqual([]);
  });
});

describe('a cell with network.allow', () => {
  it('sets the proxy environment for every command and still has only loopback', async () => {
    const r = await sh(
      cell,
      'env | grep -i proxy | sort; ls -A /.nanocell; grep -c " 0100007F:0C38 00000000:0000 0A " /proc/net/tcp; tail -n +3 /proc/net/dev | cut -d: -f1',
    );
    const env = Object.fromEntries(
      r.stdout
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(env).toMatchObject({
      HTTP_PROXY: 'http://127.0.0.1:3128',
      HTTPS_PROXY: 'http://127.0.0.1:3128',
      http_proxy: 'http://127.0.0.1:3128',
      https_proxy: 'http://127.0.0.1:3128',
      ALL_PROXY: 'socks5h://127.0.0.1:3128',
      npm_config_proxy: 'http://127.0.0.1:3128',
      npm_config_https_proxy: 'http://127.0.0.1:3128',
    });
    expect(env.NO_PROXY).toContain('127.0.0.1');
    // The proxy listens on the cell's own 127.0.0.1:3128 (0x0C38, state LISTEN): no socket file,
    // no relay process in the cell.
    expect(r.stdout).not.toMatch(/proxy\.sock/);
    expect(r.stdout).toMatch(/^1$/m);
    expect(r.stdout.trim().split('\n').at(-1)!.trim()).toBe('lo');
  });

  it('curl: plain http through HTTP_PROXY, https through CONNECT, and SOCKS5 with remote DNS', async () => {
    const W = web.port;
    const socksOnly = 'env -u HTTP_PROXY -u http_proxy -u HTTPS_PROXY -u https_proxy';
    const r = await sh(
      cell,
      [
        `curl -sS http://web.test:${W}/curl-plain; echo`,
        `curl -sS --cacert local-ca.txt https://secure.test:${sec.port}/curl-tls; echo`,
        `${socksOnly} curl -sS http://web.test:${W}/curl-socks; echo`,
        `${socksOnly} curl -sS http://evil.test:${W}/curl-socks-denied; echo "socks-denied rc=$?"`,
      ].join('\n'),
    );
    expect(r.stdout).toContain(`hello GET /curl-plain host=web.test:${W}`);
    expect(r.stdout).toContain('hello GET /curl-tls host=secure.test');
    expect(r.stdout).toContain('hello GET /curl-socks');
    expect(r.stdout).toContain('socks-denied rc=97'); // CURLE_PROXY: the SOCKS server refused
    expect(web.urls).not.toContain('/curl-socks-denied');
    await waitFor(
      events,
      () =>
        net('net.allowed').filter((e) => e.protocol !== 'http' || e.host === 'web.test').length >=
        3,
      'three allowed',
    );
    const byProto = (p: string) => net('net.allowed').find((e) => e.protocol === p);
    for (const p of ['http', 'connect', 'socks5']) {
      const e = byProto(p)!;
      expect(e, p).toBeDefined();
      expect(e.ip).toMatch(/^127\.0\.0\.[23]$/);
      expect(e.bytesUp).toBeGreaterThan(0);
      expect(e.bytesDown).toBeGreaterThan(0);
      expect(typeof e.durationMs).toBe('number');
    }
    expect(byProto('connect')).toMatchObject({
      host: 'secure.test',
      port: sec.port,
      rule: `allow:secure.test:${sec.port}`,
    });
    expect(netFor('net.denied', 'evil.test')[0]).toMatchObject({
      protocol: 'socks5',
      rule: 'default-deny',
    });
  });

  it('python urllib over http and https', async () => {
    const code = [
      'import ssl, urllib.request',
      `print(urllib.request.urlopen("http://web.test:${web.port}/py").read().decode())`,
      'ctx = ssl.create_default_context(cafile="local-ca.txt")',
      `print(urllib.request.urlopen("https://secure.test:${sec.port}/pys", context=ctx).read().decode())`,
    ].join('\n');
    const r = await cell.run(['python3', '-c', code]);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('hello GET /py host=web.test');
    expect(r.stdout).toContain('hello GET /pys host=secure.test');
  });

  it('git clone over http and https of a local bare repo', async () => {
    const r = await sh(
      cell,
      [
        'set -e; cd ~',
        `git clone -q http://web.test:${web.port}/git/repo.git plain`,
        `GIT_SSL_CAINFO=$OLDPWD/local-ca.txt git clone -q https://secure.test:${sec.port}/git/repo.git tls`,
        `cat plain/${REPO_FILE} tls/${REPO_FILE}`,
      ].join('\n'),
      { GIT_TERMINAL_PROMPT: '0' },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(REPO_TEXT + REPO_TEXT);
    expect(web.urls).toContain('/git/repo.git/info/refs?service=git-upload-pack');
    expect(sec.urls).toContain('/git/repo.git/info/refs?service=git-upload-pack');
  });

  it('npm view against a local registry over https', async () => {
    const r = await cell.run(
      [
        'npm',
        'view',
        PACKAGE_NAME,
        'version',
        '--registry',
        `https://secure.test:${sec.port}/npm/`,
        '--cafile',
        'local-ca.txt',
      ],
      {
        env: {
          npm_config_update_notifier: 'false',
          npm_config_fetch_retries: '0',
          npm_config_audit: 'false',
        },
      },
    );
    expect(r.stderr).toBe('');
    expect(r.stdout.trim()).toBe(PACKAGE_VERSION);
    expect(sec.urls).toContain(`/npm/${PACKAGE_NAME}`);
  });

  it('denies hosts, ports, apex-of-wildcard and deny-over-allow with 403 and a reason; records each', async () => {
    const W = web.port;
    const cases: {
      url: string;
      host: string;
      port: number;
      status: number;
      rule?: RegExp | string;
      reason?: RegExp;
    }[] = [
      {
        url: `http://a.wild.test:${W}/w1`,
        host: 'a.wild.test',
        port: W,
        status: 200,
        rule: `allow:*.wild.test:${W}`,
      },
      {
        url: `http://deep.b.wild.test:${W}/w2`,
        host: 'deep.b.wild.test',
        port: W,
        status: 200,
        rule: `allow:*.wild.test:${W}`,
      },
      {
        url: `http://evil.test:${W}/d1`,
        host: 'evil.test',
        port: W,
        status: 403,
        rule: 'default-deny',
        reason: /evil\.test is not in network\.allow/,
      },
      {
        url: `http://web.test:${echo.port}/d2`,
        host: 'web.test',
        port: echo.port,
        status: 403,
        rule: 'default-deny',
        reason: new RegExp(`port ${echo.port} is not allowed for web\\.test`),
      },
      {
        url: `http://wild.test:${W}/d3`,
        host: 'wild.test',
        port: W,
        status: 403,
        rule: 'default-deny',
        reason: /wild\.test is not in network\.allow/,
      },
      {
        url: `http://bad.wild.test:${W}/d4`,
        host: 'bad.wild.test',
        port: W,
        status: 403,
        rule: 'deny:bad.wild.test',
        reason: /denied by network\.deny/,
      },
    ];
    const script = cases.map((c) => `curl -sS -i --max-time 10 ${c.url}; echo; echo @@`).join('\n');
    const before = events.length;
    const r = await sh(cell, script);
    const answers = r.stdout.split('@@\n');
    for (const [i, c] of cases.entries()) {
      const a = answers[i]!;
      expect(a, c.url).toMatch(new RegExp(`^HTTP/1\\.1 ${c.status}`));
      if (c.status === 403) {
        // The denial note's words (src/policy/denialText.ts), in the header and the body.
        const line = `nanocell: blocked connect to ${c.host}:${c.port} (`;
        expect(a, c.url).toContain(`\nX-Nanocell-Deny-Reason: ${line}`);
        expect(a, c.url).toContain(`\r\n\r\n${line}`);
      }
    }
    const find = (c: (typeof cases)[number]) =>
      net(c.status === 200 ? 'net.allowed' : 'net.denied')
        .filter((e) => events.indexOf(e) >= before)
        .find(
          (e) =>
            e.type === (c.status === 200 ? 'net.allowed' : 'net.denied') &&
            e.host === c.host &&
            e.port === c.port,
        );
    await waitFor(events, () => cases.every((c) => find(c)), 'one event per case');
    for (const [i, c] of cases.entries()) {
      const e = find(c);
      expect(e, c.url).toMatchObject({ protocol: 'http', rule: c.rule });
      if (c.reason) expect(e!.reason, c.url).toMatch(c.reason);
      if (c.reason)
        expect(answers[i], c.url).toContain(
          egressDenialLine({ host: c.host, port: c.port, rule: e!.rule, reason: e!.reason }),
        );
    }
    // Refused names were never resolved nor connected to.
    expect(web.urls.filter((u) => /^\/d\d$/.test(u))).toEqual([]);
  });

  it('refuses private and metadata addresses after resolution, and IP literals without a CIDR rule', async () => {
    const W = web.port;
    const cases: { url: string; status: number; rule: string | RegExp }[] = [
      // An allowed name that the host's resolver maps to loopback: refused, never connected.
      { url: `http://localhost:${canary.port}/loop`, status: 403, rule: 'special:loopback' },
      { url: `http://127.0.0.2:${W}/lit-ok`, status: 200, rule: `cidr:127.0.0.2/32:${W}` },
      { url: `http://127.0.0.3:${sec.port}/lit-port`, status: 403, rule: 'ip-literal' },
      { url: `http://127.0.0.5:${W}/lit-none`, status: 403, rule: 'ip-literal' },
      { url: `http://127.0.0.1:${canary.port}/lit-loop`, status: 403, rule: 'ip-literal' },
      {
        url: 'http://169.254.169.254/latest/meta-data/',
        status: 403,
        rule: 'special:cloud-metadata',
      },
      // IPv4-mapped IPv6: an IPv6 range admits it, then the embedded IPv4 address is checked.
      {
        url: `http://[::ffff:127.0.0.2]:${W}/mapped-ok`,
        status: 200,
        rule: `cidr:[::ffff:0:0/96]:${W}`,
      },
      { url: `http://[::ffff:127.0.0.1]:${W}/mapped-loop`, status: 403, rule: 'special:loopback' },
      {
        url: `http://[::ffff:169.254.169.254]:${W}/mapped-meta`,
        status: 403,
        rule: 'special:cloud-metadata',
      },
      { url: `http://[::1]:${W}/v6-loop`, status: 403, rule: 'ip-literal' },
    ];
    // --noproxy '' makes curl use the proxy even for names NO_PROXY lists (localhost, 127.0.0.1).
    const script = cases
      .map((c) => `curl -sS -i --noproxy '' --max-time 10 '${c.url}'; echo; echo @@`)
      .join('\n');
    const before = events.length;
    const r = await sh(cell, script);
    const answers = r.stdout.split('@@\n');
    for (const [i, c] of cases.entries()) {
      expect(answers[i], c.url).toMatch(new RegExp(`^HTTP/1\\.1 ${c.status}`));
      if (c.status === 403) expect(answers[i], c.url).toMatch(/^X-Nanocell-Deny-Reason: /m);
    }
    await waitFor(events, (all) => all.length - before >= cases.length, 'events for every case');
    const mine = events.slice(before).filter(isNet);
    for (const c of cases) {
      const e = mine.find(
        (x) => x.rule === c.rule && x.type === (c.status === 200 ? 'net.allowed' : 'net.denied'),
      );
      expect(e, `${c.url} → ${c.rule}; have ${JSON.stringify(mine)}`).toBeDefined();
    }
    const meta = mine.find((x) => x.host === '169.254.169.254')!;
    expect(meta).toMatchObject({ type: 'net.denied', port: 80, rule: 'special:cloud-metadata' });
    expect(mine.find((x) => x.host === 'localhost')).toMatchObject({
      type: 'net.denied',
      ip: '127.0.0.1',
      rule: 'special:loopback',
    });
    expect(canary.connections()).toBe(0);
    expect(web.urls).toContain('/lit-ok');
    expect(web.urls).toContain('/mapped-ok');
    expect(web.urls.filter((u) => /mapped-(loop|meta)|lit-(port|none)|v6-loop/.test(u))).toEqual(
      [],
    );
  });

  it('refuses at load a pin to the metadata address that only a broad range covers', async () => {
    const sb = makeSandbox();
    try {
      const network = {
        allow: ['meta.test'],
        hosts: { 'meta.test': '169.254.169.254' },
        cidrs: ['169.254.0.0/16'],
      };
      await expect(
        Cell.create({
          policy: resolvePolicy(parsePolicy({ network })),
          workspace: sb.project,
          stateRoot: sb.stateRoot,
        }),
      ).rejects.toThrow(/network\.hosts: meta\.test → 169\.254\.169\.254: .*cloud-metadata/);
    } finally {
      sb.cleanup();
    }
  });

  it('moves 50 MiB down and 8 MiB up through the proxy with exact byte counts', async () => {
    const n = 50 * MiB;
    const up = 8 * MiB;
    const before = events.length;
    const r = await sh(
      cell,
      [
        `curl -sS -o /dev/null -w '%{http_code} %{size_download}\\n' http://web.test:${web.port}/big?n=${n}`,
        `env -u HTTP_PROXY -u http_proxy curl -sS -o /dev/null -w '%{http_code} %{size_download}\\n' http://web.test:${web.port}/big?n=${n}`,
        `head -c ${up} /dev/zero | curl -sS --data-binary @- http://web.test:${web.port}/sink; echo`,
      ].join('\n'),
    );
    expect(r.stdout.split('\n').slice(0, 3)).toEqual([`200 ${n}`, `200 ${n}`, `received ${up}`]);
    await waitFor(web.bulk, (b) => b.length >= 3, 'three bulk connections closed');
    // A plain-HTTP event is emitted once both of its connections are closed, which can be
    // after the command's own events: wait for the three net events themselves.
    await waitFor(
      events,
      (all) => all.slice(before).filter((e) => e.type === 'net.allowed').length >= 3,
      'three bulk events',
    );
    const mine = events.slice(before).filter((e): e is NetCellEvent => e.type === 'net.allowed');
    // Each proxied upstream connection is one server socket: the proxy counts exactly what it moved.
    for (const b of web.bulk.slice(-3)) {
      const e = mine.find((x) => x.bytesDown === b.written && x.bytesUp === b.read);
      expect(e, `${b.url} ${JSON.stringify(b)} in ${JSON.stringify(mine)}`).toBeDefined();
    }
    expect(
      mine
        .filter((e) => (e.bytesDown as number) > n)
        .map((e) => e.protocol)
        .sort(),
    ).toEqual(['http', 'socks5']);
    expect(mine.some((e) => (e.bytesUp as number) > up)).toBe(true);
  });

  it('sustains 100 concurrent tunnels from one cell', async () => {
    const before = netFor('net.allowed', 'echo.test').length;
    const code = [
      'import socket, threading',
      'N = 100',
      'barrier = threading.Barrier(N)',
      'ok = []',
      'errors = []',
      'def one(i):',
      '    try:',
      '        s = socket.create_connection(("127.0.0.1", 3128), timeout=30)',
      `        s.sendall(b"CONNECT echo.test:${echo.port} HTTP/1.1\\r\\nHost: echo.test\\r\\n\\r\\n")`,
      '        head = b""',
      '        while not head.endswith(b"\\r\\n\\r\\n"):',
      '            c = s.recv(1)',
      '            if not c: raise OSError("closed during CONNECT")',
      '            head += c',
      '        assert head.startswith(b"HTTP/1.1 200"), head',
      '        barrier.wait(timeout=30)  # all tunnels are open at once',
      '        msg = (f"ping {i} " * 2000).encode()',
      '        s.sendall(msg)',
      '        got = b""',
      '        while len(got) < len(msg):',
      '            c = s.recv(65536)',
      '            if not c: break',
      '            got += c',
      '        assert got == msg',
      '        barrier.wait(timeout=30)  # all 100 have echoed before any closes',
      '        s.close()',
      '        ok.append(i)',
      '    except Exception as e:',
      '        errors.append(repr(e))',
      'ts = [threading.Thread(target=one, args=(i,)) for i in range(N)]',
      '[t.start() for t in ts]',
      '[t.join() for t in ts]',
      'print(len(ok), errors[:3])',
    ].join('\n');
    const r = await cell.run(['python3', '-c', code]);
    expect(r.stdout.trim()).toBe('100 []');
    expect(echo.maxConcurrent()).toBeGreaterThanOrEqual(100);
    await waitFor(
      events,
      () => netFor('net.allowed', 'echo.test').length - before >= 100,
      '100 tunnel events',
    );
    for (const e of netFor('net.allowed', 'echo.test').slice(before)) {
      expect(e.protocol).toBe('connect');
      expect(e.bytesUp).toBe(e.bytesDown); // an echo returns what it got
    }
  });
});
