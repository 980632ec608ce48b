// Apply cost against its peer, a plain `cp -a` of the changed files over the project (no
// validation, no atomicity), for a change set modifying N files. Root only (it mounts).
// Run: node --import ./bench/register.mjs bench/apply.ts   (FILES=50000 RUNS=3 by default)
// Prints one JSON document: median ms of each, their ratio, and the journal's size.
import { mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { applyChangeSet } from '../src/workspace/apply.js';
import { collectChangeSet } from '../src/workspace/changeset.js';
import {
  mountOverlay,
  prepareOverlay,
  teardownOverlay,
  unmountOverlay,
} from '../src/workspace/overlay.js';
import { planScope } from '../src/workspace/scope.js';

const FILES = Number(process.env.FILES ?? 50_000);
const RUNS = Number(process.env.RUNS ?? 3);
const patterns = { include: ['**'], exclude: [], protected: [] };

async function once(): Promise<{ applyMs: number; cpMs: number; journalBytes: number }> {
  const base = mkdtempSync('/var/tmp/nanocell-bench-apply-');
  try {
    const project = `${base}/project`;
    for (let i = 0; i < FILES; i++) {
      const dir = `${project}/d${Math.floor(i / 500)}`;
      if (i % 500 === 0) mkdirSync(dir, { recursive: true });
      writeFileSync(`${dir}/f${i}`, `v1 ${i}\n`);
    }
    const plan = await planScope(project, patterns);
    const dirs = await prepareOverlay({ baseDir: `${base}/cell`, plan, sizeBytes: 1 << 30 });
    await mountOverlay({ lowerDir: project, dirs });
    const startedAtMs = Date.now() - 1;
    for (let i = 0; i < FILES; i++)
      writeFileSync(`${dirs.mergedDir}/d${Math.floor(i / 500)}/f${i}`, `v2 ${i}\n`);
    await unmountOverlay(dirs.mergedDir);
    const out = `${base}/state/changes/t`;
    mkdirSync(`${base}/state/changes`, { recursive: true });
    await collectChangeSet({
      upperDir: dirs.upperDir,
      lowerDir: project,
      projectDir: project,
      outDir: out,
      taskId: 't',
      startedAtMs,
      limits: { maxFiles: FILES * 2, maxBytes: 1 << 30 },
      scope: plan,
    });
    let journalBytes = 0;
    const t0 = performance.now();
    applyChangeSet(out, project, {
      onCommitStart: () => {
        const dir = `${base}/state/apply`;
        for (const n of readdirSync(dir))
          if (n.endsWith('.journal')) journalBytes = statSync(`${dir}/${n}`).size;
      },
    });
    const applyMs = performance.now() - t0;
    const peer = `${base}/peer`;
    await execa('cp', ['-a', project, peer]);
    const t1 = performance.now();
    await execa('cp', ['-a', `${dirs.upperDir}/.`, `${peer}/`]);
    await execa('sync', ['-f', peer]);
    const cpMs = performance.now() - t1;
    await teardownOverlay(dirs);
    return { applyMs, cpMs, journalBytes };
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const runs = [];
for (let i = 0; i < RUNS; i++) runs.push(await once());
const applyMs = median(runs.map((r) => r.applyMs));
const cpMs = median(runs.map((r) => r.cpMs));
process.stdout.write(
  `${JSON.stringify({ files: FILES, runs: RUNS, applyMs: Math.round(applyMs), cpMs: Math.round(cpMs), ratio: +(applyMs / cpMs).toFixed(2), journalBytes: runs[0]!.journalBytes })}\n`,
);
