import { describe, expect, it } from 'vitest';
import { foreignOwnersInScope } from '../../../src/workspace/owners.js';

const plan = {
  hidden: ['.env', 'secrets'],
  hardlinkHidden: ['notes.txt'],
  protected: ['.git/hooks'],
  protectedSymlinks: ['.envrc'],
};

describe('foreignOwnersInScope', () => {
  it('counts only paths the cell sees and may change, and names the first in order', () => {
    const listed = {
      paths: ['z.txt', '.env', 'secrets/key', 'notes.txt', '.git/hooks/pre-commit', 'lib', 'b/c'],
      truncated: false,
    };
    expect(foreignOwnersInScope(listed, plan)).toEqual({
      count: 3,
      atLeast: false,
      example: 'b/c',
    });
  });

  it('is undefined when every foreign path is hidden or protected', () => {
    const listed = { paths: ['.env', 'secrets', '.git/hooks', '.envrc'], truncated: false };
    expect(foreignOwnersInScope(listed, plan)).toBeUndefined();
    expect(foreignOwnersInScope({ paths: [], truncated: false }, plan)).toBeUndefined();
  });

  it('says the count is a lower bound when the listing was cut short', () => {
    expect(foreignOwnersInScope({ paths: ['a'], truncated: true }, plan)).toMatchObject({
      count: 1,
      atLeast: true,
    });
  });

  it('does not mistake a sibling with a common prefix for a hidden path', () => {
    expect(
      foreignOwnersInScope({ paths: ['.env.d/x', 'secrets2'], truncated: false }, plan),
    ).toMatchObject({ count: 2 });
  });
});
