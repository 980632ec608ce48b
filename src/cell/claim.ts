// A warm cell's claim: what differs per task is attached to a cell that is already running
// (pool.ts). In order, and why there:
//  0. the task's options, with the pool's defaults for what the claim leaves out;
//  1. checks, asked by the pool before it takes a cell: the claim's policy shares the pool's
//     fixed parts (src/plan/poolKey.ts), its project is the pool's, its secrets' hosts are
//     allowed, and egress it wants has a proxy;
//  2. the workspace view, assembled on the host as a cold cell's is (scope, session layers,
//     idmapped lower, overlay with the claim's disk cap);
//  3. the view attached into the running cell's mount namespace (native/attach.c) over the
//     placeholder its Landlock rules were made for, with the protected paths read-only;
//  4. the claim's secrets (their values read first, fail closed) and network rules, set in the
//     cell's proxy and transparent capture; the CA they need was mounted at start.
// A failure anywhere leaves the cell to be destroyed by the caller; every step registered
// its release with the cell's cleanups first.
import type { HostFacts } from '../host/facts.js';
import { compileNetRules, hasEgress, type NetRules } from '../net/rules.js';
import { checkSecretHosts } from '../net/secrets.js';
import type { ResolvedCell } from '../plan/resolve.js';
import type { Policy } from '../policy/defaults.js';
import { checkClaimPolicy } from '../plan/poolKey.js';
import { resolveProjectDir } from '../plan/projectDir.js';
import { newTaskId } from '../audit/taskId.js';
import { NanocellError, PolicyError } from '../util/errors.js';
import { acquireWorkspace, type Acquired } from './acquire.js';
import type { AttachHelper } from './attachHelper.js';
import { trace, type Cleanups } from './cleanup.js';
import type { RuntimeInfo } from '../runtime/runtime.js';
import type { CellEvent, ClaimRequest } from './types.js';
import type { WorkspaceStack } from './stackMount.js';
import type { CellWorkspace } from './workspaceMount.js';

export interface ClaimInput {
  cellId: string;
  taskId: string;
  session: string;
  pool: { name: string; policy: Policy; resolved: ResolvedCell };
  policy: Policy;
  workspace: string;
  extraAllowNet?: string[];
  stack?: WorkspaceStack;
  /** Started with the warm cell (attachHelper.ts). */
  attacher: AttachHelper;
  got: Acquired;
  host: HostFacts;
  runtime: RuntimeInfo;
  stateRoot: string | undefined;
  cleanups: Cleanups;
  emit: (e: CellEvent) => void;
  /** Asks init to apply Landlock (InitClient.applyLandlock). */
  landlock: () => Promise<void>;
}

/** Step 0: what the task brings, the pool's defaults filled in; the rest is the warm cell's. */
export function claimParts(
  c: ClaimRequest,
  pool: { name: string; policy: Policy },
  resolved: ResolvedCell,
): Pick<
  ClaimInput,
  'taskId' | 'session' | 'pool' | 'policy' | 'workspace' | 'extraAllowNet' | 'stack'
> {
  return {
    taskId: c.taskId ?? newTaskId(),
    session: c.session ?? 'default',
    pool: { ...pool, resolved },
    policy: c.policy ?? pool.policy,
    workspace: c.workspace === undefined ? resolved.project : resolveProjectDir(c.workspace),
    ...(c.extraAllowNet ? { extraAllowNet: c.extraAllowNet } : {}),
    ...(c.stack ? { stack: c.stack } : {}),
  };
}

/** What a claim is checked against: the pool, as its warm cells were started. */
export interface ClaimTarget {
  name: string;
  policy: Policy;
  project: string;
  /** Its cells have an egress proxy. */
  egress: boolean;
}

/**
 * Step 1, pure: what makes a claim impossible. The pool asks it before it takes a cell, so a
 * refused claim costs no warm cell, and a drained pool refuses what a full one would.
 */
export function checkClaim(
  pool: ClaimTarget,
  c: { policy: Policy; workspace: string; extraAllowNet?: string[] },
): NetRules {
  checkClaimPolicy(pool.policy, c.policy, pool.name);
  if (c.workspace !== pool.project) {
    throw new PolicyError(
      `pool "${pool.name}" serves the project ${pool.project}, not ${c.workspace}`,
      'claim from the pool made for this project, or start a cell without a pool',
    );
  }
  const rules = compileNetRules(c.policy.network, c.extraAllowNet ?? []);
  checkSecretHosts(c.policy.secrets, rules);
  if (hasEgress(rules) && !pool.egress) {
    throw new PolicyError(
      `pool "${pool.name}" starts its cells without an egress proxy (its policy allows no destination), so a claim cannot allow one`,
      "give the pool's policy a network.allow entry (claims then set their own rules), or start a cell without a pool",
    );
  }
  return rules;
}

/** Steps 2–4; returns the attached workspace, which replaces the placeholder. */
export async function attachClaim(c: ClaimInput, rules: NetRules): Promise<CellWorkspace> {
  let t = performance.now();
  const { got } = c;
  const resolved: ResolvedCell = { ...c.pool.resolved, policy: c.policy };
  const ws = await acquireWorkspace(
    {
      id: c.cellId,
      taskId: c.taskId,
      stateRoot: c.stateRoot,
      host: c.host,
      runtime: c.runtime,
      resolved,
      cleanups: c.cleanups,
      emit: c.emit,
      session: c.session,
      ...(c.stack ? { stack: c.stack } : {}),
      ...(got.ws.staged ? { staged: got.ws.staged } : {}),
    },
    got.layout,
    got.dirs,
    got.lease,
  );
  for (const n of ws.notices) c.emit({ type: 'policy.degraded', ...n });
  trace('claim: workspace', t);
  t = performance.now();
  await attachView(c.attacher, ws, !c.pool.resolved.execMounts.workspace);
  trace('claim: attach', t);
  // Only now, over the attached view: see planInitArgs (--landlock-deferred).
  if (got.plan.spec.process.args.includes('--landlock-deferred')) await c.landlock();
  if (got.net.enabled) {
    got.net.replaceSecrets(c.policy.secrets);
    got.net.replaceRules(rules);
  }
  return ws;
}

/** Has nanocell-attach act; its one-line error becomes the claim's. */
async function attachView(attacher: AttachHelper, ws: CellWorkspace, noexec: boolean) {
  const { mountPlan } = ws;
  if (mountPlan.mode !== 'host-overlay' || !mountPlan.mergedDir) {
    throw new NanocellError(
      'a warm cell can only take a workspace overlaid on the host (root mode)',
      'run the pool as root, or size it to zero',
      'HOST',
    );
  }
  const args = ['--src', mountPlan.mergedDir, '--dst', mountPlan.path];
  if (ws.pendingMount) args.push('--overlay', ws.pendingMount);
  if (noexec) args.push('--noexec');
  for (const m of mountPlan.extraMounts) {
    args.push('--ro', m.destination.slice(mountPlan.path.length + 1));
  }
  const stderr = await attacher.attach(args);
  if (stderr !== undefined) {
    throw new NanocellError(
      `cannot attach the workspace to the warm cell: ${stderr}`,
      'the kernel must support the new mount API and pidfds (Linux 5.8+); run `nanocell doctor`',
      'HOST',
    );
  }
}
