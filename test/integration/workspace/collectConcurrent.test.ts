// A hostile change set (tens of thousands of files) is collected off the supervisor's event
// loop: while it is being collected, another cell of the same process starts, runs and ends.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { leftovers, makeSandbox, type Sandbox } from '../../helpers/cells.js';

const sandboxes: Sandbox[] = [];
afterEach(() => {
  for (const sb of sandboxes.splice(0)) sb.cleanup();
});
const sandbox = () => {
  const sb = makeSandbox();
  sandboxes.push(sb);
  return sb;
};
const tick = () => new Promise((r) => setTimeout(r, 5));

// A fifth of the file cap: collecting it takes several times as long as a whole cell's life
// (the cap itself would add half a minute and prove nothing more).
const FILES = 20_000;

describe('change-set collection and other cells', () => {
  it(
    'another cell starts, execs and ends while a huge change set is collected',
    { timeout: 240_000 },
    async () => {
      const sbA = sandbox();
      const sbB = sandbox();
      const a = await Cell.create({
        policy: resolvePolicy(parsePolicy({ limits: { disk: '64m' } })),
        workspace: sbA.project,
        stateRoot: sbA.stateRoot,
        taskId: 'big',
      });
      const baseA = a.hostUidBase!;
      let aDestroyed: ReturnType<Cell['destroy']> | undefined;
      try {
        const made = await a.run([
          'python3',
          '-c',
          `import os\nos.mkdir('many')\nfor i in range(${FILES}): open('many/%d' % i, 'w').close()\nprint('made')`,
        ]);
        expect(made).toMatchObject({ exitCode: 0, stdout: 'made\n' });

        const outDir = path.join(sbA.stateRoot, 'changes', 'big');
        aDestroyed = a.destroy();
        // The collector creates files/ first and writes the manifest last. A collector on this
        // thread would let this loop run only after it finished, manifest and all.
        while (!fs.existsSync(path.join(outDir, 'files'))) await tick();
        expect(fs.existsSync(path.join(outDir, 'manifest.json'))).toBe(false);

        const b = await Cell.create({
          policy: resolvePolicy(parsePolicy({})),
          workspace: sbB.project,
          stateRoot: sbB.stateRoot,
        });
        const baseB = b.hostUidBase!;
        let bRun;
        try {
          bRun = await b.run(['sh', '-c', 'echo neighbour; cat README.md']);
        } finally {
          await b.destroy();
        }
        expect(bRun).toMatchObject({
          exitCode: 0,
          endReason: 'exited',
          stdout: 'neighbour\nhello\n',
        });
        expect(leftovers(sbB.stateRoot, [baseB])).toMatchObject({ cells: [], mounts: [] });

        const summary = await aDestroyed;
        expect(summary.changeSet).toMatchObject({
          status: 'ok',
          counts: { add: FILES + 1, refused: 0 },
        });
      } finally {
        await (aDestroyed ?? a.destroy()).catch(() => undefined);
      }
      expect(leftovers(sbA.stateRoot, [baseA])).toMatchObject({
        cells: [],
        mounts: [],
        processes: [],
      });
    },
  );
});
