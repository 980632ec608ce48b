// `nanocell proxy --serve`, for real: the tier runs as the CLI in its own network namespace,
// two tenants (simulated sandbox pods) call it from two more namespaces over veth links, and
// an upstream HTTP server sits in a fourth. Every address lives in namespaces this test makes.
// Each tenant must get only its own rules; a missing, unknown or borrowed token is refused
// and recorded; decisions stream back per tenant over the control socket.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, TEST_ROOT } from '../../helpers/cells.js';

const id = process.pid % 10000;
const NS = { proxy: `nct-p${id}`, a: `nct-a${id}`, b: `nct-b${id}`, up: `nct-u${id}` };
const ADDR = {
  proxyA: '10.213.1.1',
  a: '10.213.1.2',
  proxyB: '10.213.2.1',
  b: '10.213.2.2',
  proxyUp: '10.213.3.1',
  up: '10.213.3.2',
};
const CONTROL_TOKEN = 'c'.repeat(48);
const TOKEN_A = 'a1'.repeat(20);
const TOKEN_B = 'b2'.repeat(20);

let dir = '';
let controlSock = '';
const children: ChildProcess[] = [];

const ip = (...args: string[]) => execFileSync('ip', args, { stdio: 'pipe' });
const inNs = (ns: string, cmd: string[]) =>
  spawnSync('ip', ['netns', 'exec', ns, ...cmd], { encoding: 'utf8', timeout: 20_000 });

function link(nsA: string, addrA: string, nsB: string, addrB: string, name: string) {
  ip('link', 'add', `${name}x`, 'type', 'veth', 'peer', 'name', `${name}y`);
  ip('link', 'set', `${name}x`, 'netns', nsA);
  ip('link', 'set', `${name}y`, 'netns', nsB);
  ip('-n', nsA, 'addr', 'add', `${addrA}/30`, 'dev', `${name}x`);
  ip('-n', nsB, 'addr', 'add', `${addrB}/30`, 'dev', `${name}y`);
  ip('-n', nsA, 'link', 'set', `${name}x`, 'up');
  ip('-n', nsB, 'link', 'set', `${name}y`, 'up');
}

