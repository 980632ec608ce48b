// Transparent capture against the explicit proxy and direct loopback, side by side in one run,
// and the DNS stub's answer time. Root only (it starts a cell).
//
// Paths, all to the same servers (a separate node process on 127.0.0.8):
//   direct       host client ─────────────────────────────────────────────► server
//   explicit     cell client ─► 127.0.0.1:3128 (HTTP proxy / CONNECT) ─► proxy ─► server
//   transparent  cell client ─► fake address of the name ─(TPROXY)─► proxy ─► server
// The cell client resolves the name once through the stub (the DNS cost is measured apart,
// as `dns`: UDP queries to 127.0.0.1:53 answered by the stub in the supervisor).
//
// Run: npm run build:native && node --import ./bench/register.mjs bench/transparent.ts
// (not yet part of `npm run bench`). On a shared 2-core machine the paths vary several-fold
// between runs; compare them within one run.
// Env: REQUESTS (400, split over ROUNDS), ROUNDS (5), BULK_MIB (128 per round), DNS (2000).
import fs from 'node:fs';
import path from 'node:path';
import { Cell } from '../src/cell/cell.js';
import { parsePolicy, resolvePolicy } from '../src/policy/load.js';
import {
  benchDir,
  clientInCell,
  clientOnHost,
  fixed as f,
  medianRound,
  SERVER_IP,
  startBenchServers,
} from './suite/netBench.js';

const REQUESTS = Number(process.env.REQUESTS ?? 400);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const BULK_MIB = Number(process.env.BULK_MIB ?? 128);
const DNS = Number(process.env.DNS ?? 2000);
// argv: path(direct|explicit|transparent) mode host port n
const CLIENT = String.raw`
import json, socket, struct, sys, time
path, mode, host, port, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
PROXY = ("127.0.0.1", 3128)
if path == "direct": target = ("${SERVER_IP}", port)
elif path == "transparent": target = (socket.getaddrinfo(host, port, socket.AF_INET)[0][4][0], port)
else: target = PROXY

def pct(xs):
    xs = sorted(xs)
    return {"p50": xs[len(xs) // 2] * 1000, "p95": xs[int(len(xs) * 0.95)] * 1000, "n": len(xs)}

def open_stream():
    s = socket.create_connection(target)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if path == "explicit":
        s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (host.encode(), port, host.encode()))
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += s.recv(1)
        assert head.startswith(b"HTTP/1.1 200"), head
    return s

if mode == "http":
    uri = "http://%s:%d/x" % (host, port) if path == "explicit" else "/x"
    req = b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n" % (uri.encode(), host.encode(), port)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        s = socket.create_connection(target)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.sendall(req)
        body = b""
        while True:
            c = s.recv(65536)
            if not c: break
            body += c
        s.close()
        times.append(time.perf_counter() - t)
        assert body.startswith(b"HTTP/1.1 200") and body.endswith(b"ok"), body[:200]
    print(json.dumps(pct(times)))
elif mode == "bulk":
    s = open_stream()
    t = time.perf_counter()
    s.sendall(b"%d\n" % n)
    got = 0
    buf = bytearray(1 << 20)
    while True:
        k = s.recv_into(buf)
        if not k: break
        got += k
    secs = time.perf_counter() - t
    assert got == n, (got, n)
    print(json.dumps({"bytes": got, "seconds": secs, "MiBps": got / secs / (1 << 20)}))
elif mode == "dns":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", 53))
    qname = b"".join(bytes([len(l)]) + l for l in host.encode().split(b".")) + b"\0"
    times = []
    for i in range(n):
        q = struct.pack(">HHHHHH", i & 0xffff, 0x0100, 1, 0, 0, 0) + qname + b"\0\x01\0\x01"
        t = time.perf_counter()
        s.send(q)
        r = s.recv(512)
        times.append(time.perf_counter() - t)
        assert r[:2] == q[:2] and r[3] & 15 == 0, r
    print(json.dumps(pct(times)))
`;

type Json = Record<string, number>;

