// What a cell costs on real projects' own test suites (test/compat/projects.ts): each project's
// script runs on the host (unprivileged, its own HOME and TMPDIR) and in a cell under the
// default policy, alternating, in the same run. The cell may use every core (limits.cpus), as
// the host run does, so the CPU quota is not what is measured. Times are the script's wall time;
// cell start and stop (cold-start figures) are not included.
// Root only. Env: RUNS (default 3), ONLY (comma-separated project ids). Prints one JSON
// document, then a markdown row per project.
import os from 'node:os';
import { runInCell, runOnHost } from '../test/compat/harness.js';
import { COMPAT_PROJECTS } from '../test/compat/projects.js';

const RUNS = Number(process.env.RUNS ?? 3);
const ONLY = process.env.ONLY?.split(',');

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

interface CompatResult {
  project: string;
  runs: number;
  timesMs: { host: number[]; cell: number[] };
  overheadPct: number;
}

const results: CompatResult[] = [];
const policy = { limits: { cpus: os.cpus().length } };
for (const p of COMPAT_PROJECTS.filter((x) => !ONLY || ONLY.includes(x.id))) {
  const host: number[] = [];
  const cell: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    // Alternate which side goes first so drift in the machine's load hits both alike.
    const order = i % 2 ? ['cell', 'host'] : ['host', 'cell'];
    for (const side of order) {
      const r = side === 'host' ? await runOnHost(p, { tmpfs: true }) : await runInCell(p, policy);
      if (r.code !== 0) throw new Error(`${p.id} failed on the ${side} (exit ${r.code})`);
      (side === 'host' ? host : cell).push(Math.round(r.ms));
    }
  }
  const overheadPct = Math.round((median(cell) / median(host) - 1) * 1000) / 10;
  results.push({ project: p.id, runs: RUNS, timesMs: { host, cell }, overheadPct });
}

console.log(JSON.stringify({ cores: os.cpus().length, loadavg: os.loadavg(), results }, null, 2));
console.log('\n| project | host median ms | cell median ms | overhead |\n|---|---|---|---|');
for (const r of results) {
  console.log(
    `| ${r.project} | ${median(r.timesMs.host)} | ${median(r.timesMs.cell)} | ${r.overheadPct}% |`,
  );
}
