import { describe, expect, it } from 'vitest';
import { newTaskId, TASK_ID_PATTERN } from '../../../src/audit/taskId.js';

describe('newTaskId', () => {
  it('is 18 lowercase base32 characters', () => {
    for (let i = 0; i < 100; i++) expect(newTaskId()).toMatch(TASK_ID_PATTERN);
  });

  it('sorts by creation time', () => {
    const times = [0, 1, 31, 32, 1_000_000, Date.now(), Date.now() + 1, 2 ** 45];
    const ids = times.map((t) => newTaskId(t));
    expect([...ids].sort()).toEqual(ids);
  });

  it('is unique within one millisecond', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newTaskId(1_700_000_000_000)));
    expect(ids.size).toBe(1000);
  });
});
