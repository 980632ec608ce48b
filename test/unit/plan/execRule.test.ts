// The exec rule of the workspace and the scratch places: one fact for Landlock and the mounts.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveExecAllow } from '../../../src/plan/execAllow.js';
import { execGuardArgs, needsMapGuard, planExecRule } from '../../../src/plan/execRule.js';
import type { CellPlan } from '../../../src/plan/plan.js';
import { DEFAULT_EXEC_ALLOW } from '../../../src/policy/defaults.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';

const ws = '/srv/app';
const loaders = resolveExecAllow([], ws);

describe('planExecRule', () => {
  it('by default the scratch places follow an executable workspace', () => {
    const r = planExecRule(resolveExecAllow([...DEFAULT_EXEC_ALLOW], ws), ws, 'follow-workspace');
    expect(r.mounts).toEqual({ workspace: true, tmp: true, home: true, shm: true });
    expect(r.paths).toEqual(expect.arrayContaining(['/usr', ws, '/tmp', '/home/cell', '/dev/shm']));
  });

  it('a workspace that may not exec is noexec, and so are the places that follow it', () => {
    const r = planExecRule(resolveExecAllow(['/usr/**'], ws), ws, 'follow-workspace');
    expect(r.mounts).toEqual({ workspace: false, tmp: false, home: false, shm: false });
    expect(r.paths).toEqual([...new Set([...loaders, '/usr'])].sort());
  });

  it('exec.scratch: deny keeps /tmp, HOME and /dev/shm noexec next to an executable workspace', () => {
    const r = planExecRule(resolveExecAllow([...DEFAULT_EXEC_ALLOW], ws), ws, 'deny');
    expect(r.mounts).toEqual({ workspace: true, tmp: false, home: false, shm: false });
    expect(r.paths).not.toContain('/tmp');
  });

  it('exec.allow can name a scratch place on its own, by path or by $HOME', () => {
    const r = planExecRule(resolveExecAllow(['/usr/**', '$HOME/**'], ws), ws, 'follow-workspace');
    expect(r.mounts).toEqual({ workspace: false, tmp: false, home: true, shm: false });
    expect(r.paths).toContain('/home/cell');
    const shm = planExecRule(resolveExecAllow(['/dev/shm'], ws), ws, 'follow-workspace');
    expect(shm.mounts.shm).toBe(true);
  });

  it('refuses part of a scratch place, and deny next to a named place', () => {
    expect(() => resolveExecAllow(['/tmp/bin/**'], ws)).toThrow(/starts empty in every cell/);
    expect(() => planExecRule(resolveExecAllow(['/tmp/**'], ws), ws, 'deny')).toThrow(
      /exec.scratch is "deny" but exec.allow names \/tmp/,
    );
  });

  it('a part of the workspace makes the workspace mount executable, not the scratch places', () => {
    const dir = fs.mkdtempSync(path.join('/var/tmp', 'nc-exec-'));
    try {
      fs.mkdirSync(path.join(dir, 'bin'));
      const r = planExecRule(resolveExecAllow(['$WORKSPACE/bin/**'], dir), dir, 'follow-workspace');
      expect(r.mounts).toEqual({ workspace: true, tmp: false, home: false, shm: false });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a workspace under /tmp neither makes /tmp executable nor is reached by a /tmp rule', () => {
    const tmpWs = '/tmp/tmp.Ab12Cd';
    const part = planExecRule([...loaders, `${tmpWs}/bin`], tmpWs, 'follow-workspace');
    expect(part.mounts).toEqual({ workspace: true, tmp: false, home: false, shm: false });
    const whole = planExecRule([...loaders, tmpWs], tmpWs, 'deny');
    expect(whole.mounts).toEqual({ workspace: true, tmp: false, home: false, shm: false });
    const followed = planExecRule([...loaders, tmpWs], tmpWs, 'follow-workspace');
    expect(followed.mounts).toEqual({ workspace: true, tmp: true, home: true, shm: true });
    expect(() => planExecRule([...loaders, '/tmp'], tmpWs, 'follow-workspace')).toThrow(
      /names \/tmp, which holds the workspace/,
    );
    expect(planExecRule([...loaders, '/tmp', tmpWs], tmpWs, 'follow-workspace').mounts.tmp).toBe(
      true,
    );
  });

  it('the policy file takes exec.scratch and refuses other values', () => {
    expect(resolvePolicy(parsePolicy({})).exec.scratch).toBe('follow-workspace');
    expect(resolvePolicy(parsePolicy({ exec: { scratch: 'deny' } })).exec.scratch).toBe('deny');
    expect(() => parsePolicy({ exec: { scratch: 'sometimes' } })).toThrow(/scratch/);
  });

  it("gives the monitor's exec guard Landlock's paths and the cell's first process, or nothing", () => {
    const plan = (args: string[]) => ({ spec: { process: { args } } }) as unknown as CellPlan;
    const withLl = plan(['/bin/sh', '-c', 'x', '/.nanocell/init', '--ll-exec', '/usr']);
    expect(execGuardArgs(withLl, (p) => (p === '/bin/sh' ? '/usr/bin/dash' : p))).toEqual([
      '--exec-allow',
      '/usr/bin/dash',
      '--exec-allow',
      '/.nanocell/init',
      '--exec-allow',
      '/usr',
    ]);
    expect(execGuardArgs(plan(['/.nanocell/init', '--landlock', 'off']), (p) => p)).toEqual([]);
  });
});

describe('needsMapGuard', () => {
  const guard = (allow: string[], scratch: 'follow-workspace' | 'deny', noexecCodeDirs = false) =>
    needsMapGuard({
      rule: planExecRule(resolveExecAllow(allow, ws), ws, scratch),
      workspace: ws,
      noexecCodeDirs,
    });

  it('is off by default: every writable place is wholly executable', () => {
    expect(guard([...DEFAULT_EXEC_ALLOW], 'follow-workspace')).toBe(false);
  });

  it('is on where the kernel refuses a mapping that only the guard can record', () => {
    expect(guard([...DEFAULT_EXEC_ALLOW], 'deny')).toBe(true); // /tmp, HOME noexec
    expect(guard(['/usr/**'], 'follow-workspace')).toBe(true); // the workspace noexec
    expect(guard([...DEFAULT_EXEC_ALLOW], 'follow-workspace', true)).toBe(true); // a cache
  });

  it('is on where an allowlist is finer than its mount, which only the guard enforces', () => {
    // Resolved paths, as resolveExecAllow makes them of "$WORKSPACE/bin/**".
    const rule = planExecRule([...loaders, '/usr', `${ws}/bin`], ws, 'follow-workspace');
    expect(rule.mounts.workspace).toBe(true);
    expect(needsMapGuard({ rule, workspace: ws, noexecCodeDirs: false })).toBe(true);
  });
});
