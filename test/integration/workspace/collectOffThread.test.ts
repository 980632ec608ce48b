// Change-set collection on a worker thread: the same result and the same errors as on the
// caller's thread, a kill or a crash fails closed and leaves nothing behind.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_EXCLUDES, DEFAULT_PROTECTED } from '../../../src/policy/defaults.js';
import { NanocellError } from '../../../src/util/errors.js';
import { collectChangeSet, type CollectOptions } from '../../../src/workspace/changeset.js';
import { collectChangeSetOffThread } from '../../../src/workspace/collectWorker.js';
import { planScope } from '../../../src/workspace/scope.js';
import { makeSandbox, mknod, writeTree, type Sandbox } from './helpers.js';

const patterns = {
  include: ['**'],
  exclude: [...DEFAULT_EXCLUDES],
  protected: [...DEFAULT_PROTECTED],
};

let sb: Sandbox;
let upper: string;
beforeEach(() => {
  sb = makeSandbox();
  writeTree(sb.project, { 'a.txt': 'a\n', 'sub/b.txt': 'b\n', 'gone.txt': 'x\n', '.env': 'S=1\n' });
  upper = `${sb.base}/upper`;
  mkdirSync(upper);
});
afterEach(async () => {
  await sb.cleanup();
});

async function options(outDir: string, over: Partial<CollectOptions> = {}) {
  return {
    upperDir: upper,
    lowerDir: sb.project,
    projectDir: sb.project,
    outDir,
    taskId: 'w',
    startedAtMs: 1,
    limits: { maxFiles: 200_000, maxBytes: 64 * 1024 * 1024 },
    scope: await planScope(sb.project, patterns),
    ...over,
  } satisfies CollectOptions;
}

const manifestOf = (dir: string) => {
  const m = JSON.parse(readFileSync(`${dir}/manifest.json`, 'utf8')) as Record<string, unknown>;
  delete m.collectedAtMs;
  return m;
};

async function errorOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (e) {
    return e;
  }
  throw new Error('expected a rejection');
}

const mountsBelow = (dir: string) =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp.startsWith(`${dir}/`));

function manyFiles(n: number): void {
  mkdirSync(`${upper}/many`);
  for (let i = 0; i < n; i++) writeFileSync(`${upper}/many/${i}`, `${i % 7}`);
}

describe('change-set collection on a worker thread', () => {
  it('collects exactly what the in-thread collector does', async () => {
    writeTree(upper, { 'a.txt': 'edited\n', 'new/c.txt': 'c\n', '.env': 'leak\n' });
    await mknod(`${upper}/gone.txt`, 'c', 0, 0); // whiteout: a deletion
    await mknod(`${upper}/fifo`, 'p');
    const here = await collectChangeSet(await options(`${sb.base}/here`));
    const there = await collectChangeSetOffThread(await options(`${sb.base}/there`));
    expect(there).toEqual({ ...here, dir: `${sb.base}/there` });
    expect(there.counts).toMatchObject({ add: 2, modify: 1, delete: 1, refused: 2 });
    expect(manifestOf(`${sb.base}/there`)).toEqual(manifestOf(`${sb.base}/here`));
  });

  it('keeps a refusal a refusal', async () => {
    manyFiles(50);
    const s = await collectChangeSetOffThread(
      await options(`${sb.base}/out`, { limits: { maxFiles: 10, maxBytes: 1024 } }),
    );
    expect(s).toMatchObject({ status: 'refused', changes: [] });
    expect(s.reason).toMatch(/more than 10 paths/);
  });

  it('surfaces a NanocellError with its message, fix and kind', async () => {
    const bad = `${sb.base}/up,per`; // overlay cannot take a ',' in a layer path
    mkdirSync(bad);
    const out = `${sb.base}/out`;
    const here = await errorOf(collectChangeSet(await options(out, { upperDir: bad })));
    rmSync(out, { recursive: true, force: true });
    rmSync(`${out}.view`, { recursive: true, force: true });
    const there = await errorOf(collectChangeSetOffThread(await options(out, { upperDir: bad })));
    expect(here).toBeInstanceOf(NanocellError);
    expect(there).toBeInstanceOf(NanocellError);
    const fields = (e: unknown) => {
      const n = e as NanocellError;
      return { message: n.message, fix: n.fix, kind: n.kind };
    };
    expect(fields(there)).toEqual(fields(here));
  });

  it('surfaces a plain error with its code and keeps an outDir it did not create', async () => {
    const out = `${sb.base}/taken`;
    mkdirSync(out);
    writeFileSync(`${out}/mine`, 'keep\n');
    const e = (await errorOf(collectChangeSetOffThread(await options(out)))) as {
      code?: string;
      message: string;
    };
    expect(e).not.toBeInstanceOf(NanocellError);
    expect(e.code).toBe('EEXIST');
    expect(e.message).toMatch(/EEXIST/);
    expect(readFileSync(`${out}/mine`, 'utf8')).toBe('keep\n');
  });

  it('is terminated by an abort mid-collection and leaves no output or mount', async () => {
    manyFiles(30_000);
    const out = `${sb.base}/out`;
    const ac = new AbortController();
    const run = errorOf(collectChangeSetOffThread(await options(out), { signal: ac.signal }));
    // The collector mounts its own view first, then fills files/: abort once it is under way.
    while (!existsSync(`${out}/files`) || mountsBelow(sb.base).length === 0) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(existsSync(`${out}/manifest.json`)).toBe(false);
    ac.abort();
    const e = await run;
    expect(e).toBeInstanceOf(NanocellError);
    expect((e as NanocellError).message).toMatch(/aborted; nothing was kept/);
    expect(existsSync(out)).toBe(false);
    expect(existsSync(`${out}.view`)).toBe(false);
    expect(mountsBelow(sb.base)).toEqual([]);
  });

  it('fails at once on a signal that already aborted', async () => {
    const out = `${sb.base}/out`;
    const e = await errorOf(
      collectChangeSetOffThread(await options(out), { signal: AbortSignal.abort() }),
    );
    expect((e as NanocellError).kind).toBe('STATE');
    expect(existsSync(out)).toBe(false);
  });

  it('fails closed when the worker dies (out of memory), never an empty change set', async () => {
    manyFiles(20_000);
    const out = `${sb.base}/out`;
    const e = await errorOf(
      collectChangeSetOffThread(await options(out), {
        resourceLimits: { maxOldGenerationSizeMb: 4, maxYoungGenerationSizeMb: 1 },
      }),
    );
    expect(e).toBeInstanceOf(NanocellError);
    expect((e as NanocellError).message).toMatch(
      /stopped without a result \(.*memory limit.*\); nothing was kept/,
    );
    expect(existsSync(out)).toBe(false);
    expect(mountsBelow(sb.base)).toEqual([]);
  });
});
