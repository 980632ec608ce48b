// The benchmark suite: every figure of docs/benchmarks.md, with the peers installed and
// measured in the same run. Not part of CI. Root only (cells mount and use cgroups).
//
//   node --import ./bench/register.mjs bench/run.ts [--quick] [--no-build] [--only id,id]
//
// Full run about 20 min on 2 cores, --quick about 3 min. Writes bench/results/<time>.json,
// docs/benchmarks.md and docs/bench/<figure>.svg. Peers: raw runc (a minimal bundle),
// bubblewrap, srt 0.0.78 (npm, into bench/.peers), Docker (docker.io from apt, our own dockerd).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  compatFigure,
  exists,
  netFigures,
  runChildBench,
  seccompFigure,
  workspaceStepsFigure,
} from './suite/children.js';
import { loadAvg, machine, toMiB, versions } from './suite/host.js';
import type { Ctx } from './suite/nanocell.js';
import { cliArgs } from './suite/nanocell.js';
import { setupPeers, type Peers } from './suite/peers.js';
import { writeReport, type Figure } from './suite/report.js';
import { concurrencyFigures, workspaceFigure } from './suite/scaleFigures.js';
import { coldStartCli, coldStartLibrary, execFigure } from './suite/startFigures.js';
import { stat } from './suite/stats.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(benchDir, '..');
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const onlyArg = argv.find((a) => a.startsWith('--only'));
const only = onlyArg
  ? (onlyArg.includes('=') ? onlyArg.split('=')[1]! : argv[argv.indexOf(onlyArg) + 1]!).split(',')
  : null;
const want = (id: string) => only === null || only.includes(id);

/** Repetitions: full run vs. --quick. */
const N = quick
  ? {
      lib: 6,
      cli: 4,
      exec: 100,
      peerExec: 10,
      wsSizes: [1000, 10_000],
      wsReps: 2,
      conc: [1, 10, 25],
    }
  : {
      lib: 20,
      cli: 8,
      exec: 500,
      peerExec: 30,
      wsSizes: [1000, 10_000, 100_000],
      wsReps: 3,
      conc: [1, 10, 50, 100],
    };

