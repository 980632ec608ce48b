import { describe, expect, it } from 'vitest';
import { compileScope } from '../../../src/workspace/globs.js';
import { HOME_SECRET_PATHS, homeSecretExcludes } from '../../../src/workspace/homeSecrets.js';

const homes = ['/home/alice', '/home/bob', '/root', '/var/www'];

describe('homeSecretExcludes', () => {
  it('adds nothing for an ordinary project below a home', () => {
    expect(homeSecretExcludes('/home/alice/src/app', homes, '/var/lib/nanocell')).toEqual({
      patterns: [],
    });
  });

  it('hides the credential stores of the home the workspace is', () => {
    const r = homeSecretExcludes('/home/alice', homes, '/var/lib/nanocell');
    expect(r.patterns).toEqual([...HOME_SECRET_PATHS]);
    expect(r.notice).toMatch(/contains home directory \/home\/alice: .* hidden .*--workspace/);
  });

  it('hides every home below the workspace and the state root, with literal paths', () => {
    const r = homeSecretExcludes(
      '/home',
      [...homes, '/home/we[i]rd*'],
      '/home/bob/.local/state/nanocell',
    );
    const m = compileScope({ include: ['**'], exclude: r.patterns, protected: [] });
    for (const p of [
      'alice/.claude/settings.json',
      'bob/.codex/auth.json',
      'bob/.bash_history',
      'bob/.local/state/nanocell/nanocell.db',
      'we[i]rd*/.ssh/id_rsa',
    ])
      expect(m.isExcluded(p), p).toBe(true);
    for (const p of [
      'alice/notes.md',
      'bob/.claude-notes',
      'weird/.ssh/id_rsa',
      'carol/.bash_history',
    ])
      expect(m.isExcluded(p), p).toBe(false);
    expect(r.notice).toContain('home directories /home/alice, /home/bob');
    expect(r.notice).toContain('the nanocell state root /home/bob/.local/state/nanocell');
  });
});
