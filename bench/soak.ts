// Soak: the chaos loop of test/attacks/chaos.test.ts at scale. N cells (default 2000) with random
// abrupt ends (the task SIGKILLs itself, the CLI is SIGKILLed mid-run, timeouts, OOM), then
// `nanocell gc`, then zero leftovers and a consistent state store. Not part of the test suite.
//
// Run as root after building (npm run build && make -C native), from the repository root:
//   npx tsc -p tsconfig.json --outDir /tmp/nanocell-soak && \
//     node /tmp/nanocell-soak/bench/soak.js [--cells 2000] [--concurrency 4] [--seed N]
// It prints the seed first (replay a failure with --seed), progress every 50 cells, and exits 1
// with the leftovers or store problems if there are any. The CI run measured about 2 s per cell at
// concurrency 4 on 2 cores, so 2000 cells take roughly 70 minutes.
import { parseArgs } from 'node:util';
import { makeSandbox } from '../test/helpers/cells.js';
import path from 'node:path';
import { gcAndInventory, runChaos, storeProblems, useCli } from '../test/attacks/chaosLoop.js';

const { values } = parseArgs({
  options: {
    cells: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '4' },
    seed: { type: 'string' },
  },
});
// Compiled to another dir, this file must still drive the repository's CLI (run from the repo).
useCli(path.resolve('dist/cli/nanocell.mjs'));
const seed = Number(values.seed ?? Date.now() % 2 ** 31);
const sb = makeSandbox();
console.log(`soak: ${values.cells} cells, concurrency ${values.concurrency}, seed ${seed}`);
try {
  const r = await runChaos({
    cells: Number(values.cells),
    concurrency: Number(values.concurrency),
    seed,
    stateRoot: sb.stateRoot,
    workspace: sb.project,
    log: (l) => console.log(l),
  });
  console.log(JSON.stringify({ ...r, cellIds: r.cellIds.length, uidBases: r.uidBases.length }));
  const left = Object.fromEntries(
    Object.entries(gcAndInventory(sb.stateRoot, r)).filter(([, v]) => v.length),
  );
  const store = storeProblems(sb.stateRoot);
  console.log(`tasks recorded: ${store.tasks}`);
  if (Object.keys(left).length || store.problems.length) {
    console.error('LEFTOVERS', JSON.stringify(left, null, 2));
    console.error('STORE PROBLEMS', store.problems.slice(0, 50).join('\n'));
    process.exitCode = 1;
  } else {
    console.log(`clean: ${r.cellIds.length} cells seen, ${(r.durationMs / 1000).toFixed(0)} s`);
  }
} finally {
  sb.cleanup();
}
