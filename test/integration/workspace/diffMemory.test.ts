// `nanocell diff` streams (issue 13 D): a change set of 50,000 changed files prints entry by
// entry, and the CLI's peak resident memory stays within a bound of what a one-file diff takes
// (measured with GNU time's maximum RSS, the output counted by wc, never held by the test).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { newTaskId } from '../../../src/audit/taskId.js';
import { DEFAULT_EXCLUDES, DEFAULT_PROTECTED } from '../../../src/policy/defaults.js';
import { collectChangeSet } from '../../../src/workspace/changeset.js';
import { planScope } from '../../../src/workspace/scope.js';
import { CLI } from '../../helpers/cells.js';
import { makeSandbox, type Sandbox } from './helpers.js';

/**
 * Most the 50,000-file diff may take above the one-file diff, in MiB. The text is streamed; what
 * grows is the manifest, loaded whole (bounded by the collection caps): about 140 MiB measured.
 */
const BOUND_MIB = 192;

let sb: Sandbox;
beforeEach(() => {
  sb = makeSandbox();
});
afterEach(async () => {
  await sb.cleanup();
}, 300_000);

/** A change set of `n` new files (each a few lines), collected into the state root. */
async function changeSet(state: string, n: number): Promise<string> {
  const upper = `${sb.base}/upper-${n}`;
  mkdirSync(upper);
  for (let d = 0; d < Math.ceil(n / 1000); d++) {
    mkdirSync(`${upper}/d${d}`);
    for (let i = d * 1000; i < Math.min(n, (d + 1) * 1000); i++)
      writeFileSync(`${upper}/d${d}/f${i}.txt`, `line one of ${i}\nline two\nline three\n`);
  }
  const taskId = newTaskId();
  mkdirSync(`${state}/changes`, { recursive: true });
  const summary = await collectChangeSet({
    upperDir: upper,
    lowerDir: sb.project,
    projectDir: sb.project,
    mergedDir: upper,
    plainView: true,
    outDir: path.join(state, 'changes', taskId),
    taskId,
    startedAtMs: 1,
    limits: { maxFiles: 200_000, maxBytes: 256 * 1024 * 1024 },
    scope: await planScope(sb.project, {
      include: ['**'],
      exclude: [...DEFAULT_EXCLUDES],
      protected: [...DEFAULT_PROTECTED],
    }),
  });
  expect(summary.counts.add).toBe(n + Math.ceil(n / 1000));
  return taskId;
}

/** Max RSS (MiB) of `nanocell diff`, and the bytes it printed. */
function diffRss(state: string, taskId: string): { mib: number; bytes: number } {
  const out = execFileSync(
    'sh',
    [
      '-c',
      `/usr/bin/time -f "rss=%M" node "$0" diff "$1" 2>"$2" | wc -c; cat "$2"`,
      CLI,
      taskId,
      `${sb.base}/time-${taskId}`,
    ],
    { encoding: 'utf8', env: { ...process.env, NANOCELL_STATE_ROOT: state }, timeout: 300_000 },
  );
  const bytes = Number(out.trim().split('\n')[0]);
  const kib = Number(/rss=(\d+)/.exec(out)?.[1]);
  return { mib: kib / 1024, bytes };
}

describe('diff streams', () => {
  it(
    `prints 50,000 changed files within ${BOUND_MIB} MiB of a one-file diff`,
    { timeout: 600_000 },
    async () => {
      const state = `${sb.base}/state`;
      const small = diffRss(state, await changeSet(state, 1));
      const big = diffRss(state, await changeSet(state, 50_000));
      console.log(
        `diff: 1 file ${small.mib.toFixed(0)} MiB, 50,000 files ${big.mib.toFixed(0)} MiB RSS, ${(big.bytes / 2 ** 20).toFixed(1)} MiB printed`,
      );
      expect(big.bytes).toBeGreaterThan(50_000 * 100);
      expect(big.mib - small.mib).toBeLessThan(BOUND_MIB);
    },
  );
});
