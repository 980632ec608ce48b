// Starting a cell, in two halves because the order is the point: resolve (src/plan/resolve.ts)
// refuses a bad policy or host before anything exists, so the caller opens the task's record
// only between the halves (a refused cell leaves nothing behind, not even a task row); then
// acquire (acquire.ts), each step registering its release before the next runs, and launch
// (launch.ts), with a warm cell's attach helper (attachHelper.ts). Apart from cell.ts so that
// the Cell holds the state and this file the wiring.
import path from 'node:path';
import type { CellEvent } from '../audit/cellEvents.js';
import type { HostFacts } from '../host/facts.js';
import { probeHost } from '../host/probe.js';
import { checkPoolPlan } from '../plan/poolKey.js';
import { resolveCell, type ResolvedCell } from '../plan/resolve.js';
import { assertRuntimeWorksHere, resolveRuntime, type RuntimeInfo } from '../runtime/runtime.js';
import { hostHomeDirs } from '../workspace/homeSecrets.js';
import { acquireCell, type Acquired } from './acquire.js';
import { AttachHelper } from './attachHelper.js';
import { trace, type Cleanups } from './cleanup.js';
import { CellProcess } from './launch.js';
import { defaultStateRoot } from './state.js';
import type { CellOptions } from './types.js';

interface Resolved {
  host: HostFacts;
  runtime: RuntimeInfo;
  resolved: ResolvedCell;
}

/**
 * The first half: host, runtime and the resolved cell; nothing acted on yet. A warm pool's
 * cell (`warm`) must also fit a pool: it has no task to take a different plan from.
 */
export function resolveStart(opts: CellOptions, warm: boolean): Resolved {
  const host = probeHost();
  const runtime = resolveRuntime(opts.policy.runtime.name, opts.policy.runtime.path);
  assertRuntimeWorksHere(runtime);
  const resolved = resolveCell({
    policy: opts.policy,
    host,
    workspace: opts.workspace,
    extraAllowNet: opts.extraAllowNet,
    benchOff: opts.benchOff,
    stateRoot: path.resolve(opts.stateRoot ?? defaultStateRoot()),
    homes: hostHomeDirs(),
  });
  if (warm) {
    const { project, execAllow } = resolved;
    checkPoolPlan({ project, execAllow, rootless: host.rootless });
  }
  return { host, runtime, resolved };
}

/** What the second half needs from the cell besides the first half's result. */
interface LaunchInput extends Resolved {
  id: string;
  taskId: string;
  session: string;
  opts: CellOptions;
  warm: boolean;
  cleanups: Cleanups;
  emit: (e: CellEvent) => void;
  onLog: (line: string) => void;
}

/**
 * The second half: everything acquired, then the cell's processes launched on it; a warm cell
 * also gets its attach helper now, so that its claim starts no process.
 */
export async function acquireAndLaunch(
  i: LaunchInput,
): Promise<{ got: Acquired; proc: CellProcess; attacher?: AttachHelper }> {
  const { opts, resolved } = i;
  const got = await acquireCell({
    id: i.id,
    taskId: i.taskId,
    stateRoot: opts.stateRoot,
    host: i.host,
    runtime: i.runtime,
    resolved,
    cleanups: i.cleanups,
    emit: i.emit,
    session: i.session,
    ...(opts.stack ? { stack: opts.stack } : {}),
    warm: i.warm,
  });
  const t = performance.now();
  const proc = await CellProcess.launch({
    ...got,
    id: i.id,
    runtime: i.runtime,
    withListener: resolved.seccomp !== undefined,
    notifyFromInit: resolved.seccomp?.bpf !== undefined,
    // The runtime hands the monitor a listener (runc, crun; not runsc): it limits namespaces.
    namespaceLimits: resolved.seccomp?.monitor === true,
    proxyOnCellLoopback: got.net.enabled && resolved.proxyOnCellLoopback,
    captureNft: resolved.captureNft,
    startCheck: resolved.benchOff.startCheck !== true,
    ...(opts.testFaults?.closeProxyListener ? { closeProxyListener: true } : {}),
    cleanups: i.cleanups,
    emit: i.emit,
    onLog: i.onLog,
  });
  trace('launch', t);
  if (!i.warm) return { got, proc };
  const attacher = await AttachHelper.start(proc.initPid!);
  i.cleanups.push('attach helper', () => attacher.close());
  return { got, proc, attacher };
}
