// The cell's view of the project: a scoped copy-on-write overlay. Root mode mounts it on the
// host (idmapped lower, tmpfs upper with the disk cap); rootless lets the runtime mount it
// inside the cell's user namespace.
import fs from 'node:fs';
import path from 'node:path';
import type { HostFacts } from '../host/facts.js';
import type { Policy } from '../policy/defaults.js';
import { NanocellError } from '../util/errors.js';
import {
  assertMountablePath,
  collectChangeSet,
  DEFAULT_MAX_FILES,
  foreignOwnersInScope,
  listForeignOwned,
  fillOverlay,
  overlayMountData,
  planScope,
  prepareOverlay,
  stageOverlay,
  scopeMounts,
  teardownOverlay,
  unmountOverlay,
  type ChangeSummary,
  type CollectOptions,
  type OverlayDirs,
  type Owner,
  type ScopePlan,
} from '../workspace/index.js';
import { collectChangeSetOffThread, fitsInThread } from '../workspace/collectWorker.js';
import { homeSecretExcludes, hostHomeDirs } from '../workspace/homeSecrets.js';
import { gitChangeEvents } from '../workspace/gitHistory.js';
import { credentialConfigs, gitCredentialsNotice } from '../workspace/gitConfigView.js';
import { trackedHiddenNotice } from '../workspace/gitIndexView.js';
import { loadChangeSet } from '../workspace/manifest.js';
import type { CellEvent } from './types.js';
import { CELL_UID } from '../plan/layout.js';
import type { WorkspaceMountPlan } from '../plan/plan.js';
import type { ProjectDir } from '../plan/projectDir.js';
import type { CellDirs, StateLayout } from './state.js';
import { idmapProjectView, unmountAll } from './idmapHelper.js';
import { mountStack, unmountStack, type WorkspaceStack } from './stackMount.js';
import { recordStack } from './retention.js';
import { COLLECTOR_HEAP, collectUnprivileged, diskCapHit } from './collectRun.js';
import {
  foreignOwnersNotice,
  protectMounts,
  writeRootlessWhiteouts,
  type WorkspaceNotice,
} from './workspaceSetup.js';

type CollectRecord = Pick<CollectOptions, 'session' | 'ignore' | 'gitignore'>;

function collectRecord(o: { policy: Policy; session?: string }): CollectRecord {
  const { ignore, gitignore } = o.policy.workspace;
  return {
    ...(o.session ? { session: o.session } : {}),
    ...(ignore?.length ? { ignore } : {}),
    ...(gitignore === false ? { gitignore: false } : {}),
  };
}

interface PrepareOptions {
  project: ProjectDir;
  policy: Policy;
  dirs: CellDirs;
  host: HostFacts;
  cellUidBase?: number;
  disabled?: boolean;
  /** Hidden from the cell when the workspace contains it. */
  stateRoot?: string;
  /** The session's layers the task starts from (`--from`). */
  stack?: WorkspaceStack;
  session?: string;
  /** A warm cell's claim: the tmpfs and idmapped lower staged at start (stageWarm). */
  staged?: StagedView;
}

/** What a warm cell stages before its claim: nothing in it depends on the project's files. */
export interface StagedView {
  overlay: OverlayDirs;
  lower: string;
}

export class CellWorkspace {
  /** Reported with the cell's degradations (policy.degraded events). */
  readonly notices: WorkspaceNotice[] = [];

  private constructor(
    readonly cellPath: string,
    readonly mountPlan: WorkspaceMountPlan,
    private readonly scope: ScopePlan | undefined,
    private readonly overlay: OverlayDirs | undefined,
    private idmapped: string | undefined,
    private readonly diskBytes: number,
    private readonly upperDir: string | undefined,
    /** Middle layer of whiteouts; undefined when nothing is hidden. */
    private readonly hiddenLayerDir: string | undefined,
    private readonly stack: WorkspaceStack | undefined = undefined,
    /** Recorded with the change set: the session and the policy's ignore rules. */
    private readonly record: CollectRecord = {},
    /** Root mode: the idmapped views of the stack's layers. */
    private readonly stackMounts: string[] = [],
  ) {}

