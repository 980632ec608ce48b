// The acquire steps of a cell: the state root, the cell dir and owner file, a host uid slot
// (root mode); then the workspace view, the toolchain caches and the egress proxy at once (gc
// alongside), then the OCI bundle that planCell writes for what was acquired. Each step
// registers its release as soon as it holds something.
import { noCaptureNotice } from './captureFiles.js';
import fs from 'node:fs';
import path from 'node:path';
import type { CellEvent } from '../audit/cellEvents.js';
import type { HostFacts } from '../host/facts.js';
import { nativeBinary } from '../host/native.js';
import { currentOwner } from '../host/owner.js';
import { leaseSlot, releaseSlot, type SlotLease } from '../host/slots.js';
import { CELL_GID, CELL_UID } from '../plan/layout.js';
import { planCell, type CellPlan } from '../plan/plan.js';
import type { ResolvedCell } from '../plan/resolve.js';
import { CellSeccomp } from '../plan/seccomp.js';
import type { RuntimeInfo } from '../runtime/runtime.js';
import { runtimeTraits } from '../runtime/traits.js';
import { removeTree } from '../util/fs.js';
import { materializeBundle } from './bundle.js';
import { trace, type Cleanups } from './cleanup.js';
import { ensureEtcDir } from './etc.js';
import { assertNothingMountedUnder, gcStaleCells } from './gc.js';
import { acquireToolCaches } from './toolCaches.js';
import { projectKey } from '../workspace/applyPaths.js';
import type { OciMount } from '../plan/oci.js';
import { HOST_CONFIG_CELL_DIR } from '../plan/hostConfig.js';
import { CellNetwork, cellCaMount } from './networkSetup.js';
import {
  assertCellsReachable,
  cellDirs,
  createCellDir,
  defaultStateRoot,
  ensureStateRoot,
  retireCellDir,
  type CellDirs,
  type StateLayout,
} from './state.js';
import { CellWorkspace, type StagedView } from './workspaceMount.js';
import type { WorkspaceStack } from './stackMount.js';

export interface AcquireInput {
  id: string;
  taskId: string;
  stateRoot: string | undefined;
  host: HostFacts;
  runtime: RuntimeInfo;
  resolved: ResolvedCell;
  cleanups: Cleanups;
  emit: (e: CellEvent) => void;
  /** Recorded with the change set; and the session layers the task starts from. */
  session?: string;
  stack?: WorkspaceStack;
  /** A warm pool's cell: the workspace is a placeholder until a claim attaches it (claim.ts). */
  warm?: boolean;
  /** A claim: what the warm cell staged for its view. */
  staged?: StagedView;
}

export interface Acquired {
  layout: StateLayout;
  dirs: CellDirs;
  ws: CellWorkspace;
  net: CellNetwork;
  plan: CellPlan;
  /** Toolchain presets' PATH and cache variables, for every exec. */
  toolchainEnv: Record<string, string>;
  /** Root mode: the cell's host uid range (a claim's workspace is owned by it). */
  lease?: SlotLease;
}

export async function acquireCell(a: AcquireInput): Promise<Acquired> {
  let t = performance.now();
  const { layout, dirs, lease, gc } = await acquireDirs(a);
  trace('dirs', t);
  t = performance.now();
  // Independent of each other, so at once: the workspace's mounts, the caches' mounts, the
  // proxy (and the cell's CA). Each registers its release when it is done; all settle before a
  // failure is thrown, so nothing is acquired after the unwind ran.
  const [ws, caches, net] = await settleAll([
    acquireWorkspace(a, layout, dirs, lease),
    acquireCaches(a, layout, dirs, lease),
    acquireNetwork(a, dirs, lease),
  ] as const);
  trace('workspace, caches, network', t);
  t = performance.now();
  const r = a.resolved;
  const toolchainEnv = { ...r.toolchains.env, ...r.hostConfig.env, ...r.agent?.env };
  const carried = writeHostConfig(a, dirs, lease);
  const plan = writeBundle(a, { layout, dirs, ws, net, toolchainEnv }, lease, [
    ...caches,
    ...carried,
  ]);
  trace('plan', t);
  t = performance.now();
  await gc;
  trace('gc', t);
  return { layout, dirs, ws, net, plan, toolchainEnv, ...(lease ? { lease } : {}) };
}

