// However a task ends (Ctrl-C, SIGTERM, SIGKILL of nanocell itself), nothing outlives it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import {
  cellProcesses,
  leftovers,
  makeSandbox,
  nanocell,
  slotsOf,
  spawnNanocell,
  type Sandbox,
} from '../../helpers/cells.js';

let sb: Sandbox;
beforeEach(() => {
  sb = makeSandbox();
});
afterEach(() => sb.cleanup());

const SLOT_BASE = 2 ** 30;

async function waitFor<T>(fn: () => T | undefined, ms = 60_000): Promise<T> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('timed out waiting');
}

/** Starts a long task through the CLI and waits until its command runs; returns its uid base. */
async function startLongTask() {
  const child = spawnNanocell(
    [
      'run',
      '--workspace',
      sb.project,
      '--quiet',
      '--',
      'sh',
      '-c',
      'echo ready; (sleep 1000 &); sleep 1000',
    ],
    {
      stateRoot: sb.stateRoot,
    },
  );
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  await waitFor(() => out.includes('ready') || undefined);
  const slot = slotsOf(sb.stateRoot)[0]!;
  const base = SLOT_BASE + slot * 65536;
  expect(cellProcesses([base]).length).toBeGreaterThan(0);
  const exited = new Promise<number>((resolve) =>
    child.on('exit', (code, sig) => resolve(code ?? 128 + (sig === 'SIGKILL' ? 9 : 0))),
  );
  return { child, base, exited };
}

describe('task endings', () => {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    it(`${sig} to nanocell kills the cell, exits 137 and leaves nothing`, async () => {
      const { child, base, exited } = await startLongTask();
      child.kill(sig);
      expect(await exited).toBe(137);
      expect(leftovers(sb.stateRoot, [base])).toEqual({
        cells: [],
        runtime: [],
        slots: [],
        mounts: [],
        cgroups: [],
        processes: [],
      });
    });
  }

  it('a second SIGINT gives up a change-set collection in progress and keeps nothing of it', async () => {
    const made =
      'import os\nfor i in range(60000): open("f%d" % i, "w").close()\nprint("ready", flush=True)';
    const child = spawnNanocell(
      [
        'run',
        '--workspace',
        sb.project,
        '--quiet',
        '--',
        'sh',
        '-c',
        `python3 -c '${made}' && sleep 1000`,
      ],
      { stateRoot: sb.stateRoot },
    );
    let out = '';
    let err = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    await waitFor(() => out.includes('ready') || undefined);
    const base = SLOT_BASE + slotsOf(sb.stateRoot)[0]! * 65536;
    child.kill('SIGINT');
    // Under way: the collector has started storing files and has not written its manifest.
    const changes = path.join(sb.stateRoot, 'changes');
    const taskDir = await waitFor(() => {
      const [id] = fs.existsSync(changes) ? fs.readdirSync(changes) : [];
      const dir = id && path.join(changes, id);
      return dir && fs.existsSync(path.join(dir, 'files')) ? dir : undefined;
    });
    expect(fs.existsSync(path.join(taskDir, 'manifest.json'))).toBe(false);
    child.kill('SIGINT');
    expect(await exited).toBe(137);
    expect(err).toContain('giving up the change set');
    expect(fs.readdirSync(changes)).toEqual([]);
    expect(fs.readdirSync(sb.project)).toEqual(['README.md']);
    expect(leftovers(sb.stateRoot, [base])).toEqual({
      cells: [],
      runtime: [],
      slots: [],
      mounts: [],
      cgroups: [],
      processes: [],
    });
  });

  it('SIGKILL of nanocell takes its cell down, and the next start removes the rest', async () => {
    const { child, base, exited } = await startLongTask();
    child.kill('SIGKILL');
    await exited;
    // Kill on parent death: init sees its control channel close and ends the cell.
    await waitFor(() => cellProcesses([base]).length === 0 || undefined);
    expect(fs.readdirSync(path.join(sb.stateRoot, 'cells'))).toHaveLength(1);
    const gc = nanocell(['gc', '--json'], { stateRoot: sb.stateRoot });
    expect(gc.status).toBe(0);
    expect(JSON.parse(gc.stdout).cells).toHaveLength(1);
    expect(leftovers(sb.stateRoot, [base])).toEqual({
      cells: [],
      runtime: [],
      slots: [],
      mounts: [],
      cgroups: [],
      processes: [],
    });
  });
});
