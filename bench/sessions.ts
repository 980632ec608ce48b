// Session costs: freezing a 10k-file change as a checkpoint, and the workspace part of forking
// 10 cells from it (checking the checkpoint against its layers' seals, then 10 overlays with
// its layers under them). Wall times, and the CPU time of this process for checkpoint and
// check. Root only (it mounts). The runtime's own start is not in these figures: see
// bench/run.ts for whole cells.
// Run: node --import ./bench/register.mjs bench/sessions.ts   (FILES=10000 FORKS=10 RUNS=3)
// 2026-12-03, 2 cores (shared, load ~2-4), medians of 3, before -> after sealed layers:
// checkpoint 437 -> 24 ms, check 169 -> 65 ms, 10 overlays 188 -> 218 ms (noise: not changed),
// fork total 357 -> 283 ms. The layer build pays the one hashing (7.5 s -> 7.4-9.6 s).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { checkpointStack, createCheckpoint } from '../src/cell/checkpoint.js';
import { resolveStack } from '../src/cell/session.js';
import { ensureStateRoot } from '../src/cell/state.js';
import { collectChangeSet } from '../src/workspace/changeset.js';
import { mountOverlay, prepareOverlay, teardownOverlay } from '../src/workspace/overlay.js';
import { planScope } from '../src/workspace/scope.js';

const FILES = Number(process.env.FILES ?? 10_000);
const FORKS = Number(process.env.FORKS ?? 10);
const RUNS = Number(process.env.RUNS ?? 3);
const patterns = { include: ['**'], exclude: [], protected: [] };

// CPU time of this process: what the step costs whatever else the host runs meanwhile.
const cpuMs = (since: NodeJS.CpuUsage) => {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1000;
};

async function once() {
  const base = mkdtempSync('/var/tmp/nanocell-bench-sessions-');
  try {
    const project = `${base}/project`;
    mkdirSync(project);
    writeFileSync(`${project}/README`, 'r\n');
    const layout = ensureStateRoot(`${base}/state`);
    const plan = await planScope(project, patterns);
    const dirs = await prepareOverlay({ baseDir: `${base}/cell`, plan, sizeBytes: 1 << 30 });
    await mountOverlay({ lowerDir: project, dirs });
    for (let i = 0; i < FILES; i++) {
      const dir = `${dirs.mergedDir}/d${Math.floor(i / 500)}`;
      if (i % 500 === 0) mkdirSync(dir);
      writeFileSync(`${dir}/f${i}`, `file ${i}\n`);
    }
    const taskId = '01benchsessions000';
    await collectChangeSet({
      upperDir: dirs.upperDir,
      lowerDir: project,
      projectDir: project,
      outDir: layout.changeSet(taskId),
      taskId,
      startedAtMs: Date.now() - 1,
      limits: { maxFiles: FILES * 2, maxBytes: 1 << 30 },
      scope: plan,
      mergedDir: dirs.mergedDir,
      session: 'bench',
    });
    await teardownOverlay(dirs);
    let t = performance.now();
    await resolveStack(layout, 'bench', taskId, project); // the layer, built once per task
    const layerMs = performance.now() - t;
    t = performance.now();
    let cpu = process.cpuUsage();
    const ck = await createCheckpoint(layout, 'bench', taskId, project);
    const checkpointMs = performance.now() - t;
    const checkpointCpuMs = cpuMs(cpu);
    t = performance.now();
    cpu = process.cpuUsage();
    const stack = await checkpointStack(layout, ck.id, project);
    const verifyMs = performance.now() - t;
    const verifyCpuMs = cpuMs(cpu);
    t = performance.now();
    const forks = [];
    for (let i = 0; i < FORKS; i++) {
      const d = await prepareOverlay({ baseDir: `${base}/fork${i}`, plan, sizeBytes: 1 << 26 });
      await mountOverlay({ lowerDir: project, stack: stack.layers, dirs: d });
      forks.push(d);
    }
    const mountsMs = performance.now() - t;
    for (const d of forks) await teardownOverlay(d);
    return { layerMs, checkpointMs, checkpointCpuMs, verifyMs, verifyCpuMs, mountsMs };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
type Run = Awaited<ReturnType<typeof once>>;
const runs: Run[] = [];
for (let i = 0; i < RUNS; i++) runs.push(await once());
const pick = (k: keyof Run) => Math.round(median(runs.map((r) => r[k])));
process.stdout.write(
  `${JSON.stringify(
    {
      files: FILES,
      forks: FORKS,
      runs: RUNS,
      medianMs: {
        buildLayer: pick('layerMs'),
        checkpoint: pick('checkpointMs'),
        checkpointCpu: pick('checkpointCpuMs'),
        verifyCheckpoint: pick('verifyMs'),
        verifyCheckpointCpu: pick('verifyCpuMs'),
        forkOverlays: pick('mountsMs'),
        forkTotal: pick('verifyMs') + pick('mountsMs'),
      },
    },
    null,
    2,
  )}\n`,
);
