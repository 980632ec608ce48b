// `nanocell apply TASK --only PATH...` on a real change set (1,200 files of a real overlay):
// the chosen paths, and only they, are written byte for byte; the change set is recorded as
// partly applied; unknown and already applied paths are refused in one line; a second --only
// and a full apply after it write only what is left. Then the same apply killed with SIGKILL
// at random points: the project is always either as it was or with exactly the chosen part
// applied. Seeds are printed for replay:
//   APPLY_CRASH_SEED=<seed> npx vitest run test/integration/workspace/applyChosen.test.ts
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { snapshot, type Snapshot } from './helpers.js';
import { nanocell } from '../../helpers/cells.js';
import { applyKilled, prepare, recover, rng, T1, type Trial } from './applyTrial.js';

const CHOSEN = ['d3', 'new5', 'becomes-file', 'link'];

/** The project with only the entries at or below `chosen` applied. */
function partly(t: Trial, chosen: readonly string[]): Snapshot {
  const inChosen = (p: string) => chosen.some((c) => p === c || p.startsWith(`${c}/`));
  const out: Snapshot = {};
  for (const k of new Set([...Object.keys(t.before), ...Object.keys(t.after)])) {
    const v = inChosen(k) ? t.after[k] : t.before[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

const fate = (t: Trial) =>
  existsSync(`${t.stateRoot}/fates/${T1}.json`)
    ? (JSON.parse(readFileSync(`${t.stateRoot}/fates/${T1}.json`, 'utf8')) as {
        status: string;
        paths?: string[];
      })
    : undefined;

const cli = (t: Trial, args: string[]) => nanocell(['--state-root', t.stateRoot, ...args]);

const trials: Trial[] = [];
afterAll(async () => {
  for (const t of trials) await t.sb.cleanup();
});

describe('apply --only', () => {
  it('writes the chosen paths only, records them, refuses unknown ones, and applies the rest later', async () => {
    const t = await prepare();
    trials.push(t);
    const mid = partly(t, CHOSEN);
    expect(mid).not.toEqual(t.before);
    expect(mid).not.toEqual(t.after);

    const unknown = cli(t, ['apply', T1, '--only', 'd3', 'no/such\u001b[31mfile']);
    expect(unknown.status).toBe(125);
    expect(unknown.stderr.trim().split('\n')).toHaveLength(1);
    expect(unknown.stderr).toContain('holds no change to "no/such\\u001b[31mfile"');
    expect(unknown.stderr).not.toContain('\u001b');
    expect(snapshot(t.sb.project)).toEqual(t.before);
    expect(fate(t)).toBeUndefined();

    const r = cli(t, ['apply', T1, '--only', ...CHOSEN.map((c) => (c === 'd3' ? './d3/' : c))]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^applied \d+ change\(s\) to .*; \d+ left \(nanocell diff/);
    expect(snapshot(t.sb.project)).toEqual(mid);
    expect(readdirSync(t.sb.project).filter((n) => n.startsWith('.nanocell'))).toEqual([]);
    const f = fate(t)!;
    expect(f.status).toBe('partly applied');
    expect(f.paths).toContain('d3/f0');
    expect(f.paths).toContain('new5');
    expect(f.paths!.every((p) => CHOSEN.some((c) => p === c || p.startsWith(`${c}/`)))).toBe(true);
    expect(existsSync(`${t.stateRoot}/changes/${T1}/manifest.json`)).toBe(true);

    // diff marks what is applied and shows only the rest.
    const diff = cli(t, ['diff', T1]);
    expect(diff.status, diff.stderr).toBe(0);
    expect(diff.stdout).toContain('# already applied (apply --only): d3/f0\n');
    expect(diff.stdout).not.toContain('diff --nanocell a/d3/f0 ');
    expect(diff.stdout).toContain('diff --nanocell a/d4/f0 ');
    const json = JSON.parse(cli(t, ['diff', T1, '--json']).stdout) as {
      entries: { path: string }[];
      applied: string[];
    };
    expect(json.applied).toEqual(f.paths);
    expect(json.entries.some((e) => e.path === 'd3/f0')).toBe(false);
    expect(json.entries.some((e) => e.path === 'd4/f0')).toBe(true);

    const again = cli(t, ['apply', T1, '--only', 'd3/f0']);
    expect(again.status).toBe(125);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toContain(
      '"d3/f0" of the change set of task 0000000000000000t1 is already applied',
    );
    expect(snapshot(t.sb.project)).toEqual(mid);

    // A second --only, then a full apply of what is left.
    expect(cli(t, ['apply', T1, '--only', 'd7']).status).toBe(0);
    expect(snapshot(t.sb.project)).toEqual(partly(t, [...CHOSEN, 'd7']));
    const rest = cli(t, ['apply', T1]);
    expect(rest.status, rest.stderr).toBe(0);
    expect(snapshot(t.sb.project)).toEqual(t.after);
    expect(fate(t)?.status).toBe('applied');
    expect(existsSync(`${t.stateRoot}/changes/${T1}`)).toBe(false);
  }, 300_000);

  it('discarding the rest of a partly applied change set keeps what was applied on record', async () => {
    const t = await prepare();
    trials.push(t);
    expect(cli(t, ['apply', T1, '--only', 'new5']).status).toBe(0);
    const gone = cli(t, ['discard', T1]);
    expect(gone.status, gone.stderr).toBe(0);
    expect(snapshot(t.sb.project)).toEqual(partly(t, ['new5']));
    expect(fate(t)).toMatchObject({
      status: 'discarded',
      paths: expect.arrayContaining(['new5', 'new5/n0']),
    });
    const after = cli(t, ['apply', T1]);
    expect(after.status).toBe(125);
    expect(after.stderr).toMatch(/was discarded \(after 21 path\(s\) had been applied\)/);
  }, 120_000);

  it('killed with SIGKILL at any point leaves the project as it was or with the chosen part applied', async () => {
    const base = Number(process.env.APPLY_CRASH_SEED ?? Date.now() % 100_000);
    const t = await prepare();
    trials.push(t);
    const only = ['--only', ...CHOSEN];
    const probe = await prepare();
    trials.push(probe);
    const t0 = Date.now();
    expect(await applyKilled(probe, {}, only)).toBe(0);
    const applyMs = Date.now() - t0;
    expect(snapshot(probe.sb.project)).toEqual(partly(probe, CHOSEN));
    const steps = 120;
    const seen = { before: 0, partly: 0 };
    for (let i = 0; i < 6; i++) {
      const seed = base + i;
      const r = rng(seed);
      const mode = i % 3;
      console.log(`applyChosen crash seed ${seed} (mode ${mode})`);
      if (mode === 0) await applyKilled(t, { afterSteps: Math.floor(r() * steps) }, only);
      else await applyKilled(t, { afterMs: 150 + Math.floor(r() * applyMs) }, only);
      if (mode === 2) recover(t, Math.floor(r() * steps));
      expect(recover(t).status, `seed ${seed}`).toBe(0);
      const now = snapshot(t.sb.project);
      const mid = partly(t, CHOSEN);
      const which = JSON.stringify(now) === JSON.stringify(mid) ? 'partly' : 'before';
      expect(now, `seed ${seed}`).toEqual(which === 'partly' ? mid : t.before);
      expect(readdirSync(t.sb.project).filter((n) => n.startsWith('.nanocell'))).toEqual([]);
      expect(fate(t)?.status, `seed ${seed}`).toBe(
        which === 'partly' ? 'partly applied' : undefined,
      );
      // Either way the change set stays, with the rest to apply.
      expect(existsSync(`${t.stateRoot}/changes/${T1}/manifest.json`)).toBe(true);
      seen[which]++;
      if (which === 'partly') {
        // What is left applies, and the project ends fully applied.
        const rest = cli(t, ['apply', T1]);
        expect(rest.status, rest.stderr).toBe(0);
        expect(snapshot(t.sb.project)).toEqual(t.after);
        await t.sb.cleanup();
        Object.assign(t, await prepare());
      }
    }
    if (seen.before) {
      expect(cli(t, ['apply', T1, ...only]).status).toBe(0);
      expect(snapshot(t.sb.project)).toEqual(partly(t, CHOSEN));
    }
    expect(seen.before).toBeGreaterThan(0);
  }, 600_000);
});
