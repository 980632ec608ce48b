// The supervisor's memory for collecting a change set is bounded (docs/architecture.md, State):
// the largest change set the caps let through (DEFAULT_MAX_FILES entries with names filling
// DEFAULT_MAX_NAME_BYTES) is collected on the worker thread and loaded back, and the process's
// resident memory grows by less than the documented bound; past the name budget the change
// set is refused, not grown.
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_EXCLUDES, DEFAULT_PROTECTED } from '../../../src/policy/defaults.js';
import {
  DEFAULT_MAX_FILES,
  DEFAULT_MAX_NAME_BYTES,
  type CollectOptions,
} from '../../../src/workspace/changeset.js';
import { collectChangeSetOffThread } from '../../../src/workspace/collectWorker.js';
import { loadChangeSet } from '../../../src/workspace/manifest.js';
import { planScope } from '../../../src/workspace/scope.js';
import { makeSandbox, type Sandbox } from './helpers.js';

/** The bound docs/architecture.md states for the supervisor's growth while collecting. */
const BOUND_MIB = 512;

let sb: Sandbox;
let upper: string;
beforeEach(() => {
  sb = makeSandbox();
  upper = `${sb.base}/upper`;
  mkdirSync(upper);
});
afterEach(async () => {
  await sb.cleanup();
});

async function options(outDir: string, over: Partial<CollectOptions['limits']> = {}) {
  return {
    upperDir: upper,
    lowerDir: sb.project,
    projectDir: sb.project,
    mergedDir: upper,
    plainView: true,
    outDir,
    taskId: 'mem',
    startedAtMs: 1,
    limits: { maxFiles: DEFAULT_MAX_FILES, maxBytes: 64 * 1024 * 1024, ...over },
    scope: await planScope(sb.project, {
      include: ['**'],
      exclude: [...DEFAULT_EXCLUDES],
      protected: [...DEFAULT_PROTECTED],
    }),
  } satisfies CollectOptions;
}

/** Peak RSS growth (MiB) while `fn` runs, sampled every 10 ms. */
async function peakGrowth(fn: () => Promise<void>): Promise<number> {
  global.gc?.();
  const base = process.memoryUsage().rss;
  let peak = base;
  const t = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
  try {
    await fn();
  } finally {
    clearInterval(t);
  }
  peak = Math.max(peak, process.memoryUsage().rss);
  return (peak - base) / 2 ** 20;
}

describe('collection memory', () => {
  it(
    `collects the largest change set the caps allow within ${BOUND_MIB} MiB of supervisor memory`,
    { timeout: 600_000 },
    async () => {
      // 100 directories of 999 files, each name 250 bytes: 99,900 entries + 100 dirs, 25 MB of
      // names, just inside both caps.
      const long = (i: number) => `${String(i).padStart(6, '0')}${'n'.repeat(244)}`;
      for (let d = 0; d < 100; d++) {
        mkdirSync(`${upper}/d${d}`);
        for (let i = 0; i < 999; i++) writeFileSync(`${upper}/d${d}/${long(i)}`, '');
      }
      const out = `${sb.base}/out`;
      let entries = 0;
      const grew = await peakGrowth(async () => {
        const summary = await collectChangeSetOffThread(await options(out), {
          resourceLimits: { maxOldGenerationSizeMb: 512, maxYoungGenerationSizeMb: 32 },
        });
        expect(summary.status, summary.reason).toBe('ok');
        // The supervisor reads the manifest back (git's history summary, fs.change events).
        entries = loadChangeSet(out).manifest.entries.length;
      });
      expect(entries).toBe(100_000);
      console.log(`collection of 100,000 entries: supervisor RSS grew ${grew.toFixed(0)} MiB`);
      expect(grew).toBeLessThan(BOUND_MIB);
      rmSync(out, { recursive: true, force: true });
    },
  );

  it('refuses a change set whose names and link targets pass the budget, without growing past it', async () => {
    mkdirSync(`${upper}/l`);
    const target = `/${'t'.repeat(4000)}`;
    for (let i = 0; i < 1000; i++) symlinkSync(target, `${upper}/l/${i}`);
    const out = `${sb.base}/out2`;
    const summary = await collectChangeSetOffThread(
      await options(out, { maxNameBytes: 1024 * 1024 }),
    );
    expect(summary.status).toBe('refused');
    expect(summary.reason).toMatch(/path names and symlink targets take more than 1048576 bytes/);
    expect(loadChangeSet(out).manifest.entries).toEqual([]);
    expect(DEFAULT_MAX_NAME_BYTES).toBe(32 * 1024 * 1024);
  });
});
