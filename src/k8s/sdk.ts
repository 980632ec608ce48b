// The SDK's door to the Kubernetes backend: `Cell.create({ policy, workspace, backend:
// k8sBackend({ api }) })` claims a sandbox from the shape's warm pool and pushes the scoped
// workspace; `run` runs a command with the policy's timeout and output cap enforced here;
// `destroy` pulls the workspace back, collects the same change set a local cell does (under the
// state root's changes/<taskId>, so `nanocell diff/apply` take it) and deletes the claim. Every
// failure on the way deletes the claim too.
import { PassThrough } from 'node:stream';
import { newTaskId } from '../audit/taskId.js';
import { defaultStateRoot, ensureStateRoot } from '../cell/state.js';
import type { CellBackend, CellOptions } from '../cell/types.js';
import { planScope, type ScopePlan } from '../workspace/scope.js';
import type { ChangeSummary } from '../workspace/manifest.js';
import { NanocellError } from '../util/errors.js';
import type { K8sApi } from './client.js';
import { K8sCell, type K8sCellEvent } from './cell.js';
import { collectFromPod, runCapped } from './run.js';

export interface K8sBackendOptions {
  api: K8sApi;
  namespace?: string;
  /** The shape (warm pool) to claim from; default `default`. */
  shape?: string;
  tier?: { control: string; token: string };
  /** Kubernetes-only controls accepted, besides the policy's allowDegraded. */
  allowDegraded?: readonly string[];
  claimTimeoutMs?: number;
  /** See K8sCellOptions.workspacePath. */
  workspacePath?: string;
  onEvent?: (e: K8sCellEvent) => void;
}

/** The backend object for `Cell.create({ backend })`. */
export function k8sBackend(b: K8sBackendOptions): CellBackend<K8sSdkCell> {
  return { name: 'k8s', create: (opts) => K8sSdkCell.start(b, opts) };
}

export interface K8sRunResult {
  exitCode: number;
  endReason: 'exited' | 'signaled' | 'timeout' | 'killed' | 'error';
  outputTruncated: boolean;
  stdout: string;
  stderr: string;
}

export class K8sSdkCell {
  readonly taskId: string;
  readonly workspace: string;
  private readonly startedAtMs = Date.now();
  private destroyed?: Promise<{ taskId: string; changes: ChangeSummary }>;

  private constructor(
    private readonly cell: K8sCell,
    private readonly opts: CellOptions,
    private readonly scope: ScopePlan,
    private readonly stateRoot: string,
  ) {
    this.taskId = opts.taskId ?? newTaskId();
    this.workspace = opts.workspace;
  }

  static async start(b: K8sBackendOptions, opts: CellOptions): Promise<K8sSdkCell> {
    const root = ensureStateRoot(opts.stateRoot ?? defaultStateRoot());
    const scope = await planScope(opts.workspace, opts.policy.workspace);
    const cell = await K8sCell.create({
      api: b.api,
      namespace: b.namespace ?? 'nanocell',
      shape: b.shape ?? 'default',
      policy: opts.policy,
      tier: b.tier,
      allowDegraded: b.allowDegraded,
      claimTimeoutMs: b.claimTimeoutMs,
      workspacePath: b.workspacePath,
      onEvent: b.onEvent,
    });
    try {
      await cell.pushWorkspace(scope);
    } catch (e) {
      await cell.close().catch(() => undefined);
      throw e;
    }
    return new K8sSdkCell(cell, opts, scope, root.root);
  }

  /** The sandbox's claim name (kubectl get sandboxclaim NAME). */
  get claim(): string {
    return this.cell.claim;
  }

  /** Runs a command to completion in the pod's workspace, collecting its (capped) output. */
  async run(
    argv: string[],
    o: { env?: Record<string, string>; input?: string | Buffer; signal?: AbortSignal } = {},
  ): Promise<K8sRunResult> {
    if (this.destroyed) throw new NanocellError('the cell has ended', 'create a new cell', 'STATE');
    const collect = () => {
      const s = new PassThrough();
      const chunks: Buffer[] = [];
      s.on('data', (d: Buffer) => chunks.push(d));
      return { s, text: () => Buffer.concat(chunks).toString('utf8') };
    };
    const out = collect();
    const err = collect();
    const r = await runCapped(this.cell, {
      command: argv,
      policy: this.opts.policy,
      stdout: out.s,
      stderr: err.s,
      abort: o.signal,
      input: o.input,
      env: Object.entries(o.env ?? {}).map(([k, v]) => `${k}=${v}`),
    });
    return { ...r, stdout: out.text(), stderr: err.text() };
  }

  /** Collects the change set and deletes the claim; idempotent. */
  destroy(): Promise<{ taskId: string; changes: ChangeSummary }> {
    this.destroyed ??= (async () => {
      try {
        const changes = await collectFromPod(this.cell, {
          stateRoot: this.stateRoot,
          taskId: this.taskId,
          workspace: this.workspace,
          policy: this.opts.policy,
          scope: this.scope,
          startedAtMs: this.startedAtMs,
        });
        return { taskId: this.taskId, changes };
      } finally {
        await this.cell.close();
      }
    })();
    return this.destroyed;
  }
}
