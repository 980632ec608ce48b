// The area benches other helpers wrote (bench/net.ts, bench/seccomp-overhead.ts,
// bench/workspace-setup.ts), run as they are in a child node and turned into figures.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Figure, Row } from './report.js';
import { stat, type Stat } from './stats.js';

/** Runs bench/<file> with the TS hooks; returns the JSON document it prints first. */
export function runChildBench(
  repo: string,
  file: string,
  env: Record<string, string>,
): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', './bench/register.mjs', `bench/${file}`], {
      cwd: repo,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    p.once('error', reject);
    p.once('close', (code) => {
      // Each prints a pretty JSON document first (closing brace alone on a line), then markdown.
      const end = out.search(/^\}$/m);
      if (code !== 0 || end < 0) {
        reject(new Error(`bench/${file} failed (exit ${code}): ${err.trim().split('\n').pop()}`));
        return;
      }
      resolve(JSON.parse(out.slice(0, end + 1)) as Record<string, unknown>);
    });
  });
}

export const exists = (repo: string, file: string) => fs.existsSync(path.join(repo, 'bench', file));

const one = (x: number): Stat => stat([x]);

type NetPath = Record<'http' | 'rtt' | 'bulk' | 'conc', Record<string, number>>;

export function netFigures(json: Record<string, unknown>): Figure[] {
  const r = json.results as Record<'direct' | 'proxy' | 'cell', NetPath>;
  const s = json.summary as Record<string, number>;
  const p = json.params as Record<string, number>;
  const label = {
    direct: 'direct loopback',
    proxy: 'proxy only (host TCP)',
    cell: 'from a cell via proxy',
  };
  const kind = { direct: 'peer', proxy: 'baseline', cell: 'nanocell' } as const;
  const paths = ['cell', 'proxy', 'direct'] as const;
  const pstat = (x: Record<string, number>): Stat => ({
    n: x.n ?? 1,
    p50: x.p50!,
    p95: x.p95!,
    min: NaN,
    max: NaN,
  });
  const latency: Row[] = paths.flatMap((k) => [
    { label: `HTTP GET, ${label[k]}`, kind: kind[k], stat: pstat(r[k].http) },
  ]);
  const rtt: Row[] = paths.map((k) => ({
    label: `64 B echo RTT, ${label[k]}`,
    kind: kind[k],
    stat: pstat(r[k].rtt),
  }));
  const bulk: Row[] = paths.map((k) => ({
    label: `bulk, ${label[k]}`,
    kind: kind[k],
    stat: one(r[k].bulk.MiBps!),
  }));
  const conc: Row[] = paths.map((k) => ({
    label: `${p.CONC} tunnels, ${label[k]}`,
    kind: kind[k],
    stat: one(r[k].conc.roundTripsPerSec!),
  }));
  const what =
    'From bench/net.ts: the same python client on the host straight to a loopback server ("direct loopback"), ' +
    'through the egress proxy listening on host TCP ("proxy only"), and inside a cell through 127.0.0.1:3128 → ' +
    'init bridge → proxy.sock → proxy ("from a cell"). ';
  return [
    {
      id: 'net-latency',
      title: 'Proxy latency: HTTP GET',
      unit: 'ms',
      what: `${what}One GET per fresh connection, ${p.REQUESTS} requests in ${p.ROUNDS ?? 1} rounds that alternate between the paths; the median round is shown.`,
      rows: latency,
      notes: [
        `Added per GET from the cell: p50 ${s.addedHttpP50Ms!.toFixed(2)} ms, p95 ${s.addedHttpP95Ms!.toFixed(2)} ms.`,
      ],
    },
    {
      id: 'net-rtt',
      title: 'Proxy latency: round trip on an open tunnel',
      unit: 'ms',
      what: `${what}64-byte echoes on one CONNECT tunnel, ${p.RTTS} round trips.`,
      rows: rtt,
      notes: [`Added per round trip from the cell: p50 ${s.addedRttP50Ms!.toFixed(3)} ms.`],
    },
    {
      id: 'net-throughput',
      title: 'Proxy throughput',
      unit: 'MiB/s',
      higherIsBetter: true,
      what: `${what}A ${p.BULK_MIB} MiB download through a CONNECT tunnel, ${p.ROUNDS ?? 1} rounds that alternate between the paths; the median round is shown.`,
      rows: bulk,
      notes: [
        `From the cell: ${(s.throughputRatio! * 100).toFixed(0)}% of direct loopback; proxy alone ${(s.throughputRatioProxyOnly! * 100).toFixed(0)}%.`,
      ],
    },
    {
      id: 'net-concurrency',
      title: 'Proxy round trips with many tunnels',
      unit: 'round trips/s',
      higherIsBetter: true,
      what: `${what}${p.CONC} tunnels at once, ${p.CONC_ROUNDS} 256-byte echoes each.`,
      rows: conc,
      notes: paths.map((k) => `${label[k]}: ${r[k].conc.ok}/${p.CONC} tunnels completed.`),
    },
  ];
}

