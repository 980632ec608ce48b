// Figures that grow something: the project (workspace setup and change collection) and the
// number of cells alive at once (throughput, memory per cell, start latency under load).
import fs from 'node:fs';
import path from 'node:path';
import { Cell } from '../../src/cell/cell.js';
import { probeHost } from '../../src/host/probe.js';
import { helpersOf, hostUsedBytes, pssBytes, readNumber, toMiB } from './host.js';
import { FULL_POLICY, type Ctx } from './nanocell.js';
import { runQuiet } from './peers.js';
import type { Figure, Row } from './report.js';
import { stat, timeIt } from './stats.js';

/** 100 files per directory, 1 KiB each, the shape bench/workspace-setup.ts uses. */
export function buildProject(root: string, files: number): void {
  const body = 'x'.repeat(1024);
  for (let i = 0; i < files; i++) {
    const dir = `${root}/d${Math.floor(i / 10_000)}/e${Math.floor(i / 100) % 100}`;
    if (i % 100 === 0) fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(`${dir}/f${i}.ts`, body);
  }
}

// The task edits 10 files and adds 10, so destroy has a change set to collect.
const CHANGE_SCRIPT =
  'for i in 0 1 2 3 4 5 6 7 8 9; do echo edit >> d0/e0/f$i.ts; echo new > new$i.txt; done';

export async function workspaceFigure(
  ctx: Ctx,
  base: string,
  sizes: number[],
  reps: number,
  log: (s: string) => void,
): Promise<Figure> {
  const rows: Row[] = [];
  const creates: number[] = [];
  for (const files of sizes) {
    const project = path.join(base, `ws-${files}`);
    fs.mkdirSync(project, { recursive: true });
    buildProject(project, files);
    const create: number[] = [];
    const collect: number[] = [];
    const cp: number[] = [];
    // 100k-file copies take minutes on a busy disk: fewer repetitions there.
    const n = files >= 100_000 ? Math.min(reps, 2) : reps;
    for (let r = 0; r < n; r++) {
      let cell: Cell | undefined;
      create.push(
        await timeIt(async () => {
          cell = await Cell.create({
            policy: FULL_POLICY,
            workspace: project,
            stateRoot: ctx.stateRoot,
          });
        }),
      );
      try {
        const res = await cell!.run(['sh', '-c', CHANGE_SCRIPT]);
        if (res.exitCode !== 0) throw new Error(`change script failed: ${res.stderr}`);
      } finally {
        collect.push(await timeIt(() => cell!.destroy()));
      }
      if (r > 0 && files >= 100_000) continue;
      cp.push(await timeIt(() => runQuiet('cp', ['-a', project, `${project}.copy`])));
      fs.rmSync(`${project}.copy`, { recursive: true, force: true });
    }
    fs.rmSync(project, { recursive: true, force: true });
    const k = files >= 1000 ? `${files / 1000}k` : String(files);
    rows.push(
      { label: `create cell, ${k} files`, kind: 'nanocell', stat: stat(create) },
      { label: `destroy + collect 20 changes, ${k} files`, kind: 'nanocell', stat: stat(collect) },
      { label: `cp -a, ${k} files`, kind: 'baseline', stat: stat(cp) },
    );
    creates.push(stat(create).p50);
    log(`  ${files} files done`);
  }
  const growth = creates.length > 1 ? creates[creates.length - 1]! / creates[0]! : 1;
  return {
    id: 'workspace',
    title: 'Workspace setup and change collection by project size',
    unit: 'ms',
    what:
      'A real cell (full policy) on projects of 1k, 10k and 100k files of 1 KiB (100 per directory). ' +
      '"create" includes the scope walk, the whiteout layer, the idmapped lower layer and the overlay mount; ' +
      'the task then edits 10 files and adds 10; "destroy + collect" stops the cell and writes the change set. ' +
      'Against copying the project with `cp -a`, what a copy-based sandbox pays instead.',
    rows,
    targets: [
      {
        text: 'workspace setup flat in project size',
        met: growth < 2,
        detail: `create p50 grows ${growth.toFixed(2)}x from ${sizes[0]} to ${sizes[sizes.length - 1]} files (flat = under 2x).${
          growth < 2
            ? ''
            : ' The default scope walks the whole tree to find excluded and protected paths (.env, .git/hooks, …) before mounting, so setup is linear in the file count even though the overlay mount itself is constant.'
        }`,
      },
    ],
  };
}

export interface ConcurrencyResult {
  figures: Figure[];
  supervisor: { baseRssMiB: number; perCellRssMiB: number; cells: number; heapMiB: number };
}

