// One task on Kubernetes, the same steps as a local task: plan the scope, claim a sandbox,
// push the workspace, run the command with the policy's timeout and output cap enforced here,
// pull the workspace back and collect the same change set a local cell produces (so `diff`
// and `apply` work unchanged), record the proxy tier's decisions in the audit trail, and
// delete the claim on every ending (the caller's abort signal included).
import fs from 'node:fs';
import type { Readable, Writable } from 'node:stream';
import { AuditStore } from '../audit/store.js';
import type { AuditEventInput } from '../audit/events.js';
import { newTaskId } from '../audit/taskId.js';
import { ensureStateRoot } from '../cell/state.js';
import type { ExecResult } from '../cell/initClient.js';
import type { Policy } from '../policy/defaults.js';
import { planScope, type ScopePlan } from '../workspace/scope.js';
import { collectChangeSet, DEFAULT_MAX_FILES } from '../workspace/changeset.js';
import type { ChangeSummary } from '../workspace/manifest.js';
import type { K8sApi } from './client.js';
import { K8sCell, type K8sCellEvent } from './cell.js';
import type { TierEvent } from './tierClient.js';

export interface K8sTaskOptions {
  api: K8sApi;
  namespace: string;
  shape: string;
  policy: Policy;
  workspace: string;
  command: string[];
  stateRoot: string;
  session?: string;
  tier?: { control: string; token: string };
  /** Kubernetes-only controls accepted (--allow-degraded), besides the policy's own. */
  allowDegraded?: readonly string[];
  stdout: Writable;
  stderr: Writable;
  /** Kills the command (the change set is still collected), or stops the set-up. */
  abort?: AbortSignal;
  /** Gives up collecting the change set (a second Ctrl-C). */
  abandonChanges?: AbortSignal;
  claimTimeoutMs?: number;
  /** See K8sCellOptions.workspacePath. */
  workspacePath?: string;
  onEvent?: (e: K8sCellEvent) => void;
}

export interface K8sTaskReport {
  taskId: string;
  claim: string;
  exitCode: number;
  endReason: 'exited' | 'signaled' | 'timeout' | 'killed' | 'error';
  outputTruncated: boolean;
  changes?: ChangeSummary;
  net: { allowed: number; denied: number };
}

const SIGKILL = 9;

export async function runK8sTask(o: K8sTaskOptions): Promise<K8sTaskReport> {
  const taskId = newTaskId();
  const root = ensureStateRoot(o.stateRoot);
  const store = AuditStore.open(root.db);
  const startedAtMs = Date.now();
  const net = { allowed: 0, denied: 0 };
  store.createTask({
    id: taskId,
    session: o.session ?? 'default',
    command: o.command,
    workspace: o.workspace,
    ownerPid: process.pid,
    policy: { backend: 'k8s', shape: o.shape },
  });
  const record = (e: AuditEventInput) => store.append(taskId, e);
  let cell: K8sCell | undefined;
  let report: K8sTaskReport | undefined;
  try {
    const scope = await planScope(o.workspace, o.policy.workspace);
    cell = await K8sCell.create({
      api: o.api,
      namespace: o.namespace,
      shape: o.shape,
      policy: o.policy,
      tier: o.tier,
      allowDegraded: o.allowDegraded,
      claimTimeoutMs: o.claimTimeoutMs,
      workspacePath: o.workspacePath,
      signal: o.abort,
      onEvent: (e) => {
        if (e.type === 'net' && 'port' in e.event) {
          net[e.event.decision]++;
          record(netAuditEvent(e.event));
        }
        o.onEvent?.(e);
      },
    });
    record({ type: 'task.started', cellId: cell.claim });
    await cell.pushWorkspace(scope, o.abort);
    const outcome = await runCapped(cell, o);
    const changes = await collectFromPod(cell, {
      stateRoot: root.root,
      taskId,
      workspace: o.workspace,
      policy: o.policy,
      scope,
      startedAtMs,
      abandon: o.abandonChanges,
    });
    report = { taskId, claim: cell.claim, ...outcome, changes, net };
    return report;
  } finally {
    await cell
      ?.close()
      .catch((e: unknown) => o.stderr.write(`nanocell: ${(e as Error).message}\n`));
    record({
      type: 'task.exited',
      exitCode: report?.exitCode ?? null,
      endReason: report?.endReason ?? 'error',
      durationMs: Date.now() - startedAtMs,
    });
    store.endTask(taskId, {
      status: report ? 'exited' : 'failed',
      endReason: report?.endReason ?? 'error',
      exitCode: report?.exitCode ?? null,
      ...(report ? { report } : {}),
    });
    store.close();
  }
}

