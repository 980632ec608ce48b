// A real `nanocell apply` process killed with SIGKILL at many points (after N journal steps,
// and at random times), then recovered by the next command: the project must be byte for
// byte (content, modes, symlinks, types, deleted files) either as it was or fully applied,
// with no staging or backup names left in it. Seeds are printed for replay:
//   APPLY_CRASH_SEED=<seed> npx vitest run test/integration/workspace/applyCrash.test.ts
import { existsSync, utimesSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { snapshot } from './helpers.js';
import { nanocell } from '../../helpers/cells.js';
import { applyKilled, prepare, recover, rng, T1, type Trial } from './applyTrial.js';

function expectOneOfTwo(t: Trial, seed: number): 'before' | 'after' {
  const now = snapshot(t.sb.project);
  const which = JSON.stringify(now) === JSON.stringify(t.after) ? 'after' : 'before';
  expect(now, `seed ${seed}`).toEqual(which === 'after' ? t.after : t.before);
  expect(
    readdirSync(t.sb.project).filter((n) => n.startsWith('.nanocell')),
    `seed ${seed}`,
  ).toEqual([]);
  expect(
    // A kill before apply made its dir leaves none: no journal either way.
    (existsSync(`${t.stateRoot}/apply`) ? readdirSync(`${t.stateRoot}/apply`) : []).filter((n) =>
      n.endsWith('.journal'),
    ),
    `seed ${seed}`,
  ).toEqual([]);
  // Applied: recorded as applied; rolled back: still pending, its change set in place.
  if (which === 'before')
    expect(existsSync(`${t.stateRoot}/changes/${T1}/manifest.json`)).toBe(true);
  expect(existsSync(`${t.stateRoot}/fates/${T1}.json`), `seed ${seed}`).toBe(which === 'after');
  return which;
}

const trials: Trial[] = [];
afterAll(async () => {
  for (const t of trials) await t.sb.cleanup();
});

describe('apply killed with SIGKILL at any point leaves the project as it was or fully applied', () => {
  const base = Number(process.env.APPLY_CRASH_SEED ?? Date.now() % 100_000);

  it('after N journal steps, at random times, and while recovering; recovery is idempotent', async () => {
    const t = await prepare();
    trials.push(t);
    const seen = { before: 0, after: 0 };
    // Uninterrupted timing, to aim random kills into the apply.
    const probe = await prepare();
    trials.push(probe);
    const t0 = Date.now();
    expect(await applyKilled(probe, {})).toBe(0);
    const applyMs = Date.now() - t0;
    expect(snapshot(probe.sb.project)).toEqual(probe.after);
    const steps = Object.keys(t.after).length + Object.keys(t.before).length;
    for (let i = 0; i < 9; i++) {
      const seed = base + i;
      const r = rng(seed);
      const mode = i % 3;
      console.log(`applyCrash seed ${seed} (mode ${mode})`);
      if (mode === 0) await applyKilled(t, { afterSteps: Math.floor(r() * steps) });
      else await applyKilled(t, { afterMs: 150 + Math.floor(r() * applyMs) });
      if (mode === 2) {
        // Crash during recovery too, then recover again (twice: a no-op the second time).
        recover(t, Math.floor(r() * steps));
      }
      expect(recover(t).status, `seed ${seed}`).toBe(0);
      const which = expectOneOfTwo(t, seed);
      expect(recover(t).status).toBe(0);
      expect(expectOneOfTwo(t, seed)).toBe(which);
      seen[which]++;
      if (which === 'after') {
        // Start over from a fresh project for the next seed.
        await t.sb.cleanup();
        Object.assign(t, await prepare());
      }
    }
    // A rolled-back change set still applies whole.
    if (seen.before) {
      expect(nanocell(['--state-root', t.stateRoot, 'apply', T1]).status).toBe(0);
      expect(snapshot(t.sb.project)).toEqual(t.after);
    }
    expect(seen.before).toBeGreaterThan(0);
  }, 600_000);
});

describe('apply lock, change set fates and gc of pending change sets', () => {
  it('a live holder refuses a second apply by name; a dead holder is taken over', async () => {
    const t = await prepare();
    trials.push(t);
    const { applyPaths, lockPath, projectKey } =
      await import('../../../src/workspace/applyPaths.js');
    const { processStart } = await import('../../../src/workspace/applyLock.js');
    const { loadChangeSet } = await import('../../../src/workspace/manifest.js');
    const key = projectKey(loadChangeSet(`${t.stateRoot}/changes/${T1}`).manifest.projectId);
    const lock = lockPath(applyPaths(t.stateRoot), key);
    mkdirSync(`${t.stateRoot}/apply`, { recursive: true });
    const holder = {
      pid: process.pid,
      start: processStart(process.pid),
      taskId: 'other-task',
      since: 'x',
    };
    writeFileSync(lock, JSON.stringify(holder));
    const busy = nanocell(['--state-root', t.stateRoot, 'apply', T1]);
    expect(busy.status).toBe(125);
    expect(busy.stderr.trim().split('\n')).toHaveLength(1);
    expect(busy.stderr).toMatch(/task other-task is being applied to .* \(pid \d+/);
    expect(busy.stderr).not.toMatch(/conflict/);
    expect(snapshot(t.sb.project)).toEqual(t.before);
    // A pid that has exited (or was reused: another start time) holds nothing.
    writeFileSync(lock, JSON.stringify({ ...holder, start: 'not-this-process' }));
    const ok = nanocell(['--state-root', t.stateRoot, 'apply', T1]);
    expect(ok.status, ok.stderr).toBe(0);
    expect(snapshot(t.sb.project)).toEqual(t.after);
    expect(existsSync(lock)).toBe(false);
    // What became of it is shown instead of "no change set".
    const again = nanocell(['--state-root', t.stateRoot, 'diff', T1]);
    expect(again.status).toBe(125);
    expect(again.stderr).toMatch(
      /change set of task 0000000000000000t1 was applied \S+ by \S+ \(uid 0\)/,
    );
  }, 120_000);

  it('gc --older-than keeps a pending change set unless --include-pending', async () => {
    const t = await prepare();
    trials.push(t);
    const old = new Date(Date.now() - 3 * 3600_000);
    utimesSync(`${t.stateRoot}/changes/${T1}`, old, old);
    const kept = nanocell(['--state-root', t.stateRoot, 'gc', '--older-than', '1h']);
    expect(kept.status, kept.stderr).toBe(0);
    expect(kept.stdout).toMatch(/kept 1 pending change sets; --include-pending deletes them/);
    expect(existsSync(`${t.stateRoot}/changes/${T1}/manifest.json`)).toBe(true);
    const gone = nanocell([
      '--state-root',
      t.stateRoot,
      'gc',
      '--older-than',
      '1h',
      '--include-pending',
    ]);
    expect(gone.status, gone.stderr).toBe(0);
    expect(existsSync(`${t.stateRoot}/changes/${T1}`)).toBe(false);
    expect(snapshot(t.sb.project)).toEqual(t.before);
  }, 120_000);
});
