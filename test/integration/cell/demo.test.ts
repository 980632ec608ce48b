// The README's first command ends in `nanocell demo`: every rogue step must be refused.
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { leftovers, makeSandbox, nanocell } from '../../helpers/cells.js';

const sb = makeSandbox();
afterAll(() => sb.cleanup());

describe('nanocell demo', () => {
  it('does the honest work, refuses every rogue step and shows the change set', () => {
    const r = nanocell(['demo'], { stateRoot: sb.stateRoot });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('tests pass');
    const attempts = r.stdout.split('\n').filter((l) => /^\s+(ALLOWED|refused)\s/.test(l));
    expect(attempts.length).toBeGreaterThanOrEqual(15);
    expect(attempts.filter((l) => l.includes('ALLOWED'))).toEqual([]);
    expect(r.stdout).toMatch(/syscalls denied: [1-9]\d* /);
    expect(r.stdout).toContain('cells left behind: 0');
    expect(r.stdout).toMatch(/\+Hello from the agent, world/);
    expect(r.stdout).toContain('project hello.txt still says: Hello, world');
    expect(leftovers(sb.stateRoot)).toMatchObject({
      cells: [],
      runtime: [],
      slots: [],
      mounts: [],
    });
    // The demo's throwaway project is removed, and so is its change set.
    expect(fs.readdirSync(`${sb.stateRoot}/changes`)).toEqual([]);
  });
});
