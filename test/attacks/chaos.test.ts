// Chaos: 100 cells with random abrupt ends (the task SIGKILLs itself, the nanocell CLI is
// SIGKILLed mid-run, wall-clock timeouts, OOM), 4 at a time, then `nanocell gc`: nothing may be
// left and every task must be ended with an intact hash chain. NANOCELL_CHAOS_SEED replays a run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeSandbox, type Sandbox } from '../helpers/cells.js';
import { gcAndInventory, runChaos, storeProblems } from './chaosLoop.js';

const CELLS = 100;
const seed = Number(process.env.NANOCELL_CHAOS_SEED ?? Date.now() % 2 ** 31);
let sb: Sandbox;

beforeAll(() => {
  sb = makeSandbox();
});
afterAll(() => sb?.cleanup());

describe('chaos', () => {
  it(
    `${CELLS} cells with random abrupt ends leave nothing behind (seed ${seed})`,
    { timeout: 300_000 },
    async () => {
      console.log(`chaos seed ${seed} (replay with NANOCELL_CHAOS_SEED=${seed})`);
      const r = await runChaos({
        cells: CELLS,
        concurrency: 4,
        seed,
        stateRoot: sb.stateRoot,
        workspace: sb.project,
        log: (l) => console.log(l),
      });
      console.log(JSON.stringify({ ...r, cellIds: r.cellIds.length, uidBases: r.uidBases.length }));
      const left = gcAndInventory(sb.stateRoot, r);
      expect(Object.fromEntries(Object.entries(left).filter(([, v]) => v.length))).toEqual({});
      const { tasks, problems } = storeProblems(sb.stateRoot);
      expect(problems).toEqual([]);
      // A CLI killed before it created its task leaves no row; every other run does.
      expect(tasks).toBeGreaterThanOrEqual(CELLS - r.counts['cli-sigkill']);
      // The planned endings really happened, with Docker's exit codes.
      for (const [key, n] of Object.entries(r.exitCodes)) {
        const [ending, code] = key.split(':');
        const expected = {
          exit: ['0'],
          'task-sigkill': ['137'],
          timeout: ['124'],
          oom: ['137'],
          'cli-sigkill': ['sig'],
        }[ending!]!;
        expect(
          expected.some((c) => code!.startsWith(c)),
          `${key} x${n}`,
        ).toBe(true);
      }
    },
  );
});
