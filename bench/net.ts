// Egress cost, measured from inside a real cell against direct loopback in the same run.
// Root only (it starts a cell).
//
// Paths, all to the same servers (a separate node process on 127.0.0.8):
//   direct  host client ──────────────────────────────────────────────► server
//   proxy   host client ──► proxy (TCP listener on the host) ─────────► server
//   cell    cell client ──► 127.0.0.1:3128 ─(init bridge)─► proxy.sock ─► proxy ─► server
// "proxy" isolates the proxy; "cell" adds init's bridge and the unix socket.
// The cell gets both cores (cpus: 2): the default 1-core quota would throttle the client and
// init together while the host-side clients run unlimited.
// The client is the same python script everywhere (/usr/bin/python3, as in the cell).
//
// Run: npx tsc -p tsconfig.json --outDir /tmp/nc-bench &&
//      NANOCELL_NATIVE_DIR=$PWD/native/build node /tmp/nc-bench/bench/net.js
// Env: REQUESTS (500, split over ROUNDS), ROUNDS (5: latency and bulk alternate between the
// paths and report the median round), RTTS (2000), BULK_MIB (256 per round), CONC (100),
// CONC_ROUNDS (200).
// Prints one JSON document, then a markdown table.
import fs from 'node:fs';
import path from 'node:path';
import { Cell } from '../src/cell/cell.js';
import { compileNetRules } from '../src/net/rules.js';
import { startEgressProxy } from '../src/net/proxy.js';
import { parsePolicy, resolvePolicy } from '../src/policy/load.js';
import {
  benchDir,
  clientInCell,
  clientOnHost,
  fixed as f,
  medianRound,
  SERVER_IP,
  startBenchServers,
  type Json,
} from './suite/netBench.js';

const REQUESTS = Number(process.env.REQUESTS ?? 500);
const RTTS = Number(process.env.RTTS ?? 2000);
const BULK_MIB = Number(process.env.BULK_MIB ?? 256);
const CONC = Number(process.env.CONC ?? 100);
const CONC_ROUNDS = Number(process.env.CONC_ROUNDS ?? 200);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
// One client for every path. argv: proxy(host:port|none) mode target-host target-port [n [rounds]].
const CLIENT = String.raw`
import json, socket, sys, threading, time
proxy, mode, host, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
n = int(sys.argv[5]) if len(sys.argv) > 5 else 0
direct = proxy == "none"
addr = (host, port) if direct else (proxy.split(":")[0], int(proxy.split(":")[1]))
connect_ip = {"web.test": "${SERVER_IP}", "echo.test": "${SERVER_IP}", "source.test": "${SERVER_IP}"}

def read_head(s):
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        c = s.recv(1)
        if not c: raise OSError("closed in CONNECT")
        head += c
    if not head.startswith(b"HTTP/1.1 200"): raise OSError(head.split(b"\r\n")[0].decode())

def tunnel():
    if direct:
        s = socket.create_connection((connect_ip[host], port))
    else:
        s = socket.create_connection(addr)
        s.sendall(b"CONNECT %s:%d HTTP/1.1\r\nHost: %s\r\n\r\n" % (host.encode(), port, host.encode()))
        read_head(s)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s

def pct(xs):
    xs = sorted(xs)
    return {"p50": xs[len(xs) // 2] * 1000, "p95": xs[int(len(xs) * 0.95)] * 1000, "n": len(xs)}

def recv_exact(s, k):
    got = 0
    while got < k:
        c = s.recv(k - got)
        if not c: raise OSError("short read")
        got += len(c)

if mode == "http":
    # One GET per fresh connection, as most clients behind a proxy do for a new host.
    target = "/x" if direct else "http://%s:%d/x" % (host, port)
    req = b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n" % (target.encode(), host.encode(), port)
    times = []
    for _ in range(n):
        t = time.perf_counter()
        s = socket.create_connection((connect_ip[host], port) if direct else addr)
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
elif mode == "rtt":
    s = tunnel()
    msg = b"x" * 64
    times = []
    for _ in range(n):
        t = time.perf_counter()
        s.sendall(msg)
        recv_exact(s, 64)
        times.append(time.perf_counter() - t)
    print(json.dumps(pct(times)))
elif mode == "bulk":
    s = tunnel()
    t = time.perf_counter()
    s.sendall(b"%d\n" % n)
    got = 0
    buf = bytearray(1 << 20)
    while True:
        k = s.recv_into(buf)
        if not k: break
        got += k
    secs = time.perf_counter() - t
    print(json.dumps({"bytes": got, "seconds": secs, "MiBps": got / secs / (1 << 20)}))
elif mode == "conc":
    conc, rounds = n, int(sys.argv[6])
    barrier = threading.Barrier(conc)
    times, errors = [], []
    lock = threading.Lock()
    def one(i):
        try:
            s = tunnel()
            barrier.wait(timeout=60)
            mine = []
            for _ in range(rounds):
                t = time.perf_counter()
                s.sendall(b"y" * 256)
                recv_exact(s, 256)
                mine.append(time.perf_counter() - t)
            barrier.wait(timeout=60)
            s.close()
            with lock: times.extend(mine)
        except Exception as e:
            with lock: errors.append(repr(e))
            barrier.abort()
    t = time.perf_counter()
    ts = [threading.Thread(target=one, args=(i,)) for i in range(conc)]
    for x in ts: x.start()
    for x in ts: x.join()
    secs = time.perf_counter() - t
    r = pct(times) if times else {}
    r.update({"connections": conc, "ok": conc - len(errors), "errors": errors[:3], "roundTrips": len(times), "seconds": secs, "roundTripsPerSec": len(times) / secs})
    print(json.dumps(r))
`;