  static async prepare(o: PrepareOptions): Promise<CellWorkspace> {
    const stackLayers = o.stack?.layers ?? [];
    // Before any mount: gc must see what this cell uses even if it dies now.
    if (stackLayers.length)
      recordStack(o.dirs.dir, [...stackLayers, o.stack?.checkpoint ?? []].flat());
    if (o.disabled) return CellWorkspace.bindReadOnly(o.project, o.policy.limits.disk);
    const project = o.project;
    // Rootless: the owner listing stats every inode in its own process while the walk reads dirs.
    const caller: Owner = { uid: o.host.uid, gid: o.host.gid };
    const foreignListing = o.host.rootless ? listForeignOwned(project, caller) : undefined;
    const home =
      o.policy.workspace.defaultExcludes === false
        ? { patterns: [] }
        : homeSecretExcludes(project, hostHomeDirs(), o.stateRoot);
    const scope = await planScope(project, {
      ...o.policy.workspace,
      exclude: [...o.policy.workspace.exclude, ...home.patterns],
    });
    const notices: WorkspaceNotice[] = home.notice
      ? [{ control: 'workspace-home', reason: home.notice }]
      : [];
    if (!o.host.rootless) return CellWorkspace.prepareRoot(o, scope, notices);
    const ws = await CellWorkspace.prepareRootless(o, scope, caller, notices);
    const foreign = foreignOwnersInScope(await foreignListing!, scope);
    if (foreign) ws.notices.push(foreignOwnersNotice(foreign, project, o.host));
    ws.notices.push(...notices);
    return ws;
  }

  /**
   * A warm pool's cell (pool.ts): an empty, root-owned placeholder at the project's path, so
   * that Landlock's rules for that path exist at start; a claim attaches the real view on top
   * (claim.ts). Root mode also stages what the claim would otherwise wait for: the upper
   * tmpfs and the idmapped lower, which show the project live and hold none of its state.
   */
  static async placeholder(
    project: ProjectDir,
    dirs: CellDirs,
    disk: number,
    cellUidBase: number | undefined,
  ): Promise<CellWorkspace> {
    const dir = path.join(dirs.dir, 'ws-slot');
    fs.mkdirSync(dir, { mode: 0o555 });
    const plan = { path: project, mode: 'host-overlay' as const, mergedDir: dir, extraMounts: [] };
    // Pools refuse rootless mode before anything is acquired (checkPoolPlan).
    if (cellUidBase === undefined)
      throw new NanocellError('a warm cell needs root mode', 'run the pool as root', 'HOST');
    const uid = cellUidBase + CELL_UID;
    const overlay = await stageOverlay({
      baseDir: path.join(dirs.dir, 'ws'),
      projectDir: project,
      sizeBytes: disk,
      owner: { uid, gid: uid },
      whiteoutTemplate: true,
    });
    const ws = new CellWorkspace(
      project,
      plan,
      undefined,
      overlay,
      undefined,
      disk,
      undefined,
      undefined,
    );
    fs.mkdirSync(dirs.lower, { mode: 0o700 });
    ws.idmapped = dirs.lower;
    await idmapProjectView(project, dirs.lower, uid);
    ws.staged = { overlay, lower: dirs.lower };
    return ws;
  }

  /** Set on a warm cell's placeholder (root mode): what its claim assembles the view from. */
  staged?: StagedView;
  /** A claim's view, not mounted yet: the attach helper mounts it with this data. */
  pendingMount?: string;

  /** Benchmarks only: the project bind-mounted read-only, no overlay, no change set. */
  private static bindReadOnly(project: ProjectDir, disk: number): CellWorkspace {
    return new CellWorkspace(
      project,
      {
        path: project,
        mode: 'host-overlay',
        mergedDir: project,
        extraMounts: [
          {
            destination: project,
            type: 'bind',
            source: project,
            options: ['bind', 'ro', 'nosuid', 'nodev'],
          },
        ],
      },
      undefined,
      undefined,
      undefined,
      disk,
      undefined,
      undefined,
    );
  }

