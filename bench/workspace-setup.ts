// Workspace setup cost vs copying the project: scope walk + whiteout layer + overlay mount,
// against `cp -a`, for projects of 1k, 10k and 100k files. Root only (it mounts).
// Run: npx tsc -p tsconfig.json --outDir /tmp/nc-bench; node /tmp/nc-bench/bench/workspace-setup.js
// Prints one JSON document, then one markdown table row per size.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execa } from 'execa';
import { DEFAULT_EXCLUDES, DEFAULT_PROTECTED } from '../src/policy/defaults.js';
import { mountOverlay, prepareOverlay, teardownOverlay } from '../src/workspace/overlay.js';
import { planScope } from '../src/workspace/scope.js';

const SIZES = (process.env.SIZES ?? '1000,10000,100000').split(',').map(Number);
const RUNS = Number(process.env.RUNS ?? 5);
const patterns = {
  include: ['**'],
  exclude: [...DEFAULT_EXCLUDES],
  protected: [...DEFAULT_PROTECTED],
};

/** A project shaped like a real one: 100 files per dir, 3 levels, 1 KiB each, a few secrets. */
function buildProject(root: string, files: number): void {
  const body = 'x'.repeat(1024);
  for (let i = 0; i < files; i++) {
    const dir = `${root}/d${Math.floor(i / 10_000)}/e${Math.floor(i / 100) % 100}`;
    if (i % 100 === 0) mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/f${i}.ts`, body);
  }
  writeFileSync(`${root}/.env`, 'SECRET=1\n');
  mkdirSync(`${root}/.git/hooks`, { recursive: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main() {
  const base = mkdtempSync('/tmp/nanocell-bench-');
  const results = [];
  try {
    for (const files of SIZES) {
      const project = `${base}/p${files}`;
      mkdirSync(project);
      buildProject(project, files);
      const scopeMs: number[] = [];
      const setupMs: number[] = [];
      const cpMs: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const t0 = performance.now();
        const plan = await planScope(project, patterns);
        const t1 = performance.now();
        const dirs = await prepareOverlay({ baseDir: `${base}/cell`, plan, sizeBytes: 1 << 30 });
        await mountOverlay({ lowerDir: project, dirs });
        const t2 = performance.now();
        await teardownOverlay(dirs);
        scopeMs.push(t1 - t0);
        setupMs.push(t2 - t0);
        const c0 = performance.now();
        await execa('cp', ['-a', project, `${base}/copy`]);
        cpMs.push(performance.now() - c0);
        rmSync(`${base}/copy`, { recursive: true, force: true });
      }
      rmSync(project, { recursive: true, force: true });
      results.push({
        files,
        runs: RUNS,
        scopeMs: +median(scopeMs).toFixed(1),
        setupMs: +median(setupMs).toFixed(1),
        cpMs: +median(cpMs).toFixed(1),
      });
    }
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  process.stdout.write(`${JSON.stringify({ bench: 'workspace-setup', results }, null, 2)}\n`);
  for (const r of results) {
    process.stdout.write(
      `| ${r.files} files | scope ${r.scopeMs} ms | scope+overlay ${r.setupMs} ms | cp -a ${r.cpMs} ms |\n`,
    );
  }
}

await main();