async function main() {
  const { base, project } = benchDir('net');
  const servers = startBenchServers(['http', 'echo', 'source'] as const);
  let cell: Cell | undefined;
  let proxy: Awaited<ReturnType<typeof startEgressProxy>> | undefined;
  try {
    const ports = await servers.ports;
    const network = {
      allow: [`web.test:${ports.http}`, `echo.test:${ports.echo}`, `source.test:${ports.source}`],
      hosts: { 'web.test': SERVER_IP, 'echo.test': SERVER_IP, 'source.test': SERVER_IP },
      cidrs: [`${SERVER_IP}/32`],
    };
    const policy = resolvePolicy(
      parsePolicy({ network, limits: { timeout: '30m', memory: '1g', cpus: 2 } }),
    );
    let proxyEvents = 0;
    let cellEvents = 0;
    proxy = await startEgressProxy({
      rules: compileNetRules(policy.network),
      socketPath: path.join(base, 'bench-proxy.sock'),
      onEvent: () => proxyEvents++,
    });
    const hostProxy = await proxy.listen({ host: '127.0.0.1', port: 0 });
    cell = await Cell.create({
      policy,
      workspace: project,
      stateRoot: path.join(base, 'state'),
      onEvent: (e) => {
        if (e.type.startsWith('net.')) cellEvents++;
      },
    });
    const c = cell;

    const onHost = (args: string[]) => clientOnHost(CLIENT, args);
    const inCell = (args: string[]) => clientInCell(c, CLIENT, args);
    const paths = {
      direct: (args: string[]) => onHost(['none', ...args]),
      proxy: (args: string[]) => onHost([`127.0.0.1:${hostProxy.port}`, ...args]),
      cell: (args: string[]) => inCell(['127.0.0.1:3128', ...args]),
    };
    const bulkBytes = BULK_MIB * 1024 * 1024;
    const results: Record<string, Record<string, Json>> = {};
    // Latency and throughput alternate between the paths over ROUNDS rounds and report the
    // median round: on a shared 2-core machine a single run per path mostly measures what else
    // happened to be running at that moment.
    const httpRounds: Record<string, Json[]> = { direct: [], proxy: [], cell: [] };
    const bulkRounds: Record<string, Json[]> = { direct: [], proxy: [], cell: [] };
    for (const run of Object.values(paths))
      await run(['http', 'web.test', String(ports.http), '50']);
    const perRound = String(Math.max(1, Math.round(REQUESTS / ROUNDS)));
    for (let i = 0; i < ROUNDS; i++) {
      for (const [name, run] of Object.entries(paths)) {
        httpRounds[name]!.push(await run(['http', 'web.test', String(ports.http), perRound]));
        bulkRounds[name]!.push(
          await run(['bulk', 'source.test', String(ports.source), String(bulkBytes)]),
        );
      }
    }
    for (const [name, run] of Object.entries(paths)) {
      results[name] = {
        http: medianRound(httpRounds[name]!, 'p50'),
        rtt: await run(['rtt', 'echo.test', String(ports.echo), String(RTTS)]),
        bulk: medianRound(bulkRounds[name]!, 'MiBps'),
        conc: await run([
          'conc',
          'echo.test',
          String(ports.echo),
          String(CONC),
          String(CONC_ROUNDS),
        ]),
      };
    }
    const r = results as Record<
      'direct' | 'proxy' | 'cell',
      Record<'http' | 'rtt' | 'bulk' | 'conc', Record<string, number>>
    >;
    const summary = {
      addedHttpP50Ms: r.cell.http.p50! - r.direct.http.p50!,
      addedHttpP95Ms: r.cell.http.p95! - r.direct.http.p95!,
      addedRttP50Ms: r.cell.rtt.p50! - r.direct.rtt.p50!,
      throughputRatio: r.cell.bulk.MiBps! / r.direct.bulk.MiBps!,
      throughputRatioProxyOnly: r.proxy.bulk.MiBps! / r.direct.bulk.MiBps!,
      concurrentOk: r.cell.conc.ok!,
      targets: { addedHttpP50BelowMs: 1, throughputRatioAtLeast: 0.5, concurrent: CONC },
      proxyEvents,
      cellNetEvents: cellEvents,
    };
    const out = {
      bench: 'net',
      params: { REQUESTS, ROUNDS, RTTS, BULK_MIB, CONC, CONC_ROUNDS },
      results,
      summary,
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n\n`);
    const rows = [
      '| path | GET p50 ms | GET p95 ms | RTT p50 ms | RTT p95 ms | bulk MiB/s | 100 conns ok | conc RTT p50 ms | conc RTT p95 ms | conc round trips/s |',
      '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
      ...(['direct', 'proxy', 'cell'] as const).map((p) => {
        const x = r[p];
        return `| ${p} | ${f(x.http.p50)} | ${f(x.http.p95)} | ${f(x.rtt.p50)} | ${f(x.rtt.p95)} | ${f(x.bulk.MiBps, 0)} | ${x.conc.ok}/${CONC} | ${f(x.conc.p50)} | ${f(x.conc.p95)} | ${f(x.conc.roundTripsPerSec, 0)} |`;
      }),
      '',
      `Added per GET through the cell's proxy: p50 ${f(summary.addedHttpP50Ms)} ms (target < 1), p95 ${f(summary.addedHttpP95Ms)} ms; ` +
        `bulk through the tunnel: ${(summary.throughputRatio * 100).toFixed(0)}% of direct loopback (target >= 50%), ` +
        `proxy alone ${(summary.throughputRatioProxyOnly * 100).toFixed(0)}%.`,
    ];
    process.stdout.write(`${rows.join('\n')}\n`);
  } finally {
    await cell?.destroy().catch((e: Error) => process.stderr.write(`cell cleanup: ${e.message}\n`));
    await proxy?.close();
    servers.child.kill();
    fs.rmSync(base, { recursive: true, force: true });
  }
}

await main();