  /** Rootless: the runtime mounts the overlay inside the cell's user namespace. */
  private static async prepareRootless(
    o: PrepareOptions,
    scope: ScopePlan,
    caller: Owner,
    notices: WorkspaceNotice[],
  ): Promise<CellWorkspace> {
    const project = o.project;
    const stackLayers = o.stack?.layers ?? [];
    const base = path.join(o.dirs.dir, 'ws');
    const upper = path.join(base, 'upper');
    const work = path.join(base, 'work');
    // The runtime joins these into one overlay option string.
    for (const p of [project, upper, work, ...stackLayers]) assertMountablePath(p);
    fs.mkdirSync(upper, { recursive: true, mode: 0o755 });
    fs.mkdirSync(work, { recursive: true, mode: 0o700 });
    fs.chmodSync(upper, fs.statSync(project).mode & 0o777);
    const gitConfigs = credentialConfigs(project);
    const hiddenLayer = await writeRootlessWhiteouts(
      scope,
      path.join(base, 'whiteouts'),
      caller,
      notices,
      gitConfigs,
    );
    const credNotice = gitCredentialsNotice(gitConfigs);
    if (credNotice) notices.push({ control: 'workspace-git-credentials', reason: credNotice });
    return new CellWorkspace(
      project,
      {
        path: project,
        mode: 'cell-overlay',
        // Topmost first, as overlayfs stacks lowerdir: the whiteouts hide what is out of scope.
        lowerDir: [hiddenLayer, ...stackLayers, project].filter((l) => !!l).join(':'),
        upperDir: upper,
        workDir: work,
        extraMounts: protectMounts(scope, project, hiddenLayer, gitConfigs),
      },
      scope,
      undefined,
      undefined,
      o.policy.limits.disk,
      upper,
      hiddenLayer,
      o.stack,
      collectRecord(o),
    );
  }

  /** Root mode: the overlay mounted on the host over an idmapped view of the project. */
  private static async prepareRoot(
    o: PrepareOptions,
    scope: ScopePlan,
    notices: WorkspaceNotice[],
  ): Promise<CellWorkspace> {
    if (o.cellUidBase === undefined)
      throw new NanocellError('no uid range for the workspace', 'report a bug');
    const cellHostUid = o.cellUidBase + CELL_UID;
    const owner = { uid: cellHostUid, gid: cellHostUid };
    const overlay = o.staged
      ? await fillOverlay(o.staged.overlay, scope, owner)
      : await prepareOverlay({
          baseDir: path.join(o.dirs.dir, 'ws'),
          plan: scope,
          sizeBytes: o.policy.limits.disk,
          owner,
        });
    const gitNotice = trackedHiddenNotice(overlay.gitViews ?? []);
    if (gitNotice) notices.push({ control: 'workspace-git-history', reason: gitNotice });
    const credNotice = gitCredentialsNotice(overlay.gitConfigs ?? new Map());
    if (credNotice) notices.push({ control: 'workspace-git-credentials', reason: credNotice });
    let idmapped: string | undefined = o.staged?.lower;
    let stackMounts: string[] = [];
    let pendingMount: string | undefined;
    try {
      stackMounts = await mountStack(o.stack?.layers ?? [], o.dirs.dir, cellHostUid);
      if (!o.staged) {
        fs.mkdirSync(o.dirs.lower, { mode: 0o700 });
        idmapped = o.dirs.lower;
      }
      const data = overlayMountData({ lowerDir: o.dirs.lower, stack: stackMounts, dirs: overlay });
      // A claim's attach helper mounts it in the cell; a cold cell's lower and overlay are
      // mounted by one helper process.
      const target = overlay.mergedDir;
      if (o.staged) pendingMount = data;
      else await idmapProjectView(o.project, o.dirs.lower, cellHostUid, { data, target });
    } catch (e) {
      if (idmapped) await unmountOverlay(idmapped).catch(() => undefined);
      await unmountStack(stackMounts).catch(() => undefined);
      await teardownOverlay(overlay).catch(() => undefined);
      throw e;
    }
    const ws = new CellWorkspace(
      o.project,
      {
        path: o.project,
        mode: 'host-overlay',
        mergedDir: overlay.mergedDir,
        extraMounts: scopeMounts(scope, o.project, overlay.mergedDir),
      },
      scope,
      overlay,
      idmapped,
      o.policy.limits.disk,
      overlay.upperDir,
      overlay.whiteoutDir,
      o.stack,
      collectRecord(o),
      stackMounts,
    );
    ws.notices.push(...notices);
    if (pendingMount) ws.pendingMount = pendingMount;
    return ws;
  }

