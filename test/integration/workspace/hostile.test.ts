// Hostile change sets: upper dirs built by hand as an agent could leave them, and tampered
// manifests. Each must be refused with the project and its sibling untouched.
import {
  chmodSync,
  mkdirSync,
  readFileSync,
  symlinkSync,
  writeFileSync,
  renameSync,
  statSync,
} from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_EXCLUDES, DEFAULT_PROTECTED } from '../../../src/policy/defaults.js';
import { applyChangeSet } from '../../../src/workspace/apply.js';
import { collectChangeSet, writeManifest } from '../../../src/workspace/changeset.js';
import { loadChangeSet, type Manifest } from '../../../src/workspace/manifest.js';
import { planScope } from '../../../src/workspace/scope.js';
import { NanocellError } from '../../../src/util/errors.js';
import { bindReadOnly, makeSandbox, mknod, snapshot, writeTree, type Sandbox } from './helpers.js';

const patterns = {
  include: ['**'],
  exclude: [...DEFAULT_EXCLUDES],
  protected: [...DEFAULT_PROTECTED],
};

describe('hostile change sets', () => {
  let sb: Sandbox;
  let upper: string;
  let before: ReturnType<typeof snapshot>;
  const out = () => `${sb.base}/change`;

  beforeEach(() => {
    sb = makeSandbox();
    writeTree(sb.project, {
      'a.txt': 'a\n',
      'sub/b.txt': 'b\n',
      '.env': 'S=1\n',
      '.git/hooks/x': 'h\n',
    });
    upper = `${sb.base}/upper`;
    mkdirSync(upper);
    before = snapshot(sb.project);
  });
  afterEach(async () => {
    await sb.cleanup();
  });

  async function collect(limits = { maxFiles: 1000, maxBytes: 1024 * 1024 }) {
    // File times come from the kernel's coarse clock, which can read ahead of Date.now() within
    // the same millisecond: a task "started" 1 ms after the project was written could see its
    // files as changed since. Real tasks start long after; here, let the clock move on first.
    await new Promise((r) => setTimeout(r, 25));
    const scope = await planScope(sb.project, patterns);
    return collectChangeSet({
      upperDir: upper,
      lowerDir: sb.project,
      projectDir: sb.project,
      outDir: out(),
      taskId: 'h',
      startedAtMs: Date.now() - 1,
      limits,
      scope,
    });
  }
  function tamper(f: (m: Manifest) => void) {
    const { manifest } = loadChangeSet(out());
    f(manifest);
    writeManifest(out(), manifest);
  }
  function expectRefused(re: RegExp, opts = {}) {
    let err: unknown;
    try {
      applyChangeSet(out(), sb.project, opts);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NanocellError);
    expect((err as Error).message).toMatch(re);
    expect(snapshot(sb.project)).toEqual(before);
    expect(snapshot(sb.sentinel)).toEqual({ keep: expect.any(String) });
  }

  it('refuses a symlink that escapes the project', async () => {
    symlinkSync('../sentinel/keep', `${upper}/evil`);
    await collect();
    expectRefused(/symlink evil points outside the project/);
  });

  it('refuses a symlink into an excluded path', async () => {
    symlinkSync('.env', `${upper}/leak`);
    await collect();
    expectRefused(/points at excluded or protected path .env/);
  });

  it('refuses ../ and absolute paths in a tampered manifest', async () => {
    writeFileSync(`${upper}/x.txt`, 'x\n');
    await collect();
    for (const p of ['../sentinel/keep', '/tmp/abs', 'sub/../../x', 'a\0b']) {
      tamper((m) => (m.entries[0]!.path = p));
      expectRefused(/change set path/);
    }
  });

  it('refuses a write below a symlink the change set creates (symlink swap)', async () => {
    writeFileSync(`${upper}/x.txt`, 'x\n');
    await collect();
    tamper((m) => {
      const e = m.entries[0]!;
      m.entries = [
        { path: 'sub2', kind: 'add', type: 'symlink', target: 'sub', base: { exists: false } },
        { ...e, path: 'sub2/x.txt' },
      ];
    });
    expectRefused(/below sub2/);
  });

  it('refuses a write through a symlinked directory in the project', async () => {
    mkdirSync(`${upper}/sub`);
    writeFileSync(`${upper}/sub/new.txt`, 'n\n');
    await collect();
    renameSync(`${sb.project}/sub`, `${sb.project}/sub.real`);
    symlinkSync('../sentinel', `${sb.project}/sub`);
    before = snapshot(sb.project);
    expectRefused(/reached through sub in the project, which is a symlink/);
  });

  it('records device files and fifos as refused and never stores them', async () => {
    await mknod(`${upper}/dev`, 'c', 1, 3);
    await mknod(`${upper}/pipe`, 'p');
    writeFileSync(`${upper}/ok.txt`, 'ok\n');
    const s = await collect();
    expect(s.counts.refused).toBe(2);
    expectRefused(/never applied/);
    const r = applyChangeSet(out(), sb.project, { skipRefused: true });
    expect(r.skipped.map((x) => x.path).sort()).toEqual(['dev', 'pipe']);
    expect(readFileSync(`${sb.project}/ok.txt`, 'utf8')).toBe('ok\n');
  });

  it('refuses a file beyond the byte cap without storing a partial copy', async () => {
    writeFileSync(`${upper}/huge.bin`, Buffer.alloc(2 * 1024 * 1024, 1));
    const s = await collect();
    expect(s.status).toBe('refused');
    expect(s.reason).toMatch(/more than 1048576 bytes/);
    expectRefused(/refused when it was collected/);
  });

  it('refuses more files than the count cap', async () => {
    mkdirSync(`${upper}/many`);
    for (let i = 0; i < 2000; i++) writeFileSync(`${upper}/many/${i}`, '');
    const s = await collect({ maxFiles: 1000, maxBytes: 1024 * 1024 });
    expect(s.status).toBe('refused');
    expect(s.reason).toMatch(/more than 1000 paths/);
    expectRefused(/refused when it was collected/);
  });

  it('drops setuid bits at collection and refuses them in a tampered manifest', async () => {
    writeFileSync(`${upper}/tool`, '#!/bin/sh\n');
    chmodSync(`${upper}/tool`, 0o4755);
    await collect();
    expect(loadChangeSet(out()).manifest.entries[0]).toMatchObject({
      mode: 0o755,
      modeMasked: true,
    });
    tamper((m) => (m.entries[0]!.mode = 0o4755));
    expectRefused(/mode 4755/);
    tamper((m) => (m.entries[0]!.mode = 0o755));
    applyChangeSet(out(), sb.project);
    expect(statSync(`${sb.project}/tool`).mode & 0o7777).toBe(0o755);
  });

  it('refuses a protected path in a tampered manifest', async () => {
    writeFileSync(`${upper}/x.txt`, 'x\n');
    await collect();
    tamper((m) => (m.entries[0]!.path = '.git/hooks/pre-commit'));
    expectRefused(/protected path/);
  });

  it('refuses corrupted content and a missing manifest', async () => {
    writeFileSync(`${upper}/x.txt`, 'x\n');
    await collect();
    const sha = loadChangeSet(out()).manifest.entries[0]!.sha256!;
    writeFileSync(`${out()}/files/${sha}`, 'y\n');
    expectRefused(/corrupted/);
    writeFileSync(`${out()}/manifest.json`, '{"version":1');
    expectRefused(/corrupted/);
    expect(() => applyChangeSet(`${sb.base}/nope`, sb.project)).toThrow(/no change set/);
  });

  it('refuses a moved project and a read-only project', async () => {
    writeFileSync(`${upper}/x.txt`, 'x\n');
    await collect();
    await bindReadOnly(sb.project);
    expectRefused(/not writable/);
    expect(() => applyChangeSet(out(), `${sb.base}/elsewhere`)).toThrow(/no longer exists/);
  });

  it('rolls back every step when a real failure happens half-way', async () => {
    writeFileSync(`${upper}/a.txt`, 'changed\n');
    writeFileSync(`${upper}/z-new.txt`, 'new\n');
    mkdirSync(`${upper}/sub`);
    writeFileSync(`${upper}/sub/b.txt`, 'changed b\n');
    await collect();
    await bindReadOnly(`${sb.project}/sub`);
    expectRefused(/apply failed at sub\/b.txt .*restored/);
  });

  // Found by applyProperty (seed -302646962): the journal dir was left in the project.
  it('rolls back a mode change on a read-only dir and leaves no journal behind', async () => {
    mkdirSync(`${upper}/sub`);
    chmodSync(`${upper}/sub`, 0o700);
    await collect();
    await bindReadOnly(`${sb.project}/sub`);
    let err: unknown;
    try {
      applyChangeSet(out(), sb.project, { skipRefused: true });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(NanocellError);
    expect((err as Error).message).toMatch(/apply failed at sub .*; the project was restored/);
    expect(snapshot(sb.project)).toEqual(before);
  });
});
