// Cold start per OCI runtime: Cell.create + run `true` + destroy through the library, with the
// default policy (seccomp, Landlock where the runtime has it, idmapped workspace overlay).
// Root only. Run: npx tsc -p tsconfig.json --outDir /tmp/nc-bench;
//   NANOCELL_NATIVE_DIR=$PWD/native/build node /tmp/nc-bench/bench/runtimes.js
// Env: RUNS (default 10), RUNTIMES (default runc,crun,runsc). Prints JSON, then a markdown table.
import fs from 'node:fs';
import { Cell } from '../src/cell/cell.js';
import type { RuntimeName } from '../src/policy/defaults.js';
import { parsePolicy, resolvePolicy } from '../src/policy/load.js';

const RUNS = Number(process.env.RUNS ?? 10);
const RUNTIMES = (process.env.RUNTIMES ?? 'runc,crun,runsc').split(',') as RuntimeName[];

const quantile = (xs: number[], q: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * q))]!;

async function coldStart(runtime: RuntimeName, project: string, stateRoot: string) {
  const policy = resolvePolicy(
    parsePolicy({
      runtime: { name: runtime },
      ...(runtime === 'runsc' ? { allowDegraded: ['landlock'] } : {}),
    }),
  );
  const t0 = performance.now();
  const cell = await Cell.create({ policy, workspace: project, stateRoot });
  const t1 = performance.now();
  try {
    const r = await cell.run(['true']);
    if (r.exitCode !== 0) throw new Error(`true exited ${r.exitCode} under ${runtime}`);
  } finally {
    await cell.destroy();
  }
  const t3 = performance.now();
  return { totalMs: t3 - t0, createMs: t1 - t0 };
}

async function main() {
  const base = fs.mkdtempSync('/var/tmp/nanocell-bench-rt-');
  fs.chmodSync(base, 0o755);
  const project = `${base}/project`;
  fs.mkdirSync(project);
  fs.writeFileSync(`${project}/README.md`, 'bench\n');
  const results = [];
  try {
    for (const runtime of RUNTIMES) {
      const stateRoot = `${base}/state-${runtime}`;
      await coldStart(runtime, project, stateRoot); // warm caches (etc dir, page cache)
      const total: number[] = [];
      const create: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const r = await coldStart(runtime, project, stateRoot);
        total.push(r.totalMs);
        create.push(r.createMs);
      }
      results.push({
        runtime,
        runs: RUNS,
        medianMs: quantile(total, 0.5),
        p90Ms: quantile(total, 0.9),
        createMedianMs: quantile(create, 0.5),
      });
    }
  } finally {
    fs.rmSync(base, { recursive: true, force: true });
  }
  console.log(JSON.stringify(results, null, 2));
  console.log('| runtime | create+run true+destroy, median | p90 | create alone, median |');
  console.log('|---|---|---|---|');
  for (const r of results) {
    const f = (x: number) => `${x.toFixed(0)} ms`;
    console.log(`| ${r.runtime} | ${f(r.medianMs)} | ${f(r.p90Ms)} | ${f(r.createMedianMs)} |`);
  }
}

await main();
