// What the seccomp filter (and its notify path for execs) costs: a syscall-heavy workload in
// two live cells of the same run, one with the default profile and one without any filter
// (Cell option benchOff.seccomp). Runs alternate between the cells so drift hits both alike.
//   - git status on a repository of 10k files (stat/open/getdents heavy, no exec);
//   - a small C build with make (about 40 execs, each one a notification to the monitor).
// Root only (cells mount). Run from the repo (node_modules) after `make -C native`:
//   npx tsc -p tsconfig.json --outDir .bench-out &&
//     NANOCELL_NATIVE_DIR=$PWD/native/build node .bench-out/bench/seccomp-overhead.js
// Env: RUNS (default 9), FILES (default 10000). Prints one JSON document, then a markdown row
// per workload.
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { Cell } from '../src/cell/cell.js';
import { parsePolicy, resolvePolicy } from '../src/policy/load.js';

const RUNS = Number(process.env.RUNS ?? 9);
const FILES = Number(process.env.FILES ?? 10_000);
const C_UNITS = 12;

/** A repository of `files` committed files, 100 per directory; one file is modified. */
function buildRepo(root: string, files: number): void {
  for (let i = 0; i < files; i++) {
    const dir = `${root}/src/m${Math.floor(i / 100)}`;
    if (i % 100 === 0) mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/f${i}.txt`, `line ${i}\n`);
  }
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=bench', '-c', 'user.email=bench@invalid', ...args], {
      cwd: root,
      stdio: 'ignore',
    });
  git('init', '-q', '-b', 'main');
  git('add', '-A');
  git('commit', '-qm', 'files');
  writeFileSync(`${root}/src/m0/f0.txt`, 'changed\n');
}

/** C_UNITS translation units, a static library and a program: compile, archive, link. */
function buildCProject(root: string): void {
  mkdirSync(`${root}/csrc`, { recursive: true });
  const calls: string[] = [];
  for (let i = 0; i < C_UNITS; i++) {
    writeFileSync(
      `${root}/csrc/u${i}.c`,
      `#include <string.h>\nint u${i}(const char *s) { int n = 0; for (size_t k = 0; k < strlen(s); k++) n += s[k] * ${i + 1}; return n; }\n`,
    );
    calls.push(`u${i}(argv[0])`);
  }
  writeFileSync(
    `${root}/csrc/main.c`,
    `#include <stdio.h>\n${calls.map((_, i) => `int u${i}(const char *);`).join('\n')}\n` +
      `int main(int argc, char **argv) { (void)argc; printf("%d\\n", ${calls.join(' + ')}); return 0; }\n`,
  );
  const objs = Array.from({ length: C_UNITS }, (_, i) => `out/u${i}.o`).join(' ');
  writeFileSync(
    `${root}/csrc/Makefile`,
    [
      'CFLAGS = -O1',
      `prog: out/main.o out/libu.a`,
      '\t$(CC) -o $@ out/main.o -Lout -lu',
      `out/libu.a: ${objs}`,
      '\t$(AR) rcs $@ $^',
      'out/%.o: %.c | out',
      '\t$(CC) $(CFLAGS) -c -o $@ $<',
      'out:',
      '\tmkdir -p out',
      '',
    ].join('\n'),
  );
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function timed(cell: Cell, argv: string[], cwd: string): Promise<number> {
  const t0 = process.hrtime.bigint();
  const r = await cell.run(argv, { cwd });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
  return ms;
}

async function main() {
  mkdirSync('/var/tmp/nanocell-bench', { recursive: true });
  const base = mkdtempSync('/var/tmp/nanocell-bench/seccomp-');
  chmodSync(base, 0o755);
  const project = `${base}/project`;
  mkdirSync(project);
  buildRepo(project, FILES);
  buildCProject(project);
  const policy = resolvePolicy(parsePolicy({}));
  const cells: Record<'filtered' | 'unfiltered', Cell | undefined> = {
    filtered: undefined,
    unfiltered: undefined,
  };
  try {
    cells.filtered = await Cell.create({ policy, workspace: project, stateRoot: `${base}/state` });
    cells.unfiltered = await Cell.create({
      policy,
      workspace: project,
      stateRoot: `${base}/state`,
      benchOff: { seccomp: true },
    });
    const workloads = {
      'git status (10k files)': { argv: ['git', 'status', '--porcelain'], cwd: project },
      [`C build (${C_UNITS + 1} units, make -B)`]: {
        argv: ['make', '-s', '-B', 'prog'],
        cwd: `${project}/csrc`,
      },
    };
    const results = [];
    process.stderr.write(`cells up; ${RUNS} runs per workload\n`);
    for (const [name, w] of Object.entries(workloads)) {
      const times = { filtered: [] as number[], unfiltered: [] as number[] };
      // One warm-up each (page cache, overlay copy-up of .git/index), then alternate.
      for (const k of ['filtered', 'unfiltered'] as const) await timed(cells[k]!, w.argv, w.cwd);
      for (let i = 0; i < RUNS; i++) {
        const order =
          i % 2 === 0
            ? (['filtered', 'unfiltered'] as const)
            : (['unfiltered', 'filtered'] as const);
        for (const k of order) times[k].push(await timed(cells[k]!, w.argv, w.cwd));
      }
      const f = median(times.filtered);
      const u = median(times.unfiltered);
      results.push({
        workload: name,
        runs: RUNS,
        medianMs: { filtered: round(f), unfiltered: round(u) },
        overheadPct: round(((f - u) / u) * 100),
        timesMs: { filtered: times.filtered.map(round), unfiltered: times.unfiltered.map(round) },
      });
    }
    console.log(JSON.stringify({ bench: 'seccomp-overhead', files: FILES, results }, null, 2));
    console.log('\n| workload | with filter (ms) | without (ms) | overhead |');
    console.log('| --- | --- | --- | --- |');
    for (const r of results) {
      console.log(
        `| ${r.workload} | ${r.medianMs.filtered} | ${r.medianMs.unfiltered} | ${r.overheadPct}% |`,
      );
    }
  } finally {
    for (const c of Object.values(cells)) {
      await c?.destroy().catch((e: unknown) => console.error('destroy:', e));
    }
    rmSync(base, { recursive: true, force: true });
  }
}

const round = (x: number) => Math.round(x * 10) / 10;

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