/** N cells created at once, kept alive while memory is measured, then destroyed at once. */
export async function concurrencyFigures(
  ctx: Ctx,
  levels: number[],
  log: (s: string) => void,
): Promise<ConcurrencyResult> {
  const cg = probeHost().cgroup;
  const startRows: Row[] = [];
  const thruRows: Row[] = [];
  const memRows: Row[] = [];
  const notes: string[] = [];
  let supervisor = { baseRssMiB: 0, perCellRssMiB: 0, cells: 0, heapMiB: 0 };
  let perCellAt100 = NaN;
  let maxLevel = 0;
  for (const n of levels) {
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    const host0 = hostUsedBytes();
    const t0 = performance.now();
    const starts: number[] = [];
    const settled = await Promise.allSettled(
      Array.from({ length: n }, async () => {
        const t = performance.now();
        const cell = await Cell.create({
          policy: FULL_POLICY,
          workspace: ctx.project,
          stateRoot: ctx.stateRoot,
        });
        starts.push(performance.now() - t);
        const r = await cell.run(['/bin/true']);
        if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}`);
        return cell;
      }),
    );
    const cells = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const errors = settled.flatMap((s) => (s.status === 'rejected' ? [String(s.reason)] : []));
    // Everything alive: attribute memory per cell.
    global.gc?.();
    const rss1 = process.memoryUsage().rss;
    const heap = process.memoryUsage().heapUsed;
    const host1 = hostUsedBytes();
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
    const ok = cells.length;
    const perCell = ok
      ? toMiB((rss1 - rss0) / ok) + toMiB(monitorPss / ok) + toMiB(cgroupBytes / ok)
      : NaN;
    await Promise.allSettled(cells.map((c) => c.destroy()));
    const wallS = (performance.now() - t0) / 1000;
    if (errors.length)
      notes.push(`${n} cells: ${errors.length} failed (${errors[0]!.slice(0, 200)})`);
    startRows.push({ label: `${n} at once`, kind: 'nanocell', stat: stat(starts) });
    thruRows.push({
      label: `${n} at once`,
      kind: 'nanocell',
      stat: stat([ok / wallS]),
    });
    memRows.push(
      { label: `${n} cells: total per cell`, kind: 'nanocell', stat: stat([perCell]) },
      {
        label: `${n} cells: supervisor RSS`,
        kind: 'baseline',
        stat: stat([toMiB((rss1 - rss0) / Math.max(ok, 1))]),
      },
      {
        label: `${n} cells: monitor PSS`,
        kind: 'baseline',
        stat: stat([toMiB(monitorPss / Math.max(ok, 1))]),
      },
      {
        label: `${n} cells: cell cgroup`,
        kind: 'baseline',
        stat: stat([toMiB(cgroupBytes / Math.max(ok, 1))]),
      },
      {
        label: `${n} cells: host used ÷ n (check)`,
        kind: 'baseline',
        stat: stat([toMiB((host1 - host0) / Math.max(ok, 1))]),
      },
    );
    if (n >= maxLevel) {
      maxLevel = n;
      perCellAt100 = perCell;
      supervisor = {
        baseRssMiB: toMiB(rss0),
        perCellRssMiB: toMiB((rss1 - rss0) / Math.max(ok, 1)),
        cells: ok,
        heapMiB: toMiB(heap),
      };
    }
    log(`  ${n} cells: ${ok} ok in ${wallS.toFixed(1)} s, ${perCell.toFixed(2)} MiB per cell`);
  }
  const memNote =
    "Per cell = supervisor RSS growth ÷ n (proxy, streams, timers in the node process) + the monitor's PSS " +
    "(shared pages split among all monitors) + the cell's memory cgroup usage (nanocell-init, the cell's kernel objects " +
    'and its tmpfs pages; the task here is /bin/true, which has exited, so the cgroup holds no task memory). ' +
    'runc has exited by then. "host used ÷ n" (MemTotal − MemAvailable, before vs. with all cells alive) also catches ' +
    'kernel memory outside the cgroup (mount tables, overlay and namespace objects) but includes whatever else the host ' +
    'did meanwhile, so it is a cross-check only.';
  const met = Number.isFinite(perCellAt100) ? perCellAt100 < 10 : null;
  return {
    supervisor,
    figures: [
      {
        id: 'concurrency-start',
        title: 'Start latency under load',
        unit: 'ms',
        what:
          'n cells (full policy) created at the same moment from one supervisor; each `Cell.create` duration, ' +
          'then each runs /bin/true. On 2 cores the start latency grows with n: the work is CPU-bound (runc, mounts).',
        rows: startRows,
        notes,
      },
      {
        id: 'concurrency-throughput',
        title: 'Cell throughput at n at once',
        unit: 'cells/s',
        higherIsBetter: true,
        what: 'n ÷ wall time from the first create to the last destroy (create, run /bin/true, destroy).',
        rows: thruRows,
      },
      {
        id: 'concurrency-memory',
        title: 'Host memory per live cell beyond the task',
        unit: 'MiB',
        what: memNote,
        rows: memRows,
        targets: [
          {
            text: `${maxLevel} concurrent cells, each < 10 MiB beyond the task`,
            met,
            detail: `${perCellAt100.toFixed(2)} MiB per cell with ${maxLevel} alive.`,
          },
        ],
      },
    ],
  };
}
