// Retention: nanocell sessions lists what sessions keep; gc removes orphaned layers, old
// checkpoints and, down to --max-size, the oldest of the rest, but never what a live cell uses
// nor a layer a checkpoint pins (removing the checkpoint frees it).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
beforeAll(() => {
  sb = makeSandbox({ 'a.txt': 'a\n' });
});
afterAll(() => sb.cleanup());

const cli = (args: string[]) => nanocell(args, { stateRoot: sb.stateRoot });
const run = (extra: string[], script: string) => {
  const r = cli([
    'run',
    '--quiet',
    '--workspace',
    sb.project,
    '--session',
    'keep',
    ...extra,
    '--',
    'sh',
    '-c',
    script,
  ]);
  expect(r.status).toBe(0);
  return /change set ([0-9a-z]+)/.exec(r.stderr)![1]!;
};
const ls = (d: string) => (fs.existsSync(d) ? fs.readdirSync(d) : []);

describe('retention of session state', () => {
  it('lists, keeps what a live cell uses, and removes the rest by size and when orphaned', async () => {
    const t1 = run([], 'head -c 200000 /dev/urandom > big.bin');
    const t2 = run(['--from', 'last'], 'echo two > two.txt');
    const ck = /checkpoint (ck[0-9a-z]+)/.exec(cli(['checkpoint', t2]).stdout)![1]!;
    const listed = JSON.parse(cli(['sessions', '--json']).stdout);
    expect(listed.sessions).toEqual([{ name: 'keep', tasks: [t1, t2] }]);
    expect(listed.checkpoints.map((c: { id: string }) => c.id)).toEqual([ck]);
    expect(ls(path.join(sb.stateRoot, 'layers')).sort()).toEqual([t1, t2].sort());

    // A cell running from the checkpoint holds it and the session layers it pins against the
    // size cap.
    const live = spawn(
      'node',
      [
        CLI,
        'run',
        '--quiet',
        '--workspace',
        sb.project,
        '--session',
        'keep',
        '--from',
        ck,
        '--',
        'sleep',
        '30',
      ],
      {
        env: { ...process.env, NANOCELL_STATE_ROOT: sb.stateRoot },
        stdio: 'ignore',
      },
    );
    try {
      const cells = path.join(sb.stateRoot, 'cells');
      for (
        let i = 0;
        i < 300 && !ls(cells).some((c) => fs.existsSync(path.join(cells, c, 'stack.json')));
        i++
      )
        await new Promise((r) => setTimeout(r, 100));
      const gc = JSON.parse(cli(['gc', '--max-size', '1', '--json']).stdout);
      expect(gc.sessions.removed).toEqual([]);
      expect(ls(path.join(sb.stateRoot, 'checkpoints'))).toEqual([ck]);
      expect(ls(path.join(sb.stateRoot, 'layers')).sort()).toEqual([t1, t2].sort());
    } finally {
      live.kill('SIGTERM');
      await new Promise((r) => live.once('close', r));
    }
    // Once the cell is gone: the checkpoint first, which frees the layers it pinned.
    const gc1 = JSON.parse(cli(['gc', '--max-size', '1', '--json']).stdout);
    expect(gc1.sessions.removed.map((d: string) => path.basename(d)).sort()).toEqual(
      [ck, t1, t2].sort(),
    );
    // The layers are a cache: the session still stacks, rebuilding them.
    run(['--from', t2], 'cat two.txt big.bin > three.txt');
    expect(ls(path.join(sb.stateRoot, 'layers')).sort()).toEqual([t1, t2].sort());
    // Discarded tasks leave orphaned layers, which any gc removes; --older-than takes old
    // checkpoints, and then the layers they pinned.
    expect(cli(['checkpoint', t2]).status).toBe(0);
    cli(['discard', '--session', 'keep']);
    const gc2 = JSON.parse(cli(['gc', '--older-than', '1ms', '--json']).stdout);
    expect(gc2.sessions.removed.length).toBeGreaterThanOrEqual(1);
    expect(ls(path.join(sb.stateRoot, 'layers'))).toEqual([]);
    expect(ls(path.join(sb.stateRoot, 'checkpoints'))).toEqual([]);
    expect(JSON.parse(cli(['sessions', '--json']).stdout)).toEqual({
      sessions: [],
      checkpoints: [],
    });
  }, 300_000);
});