/** Promise.all that waits for every promise to settle, then throws the first failure. */
async function settleAll<T extends readonly unknown[]>(ps: {
  readonly [K in keyof T]: Promise<T[K]>;
}): Promise<T> {
  const rs = await Promise.allSettled(ps);
  const failed = rs.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return rs.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/**
 * The host's package-manager configuration, credentials already stripped at resolve: written
 * under the cell dir (removed with it), shown read-only in HOME.
 */
function writeHostConfig(
  a: AcquireInput,
  dirs: CellDirs,
  lease: SlotLease | undefined,
): OciMount[] {
  const { files } = a.resolved.hostConfig;
  if (!files.length) return [];
  const dir = path.join(dirs.dir, 'hostconfig');
  fs.mkdirSync(dir, { mode: 0o700 });
  for (const f of files) fs.writeFileSync(path.join(dir, f.name), f.text, { mode: 0o400 });
  if (lease) {
    const uid = lease.uidBase + CELL_UID;
    const gid = lease.uidBase + CELL_GID;
    for (const f of ['', ...files.map((x) => x.name)]) fs.chownSync(path.join(dir, f), uid, gid);
  }
  return [
    {
      destination: HOST_CONFIG_CELL_DIR,
      type: 'bind',
      source: dir,
      options: ['rbind', 'ro', 'nosuid', 'nodev', 'noexec'],
    },
  ];
}

/** Toolchain caches and the agent's state dir of this project, kept between its tasks. */
async function acquireCaches(
  a: AcquireInput,
  layout: StateLayout,
  dirs: CellDirs,
  lease: SlotLease | undefined,
): Promise<OciMount[]> {
  const r = a.resolved;
  const wanted = [...r.toolchains.caches, ...(r.agent?.caches ?? [])];
  if (!wanted.length) return [];
  const st = fs.statSync(r.project);
  const caches = await acquireToolCaches({
    caches: wanted,
    layout,
    dirs,
    projectKey: projectKey({ dev: String(st.dev), ino: String(st.ino) }),
    ...(lease
      ? { cellHost: { uid: lease.uidBase + CELL_UID, gid: lease.uidBase + CELL_GID } }
      : {}),
  });
  a.cleanups.push('toolchain caches', () => caches.release());
  return caches.mounts;
}

/**
 * The state root, this cell's dir and owner file, and (root mode) its host uid range. The gc of
 * what dead supervisors left runs meanwhile (`gc`, never failing): it leaves alone every cell
 * whose owner lives, as it does for other supervisors' cells created while it runs.
 */
async function acquireDirs(a: AcquireInput) {
  const layout = ensureStateRoot(a.stateRoot ?? defaultStateRoot());
  if (!a.host.rootless) assertCellsReachable(layout);
  const gc = gcStaleCells(layout, a.runtime).then(
    () => undefined,
    () => undefined,
  );
  const dirs = cellDirs(layout, a.id);
  createCellDir(dirs, currentOwner(a.taskId));
  a.cleanups.push('cell dir', () => {
    assertNothingMountedUnder(dirs.dir);
    removeTree(retireCellDir(dirs.dir));
  });
  if (a.host.rootless) return { layout, dirs, lease: undefined, gc };
  const lease = leaseSlot(layout.slots, dirs.dir);
  a.cleanups.push('uid slot', () => releaseSlot(lease));
  return { layout, dirs, lease, gc };
}

/** The scoped copy-on-write view of the project. */
export async function acquireWorkspace(
  a: AcquireInput,
  layout: StateLayout,
  dirs: CellDirs,
  lease: SlotLease | undefined,
): Promise<CellWorkspace> {
  const r = a.resolved;
  if (a.warm) {
    const slot = await CellWorkspace.placeholder(
      r.project,
      dirs,
      r.policy.limits.disk,
      lease?.uidBase,
    );
    a.cleanups.push('workspace', () => slot.unmount());
    return slot;
  }
  const ws = await CellWorkspace.prepare({
    project: r.project,
    policy: r.policy,
    dirs,
    host: a.host,
    cellUidBase: lease?.uidBase,
    disabled: r.benchOff.workspace === true,
    stateRoot: layout.root,
    ...(a.session ? { session: a.session } : {}),
    ...(a.stack ? { stack: a.stack } : {}),
    ...(a.staged ? { staged: a.staged } : {}),
  });
  a.cleanups.push('workspace', () => ws.unmount());
  const merged = ws.mountPlan.mergedDir;
  if (merged && runtimeTraits(r.policy.runtime.name).opensMountsAsCellRoot) {
    // Search-only for others, like the cell dir above it: runsc's gofer reaches the merged
    // view as the cell's root, which owns no parent on the path.
    fs.chmodSync(path.dirname(merged), 0o711);
  }
  return ws;
}

/** The egress proxy, when the policy allows some destination. */
async function acquireNetwork(
  a: AcquireInput,
  dirs: CellDirs,
  lease: SlotLease | undefined,
): Promise<CellNetwork> {
  const r = a.resolved;
  const net = await CellNetwork.start({
    rules: r.netRules,
    socketPath: r.proxyOnCellLoopback ? undefined : dirs.proxySocket,
    // The cell user must be able to connect; nobody else on the host should.
    ...(lease
      ? { socketOwner: { uid: lease.uidBase + CELL_UID, gid: lease.uidBase + CELL_GID } }
      : {}),
    onEvent: a.emit,
    secrets: r.policy.secrets,
    ...(a.warm ? { warm: true } : {}),
    cellId: a.id,
  });
  a.cleanups.push('proxy', () => net.close());
  return net;
}

/** The OCI spec for what was acquired, written out as the bundle; reports degradations. */
function writeBundle(
  a: AcquireInput,
  got: Omit<Acquired, 'plan'>,
  lease: SlotLease | undefined,
  homeMounts: OciMount[],
): CellPlan {
  const { resolved: r, emit } = a;
  const { dirs, ws, net } = got;
  const plan = planCell({
    cellId: a.id,
    policy: r.policy,
    host: a.host,
    rootfsDir: dirs.rootfs,
    etcDir: ensureEtcDir(got.layout.etc),
    initBinary: nativeBinary('nanocell-init'),
    hostUidBase: lease?.uidBase,
    workspace: ws.mountPlan,
    execAllow: [...r.execAllow],
    hostMounts: [...r.hostMounts, ...cellCaMount(net, dirs.dir)],
    ...(r.agent?.links.length ? { links: r.agent.links } : {}),
    homeMounts,
    execMounts: { ...r.execMounts },
    seccomp: CellSeccomp.ociProfile(r.seccomp),
    seccompBpf: r.seccomp?.bpf,
    proxySocket: net.enabled && !r.proxyOnCellLoopback ? dirs.proxySocket : undefined,
    benchOff: r.benchOff,
    ...(a.warm ? { warm: true } : {}),
  });
  for (const d of plan.degradations) emit({ type: 'policy.degraded', ...d });
  for (const n of ws.notices) emit({ type: 'policy.degraded', ...n });
  for (const c of r.hostConfig.carried) {
    emit({
      type: 'policy.degraded',
      control: 'host-config',
      reason: `${c.tool} configuration from ${c.from} carried read-only${c.stripped.length ? `; credentials left out: ${c.stripped.join(', ')}` : ''}${c.ca ? `; CA bundle ${c.ca.from}` : ''}`,
    });
  }
  if (net.enabled && !r.proxyOnCellLoopback) emit(noCaptureNotice(a.runtime.name));
  for (const t of r.toolchains.found) {
    const hidden = r.hostMounts.find((h) => h.source === t.root)?.masked?.length ?? 0;
    emit({
      type: 'policy.degraded',
      control: 'toolchain',
      reason: `${t.name} ${t.version} from ${t.source} (${t.root}), read-only${hidden ? `; ${hidden} secret-looking files inside are hidden` : ''}`,
    });
  }
  if (r.agent) {
    emit({
      type: 'policy.degraded',
      control: 'agent',
      reason: `agent ${r.agent.name} from ${r.agent.binary}, read-only; its state dir is kept per project under the state root`,
    });
  }
  if (r.seccomp?.unsafeAllowed.length) {
    emit({
      type: 'policy.degraded',
      control: 'syscalls',
      reason: `policy re-allowed forbidden syscalls: ${r.seccomp.unsafeAllowed.join(', ')}`,
    });
  }
  materializeBundle(plan, dirs);
  if (r.seccomp) fs.writeFileSync(dirs.syscallTable, r.seccomp.notifyTable);
  return plan;
}
