// The warm pool's figures (issue #16 §6), each against its baseline in the same run,
// interleaved so that both sides see the same load:
//   claim:   a claim from a full pool (workspace attached, rules set) to the end of its first
//            `/bin/true`, against a cold `Cell.create` to the same point and a bare `runc run`
//   refill:  warm cells started per second while a pool fills from empty (1 and 2 at once)
//   scale:   N claimed cells alive at once (default 200), and the host memory each costs
//            beyond its task (supervisor RSS, monitor PSS and cgroup memory, per cell)
//
//   node --import ./bench/register.mjs bench/pool.ts [--n 40] [--cells 200]
// Root only; needs `make -C native`. Prints JSON to stdout.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cell } from '../src/cell/cell.js';
import { CellPool } from '../src/cell/pool.js';
import { probeHost } from '../src/host/probe.js';
import { parsePolicy, resolvePolicy } from '../src/policy/load.js';
import { helpersOf, loadAvg, pssBytes, readNumber, toMiB } from './suite/host.js';
import { setupRunc } from './suite/peers.js';
import { percentile, round, stat } from './suite/stats.js';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const N = arg('--n', 40);
const CELLS = arg('--cells', 200);

const base = fs.mkdtempSync(path.join(os.tmpdir(), 'nanocell-pool-bench-'));
fs.chmodSync(base, 0o755);
const project = path.join(base, 'project');
const stateRoot = path.join(base, 'state');
fs.mkdirSync(project);
for (let i = 0; i < 20; i++) fs.writeFileSync(path.join(project, `f${i}.txt`), `file ${i}\n`);
fs.writeFileSync(path.join(project, '.env'), 'TOKEN=x\n');
// One allowed host: the cells have their proxy, as a harness's would.
const policy = resolvePolicy(parsePolicy({ network: { allow: ['bench.test'] } }));
const log = (s: string) => process.stderr.write(`${s}\n`);

async function timed(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

async function claimFigure(pool: CellPool, runc: () => Promise<void>) {
  const claim: number[] = [];
  const cold: number[] = [];
  const raw: number[] = [];
  for (let i = 0; i < N; i++) {
    await pool.whenFull();
    let cell: Cell | undefined;
    claim.push(
      await timed(async () => {
        cell = await pool.claim({ record: false });
        await cell.run(['/bin/true']);
      }),
    );
    await cell!.destroy();
    let c2: Cell | undefined;
    cold.push(
      await timed(async () => {
        c2 = await Cell.create({ policy, workspace: project, stateRoot, record: false });
        await c2.run(['/bin/true']);
      }),
    );
    await c2!.destroy();
    raw.push(await timed(runc));
  }
  const a = stat(claim);
  const c = stat(cold);
  const r = stat(raw);
  return {
    figure: 'warm claim to first exec',
    n: a.n,
    claim: { p50Ms: round(a.p50), p99Ms: round(percentile(claim, 0.99)), minMs: round(a.min) },
    coldCreate: { p50Ms: round(c.p50), p99Ms: round(percentile(cold, 0.99)) },
    rawRunc: { p50Ms: round(r.p50), p99Ms: round(percentile(raw, 0.99)) },
    claimOverColdP50: round(a.p50 / c.p50, 3),
    claimOverRawRuncP50: round(a.p50 / r.p50, 3),
    targets: 'claim p50 ≤ 5 ms, p99 ≤ 20 ms',
  };
}

async function refillFigure(concurrency: number) {
  const size = 10;
  const t = performance.now();
  const pool = CellPool.open({
    policy,
    workspace: project,
    size,
    stateRoot,
    fillConcurrency: concurrency,
  });
  await pool.whenFull();
  const s = (performance.now() - t) / 1000;
  await pool.close();
  return { figure: `refill, ${concurrency} at once`, cells: size, cellsPerSecond: round(size / s) };
}

async function scaleFigure() {
  const cg = probeHost().cgroup;
  const pool = CellPool.open({
    policy,
    workspace: project,
    size: CELLS,
    stateRoot,
    fillConcurrency: 2,
  });
  const tFill = performance.now();
  await pool.whenFull();
  const fillS = (performance.now() - tFill) / 1000;
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  const cells = await Promise.all(
    Array.from({ length: CELLS }, () => pool.claim({ record: false })),
  );
  await pool.resize(0);
  const runs = await Promise.all(cells.map((c) => c.run(['/bin/true'])));
  global.gc?.();
  const rss1 = process.memoryUsage().rss;
  // The monitors, and the fork server they start from (its share per cell is tiny).
  const monitors = helpersOf(process.pid).filter(
    ([, c]) => c.startsWith('nanocell-moni') || c === 'nanocell-forkse',
  );
  const monitorPss = monitors.reduce((s, [pid]) => s + pssBytes(pid), 0);
  const cgroupBytes = cells.reduce(
    (s, c) =>
      s + (readNumber(`/sys/fs/cgroup/memory/${cg.parent}/${c.id}/memory.usage_in_bytes`) ?? 0),
    0,
  );
  const ok = runs.filter((r) => r.exitCode === 0).length;
  await Promise.allSettled(cells.map((c) => c.destroy()));
  await pool.close();
  return {
    figure: `${CELLS} claimed cells at once`,
    cells: CELLS,
    ranTrue: ok,
    fillSeconds: round(fillS),
    perCellMiB: {
      // The supervisor's share is measured from the claims on (the pool held them before).
      supervisorRss: round(toMiB(Math.max(0, rss1 - rss0) / CELLS)),
      monitorPss: round(toMiB(monitorPss / CELLS)),
      cgroup: round(toMiB(cgroupBytes / CELLS)),
      total: round(toMiB((Math.max(0, rss1 - rss0) + monitorPss + cgroupBytes) / CELLS)),
    },
    target: 'host memory per cell beyond the task ≤ 5 MiB',
  };
}

const runc = await setupRunc(base);
try {
  const load = loadAvg();
  const pool = CellPool.open({ policy, workspace: project, size: 2, stateRoot });
  const claim = await claimFigure(pool, () => runc.runc.run());
  await pool.close();
  const refill = [await refillFigure(1), await refillFigure(2)];
  const scale = await scaleFigure();
  process.stdout.write(
    `${JSON.stringify({ loadBefore: load, loadAfter: loadAvg(), claim, refill, scale }, null, 2)}\n`,
  );
} finally {
  await runc.close();
  fs.rmSync(base, { recursive: true, force: true });
  log('done');
}
