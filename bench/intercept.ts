// What brokering a secret costs: the per-cell CA's set-up, and the latency a TLS-intercepted
// request adds over the plain tunnel, side by side in one run, host side (no cell: the proxy
// is the same code the cell's supervisor runs). One keep-alive connection per path; the first
// request (handshakes) is left out of the p50.
//
// Run: node --import ./bench/register.mjs bench/intercept.ts   (env: REQUESTS=2000, CAS=50)
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { compileNetRules } from '../src/net/rules.js';
import { startEgressProxy } from '../src/net/proxy.js';
import { SecretBroker, readSecrets } from '../src/net/secrets.js';
import { CellCa, TlsInterceptor } from '../src/net/tlsIntercept.js';
import { secretEntry } from '../src/policy/secrets.js';

const REQUESTS = Number(process.env.REQUESTS ?? 2000);
const CAS = Number(process.env.CAS ?? 50);
const IP = '127.0.0.9';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-intercept-'));
const keyFile = path.join(dir, 'k.pem');
const certFile = path.join(dir, 'c.pem');
execFileSync(
  'openssl',
  [
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'],
    ...['-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=plain.bench'],
    ...['-addext', 'subjectAltName=DNS:plain.bench,DNS:secret.bench'],
  ],
  { stdio: 'ignore' },
);
process.env.NODE_EXTRA_CA_CERTS = certFile;
const server = https.createServer(
  { key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) },
  (_q, r) => r.end('ok'),
);
await new Promise<void>((r) => server.listen(0, IP, r));
const port = (server.address() as { port: number }).port;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// 1. CA set-up: the first pays for loading @peculiar/x509; the figure is the median after it.
const caTimes: number[] = [];
let leafMs = 0;
for (let i = 0; i <= CAS; i++) {
  const t = performance.now();
  const ca = await CellCa.create(`bench${i}`);
  const made = performance.now() - t;
  if (i > 0) caTimes.push(made);
  if (i === 1) {
    const l = performance.now();
    await ca.contextFor('secret.bench');
    leafMs = performance.now() - l;
  }
}

// 2. Latency: one proxy, two hosts; only secret.bench is intercepted.
const rules = compileNetRules({
  allow: [`plain.bench:${port}`, `secret.bench:${port}`],
  deny: [],
  cidrs: [`${IP}/32`],
  hosts: { 'plain.bench': IP, 'secret.bench': IP },
});
process.env.BENCH_KEY = 'sk-bench-0123456789abcdefghij';
const secrets = readSecrets(
  [
    secretEntry({
      name: 'K',
      from: { env: 'BENCH_KEY' },
      hosts: ['secret.bench'],
      header: 'x-api-key',
    }),
  ],
  process.env,
);
const broker = new SecretBroker(secrets, () => undefined);
const ca = await CellCa.create('bench');
const proxy = await startEgressProxy({
  rules,
  onEvent: () => undefined,
  secrets: { broker, interceptor: new TlsInterceptor(ca, broker) },
});
const { port: proxyPort } = await proxy.listen({ host: '127.0.0.1', port: 0 });

async function connectThrough(host: string, trust: string): Promise<tls.TLSSocket> {
  const raw = await new Promise<import('node:net').Socket>((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: proxyPort,
      method: 'CONNECT',
      path: `${host}:${port}`,
    });
    req.on('connect', (res, socket) =>
      res.statusCode === 200 ? resolve(socket) : reject(new Error(`CONNECT ${res.statusCode}`)),
    );
    req.on('error', reject);
    req.end();
  });
  return tls.connect({ socket: raw, servername: host, ca: trust, ALPNProtocols: ['http/1.1'] });
}

async function latencies(
  host: string,
  trust: string,
  headers: Record<string, string>,
): Promise<number[]> {
  const sock = await connectThrough(host, trust);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  (agent as unknown as { createConnection: () => tls.TLSSocket }).createConnection = () => sock;
  const out: number[] = [];
  for (let i = 0; i <= REQUESTS; i++) {
    const t = performance.now();
    await new Promise<void>((resolve, reject) => {
      const req = http.request({ host, port, path: '/v1/x', agent, headers }, (res) => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      req.end();
    });
    if (i > 0) out.push(performance.now() - t);
  }
  sock.destroy();
  return out;
}

const serverCa = fs.readFileSync(certFile, 'utf8');
const plain: number[] = [];
const intercepted: number[] = [];
for (let round = 0; round < 4; round++) {
  plain.push(median(await latencies('plain.bench', serverCa, {})));
  intercepted.push(
    median(await latencies('secret.bench', ca.certPem, { 'x-api-key': secrets[0]!.placeholder })),
  );
}
const result = {
  caSetupMsP50: +median(caTimes).toFixed(3),
  firstLeafMs: +leafMs.toFixed(3),
  plainTunnelP50Ms: +median(plain).toFixed(3),
  interceptedP50Ms: +median(intercepted).toFixed(3),
  addedP50Ms: +(median(intercepted) - median(plain)).toFixed(3),
  requests: REQUESTS,
};
console.log(JSON.stringify(result, null, 2));
await proxy.close();
server.close();
fs.rmSync(dir, { recursive: true, force: true });