/** Starts a process in a namespace and waits for a line on stdout or stderr. */
function startIn(ns: string, cmd: string[], ready: RegExp, env: NodeJS.ProcessEnv = {}) {
  const child = spawn('ip', ['netns', 'exec', ns, ...cmd], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let out = '';
  return new Promise<ChildProcess>((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      if (ready.test(out)) resolve(child);
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${cmd.join(' ')} exited ${code}: ${out}`)));
  });
}

function control(
  method: string,
  p: string,
  body?: unknown,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        socketPath: controlSock,
        method,
        path: p,
        headers: { authorization: `Bearer ${CONTROL_TOKEN}`, 'content-type': 'application/json' },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** curl from a tenant's namespace; returns the HTTP status and body. */
function curl(ns: string, proxy: string, url: string, extra: string[] = []) {
  const r = inNs(ns, [
    'curl',
    '-s',
    '-m',
    '10',
    '-o',
    '-',
    '-w',
    '\n%{http_code}',
    '-x',
    proxy,
    ...extra,
    url,
  ]);
  const lines = r.stdout.trimEnd().split('\n');
  return { code: lines.pop() ?? '', body: lines.join('\n'), status: r.status };
}

/** The events of a tenant so far (the stream replays its backlog; read it for a moment). */
function events(tenant: string): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    const req = http.get(
      {
        socketPath: controlSock,
        path: `/v1/tenants/${tenant}/events`,
        headers: { authorization: `Bearer ${CONTROL_TOKEN}` },
      },
      (res) => {
        let text = '';
        res.on('data', (d) => (text += d));
        setTimeout(() => {
          req.destroy();
          resolve(
            text
              .split('\n')
              .filter(Boolean)
              .map((l) => JSON.parse(l)),
          );
        }, 300);
      },
    );
    req.on('error', (e) => (req.destroyed ? undefined : reject(e)));
  });
}

beforeAll(async () => {
  fs.mkdirSync(TEST_ROOT, { recursive: true });
  dir = fs.mkdtempSync(path.join(TEST_ROOT, 'tier-'));
  controlSock = path.join(dir, 'control.sock');
  for (const ns of Object.values(NS)) ip('netns', 'add', ns);
  link(NS.proxy, ADDR.proxyA, NS.a, ADDR.a, `nc${id}a`);
  link(NS.proxy, ADDR.proxyB, NS.b, ADDR.b, `nc${id}b`);
  link(NS.proxy, ADDR.proxyUp, NS.up, ADDR.up, `nc${id}u`);
  await startIn(
    NS.up,
    [
      process.execPath,
      '-e',
      `require('http').createServer((q,s)=>s.end(JSON.stringify({url:q.url,proxyAuth:q.headers['proxy-authorization']??null}))).listen(8080,'${ADDR.up}',()=>console.log('up'))`,
    ],
    /up/,
  );
  await startIn(
    NS.proxy,
    [
      process.execPath,
      CLI,
      'proxy',
      '--serve',
      '--listen',
      '0.0.0.0:3128',
      '--control',
      controlSock,
    ],
    /"listening"/,
    { NANOCELL_PROXY_CONTROL_TOKEN: CONTROL_TOKEN },
  );
  const a = await control('PUT', '/v1/tenants/claim-a', {
    token: TOKEN_A,
    podIPs: [ADDR.a],
    network: { allow: [`${ADDR.up}:8080`] },
  });
  const b = await control('PUT', '/v1/tenants/claim-b', {
    token: TOKEN_B,
    podIPs: [ADDR.b],
    network: { allow: [] },
  });
  expect([a.status, b.status]).toEqual([201, 201]);
}, 60_000);

afterAll(async () => {
  for (const c of children) c.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 200));
  for (const ns of Object.values(NS)) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('proxy tier (two tenants in network namespaces)', () => {
  const proxyA = (token: string) => `http://claim-a:${token}@${ADDR.proxyA}:3128`;
  const upstream = `http://${ADDR.up}:8080/hello`;

  it('tenant A reaches what its rules allow, over HTTP, CONNECT and SOCKS5; the token never reaches the upstream', () => {
    const plain = curl(NS.a, proxyA(TOKEN_A), upstream);
    expect(plain.code).toBe('200');
    expect(JSON.parse(plain.body)).toEqual({ url: '/hello', proxyAuth: null });
    expect(curl(NS.a, proxyA(TOKEN_A), upstream, ['--proxytunnel']).code).toBe('200');
    expect(curl(NS.a, `socks5h://claim-a:${TOKEN_A}@${ADDR.proxyA}:3128`, upstream).code).toBe(
      '200',
    );
  });

  it('tenant B gets only its own rules: the same destination is denied for it', () => {
    const r = curl(NS.b, `http://claim-b:${TOKEN_B}@${ADDR.proxyB}:3128`, upstream);
    expect(r.code).toBe('403');
    expect(r.body).toContain('nanocell: blocked connect to ');
  });

  it('a missing, unknown or borrowed token is refused with 407 (SOCKS5: auth failure)', () => {
    expect(curl(NS.a, `http://${ADDR.proxyA}:3128`, upstream).code).toBe('407');
    expect(curl(NS.a, proxyA('x'.repeat(40)), upstream).code).toBe('407');
    // B's pod presenting A's token: right token, wrong source address.
    expect(curl(NS.b, `http://claim-a:${TOKEN_A}@${ADDR.proxyB}:3128`, upstream).code).toBe('407');
    const socks = curl(NS.b, `socks5h://claim-a:${TOKEN_A}@${ADDR.proxyB}:3128`, upstream);
    expect(socks.code).toBe('000');
  });

  it('each tenant streams its own decisions and the refusals from or for it', async () => {
    const a = await events('claim-a');
    const b = await events('claim-b');
    const allowedA = a.filter((e) => e.decision === 'allowed');
    expect(allowedA.map((e) => e.protocol).sort()).toEqual(['connect', 'http', 'socks5']);
    expect(allowedA.every((e) => e.tenant === 'claim-a' && e.ip === ADDR.up)).toBe(true);
    expect(a.filter((e) => e.rule === 'unauthenticated').length).toBe(2);
    expect(a.filter((e) => e.rule === 'wrong-source').length).toBe(2);
    const deniedB = b.filter((e) => e.decision === 'denied' && e.tenant === 'claim-b');
    expect(deniedB.some((e) => e.host === ADDR.up && e.rule !== 'wrong-source')).toBe(true);
    // B's stream sees the borrowed-token attempts from its pod, and nothing A was allowed.
    expect(b.filter((e) => e.rule === 'wrong-source').length).toBe(2);
    expect(b.some((e) => e.decision === 'allowed')).toBe(false);
  });

  it('the control API refuses a wrong token, a bad spec and loopback rules; delete ends a tenant', async () => {
    const bad = await new Promise<number>((resolve) => {
      http
        .request(
          {
            socketPath: controlSock,
            method: 'GET',
            path: '/v1/health',
            headers: { authorization: 'Bearer nope' },
          },
          (r) => resolve(r.statusCode ?? 0),
        )
        .end();
    });
    expect(bad).toBe(401);
    expect(
      (await control('PUT', '/v1/tenants/claim-c', { token: 'short', podIPs: ['10.213.9.9'] }))
        .status,
    ).toBe(422);
    const lo = await control('PUT', '/v1/tenants/claim-c', {
      token: 'd'.repeat(40),
      podIPs: ['10.213.9.9'],
      network: { cidrs: ['127.0.0.0/8'] },
    });
    expect(lo.status).toBe(422);
    expect(lo.text).toContain('loopback');
    expect((await control('DELETE', '/v1/tenants/claim-a')).status).toBe(204);
    expect(curl(NS.a, proxyA(TOKEN_A), upstream).code).toBe('407');
    expect((await control('DELETE', '/v1/tenants/claim-a')).status).toBe(404);
  });
});