  /**
   * Reads the change set out of the upper layer; call while the overlay is still mounted.
   * Aborting `signal` stops the collection (root mode: its worker thread) and fails it.
   */
  async collect(
    layout: StateLayout,
    taskId: string,
    startedAtMs: number,
    emit: (e: CellEvent) => void,
    signal?: AbortSignal,
  ): Promise<ChangeSummary | undefined> {
    if (!this.scope || !this.upperDir) return undefined;
    if (this.overlay) diskCapHit(this.upperDir, this.diskBytes, emit);
    const opts = {
      upperDir: this.upperDir,
      lowerDir: this.cellPath,
      projectDir: this.cellPath,
      outDir: layout.changeSet(taskId),
      taskId,
      startedAtMs,
      limits: { maxFiles: DEFAULT_MAX_FILES, maxBytes: this.diskBytes },
      scope: this.scope,
      ...(this.hiddenLayerDir ? { hiddenLayerDir: this.hiddenLayerDir } : {}),
      ...this.record,
      ...(this.stack?.layers.length
        ? { stackDirs: this.stack.layers, stack: this.stack.taskIds }
        : {}),
    };
    const summary = !this.overlay
      ? await collectUnprivileged({ ...opts, viewOptions: ['userxattr'] }, signal)
      : fitsInThread(this.upperDir)
        ? await collectChangeSet({ ...opts, mergedDir: this.overlay.mergedDir })
        : await collectChangeSetOffThread(
            { ...opts, mergedDir: this.overlay.mergedDir },
            { signal, resourceLimits: COLLECTOR_HEAP },
          );
    if (summary.status === 'refused')
      emit({ type: 'limit.hit', limit: 'changes', detail: summary.reason ?? 'refused' });
    const kinds = { add: 'added', modify: 'modified', delete: 'deleted', mode: 'mode' } as const;
    const manifest = loadChangeSet(summary.dir).manifest;
    const git = gitChangeEvents(summary.dir, this.cellPath, manifest);
    const entries = new Map(manifest.entries.map((e) => [e.path, e]));
    for (const c of summary.changes) {
      if (c.kind === 'refused' || git.covers(c.path)) continue;
      const e = entries.get(c.path);
      // A new symlink is counted as one; a size is known for files written.
      const kind = c.kind === 'add' && e?.type === 'symlink' ? 'symlink' : kinds[c.kind];
      const size = e?.type === 'file' && e.size !== undefined ? { size: e.size } : {};
      emit({ type: 'fs.change', path: c.path, kind, ...size });
    }
    for (const e of git.events) emit({ type: 'fs.change', ...e });
    return summary;
  }

  /** What a checkpoint of the live cell freezes: its upper layer over the layers it started on. */
  frozenState(): { upper: string; stack: WorkspaceStack } | undefined {
    if (!this.upperDir) return undefined;
    return { upper: this.upperDir, stack: this.stack ?? { layers: [], taskIds: [] } };
  }

  async unmount(): Promise<void> {
    // Root mode, in one helper process: the overlay, then what it stands on.
    const o = this.overlay;
    if (o || this.idmapped) {
      const stacked = [o?.mergedDir, o?.tmpfsDir, this.idmapped, ...this.stackMounts];
      await unmountAll(stacked.filter((m): m is string => m !== undefined));
    }
    if (o) await teardownOverlay(o);
    if (this.idmapped) {
      await unmountOverlay(this.idmapped);
      fs.rmSync(this.idmapped, { recursive: true, force: true });
    }
    await unmountStack(this.stackMounts);
  }
}
