// The resolve step comes first: a bad policy entry or a refused degradation fails before the
// cell creates, mounts or listens on anything. After each refusal the state root was never
// created, nothing is mounted under the sandbox and no socket is bound under it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { Cell } from '../../../src/cell/cell.js';
import type { CellEvent } from '../../../src/cell/types.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { NanocellError, PolicyError } from '../../../src/util/errors.js';
import { makeSandbox, mountsUnder, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
beforeEach(() => {
  sb = makeSandbox();
});
afterEach(() => sb.cleanup());

/** Unix sockets bound anywhere under `dir` (abstract ones have no path and cannot be ours). */
function socketsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/net/unix', 'utf8')
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/)[7] ?? '')
    .filter((p) => p.startsWith(`${dir}/`));
}

async function refused(
  doc: Record<string, unknown>,
  extraAllowNet: string[] = [],
): Promise<{ error: unknown; events: CellEvent[] }> {
  const events: CellEvent[] = [];
  const base = sb.stateRoot.slice(0, sb.stateRoot.lastIndexOf('/'));
  let error: unknown;
  try {
    const cell = await Cell.create({
      policy: resolvePolicy(parsePolicy(doc)),
      workspace: sb.project,
      stateRoot: sb.stateRoot,
      extraAllowNet,
      onEvent: (e) => events.push(e),
    });
    await cell.destroy();
  } catch (e) {
    error = e;
  }
  // Nothing was created, mounted or listened on.
  expect(fs.existsSync(sb.stateRoot)).toBe(false);
  expect(mountsUnder(base)).toEqual([]);
  expect(socketsUnder(base)).toEqual([]);
  expect(fs.readdirSync(sb.project)).toEqual(['README.md']);
  return { error, events };
}

describe('resolve before acquire', () => {
  it('refuses a bad network.allow entry before anything exists', async () => {
    const { error, events } = await refused({ network: { allow: ['*.com'] } });
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as Error).message).toMatch(/network\.allow: "\*\.com"/);
    expect(events).toEqual([]);
  });

  it('refuses a bad --allow-net entry before anything exists', async () => {
    const { error } = await refused({}, ['*.com']);
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as Error).message).toMatch(/--allow-net: "\*\.com"/);
  });

  it('refuses a bad exec.allow entry before anything exists', async () => {
    const rel = await refused({ exec: { allow: ['bin/tool'] } });
    expect(rel.error).toBeInstanceOf(PolicyError);
    expect((rel.error as Error).message).toMatch(/exec\.allow: "bin\/tool" must be an absolute/);
    const missing = await refused({ exec: { allow: ['/nonexistent/nanocell-tool'] } });
    expect((missing.error as Error).message).toMatch(/exec\.allow: .* does not exist/);
  });

  it('refuses a degradation the policy did not accept before anything exists', async () => {
    // gVisor has no Landlock; without --allow-degraded landlock the cell must not start.
    const { error, events } = await refused({
      runtime: { name: 'runsc' },
      network: { allow: ['registry.npmjs.org'] },
    });
    expect(error).toBeInstanceOf(NanocellError);
    expect((error as Error).message).toMatch(/does not implement Landlock.*refusing to run/);
    expect((error as NanocellError).fix).toMatch(/--allow-degraded landlock/);
    expect(events).toEqual([]);
  });
});
