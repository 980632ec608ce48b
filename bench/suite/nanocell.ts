// nanocell as the figures drive it: through the library in this process, and through the CLI.
import path from 'node:path';
import { Cell } from '../../src/cell/cell.js';
import type { CellOptions } from '../../src/cell/types.js';
import { parsePolicy, resolvePolicy } from '../../src/policy/load.js';
import { runQuiet } from './peers.js';

/** The full policy: defaults (overlay, seccomp monitor, cgroups) plus one allowed host (proxy). */
export const FULL_POLICY = resolvePolicy(parsePolicy({ network: { allow: ['bench.test'] } }));
/** Defaults only: no allowed host, so no proxy is started. */
export const NO_NET_POLICY = resolvePolicy(parsePolicy({}));

export interface Variant {
  label: string;
  opts: Pick<CellOptions, 'policy' | 'benchOff'>;
}

export const VARIANTS: Variant[] = [
  { label: 'nanocell full', opts: { policy: FULL_POLICY } },
  { label: 'workspace overlay off', opts: { policy: FULL_POLICY, benchOff: { workspace: true } } },
  { label: 'seccomp monitor off', opts: { policy: FULL_POLICY, benchOff: { seccomp: true } } },
  { label: 'network proxy off', opts: { policy: NO_NET_POLICY } },
  { label: 'cgroup limits off', opts: { policy: FULL_POLICY, benchOff: { cgroups: true } } },
  {
    label: 'all four off',
    opts: { policy: NO_NET_POLICY, benchOff: { workspace: true, seccomp: true, cgroups: true } },
  },
];

export interface Ctx {
  repo: string;
  stateRoot: string;
  project: string;
}

export async function cellOnce(ctx: Ctx, v: Variant['opts'], argv = ['/bin/true']): Promise<void> {
  const cell = await Cell.create({ ...v, workspace: ctx.project, stateRoot: ctx.stateRoot });
  try {
    const r = await cell.run(argv);
    if (r.exitCode !== 0) throw new Error(`${argv.join(' ')} exited ${r.exitCode}: ${r.stderr}`);
  } finally {
    await cell.destroy();
  }
}

export function cliArgs(ctx: Ctx, extra: string[], argv = ['/bin/true']): string[] {
  return [
    path.join(ctx.repo, 'dist', 'cli', 'nanocell.mjs'),
    'run',
    '--quiet',
    '--workspace',
    ctx.project,
    ...extra,
    '--',
    ...argv,
  ];
}

export function cliOnce(ctx: Ctx, extra: string[]): Promise<void> {
  return runQuiet(process.execPath, cliArgs(ctx, extra), {
    env: { ...process.env, NANOCELL_STATE_ROOT: ctx.stateRoot },
  });
}
