// What a cell costs on real projects' own test suites (test/compat/projects.ts): each project's
// script runs on the host (unprivileged, its own HOME and TMPDIR on a tmpfs, in a cpu cgroup
// beside the cells') and in a cell under the default policy, interleaved round by round in the
// same run, the order rotating each round so drift in the machine's load hits every side alike.
// The cell may use every core (limits.cpus), as the host run does, so the CPU quota is not what
// is measured. Times are the script's wall time; cell start and stop (cold-start figures) are
// not included. On a shared machine single runs vary by tens of percent, so the short suites
// get more rounds and the figures are the median ratio and the ratio of the fastest runs.
// Root only. Env: RUNS (rounds for every project; default 9 for git and c, 3 for the others,
// 1 for cpython), ONLY (comma-separated project ids), AB (comma-separated native build dirs,
// e.g. a copy of main's native/build and this tree's: each becomes a cell side of its own, so
// two builds are compared in the same run). Prints one JSON document, then a markdown table.
import os from 'node:os';
import path from 'node:path';
import { runInCell, runOnHost } from '../test/compat/harness.js';
import { COMPAT_PROJECTS } from '../test/compat/projects.js';

const ONLY = process.env.ONLY?.split(',');
const BUILDS = process.env.AB?.split(',').map((d) => path.resolve(d));
const DEFAULT_ROUNDS: Record<string, number> = { git: 9, c: 9, cpython: 1 };
const rounds = (id: string) => Number(process.env.RUNS ?? DEFAULT_ROUNDS[id] ?? 3);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const pct = (ratio: number) => Math.round((ratio - 1) * 1000) / 10;

interface Side {
  label: string;
  /** NANOCELL_NATIVE_DIR for a cell side; undefined for the host and the default build. */
  build?: string;
}

interface CompatCellResult {
  label: string;
  timesMs: number[];
  /** Median cell time against median host time, in percent. */
  overheadPct: number;
  /** Fastest cell run against fastest host run: the least noisy single figure. */
  minOverheadPct: number;
  /** The median of each round's cell time against the same round's host time. */
  pairedOverheadPct: number;
}

interface CompatResult {
  project: string;
  runs: number;
  /** host and the (last) cell side, for the suite's figure. */
  timesMs: { host: number[]; cell: number[] };
  overheadPct: number;
  minOverheadPct: number;
  cells: CompatCellResult[];
}

const cellSides: Side[] = BUILDS
  ? BUILDS.map((b) => ({ label: `cell ${path.basename(b)}`, build: b }))
  : [{ label: 'cell' }];
const sides: Side[] = [{ label: 'host' }, ...cellSides];
const defaultBuild = process.env.NANOCELL_NATIVE_DIR;

const results: CompatResult[] = [];
const policy = { limits: { cpus: os.cpus().length } };
for (const p of COMPAT_PROJECTS.filter((x) => !ONLY || ONLY.includes(x.id))) {
  const times = new Map<Side, number[]>(sides.map((s) => [s, []]));
  const runs = rounds(p.id);
  for (let i = 0; i < runs; i++) {
    const order = sides.map((_, k) => sides[(k + i) % sides.length]!);
    for (const side of order) {
      if (side.build) process.env.NANOCELL_NATIVE_DIR = side.build;
      else if (defaultBuild) process.env.NANOCELL_NATIVE_DIR = defaultBuild;
      else delete process.env.NANOCELL_NATIVE_DIR;
      const r =
        side.label === 'host'
          ? await runOnHost(p, { tmpfs: true, cgroup: true })
          : await runInCell(p, policy);
      if (r.code !== 0) throw new Error(`${p.id} failed on the ${side.label} (exit ${r.code})`);
      times.get(side)!.push(Math.round(r.ms));
    }
  }
  const host = times.get(sides[0]!)!;
  const cells = cellSides.map((s) => {
    const t = times.get(s)!;
    return {
      label: s.label,
      timesMs: t,
      overheadPct: pct(median(t) / median(host)),
      minOverheadPct: pct(Math.min(...t) / Math.min(...host)),
      pairedOverheadPct: pct(median(t.map((x, i) => x / host[i]!))),
    };
  });
  const last = cells[cells.length - 1]!;
  results.push({
    project: p.id,
    runs,
    timesMs: { host, cell: last.timesMs },
    overheadPct: last.overheadPct,
    minOverheadPct: last.minOverheadPct,
    cells,
  });
}

console.log(JSON.stringify({ cores: os.cpus().length, loadavg: os.loadavg(), results }, null, 2));
console.log(
  '\n| project | side | runs | median ms | min ms | median vs. host | min vs. host | paired |',
);
console.log('|---|---|---|---|---|---|---|---|');
for (const r of results) {
  const row = (label: string, t: number[], ...ratios: string[]) =>
    console.log(
      `| ${r.project} | ${label} | ${r.runs} | ${median(t)} | ${Math.min(...t)} | ${ratios.join(' | ')} |`,
    );
  row('host', r.timesMs.host, '', '', '');
  for (const c of r.cells)
    row(c.label, c.timesMs, `${c.overheadPct}%`, `${c.minOverheadPct}%`, `${c.pairedOverheadPct}%`);
}
