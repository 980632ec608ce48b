// What a warm pool's cells share and what each claim brings (src/cell/pool.ts). A pool's cell
// is started before its task is known, so everything the start fixes is the pool's: the
// runtime, the seccomp profile, the exec rule and Landlock's rules (which name the project's
// path, so a pool serves one project), the cgroup limits and tmpfs sizes, the host mounts and
// whether the cell has an egress proxy (a warm cell with one has its CA mounted at start).
// What a claim attaches is its own: the workspace view (scope, session layers, disk cap), the
// env, the network rules, the brokered secrets, the timeout and the output cap. Pure: the
// pool and the server both ask it before anything starts.
import { isDeepStrictEqual } from 'node:util';
import type { Policy } from '../policy/defaults.js';
import { PolicyError } from '../util/errors.js';

/** The parts of a policy a claim may set for itself, as `section.field` or `section`. */
const CLAIM_TIME_PARTS = [
  'workspace',
  'network',
  'env',
  'secrets',
  'limits.timeout',
  'limits.output',
  'limits.disk',
] as const;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The policy without its claim-time parts: equal keys, interchangeable warm cells. */
function fixedParts(policy: Policy): Record<string, Json> {
  const p = JSON.parse(JSON.stringify(policy)) as Record<string, Record<string, Json>>;
  for (const part of CLAIM_TIME_PARTS) {
    const [section, field] = part.split('.') as [string, string | undefined];
    if (field === undefined) delete p[section];
    else if (p[section]) delete p[section][field];
  }
  return p;
}

/** Which fixed parts of `claim` differ from the pool's, as `section` or `section.field` names. */
export function claimMismatches(pool: Policy, claim: Policy): string[] {
  const a = fixedParts(pool);
  const b = fixedParts(claim);
  const out: string[] = [];
  for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
    const x = a[k];
    const y = b[k];
    if (isDeepStrictEqual(x, y)) continue;
    const isObj = (v: Json | undefined) => typeof v === 'object' && v !== null && !Array.isArray(v);
    if (isObj(x) && isObj(y)) {
      const xo = x as Record<string, Json>;
      const yo = y as Record<string, Json>;
      for (const f of [...new Set([...Object.keys(xo), ...Object.keys(yo)])].sort())
        if (!isDeepStrictEqual(xo[f], yo[f])) out.push(`${k}.${f}`);
    } else out.push(k);
  }
  return out;
}

/** A claim's policy must share the pool's fixed parts; the error names each difference. */
export function checkClaimPolicy(pool: Policy, claim: Policy, poolName: string): void {
  const diff = claimMismatches(pool, claim);
  if (diff.length) {
    throw new PolicyError(
      `the task's policy differs from pool "${poolName}" in ${diff.join(', ')}, which a warm cell fixes at start`,
      `use a pool whose policy has the same ${diff.length === 1 ? 'setting' : 'settings'}, or start a cell without a pool (Cell.create)`,
    );
  }
}

/**
 * A pool's own refusals, after resolve: rootless mode, and exec rules for single paths inside the project
 * cannot be applied to a workspace that is not there yet (Landlock opens each path at start).
 */
export function checkPoolPlan(o: {
  project: string;
  execAllow: readonly string[];
  rootless: boolean;
}): void {
  if (o.rootless) {
    // The view is attached from the host's mount namespace (open_tree, setns, move_mount),
    // which needs root; rootless cells have the runtime mount theirs inside the cell.
    throw new PolicyError(
      'warm pools need root mode: a claim attaches the workspace from the host, which needs root',
      'run nanocell serve (or the pool) as root, or size the pool to 0 so claims start cells as Cell.create does',
    );
  }
  const inside = o.execAllow.filter((p) => p.startsWith(`${o.project}/`));
  if (inside.length) {
    throw new PolicyError(
      `a warm pool cannot grant exec for paths inside the project (${inside.join(', ')}): Landlock fixes them at start, before a claim attaches the workspace`,
      'allow $WORKSPACE/** (the default) or none of it in the pool policy, or start cells without a pool',
    );
  }
}