interface SeccompResult {
  workload: string;
  timesMs: { filtered: number[]; unfiltered: number[] };
  overheadPct: number;
}

export function seccompFigure(json: Record<string, unknown>): Figure {
  const results = json.results as SeccompResult[];
  return {
    id: 'seccomp',
    title: 'Seccomp overhead on syscall-heavy work',
    unit: 'ms',
    what:
      'From bench/seccomp-overhead.ts: two live cells of the same run, one with the default profile and its exec ' +
      'notifications to the monitor, one with no filter (benchOff.seccomp); runs alternate between them.',
    rows: results.flatMap((r) => [
      {
        label: `${r.workload}, filtered`,
        kind: 'nanocell' as const,
        stat: stat(r.timesMs.filtered),
      },
      {
        label: `${r.workload}, no filter`,
        kind: 'baseline' as const,
        stat: stat(r.timesMs.unfiltered),
      },
    ]),
    notes: results.map((r) => `${r.workload}: ${r.overheadPct}% overhead (median vs. median).`),
  };
}

interface CompatResult {
  project: string;
  timesMs: { host: number[]; cell: number[] };
  overheadPct: number;
  minOverheadPct?: number;
}

export function compatFigure(json: Record<string, unknown>): Figure {
  const results = json.results as CompatResult[];
  return {
    id: 'compat',
    title: "Real projects' test suites: cell vs. host",
    unit: 'ms',
    what:
      'From bench/compat.ts: the projects of test/compat (CPython regression tests, git, npm, go, gcc/make) run on ' +
      "the host as an unprivileged user (project, HOME, TMPDIR on a tmpfs, as in the cell; in a cpu cgroup beside the cells') and in a default-policy cell allowed every core, interleaved; script wall time.",
    rows: results.flatMap((r) => [
      { label: `${r.project}, cell`, kind: 'nanocell' as const, stat: stat(r.timesMs.cell) },
      { label: `${r.project}, host`, kind: 'baseline' as const, stat: stat(r.timesMs.host) },
    ]),
    notes: results.map(
      (r) =>
        `${r.project}: ${r.overheadPct}% slower in a cell (median vs. median; target 10%)` +
        (r.minOverheadPct === undefined ? '.' : `, ${r.minOverheadPct}% fastest vs. fastest.`),
    ),
  };
}

interface WsStep {
  files: number;
  runs: number;
  scopeMs: number;
  setupMs: number;
  cpMs: number;
}

export function workspaceStepsFigure(json: Record<string, unknown>): Figure {
  const results = json.results as WsStep[];
  const k = (n: number) => (n >= 1000 ? `${n / 1000}k` : String(n));
  return {
    id: 'workspace-steps',
    title: 'Workspace setup steps (no cell)',
    unit: 'ms',
    what:
      'From bench/workspace-setup.ts: the scope walk alone, scope walk + whiteout layer + overlay mount, and `cp -a`, ' +
      'outside any cell (medians only).',
    rows: results.flatMap((r) => [
      { label: `scope walk, ${k(r.files)} files`, kind: 'nanocell' as const, stat: one(r.scopeMs) },
      {
        label: `scope + overlay, ${k(r.files)} files`,
        kind: 'nanocell' as const,
        stat: one(r.setupMs),
      },
      { label: `cp -a, ${k(r.files)} files`, kind: 'baseline' as const, stat: one(r.cpMs) },
    ]),
  };
}