const t0 = Date.now();
const log = (s: string) =>
  process.stderr.write(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${s}\n`);

function build(): void {
  log('building dist/ (tsc -p tsconfig.build.json) and native/ (make)');
  execFileSync(
    process.execPath,
    [`${repo}/node_modules/typescript/bin/tsc`, '-p', 'tsconfig.build.json'],
    {
      cwd: repo,
      stdio: 'inherit',
    },
  );
  execFileSync('make', ['-s', '-C', 'native'], { cwd: repo, stdio: 'inherit' });
}

const WHY_LIB =
  'A cell does more than a bare `runc run`: it leases a uid range and runs in a user namespace, mounts an ' +
  'idmapped overlay and tmpfs dirs, generates /etc, starts runc detached under the native monitor, waits for ' +
  "init's ready frame (Landlock applied), runs the command over the control socket, and on destroy asks init " +
  'to exit, runs `runc delete`, collects the change set and unmounts. The "… off" rows show what each part costs; ' +
  'the rest is runc started twice (run, delete) plus the mount work.';
const WHY_CLI =
  'The CLI pays node start-up and module loading (see the baselines) before it does the library cold start, then ' +
  'opens the audit database and writes the task report. srt only spawns bubblewrap after its own node start-up.';

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('the bench suite must run as root (cells mount)');
  if (!argv.includes('--no-build')) build();
  const startRssMiB = toMiB(process.memoryUsage().rss);
  fs.mkdirSync('/var/tmp/nanocell-bench', { recursive: true });
  const base = fs.mkdtempSync('/var/tmp/nanocell-bench/run-');
  fs.chmodSync(base, 0o755);
  const ctx: Ctx = {
    repo,
    stateRoot: path.join(base, 'state'),
    project: path.join(base, 'project'),
  };
  fs.mkdirSync(ctx.project);
  fs.writeFileSync(path.join(ctx.project, 'README'), 'bench project\n');
  const loadStart = loadAvg();
  const figures: Figure[] = [];
  const failures: string[] = [];
  const attempt = async (id: string, f: () => Promise<Figure | Figure[]>) => {
    if (!want(id)) return;
    log(`${id} (load ${loadAvg()})`);
    try {
      const r = await f();
      figures.push(...(Array.isArray(r) ? r : [r]));
    } catch (e) {
      failures.push(`${id}: ${(e as Error).message.split('\n')[0]}`);
      log(`${id} FAILED: ${(e as Error).stack}`);
    }
  };
  let peers: Peers | undefined;
  let supervisor: Awaited<ReturnType<typeof concurrencyFigures>>['supervisor'] | undefined;
  try {
    log('setting up peers');
    peers = await setupPeers({ benchDir, base, project: ctx.project, log });
    const p = peers;
    await attempt('cold-start-library', () => coldStartLibrary(ctx, p, N.lib, log, WHY_LIB));
    await attempt('cold-start-cli', () => coldStartCli(ctx, p, N.cli, log, WHY_CLI));
    await attempt('exec', () => execFigure(ctx, p, N.exec, N.peerExec, log));
    await p.close();
    await attempt('workspace', () => workspaceFigure(ctx, base, N.wsSizes, N.wsReps, log));
    if (exists(repo, 'workspace-setup.ts')) {
      await attempt('workspace-steps', async () =>
        workspaceStepsFigure(
          await runChildBench(repo, 'workspace-setup.ts', {
            SIZES: N.wsSizes.filter((x) => x < 100_000).join(','),
            RUNS: quick ? '2' : '1',
          }),
        ),
      );
    }
    if (exists(repo, 'net.ts')) {
      await attempt('net', async () =>
        netFigures(
          await runChildBench(
            repo,
            'net.ts',
            quick
              ? {
                  REQUESTS: '150',
                  ROUNDS: '3',
                  RTTS: '500',
                  BULK_MIB: '64',
                  CONC: '20',
                  CONC_ROUNDS: '50',
                }
              : {
                  REQUESTS: '500',
                  ROUNDS: '5',
                  RTTS: '2000',
                  BULK_MIB: '128',
                  CONC: '100',
                  CONC_ROUNDS: '100',
                },
          ),
        ),
      );
    }
    if (exists(repo, 'seccomp-overhead.ts')) {
      await attempt('seccomp', async () =>
        seccompFigure(
          await runChildBench(
            repo,
            'seccomp-overhead.ts',
            quick ? { RUNS: '3', FILES: '2000' } : { RUNS: '5', FILES: '10000' },
          ),
        ),
      );
    }
    if (exists(repo, 'compat.ts')) {
      await attempt('compat', async () =>
        compatFigure(await runChildBench(repo, 'compat.ts', quick ? { RUNS: '1' } : {})),
      );
    }
    await attempt('concurrency', async () => {
      const r = await concurrencyFigures(ctx, N.conc, log);
      supervisor = r.supervisor;
      return r.figures;
    });
    await attempt('supervisor-memory', async () => supervisorFigure(ctx, startRssMiB, supervisor));
  } finally {
    await peers?.close().catch(() => undefined);
    fs.rmSync(base, { recursive: true, force: true });
  }

  explainColdStart(figures);
  const header = {
    date: new Date().toISOString().replace(/\..*/, 'Z'),
    command: `node --import ./bench/register.mjs bench/run.ts${quick ? ' --quick' : ''}`,
    mode: quick ? 'quick' : 'full',
    durationS: (Date.now() - t0) / 1000,
    machine: {
      ...machine(),
      'load average (1/5/15 min) at start': loadStart,
      'load average at end': loadAvg(),
    },
    versions: {
      ...versions(repo),
      srt: peers?.srt.unavailable
        ? `unavailable: ${peers.srt.unavailable}`
        : (peers?.srt.version ?? '-'),
      docker: peers?.docker.unavailable
        ? `unavailable: ${peers.docker.unavailable}`
        : `engine ${peers?.docker.version ?? '-'} (docker.io from Debian, run by the suite)`,
    },
    unavailable: [
      ...(peers ? [peers.srt, peers.docker].filter((x) => x.unavailable) : []).map(
        (x) => `${x.name}: ${x.unavailable}`,
      ),
      ...failures.map((f) => `figure ${f}`),
    ],
  };
  const resultsDir = path.join(benchDir, 'results');
  fs.mkdirSync(resultsDir, { recursive: true });
  const json = JSON.stringify({ header, figures }, null, 2);
  fs.writeFileSync(path.join(resultsDir, `${header.date.replace(/:/g, '-')}.json`), json);
  fs.writeFileSync(path.join(resultsDir, 'latest.json'), json);
  if (only === null) {
    writeReport({
      header,
      figures,
      mdPath: path.join(repo, 'docs', 'benchmarks.md'),
      svgDir: path.join(repo, 'docs', 'bench'),
    });
    log('wrote docs/benchmarks.md and docs/bench/*.svg');
  }
  log(`done; results in ${path.relative(repo, resultsDir)}/latest.json`);
  for (const f of figures)
    for (const t of f.targets ?? [])
      log(
        `target ${t.text}: ${t.met === null ? 'n/a' : t.met ? 'met' : 'MISSED'} (${t.detail.split('. ')[0]})`,
      );
}

/** Adds the per-part cost (full p50 minus each "off" p50) to the library cold-start figure. */
function explainColdStart(figures: Figure[]): void {
  const f = figures.find((x) => x.id === 'cold-start-library');
  if (!f) return;
  const p50 = (l: string) => f.rows.find((r) => r.label === l)?.stat.p50 ?? NaN;
  const full = p50('nanocell full');
  const parts = f.rows
    .filter((r) => r.kind === 'nanocell' && r.label !== 'nanocell full')
    .map((r) => `${r.label}: ${(full - r.stat.p50).toFixed(0)} ms saved`);
  f.notes = [
    `What each part costs (full p50 − the row's p50): ${parts.join('; ')}. Differences smaller than the spread (p95 − p50) are noise.`,
    ...(f.notes ?? []),
  ];
}

