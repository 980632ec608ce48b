// Library cold start, this build against another (an A/B of a change), with raw runc measured
// in the same rounds: Cell.create, run /bin/true, destroy, with the bench suite's full policy
// (workspace overlay, seccomp monitor, proxy with one allowed host, cgroup limits). Both builds
// are loaded from their dist/ (and use their own native/build) in this one process.
//
//   node --import ./bench/register.mjs bench/cold-start.ts [--base DIR] [--runs 3] [--rounds 15]
//
// --base: another checkout, built (`npm run build`, `make -C native`); without it, only this
// build. Several runs of interleaved rounds; each run's p50s, and the median over runs of the
// per-run ratio to raw runc. Then CLI start-up: `nanocell --version` of each build against
// `node -e 0`, interleaved. Root only. Rewrites its section of docs/benchmarks.md.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadAvg } from './suite/host.js';
import { runQuiet, setupRunc } from './suite/peers.js';
import { roundRobin } from './suite/startFigures.js';

const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const arg = (name: string) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const BASE = arg('--base');
const RUNS = Number(arg('--runs') ?? 3);
const ROUNDS = Number(arg('--rounds') ?? 15);
const log = (s: string) => process.stderr.write(`${s}\n`);

const rev = (dir: string) =>
  execFileSync('git', ['-C', dir, 'describe', '--tags', '--always', '--dirty'], {
    encoding: 'utf8',
  }).trim();

interface Build {
  label: string;
  dir: string;
  once: (project: string, stateRoot: string) => Promise<void>;
}