async function main() {
  const { base, project } = benchDir('transparent');
  const servers = startBenchServers(['http', 'source'] as const);
  let cell: Cell | undefined;
  try {
    const ports = await servers.ports;
    const network = {
      allow: [`web.test:${ports.http}`, `source.test:${ports.source}`],
      hosts: { 'web.test': SERVER_IP, 'source.test': SERVER_IP },
      cidrs: [`${SERVER_IP}/32`],
    };
    const policy = resolvePolicy(
      parsePolicy({ network, limits: { timeout: '30m', memory: '1g', cpus: 2 } }),
    );
    cell = await Cell.create({ policy, workspace: project, stateRoot: path.join(base, 'state') });
    const c = cell;
    const run = (p: string, args: string[]): Promise<Json> =>
      p === 'direct'
        ? clientOnHost<Json>(CLIENT, [p, ...args])
        : clientInCell<Json>(c, CLIENT, [p, ...args]);
    const names = ['direct', 'explicit', 'transparent'] as const;
    const http: Record<string, Json[]> = { direct: [], explicit: [], transparent: [] };
    const bulk: Record<string, Json[]> = { direct: [], explicit: [], transparent: [] };
    for (const p of names) await run(p, ['http', 'web.test', String(ports.http), '30']);
    const perRound = String(Math.max(1, Math.round(REQUESTS / ROUNDS)));
    const bytes = String(BULK_MIB * 1024 * 1024);
    for (let i = 0; i < ROUNDS; i++) {
      for (const p of names) {
        http[p]!.push(await run(p, ['http', 'web.test', String(ports.http), perRound]));
        bulk[p]!.push(await run(p, ['bulk', 'source.test', String(ports.source), bytes]));
      }
    }
    const dns = await run('transparent', ['dns', 'web.test', '53', String(DNS)]);
    const results = Object.fromEntries(
      names.map((p) => [
        p,
        { http: medianRound(http[p]!, 'p50'), bulk: medianRound(bulk[p]!, 'MiBps') },
      ]),
    ) as Record<(typeof names)[number], { http: Json; bulk: Json }>;
    const summary = {
      transparentAddedOverExplicitP50Ms: results.transparent.http.p50! - results.explicit.http.p50!,
      transparentBulkRatioOfDirect: results.transparent.bulk.MiBps! / results.direct.bulk.MiBps!,
      explicitBulkRatioOfDirect: results.explicit.bulk.MiBps! / results.direct.bulk.MiBps!,
      dnsStubP50Ms: dns.p50!,
      targets: { addedOverExplicitP50Ms: 0.3, bulkRatioOfDirect: 0.8, dnsStubP50Ms: 0.2 },
    };
    const out = {
      bench: 'transparent',
      params: { REQUESTS, ROUNDS, BULK_MIB, DNS },
      results,
      dns,
      summary,
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n\n`);
    const rows = [
      '| path | GET p50 ms | GET p95 ms | bulk MiB/s |',
      '| --- | --- | --- | --- |',
      ...names.map(
        (p) =>
          `| ${p} | ${f(results[p].http.p50)} | ${f(results[p].http.p95)} | ${f(results[p].bulk.MiBps, 0)} |`,
      ),
      '',
      `Transparent adds ${f(summary.transparentAddedOverExplicitP50Ms)} ms p50 per GET over the explicit proxy (target <= 0.3); ` +
        `bulk ${(summary.transparentBulkRatioOfDirect * 100).toFixed(0)}% of direct loopback (target >= 80%; explicit ${(summary.explicitBulkRatioOfDirect * 100).toFixed(0)}%); ` +
        `DNS stub p50 ${f(dns.p50)} ms, p95 ${f(dns.p95)} ms (target <= 0.2).`,
    ];
    process.stdout.write(`${rows.join('\n')}\n`);
  } finally {
    await cell?.destroy().catch((e: Error) => process.stderr.write(`cell cleanup: ${e.message}\n`));
    servers.child.kill();
    fs.rmSync(base, { recursive: true, force: true });
  }
}

await main();
