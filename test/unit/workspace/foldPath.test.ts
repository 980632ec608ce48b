import { describe, expect, it } from 'vitest';
import { DEFAULT_PROTECTED } from '../../../src/policy/defaults.js';
import { compileScope, foldPath } from '../../../src/workspace/globs.js';

describe('foldPath', () => {
  it('folds case, normalisation, ignorable code points and trailing dots and spaces', () => {
    expect(foldPath('.GIT/Hooks/pre-commit')).toBe('.git/hooks/pre-commit');
    expect(foldPath('.git\u200c/hooks')).toBe('.git/hooks');
    expect(foldPath('.git./hooks ')).toBe('.git/hooks');
    expect(foldPath('Cafe\u0301')).toBe(foldPath('Caf\u00e9'));
    expect(foldPath('a/./b')).toBe('a/./b');
  });

  it('makes every folded spelling of a protected path protected, and nothing else', () => {
    const m = compileScope({ include: ['**'], exclude: [], protected: [...DEFAULT_PROTECTED] });
    for (const p of ['.Git/config', '.VSCODE/tasks.json', '.envrc\ufeff', 'x/.GIT/hooks/a'])
      expect(m.isProtected(p), p).toBe(true);
    for (const p of [
      'src/git/config',
      '.envrc-notes',
      'docs/vscode.md',
      '.github/ISSUE_TEMPLATE/x',
    ])
      expect(m.isProtected(p), p).toBe(false);
  });
});