async function loadBuild(dir: string, label: string): Promise<Build> {
  type CellMod = typeof import('../src/cell/cell.js');
  type LoadMod = typeof import('../src/policy/load.js');
  const { Cell } = (await import(path.join(dir, 'dist/cell/cell.js'))) as CellMod;
  const { parsePolicy, resolvePolicy } = (await import(
    path.join(dir, 'dist/policy/load.js')
  )) as LoadMod;
  const policy = resolvePolicy(parsePolicy({ network: { allow: ['bench.test'] } }));
  return {
    label,
    dir,
    once: async (project, stateRoot) => {
      const cell = await Cell.create({ policy, workspace: project, stateRoot });
      try {
        const r = await cell.run(['/bin/true']);
        if (r.exitCode !== 0) throw new Error(`/bin/true exited ${r.exitCode}: ${r.stderr}`);
      } finally {
        await cell.destroy();
      }
    },
  };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function timeSpawn(argv: string[]): number {
  const t = performance.now();
  const r = spawnSync(argv[0]!, argv.slice(1), { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} exited ${r.status}`);
  return performance.now() - t;
}

/** p50 of `node -e 0` and of each build's `nanocell --version`, interleaved. */
function cliStartup(builds: Build[], n: number): Record<string, number> {
  const cases = [
    { label: 'node -e 0', argv: [process.execPath, '-e', '0'] },
    ...builds
      .map((b) => ({ label: b.label, cli: path.join(b.dir, 'dist/cli/nanocell.mjs') }))
      .filter((b) => fs.existsSync(b.cli))
      .map((b) => ({ label: b.label, argv: [process.execPath, b.cli, '--version'] })),
  ];
  const xs = new Map<string, number[]>(cases.map((c) => [c.label, []]));
  for (let i = 0; i < n; i++) for (const c of cases) xs.get(c.label)!.push(timeSpawn(c.argv));
  return Object.fromEntries([...xs].map(([l, v]) => [l, median(v)]));
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('cold-start.ts must run as root (cells mount)');
  const builds = [await loadBuild(repo, `this build (${rev(repo)})`)];
  if (BASE) builds.push(await loadBuild(path.resolve(BASE), `base build (${rev(BASE)})`));
  fs.mkdirSync('/var/tmp/nanocell-bench', { recursive: true });
  const base = fs.mkdtempSync('/var/tmp/nanocell-bench/cold-');
  fs.chmodSync(base, 0o755);
  const project = path.join(base, 'project');
  fs.mkdirSync(project);
  fs.writeFileSync(path.join(project, 'README'), 'bench project\n');
  const runc = await setupRunc(base);
  const loadStart = loadAvg();
  const runs: Array<Record<string, number>> = [];
  const cli: Array<Record<string, number>> = [];
  try {
    for (let r = 0; r < RUNS; r++) {
      log(`run ${r + 1}/${RUNS} (load ${loadAvg()})`);
      const { rows, failures } = await roundRobin(
        [
          ...builds.map((b, i) => ({
            label: b.label,
            kind: 'nanocell' as const,
            run: () => b.once(project, path.join(base, `state${i}`)),
          })),
          { label: 'raw runc', kind: 'peer' as const, run: runc.runc.run },
          { label: 'fork+exec /bin/true', kind: 'baseline', run: () => runQuiet('/bin/true', []) },
        ],
        ROUNDS,
        log,
      );
      if (failures.length) throw new Error(failures.join('; '));
      runs.push(Object.fromEntries(rows.map((x) => [x.label, x.stat.p50])));
      cli.push(cliStartup(builds, ROUNDS * 2));
    }
  } finally {
    await runc.close();
    fs.rmSync(base, { recursive: true, force: true });
  }
  const labels = [...builds.map((b) => b.label), 'raw runc', 'fork+exec /bin/true'];
  const ratio = (l: string) => median(runs.map((x) => x[l]! / x['raw runc']!));
  const result = {
    date: new Date().toISOString().replace(/\..*/, 'Z'),
    runs: RUNS,
    rounds: ROUNDS,
    load: { start: loadStart, end: loadAvg() },
    p50PerRun: runs,
    ratioToRuncMedian: Object.fromEntries(builds.map((b) => [b.label, ratio(b.label)])),
    cliP50PerRun: cli,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  writeSection(
    result,
    labels,
    builds.map((b) => b.label),
  );
}

/** Replaces (or appends) this bench's section of docs/benchmarks.md; the suite keeps it. */
function writeSection(
  r: { date: string; runs: number; rounds: number; load: { start: string; end: string } } & {
    p50PerRun: Array<Record<string, number>>;
    cliP50PerRun: Array<Record<string, number>>;
  },
  labels: string[],
  builds: string[],
) {
  const f = (x: number) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  const lines = [
    COLD_AB_START,
    '## Library cold start, A/B against a base build',
    '',
    `Generated by \`node --import ./bench/register.mjs bench/cold-start.ts${BASE ? ' --base DIR' : ''} --runs ${r.runs} --rounds ${r.rounds}\` on ${r.date} ` +
      `(load average ${r.load.start} at start, ${r.load.end} at end). Each build creates a cell with the full policy of "Cold start through the library", ` +
      'runs `/bin/true` and destroys it; raw runc is measured in the same rounds, in rotating order. p50 in ms per run; ratios are p50 ÷ raw runc p50 of the same run.',
    '',
    `| run | ${labels.join(' | ')} | ${builds.map((b) => `${b} ÷ raw runc`).join(' | ')} |`,
    `| --- | ${labels.map(() => '---').join(' | ')} | ${builds.map(() => '---').join(' | ')} |`,
    ...r.p50PerRun.map(
      (x, i) =>
        `| ${i + 1} | ${labels.map((l) => f(x[l]!)).join(' | ')} | ${builds.map((b) => `${(x[b]! / x['raw runc']!).toFixed(2)}x`).join(' | ')} |`,
    ),
    `| median | ${labels.map((l) => f(median(r.p50PerRun.map((x) => x[l]!)))).join(' | ')} | ${builds.map((b) => `**${median(r.p50PerRun.map((x) => x[b]! / x['raw runc']!)).toFixed(2)}x**`).join(' | ')} |`,
    '',
    ...cliTable(r.cliP50PerRun),
    COLD_AB_END,
  ];
  const md = path.join(repo, 'docs', 'benchmarks.md');
  const text = fs.readFileSync(md, 'utf8');
  const s = text.indexOf(COLD_AB_START);
  const e = text.indexOf(COLD_AB_END);
  const next =
    s >= 0 && e > s
      ? `${text.slice(0, s)}${lines.join('\n')}${text.slice(e + COLD_AB_END.length)}`
      : `${text.trimEnd()}\n\n${lines.join('\n')}\n`;
  fs.writeFileSync(md, next);
}

/** `nanocell --version` less `node -e 0`, per run (the issue's target: within 25 ms). */
function cliTable(runs: Array<Record<string, number>>): string[] {
  const builds = Object.keys(runs[0] ?? {}).filter((l) => l !== 'node -e 0');
  if (!builds.length) return [];
  const over = (x: Record<string, number>, b: string) => x[b]! - x['node -e 0']!;
  return [
    `CLI start-up in the same runs (${ROUNDS * 2} spawns of each per run, interleaved): p50 of \`node CLI --version\` and of \`node -e 0\`, in ms, and the difference.`,
    '',
    `| run | node -e 0 | ${builds.map((b) => `${b} --version | over node`).join(' | ')} |`,
    `| --- | --- | ${builds.map(() => '--- | ---').join(' | ')} |`,
    ...runs.map(
      (x, i) =>
        `| ${i + 1} | ${x['node -e 0']!.toFixed(1)} | ${builds.map((b) => `${x[b]!.toFixed(1)} | +${over(x, b).toFixed(1)}`).join(' | ')} |`,
    ),
    `| median | ${median(runs.map((x) => x['node -e 0']!)).toFixed(1)} | ${builds.map((b) => `${median(runs.map((x) => x[b]!)).toFixed(1)} | **+${median(runs.map((x) => over(x, b))).toFixed(1)}**`).join(' | ')} |`,
    '',
  ];
}

const COLD_AB_START = '<!-- bench/cold-start.ts -->';
const COLD_AB_END = '<!-- /bench/cold-start.ts -->';

await main();
