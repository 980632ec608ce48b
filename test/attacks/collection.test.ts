// Collection never fails silently (issue 13 B6): a change set built so that it cannot be
// collected (names that are not UTF-8, huge symlink targets, paths past PATH_MAX, too many
// entries) is refused entry by entry or as a whole, and a whole refusal is recorded in the
// task's audit trail (limit.hit `changes`) with its reason. The project is never touched.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CellSummary } from '../../src/cell/types.js';
import { loadChangeSet } from '../../src/workspace/manifest.js';
import { applyChangeSet } from '../../src/workspace/apply.js';
import { AttackCell, HostSentinels } from './harness.js';

type Manifest = ReturnType<typeof loadChangeSet>['manifest'];

interface Outcome {
  c: AttackCell;
  stdout: string;
  summary: CellSummary;
  manifest: Manifest;
  projectBefore: string;
}

let host: HostSentinels;
beforeAll(() => {
  host = new HostSentinels();
});
afterAll(() => host?.cleanup());

/** A listing of the project by raw names, sizes and link targets. */
function listing(dir: string): string {
  return execFileSync('find', [dir, '-printf', '%P %y %s %l\\n'], {
    encoding: 'latin1',
    maxBuffer: 256 * 1024 * 1024,
  })
    .split('\n')
    .sort()
    .join('\n');
}

async function collect(
  o: { script: string; prepare?: (project: string) => void },
  check: (x: Outcome) => Promise<void> | void,
): Promise<void> {
  const c = await AttackCell.start({ files: { 'README.md': 'hello\n' }, prepare: o.prepare });
  try {
    const projectBefore = listing(c.project);
    const r = await c.sh(o.script);
    expect(r.exitCode, r.stderr).toBe(0);
    const { summary } = await c.end();
    const { manifest } = loadChangeSet(path.join(c.sb.stateRoot, 'changes', c.taskId));
    await check({ c, stdout: r.stdout, summary, manifest, projectBefore });
    expect(listing(c.project)).toBe(projectBefore);
    expect(host.changes()).toEqual([]);
  } finally {
    await c.dispose();
  }
}

/** The change set was refused as a whole, and the audit trail says so with the reason. */
async function refusedAndRecorded(x: Outcome, reason: RegExp): Promise<void> {
  expect(x.manifest.status).toBe('refused');
  expect(x.manifest.reason).toMatch(reason);
  expect(x.manifest.entries).toEqual([]);
  const hit = await x.c.recorded((e) => e.type === 'limit.hit' && e.limit === 'changes');
  expect(hit.type === 'limit.hit' && hit.detail).toMatch(reason);
  const cs = x.summary.changeSet as { status?: string; reason?: string };
  expect(cs.status).toBe('refused');
  // apply refuses a refused change set, and writes nothing.
  expect(() =>
    applyChangeSet(path.join(x.c.sb.stateRoot, 'changes', x.c.taskId), x.c.project, {}),
  ).toThrow();
}

const refusedPaths = (m: Manifest) => Object.fromEntries(m.refused.map((r) => [r.path, r.reason]));

describe.concurrent('collection never fails silently', { timeout: 240_000 }, () => {
  it('CL-01 names that are not UTF-8 (a file, and a directory with files) are refused by name; the rest is kept', async () => {
    await collect(
      {
        script: `python3 -c "
import os
open(b'bad\\xff.txt', 'w').write('x')
os.mkdir(b'dir\\xfe'); open(b'dir\\xfe/in.txt', 'w').write('y')
open('good.txt', 'w').write('ok')
"`,
      },
      (x) => {
        expect(x.manifest.status).toBe('ok');
        expect(refusedPaths(x.manifest)).toEqual({
          'bad\\xff.txt': 'name is not UTF-8',
          'dir\\xfe': 'name is not UTF-8',
        });
        expect(x.manifest.entries.map((e) => e.path)).toEqual(['good.txt']);
        const cs = x.summary.changeSet as { counts: { refused: number; add: number } };
        expect(cs.counts).toMatchObject({ refused: 2, add: 1 });
      },
    );
  });

  it('CL-02 a symlink target that is not UTF-8, and deleting a project file whose name is not, are refused', async () => {
    await collect(
      {
        prepare: (p) => fs.writeFileSync(Buffer.from(`${p}/old\xfd.txt`, 'latin1'), 'keep\n'),
        script: `python3 -c "
import os
os.symlink(b'/etc/\\xff', b'link')
os.unlink(b'old\\xfd.txt')
"`,
      },
      (x) => {
        expect(x.manifest.status).toBe('ok');
        expect(refusedPaths(x.manifest)).toEqual({
          link: 'symlink target is not UTF-8',
          'old\\xfd.txt': 'deletes a name that is not UTF-8',
        });
        expect(x.manifest.entries).toEqual([]);
      },
    );
  });

  it('CL-03 thousands of symlinks with PATH_MAX targets pass the name budget: refused whole and recorded', async () => {
    await collect(
      {
        script: `python3 -c "
import os
os.mkdir('l')
t = '/' + 'a' * 4000
for i in range(9000): os.symlink(t, 'l/%d' % i)
"`,
      },
      (x) => refusedAndRecorded(x, /path names and symlink targets take more than 33554432 bytes/),
    );
  });

  it('CL-04 a path past PATH_MAX that the collector cannot open: refused whole with the error, recorded', async () => {
    await collect(
      {
        // 24 levels of 200-byte names: 4,800 bytes below the project, past PATH_MAX (4,096).
        script: `python3 -c "
import os
for i in range(24):
    n = ('d%03d' % i) * 50
    os.mkdir(n); os.chdir(n)
open('deep.txt', 'w').write('x')
"`,
      },
      (x) => refusedAndRecorded(x, /could not be read \(ENAMETOOLONG at d000/),
    );
  });

  it(
    'CL-05 deleting more entries than a change set may hold is refused whole and recorded',
    { timeout: 240_000 },
    async () => {
      await collect(
        {
          prepare: (p) => {
            fs.mkdirSync(`${p}/big`);
            for (let i = 0; i <= 100_000; i++) fs.writeFileSync(`${p}/big/${i}`, '');
          },
          script: 'rm -rf big && echo gone',
        },
        (x) => refusedAndRecorded(x, /touched more than 100000 paths/),
      );
    },
  );

  it('CL-06 hostile but valid names (newline, escape sequences, a fake diff header) are kept exactly, not refused', async () => {
    await collect(
      {
        script: `python3 -c "
for n in ['a\\nb.txt', '\\x1b]52;c;cHdu\\x07.txt', '+++ b\\n--- a', 'tab\\there']:
    open(n, 'w').write('x')
"`,
      },
      (x) => {
        expect(x.manifest.status).toBe('ok');
        expect(x.manifest.refused).toEqual([]);
        expect(x.manifest.entries.map((e) => e.path).sort()).toEqual(
          ['\u001b]52;c;cHdu\u0007.txt', '+++ b\n--- a', 'a\nb.txt', 'tab\there'].sort(),
        );
      },
    );
  });
});