/** Peak RSS of a CLI run (GNU time) and the library supervisor's RSS. */
function supervisorFigure(
  ctx: Ctx,
  startRssMiB: number,
  sup: { baseRssMiB: number; perCellRssMiB: number; cells: number; heapMiB: number } | undefined,
): Figure {
  const peaks: number[] = [];
  for (let i = 0; i < 3; i++) {
    const r = spawnSync(
      '/usr/bin/time',
      ['-f', 'MAXRSS %M', process.execPath, ...cliArgs(ctx, ['--allow-net', 'bench.test'])],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, NANOCELL_STATE_ROOT: ctx.stateRoot },
      },
    );
    const m = /MAXRSS (\d+)/.exec(r.stderr ?? '');
    if (r.status === 0 && m) peaks.push(Number(m[1]) / 1024);
  }
  return {
    id: 'supervisor-memory',
    title: 'Supervisor memory',
    unit: 'MiB',
    what:
      'The node process that runs cells. "library at start" is this suite\'s own process after loading the library; ' +
      '"per extra live cell" is its RSS growth per cell with the largest concurrency level alive; ' +
      '"CLI peak RSS" is `nanocell run` (full policy, /bin/true) measured by GNU time.',
    rows: [
      { label: 'library process at start', kind: 'nanocell', stat: stat([startRssMiB]) },
      ...(sup
        ? [
            {
              label: `library process before ${sup.cells} cells`,
              kind: 'nanocell' as const,
              stat: stat([sup.baseRssMiB]),
            },
            {
              label: `per extra live cell (of ${sup.cells})`,
              kind: 'nanocell' as const,
              stat: stat([sup.perCellRssMiB]),
            },
            {
              label: `JS heap with ${sup.cells} cells`,
              kind: 'baseline' as const,
              stat: stat([sup.heapMiB]),
            },
          ]
        : []),
      ...(peaks.length
        ? [{ label: 'CLI peak RSS', kind: 'nanocell' as const, stat: stat(peaks) }]
        : []),
    ],
  };
}

main().catch((e: unknown) => {
  log(`suite failed: ${(e as Error).stack ?? String(e)}`);
  process.exit(1);
});