/** A connection the tier decided (a refusal has no port). */
type K8sNetEvent = Extract<TierEvent, { port: number }>;

function netAuditEvent(ev: K8sNetEvent): AuditEventInput {
  return {
    type: ev.decision === 'allowed' ? 'net.allowed' : 'net.denied',
    host: ev.host,
    port: ev.port,
    ...(ev.ip ? { ip: ev.ip } : {}),
    rule: ev.rule,
    reason: ev.reason ?? ev.decision,
    protocol: ev.protocol,
    bytesUp: ev.bytesUp,
    bytesDown: ev.bytesDown,
    durationMs: ev.durationMs,
  };
}

/**
 * The change set, as locally: the pod's workspace, pulled back into a staging directory, is the
 * merged view of the task; the collector compares it with the project.
 */
export async function collectFromPod(
  cell: K8sCell,
  o: {
    stateRoot: string;
    taskId: string;
    workspace: string;
    policy: Policy;
    scope: ScopePlan;
    startedAtMs: number;
    abandon?: AbortSignal;
  },
): Promise<ChangeSummary> {
  const staging = `${o.stateRoot}/k8s-staging-${o.taskId}`;
  try {
    const limits = { maxFiles: DEFAULT_MAX_FILES, maxBytes: o.policy.limits.disk };
    await cell.pullWorkspace(staging, limits, o.abandon);
    return await collectChangeSet({
      upperDir: staging,
      mergedDir: staging,
      plainView: true,
      lowerDir: o.workspace,
      projectDir: o.workspace,
      outDir: `${o.stateRoot}/changes/${o.taskId}`,
      taskId: o.taskId,
      startedAtMs: o.startedAtMs,
      limits,
      scope: o.scope,
    });
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
}

type CappedOutcome = Omit<K8sTaskReport, 'taskId' | 'claim' | 'changes' | 'net'>;

/** Runs the command with the policy's timeout and output cap, enforced on this side. */
export async function runCapped(
  cell: K8sCell,
  o: {
    command: string[];
    policy: Policy;
    stdout: Writable;
    stderr: Writable;
    abort?: AbortSignal;
    input?: string | Buffer;
    env?: string[];
  },
): Promise<CappedOutcome> {
  const h = cell.exec(o.command, o.env ? { env: o.env } : {});
  h.stdin.end(o.input ?? '');
  const cap = o.policy.limits.output;
  let used = 0;
  let truncated = false;
  const pipeCapped = (src: Readable, dst: Writable) =>
    src.on('data', (chunk: Buffer) => {
      if (truncated) return; // keep draining: the command must never block on a full pipe
      const room = cap - used;
      used += Math.min(room, chunk.length);
      dst.write(chunk.length <= room ? chunk : chunk.subarray(0, room));
      if (chunk.length > room) {
        truncated = true;
        dst.write(`\n[nanocell: output truncated after ${cap} bytes]\n`);
      }
    });
  pipeCapped(h.stdout, o.stdout);
  pipeCapped(h.stderr, o.stderr);
  let why: 'timeout' | 'killed' | undefined;
  const kill = (reason: 'timeout' | 'killed') => {
    why ??= reason;
    h.kill(SIGKILL);
  };
  const timer = setTimeout(() => kill('timeout'), o.policy.limits.timeout);
  const onAbort = () => kill('killed');
  if (o.abort?.aborted) onAbort();
  o.abort?.addEventListener('abort', onAbort);
  let r: ExecResult;
  try {
    r = await h.result;
  } finally {
    clearTimeout(timer);
    o.abort?.removeEventListener('abort', onAbort);
  }
  if (why === 'timeout') return { exitCode: 124, endReason: 'timeout', outputTruncated: truncated };
  if (why === 'killed') return { exitCode: 137, endReason: 'killed', outputTruncated: truncated };
  if (r.kind === 'exited')
    return { exitCode: r.code, endReason: 'exited', outputTruncated: truncated };
  if (r.kind === 'spawn-failed')
    return { exitCode: r.code, endReason: 'error', outputTruncated: truncated };
  return { exitCode: 128 + r.signal, endReason: 'signaled', outputTruncated: truncated };
}
