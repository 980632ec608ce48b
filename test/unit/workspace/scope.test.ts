import { linkSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_EXCLUDES, DEFAULT_PROTECTED } from '../../../src/policy/defaults.js';
import { compileScope } from '../../../src/workspace/globs.js';
import { relPathProblem, symlinkTargetInProject } from '../../../src/workspace/paths.js';
import { planScope, scopeMounts } from '../../../src/workspace/scope.js';
import { writeTree } from '../../integration/workspace/helpers.js';

const defaults = {
  include: ['**'],
  exclude: [...DEFAULT_EXCLUDES],
  protected: [...DEFAULT_PROTECTED],
};

describe('glob scoping', () => {
  const m = compileScope(defaults);
  it('excludes the usual secrets and everything below an excluded dir', () => {
    for (const p of [
      '.env',
      'a/.env.local',
      'k.pem',
      'x/id_rsa.pub',
      '.aws/credentials',
      '.ssh',
      '.npmrc',
      '.docker/config.json',
    ]) {
      expect(m.isExcluded(p), p).toBe(true);
    }
    for (const p of ['src/env.ts', 'README.md', '.docker/Dockerfile', 'environment'])
      expect(m.isExcluded(p), p).toBe(false);
  });
  it('protects persistence paths and their contents', () => {
    for (const p of [
      '.git/hooks/pre-commit',
      '.git/config',
      '.vscode/settings.json',
      '.envrc',
      '.bashrc',
    ]) {
      expect(m.isProtected(p), p).toBe(true);
    }
    expect(m.isProtected('.git/objects/ab')).toBe(false);
  });
  it('include globs select paths and keep parent dirs reachable', () => {
    const s = compileScope({ include: ['src/**/*.ts'], exclude: [], protected: [] });
    expect(s.inScope('src/a/b.ts')).toBe(true);
    expect(s.inScope('lib/b.ts')).toBe(false);
    expect(s.mayHoldIncluded('src')).toBe(true);
    expect(s.mayHoldIncluded('lib')).toBe(false);
  });
  it('a path below an excluded or protected one is excluded or protected (property)', () => {
    const seg = fc.constantFrom('a', '.env', '.ssh', 'x.pem', '.git', 'hooks', 'src', '.vscode');
    fc.assert(
      fc.property(
        fc.array(seg, { minLength: 1, maxLength: 4 }),
        fc.array(seg, { minLength: 1, maxLength: 3 }),
        (p, q) => {
          const parent = p.join('/');
          const child = `${parent}/${q.join('/')}`;
          if (m.isExcluded(parent)) expect(m.isExcluded(child)).toBe(true);
          if (m.isProtected(parent)) expect(m.isProtected(child)).toBe(true);
        },
      ),
    );
  });
});

describe('path validation', () => {
  it('accepts clean relative paths only', () => {
    expect(relPathProblem('a/b.txt')).toBeUndefined();
    for (const p of ['', '/etc', 'a/../b', '..', './a', 'a//b', 'a/', 'a\0b', 'x'.repeat(256)]) {
      expect(relPathProblem(p), JSON.stringify(p)).toBeDefined();
    }
  });
  it('judges symlink targets lexically from the link dir', () => {
    expect(symlinkTargetInProject('a/l', '../b', '/p')).toBe('b');
    expect(symlinkTargetInProject('a/l', '../../b', '/p')).toBeUndefined();
    expect(symlinkTargetInProject('l', '/p/x', '/p')).toBe('x');
    expect(symlinkTargetInProject('l', '/px', '/p')).toBeUndefined();
    expect(symlinkTargetInProject('l', '/etc/passwd', '/p')).toBeUndefined();
    expect(symlinkTargetInProject('a/l', '..', '/p')).toBe('');
  });
});

describe('planScope and scopeMounts', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('hides the topmost excluded path, hardlinks to it, and lists protected paths', async () => {
    dir = mkdtempSync('/tmp/nanocell-scope-');
    writeTree(dir, {
      '.env': 's',
      '.ssh/id_rsa': 'k',
      'src/a.ts': 'a',
      'node_modules/x/i.js': 'x',
      '.git/hooks/pre-commit': 'h',
      '.vscode': { link: '/etc' },
    });
    linkSync(`${dir}/.ssh/id_rsa`, `${dir}/src/copy`);
    symlinkSync('.env', `${dir}/src/envlink`);
    const plan = await planScope(dir, defaults);
    expect(plan.hidden).toEqual(['.env', '.ssh']);
    expect(plan.hardlinkHidden).toEqual(['src/copy']);
    expect(plan.protected).toEqual(['.git/hooks']);
    expect(plan.protectedSymlinks).toEqual(['.vscode']);
    expect(scopeMounts(plan, dir, '/cells/1/merged')).toEqual([
      {
        destination: `${dir}/.git/hooks`,
        type: 'bind',
        source: '/cells/1/merged/.git/hooks',
        options: ['rbind', 'ro', 'nosuid', 'nodev'],
      },
    ]);
  });

  it('hides whole directories outside include', async () => {
    dir = mkdtempSync('/tmp/nanocell-scope-');
    writeTree(dir, {
      'src/a.ts': 'a',
      'src/b.md': 'b',
      'lib/c.ts': 'c',
      'docs/x/y.ts': 'y',
      'top.ts': 't',
    });
    const plan = await planScope(dir, { include: ['src/**/*.ts'], exclude: [], protected: [] });
    expect(plan.hidden).toEqual(['docs', 'lib', 'src/b.md', 'top.ts']);
  });

  it('refuses a symlinked project and escaping patterns', async () => {
    const d = mkdtempSync('/tmp/nanocell-scope-');
    dir = d;
    symlinkSync('/etc', `${d}/link`);
    await expect(planScope(`${d}/link`, defaults)).rejects.toThrow(/is a symlink/);
    await expect(planScope(d, { ...defaults, exclude: ['../x'] })).rejects.toThrow(/climbs out/);
    expect(() => scopeMounts({ protected: ['../x'] } as never, d, '/m')).toThrow(/"\.\.\/x"/);
  });
});
