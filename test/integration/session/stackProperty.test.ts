// Property: for random projects and 2-3 tasks of random edits, each started from the ones
// before it through real overlays with the session's layers, applying the session equals
// making every edit in order on the project, or fails leaving the project as it was.
import { chmodSync, cpSync, mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyChangeSet } from '../../../src/workspace/apply.js';
import { collectChangeSet } from '../../../src/workspace/changeset.js';
import { ensureLayer } from '../../../src/workspace/layer.js';
import { loadChangeSet, type ChangeSet } from '../../../src/workspace/manifest.js';
import { mountOverlay, prepareOverlay, teardownOverlay } from '../../../src/workspace/overlay.js';
import { lstatNoSymlinkComponents } from '../../../src/workspace/paths.js';
import { planScope } from '../../../src/workspace/scope.js';
import { writeComposedChangeSet } from '../../../src/workspace/stack.js';
import { NanocellError } from '../../../src/util/errors.js';
import { makeSandbox, snapshot } from '../workspace/helpers.js';

const relPath = fc
  .array(fc.constantFrom('a', 'b', 'c'), { minLength: 1, maxLength: 3 })
  .map((p) => p.join('/'));

type Op =
  | { op: 'write'; path: string; data: string }
  | { op: 'mkdir'; path: string }
  | { op: 'rm'; path: string }
  | { op: 'chmod'; path: string; mode: number }
  | { op: 'symlink'; path: string; target: string };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('write' as const),
    path: relPath,
    data: fc.string({ maxLength: 8 }),
  }),
  fc.record({ op: fc.constant('mkdir' as const), path: relPath }),
  fc.record({ op: fc.constant('rm' as const), path: relPath }),
  fc.record({
    op: fc.constant('chmod' as const),
    path: relPath,
    mode: fc.constantFrom(0o600, 0o644, 0o755, 0o700),
  }),
  fc.record({
    op: fc.constant('symlink' as const),
    path: relPath,
    target: fc.constantFrom('a', '../b', 'c/a'),
  }),
);

/** Applies an op in `root` unless it would pass through a symlink. */
function perform(root: string, o: Op): void {
  try {
    const parent = o.path.includes('/') ? o.path.slice(0, o.path.lastIndexOf('/')) : '';
    if (parent && !lstatNoSymlinkComponents(root, parent)?.isDirectory()) return;
    const st = lstatNoSymlinkComponents(root, o.path);
    const abs = `${root}/${o.path}`;
    if (o.op === 'write' && (!st || st.isFile())) writeFileSync(abs, o.data);
    if (o.op === 'mkdir' && !st) mkdirSync(abs);
    if (o.op === 'rm' && st) rmSync(abs, { recursive: true });
    if (o.op === 'chmod' && st && !st.isSymbolicLink()) chmodSync(abs, o.mode);
    if (o.op === 'symlink' && !st) symlinkSync(o.target, abs);
  } catch {
    // the agent's op simply fails
  }
}

const patterns = { include: ['**'], exclude: [], protected: [] };
const limits = { maxFiles: 10_000, maxBytes: 1 << 24 };

describe('apply --session over random stacked tasks (fast-check, real overlays)', () => {
  it('equals every edit made in order, or leaves the project untouched', async () => {
    const outcome = { applied: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.array(opArb, { maxLength: 6 }),
        fc.array(fc.array(opArb, { minLength: 1, maxLength: 6 }), { minLength: 2, maxLength: 3 }),
        fc.option(relPath, { nil: undefined }),
        async (setup, tasks, conflict) => {
          const sb = makeSandbox();
          try {
            for (const o of setup) perform(sb.project, o);
            // The reference: every task's edits, in order, on a plain copy.
            const ref = `${sb.base}/reference`;
            cpSync(sb.project, ref, { recursive: true, verbatimSymlinks: true });
            for (const ops of tasks) for (const o of ops) perform(ref, o);
            const sets: ChangeSet[] = [];
            const trees: string[] = []; // topmost first
            for (const [i, ops] of tasks.entries()) {
              const plan = await planScope(sb.project, patterns);
              const dirs = await prepareOverlay({
                baseDir: `${sb.base}/cell${i}`,
                plan,
                sizeBytes: 1 << 24,
              });
              await mountOverlay({ lowerDir: sb.project, stack: trees, dirs });
              for (const o of ops) perform(dirs.mergedDir, o);
              const out = `${sb.base}/change${i}`;
              try {
                await collectChangeSet({
                  upperDir: dirs.upperDir,
                  lowerDir: sb.project,
                  projectDir: sb.project,
                  outDir: out,
                  taskId: `t${i}`,
                  startedAtMs: Date.now() - 1,
                  limits,
                  scope: plan,
                  mergedDir: dirs.mergedDir,
                  stackDirs: [...trees],
                  stack: sets.map((s) => s.manifest.taskId),
                });
              } finally {
                await teardownOverlay(dirs);
              }
              const cs = loadChangeSet(out);
              sets.push(cs);
              trees.unshift(await ensureLayer(cs, `${sb.base}/layer${i}`, [...trees, sb.project]));
            }
            const combined = writeComposedChangeSet(sets, `${sb.base}/combined`, 'session.p');
            const want = snapshot(ref);
            let touched = false;
            if (conflict) {
              try {
                const parent = conflict.includes('/')
                  ? conflict.slice(0, conflict.lastIndexOf('/'))
                  : '';
                const up = parent ? lstatNoSymlinkComponents(sb.project, parent) : undefined;
                const st = lstatNoSymlinkComponents(sb.project, conflict);
                if ((!parent || up?.isDirectory()) && !st?.isDirectory()) {
                  rmSync(`${sb.project}/${conflict}`, { force: true });
                  writeFileSync(`${sb.project}/${conflict}`, 'changed on the host\n');
                  touched = true;
                }
              } catch {
                // through a symlink: the host leaves the project alone
              }
            }
            const before = snapshot(sb.project);
            let failure: unknown;
            try {
              applyChangeSet(combined.dir, sb.project);
            } catch (e) {
              failure = e;
            }
            if (failure === undefined) {
              outcome.applied++;
              const got = snapshot(sb.project);
              if (touched) {
                // An untouched path keeps the host's change; the rest is the reference.
                expect(got[conflict!]).toBe(before[conflict!]);
                delete got[conflict!];
                delete want[conflict!];
              }
              expect(got).toEqual(want);
            } else {
              expect(failure).toBeInstanceOf(NanocellError);
              outcome.refused++;
              expect(snapshot(sb.project)).toEqual(before);
            }
          } finally {
            await sb.cleanup();
          }
        },
      ),
      { numRuns: 30 },
    );
    expect(outcome.applied).toBeGreaterThan(5);
    expect(outcome.refused).toBeGreaterThan(0);
  }, 600_000);
});
