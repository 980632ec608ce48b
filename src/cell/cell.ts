// A cell's life, as a thin facade over its steps: resolve (src/plan/resolve.ts), acquire
// (acquire.ts), launch (launch.ts), exec (exec.ts), then destroy: stop, collect (collect.ts)
// and release (cleanup.ts). Every acquire step registers how to release it, so any failure,
// timeout or signal unwinds exactly what was done.
import path from 'node:path';
import type { CellEvent } from '../audit/cellEvents.js';
import { CgroupReader, withCellFrozen } from '../host/cgroups.js';
import type { HostFacts } from '../host/facts.js';
import { probeHost } from '../host/probe.js';
import type { AppliedLimits, CellPlan, Degradation } from '../plan/plan.js';
import { resolveCell, type ResolvedCell } from '../plan/resolve.js';
import { checkPoolPlan } from '../plan/poolKey.js';
import { resolveProjectDir } from '../plan/projectDir.js';
import { attachClaim, checkClaim } from './claim.js';
import type { CellPool } from './pool.js';
import { assertRuntimeWorksHere, resolveRuntime, type RuntimeInfo } from '../runtime/runtime.js';
import { NanocellError } from '../util/errors.js';
import { CELL_GID, CELL_UID } from '../plan/layout.js';
import { CellFiles } from './files.js';
import { hostHomeDirs } from '../workspace/homeSecrets.js';
import type { EgressDecision } from '../net/grants.js';
import { acquireCell, type Acquired } from './acquire.js';
import { checkpointLiveCell } from './checkpoint.js';
import { Cleanups, trace } from './cleanup.js';
import { collectChanges, collectResources } from './collect.js';
import { DenialNotes } from './denialNotes.js';
import { collectRun, startExec, writeCellStatus } from './exec.js';
import { CellProcess } from './launch.js';
import { defaultStateRoot } from './state.js';
import { newCellId, openCellRecord, TaskRecord } from './record.js';
import { CellVerbs } from './cellVerbs.js';
import { RemoteCell, type ServerLocation } from './remote/remoteCell.js';
import { newTaskId } from '../audit/taskId.js';
import { AttachHelper } from './attachHelper.js';
import type {
  CellBackend,
  CellExec,
  CellOptions,
  CellSummary,
  ClaimRequest,
  EndReason,
  ExecOptions,
  RunOptions,
  RunResult,
} from './types.js';

export class Cell extends CellVerbs {
  readonly id: string;
  /** Set at start, or (a warm pool's cell) by its claim. */
  taskId: string;
  session: string;
  readonly workspace: string;
  startedAt = Date.now();
  private readonly cleanups = new Cleanups();
  private runtime!: RuntimeInfo;
  private host!: HostFacts;
  private got?: Acquired;
  private proc?: CellProcess;
  private cgroup?: CgroupReader;
  private timer?: NodeJS.Timeout;
  private sampler?: NodeJS.Timeout;
  private endReason: EndReason | null = null;
  private destroyed?: Promise<CellSummary>;
  readonly current = new Map<number, string[]>();
  /** Commands running now, for `stop` to signal. */
  private readonly running = new Set<CellExec>();
  private readonly notes: DenialNotes;

  /** The cell's own audit record, unless its caller keeps one (CellOptions.record). */
  private rec?: TaskRecord;

  /** A warm pool's cell before its claim: events wait for the task's record (bindClaim). */
  private warmEvents?: CellEvent[];
  private attacher?: AttachHelper;
  private resolved?: ResolvedCell;

  private constructor(private opts: CellOptions) {
    super(opts.labels);
    this.notes = new DenialNotes(opts.denialNotes ?? opts.policy.denialNotes ?? true);
    this.id = newCellId();
    this.taskId = opts.taskId ?? newTaskId();
    this.session = opts.session ?? 'default';
    this.workspace = opts.workspace;
  }

  /** A local cell; with `backend`, that backend's cell from the same options. */
  static async create(opts: CellOptions): Promise<Cell>;
  static async create<T>(opts: CellOptions & { backend: CellBackend<T> }): Promise<T>;
  static async create<T>(opts: CellOptions & { backend?: CellBackend<T> }): Promise<Cell | T> {
    if (opts.backend) return opts.backend.create(opts);
    const cell = new Cell(opts);
    try {
      await cell.start();
    } catch (e) {
      cell.endReason = 'error';
      await cell.unwind().catch(() => undefined);
      cell.rec?.finish({ exitCode: null, endReason: 'error', error: e as Error, changes: 'keep' });
      throw e;
    }
    return cell;
  }

  /**
   * The cells of the `nanocell serve` running on the state root (another process's too): a
   * NanocellError when none runs. RemoteCell.create makes one there.
   */
  static list(o: ServerLocation = {}): Promise<RemoteCell[]> {
    return RemoteCell.list(o);
  }

  /** The server's cell `id`, to drive from this process (exec, run, files, destroy). */
  static connect(id: string, o: ServerLocation = {}): Promise<RemoteCell> {
    return RemoteCell.connect(id, o);
  }

  protected readonly emitEvent = (e: CellEvent): void => {
    if (this.warmEvents) return void this.warmEvents.push(e);
    this.notes.observe(e);
    try {
      this.rec?.cellEvent(e);
      this.opts.onEvent?.(e);
    } catch {
      // An audit sink failure must not take the cell down; the sink reports its own errors.
    }
  };

  protected netOf() {
    return this.got && { net: this.got.net, policy: this.opts.policy };
  }

  private get plan(): CellPlan {
    return this.got!.plan;
  }

  /**
   * Freezes the workspace as it is now; tasks start from it with `--from` the returned id. The
   * cell's processes are stopped (cgroup freezer) while its upper layer is copied, so the
   * checkpoint is one point in time even while they write; they go on after.
   */
  async checkpoint(): Promise<string> {
    const f = this.got?.ws.frozenState();
    if (!f || !this.proc || this.endReason)
      throw new NanocellError(
        f ? 'the cell has ended' : 'this cell has no workspace to checkpoint',
        f ? 'checkpoint a running cell' : 'run it with a workspace',
        'USAGE',
      );
    const m = await checkpointLiveCell(
      this.got!.layout,
      { session: this.session, taskId: this.taskId, project: this.got!.ws.cellPath, ...f },
      (capture) => withCellFrozen(this.host.cgroup, this.id, capture),
    );
    return m.id;
  }

  /** The workspace as the task sees it, read and written without starting a process. */
  readonly files = new CellFiles(() => {
    const initPid = this.proc?.initPid;
    if (!this.proc?.client || this.endReason || initPid === undefined) {
      throw new NanocellError('the cell has ended', 'create a new cell', 'STATE');
    }
    const base = this.host.rootless ? undefined : this.hostUidBase;
    return {
      root: `/proc/${initPid}/root`,
      cellPath: this.got!.ws.cellPath,
      owner: base === undefined ? undefined : { uid: base + CELL_UID, gid: base + CELL_GID },
    };
  });

  /** First host uid of this cell's range (root mode), for tests and diagnostics. */
  get hostUidBase(): number | undefined {
    return this.got?.plan.spec.linux.uidMappings[0]?.hostID;
  }

  get limits(): AppliedLimits {
    return this.plan.limits;
  }

  get degradations(): Degradation[] {
    return this.plan.degradations;
  }

  // The order is the point: resolve refuses a bad policy or host before anything exists;
  // each acquire step registers its release before the next one runs.
  private async start(warm = false): Promise<void> {
    const { opts } = this;
    this.host = probeHost();
    this.runtime = resolveRuntime(opts.policy.runtime.name, opts.policy.runtime.path);
    assertRuntimeWorksHere(this.runtime);
    const resolved = resolveCell({
      policy: opts.policy,
      host: this.host,
      workspace: opts.workspace,
      extraAllowNet: opts.extraAllowNet,
      benchOff: opts.benchOff,
      stateRoot: path.resolve(opts.stateRoot ?? defaultStateRoot()),
      homes: hostHomeDirs(),
    });
    if (warm) {
      const { project, execAllow } = resolved;
      checkPoolPlan({ project, execAllow, rootless: this.host.rootless });
    }
    this.resolved = resolved;
    // Only now: a cell refused by resolve leaves nothing behind, not even a task row.
    if (opts.record !== false && !warm)
      this.rec = openCellRecord(this, opts, (message) => this.emit('log', message));
    const got = await acquireCell({
      id: this.id,
      taskId: this.taskId,
      stateRoot: opts.stateRoot,
      host: this.host,
      runtime: this.runtime,
      resolved,
      cleanups: this.cleanups,
      emit: this.emitEvent,
      session: this.session,
      ...(opts.stack ? { stack: opts.stack } : {}),
      warm,
    });
    this.got = got;
    const t = performance.now();
    this.proc = await CellProcess.launch({
      ...got,
      id: this.id,
      runtime: this.runtime,
      withListener: resolved.seccomp !== undefined,
      notifyFromInit: resolved.seccomp?.bpf !== undefined,
      // The runtime hands the monitor a listener (runc, crun; not runsc): it limits namespaces.
      namespaceLimits: resolved.seccomp?.monitor === true,
      proxyOnCellLoopback: got.net.enabled && resolved.proxyOnCellLoopback,
      captureNft: resolved.captureNft,
      startCheck: resolved.benchOff.startCheck !== true,
      ...(opts.testFaults?.closeProxyListener ? { closeProxyListener: true } : {}),
      cleanups: this.cleanups,
      emit: this.emitEvent,
      onLog: (line) => this.emit('log', line),
    });
    trace('launch', t);
    this.proc.client!.closed.then(() => (this.endReason ??= 'killed')).catch(() => undefined);
    this.cgroup = new CgroupReader(this.host.cgroup, this.id);
    this.sampler = setInterval(() => this.cgroup?.sample(), 250);
    this.sampler.unref();
    if (!warm) this.begin();
  }

  /** The task's clock starts: its timeout, and its first event. */
  private begin(): void {
    this.startedAt = Date.now();
    this.timer = setTimeout(() => void this.kill('timeout'), this.opts.policy.limits.timeout);
    this.timer.unref();
    this.emitEvent({ type: 'task.started', cellId: this.id });
  }

  /** A cell for one task from a warm pool (`CellPool.open`); see pool.ts. */
  static claim(pool: CellPool, c: ClaimRequest = {}): Promise<Cell> {
    return pool.claim(c);
  }

  /** Started and not ended: commands can run. */
  get isLive(): boolean {
    return !!this.proc?.client && !this.endReason;
  }

  /** A started cell without a workspace or a task, for a warm pool (pool.ts). @internal */
  static async warm(opts: CellOptions): Promise<Cell> {
    const cell = new Cell(opts);
    cell.warmEvents = [];
    try {
      await cell.start(true);
      const attacher = AttachHelper.start(cell.proc!.initPid!);
      cell.attacher = attacher;
      cell.cleanups.push('attach helper', () => attacher.close());
    } catch (e) {
      cell.endReason = 'error';
      await cell.unwind().catch(() => undefined);
      throw e;
    }
    return cell;
  }

  /**
   * A warm cell becomes the task `c` asks for (claim.ts attaches its workspace and rules);
   * the events of its start are replayed into the task's record. Once only. @internal
   */
  async bindClaim(c: ClaimRequest, pool: { name: string; policy: CellOptions['policy'] }) {
    if (!this.warmEvents || !this.got || !this.attacher || this.endReason)
      throw new NanocellError('this cell cannot be claimed', 'claim from a pool', 'STATE');
    const policy = c.policy ?? pool.policy;
    const taskId = c.taskId ?? newTaskId();
    const claim = {
      cellId: this.id,
      taskId,
      session: c.session ?? 'default',
      pool: { ...pool, resolved: this.resolved! },
      policy,
      workspace:
        c.workspace === undefined ? this.resolved!.project : resolveProjectDir(c.workspace),
      ...(c.extraAllowNet ? { extraAllowNet: c.extraAllowNet } : {}),
      ...(c.stack ? { stack: c.stack } : {}),
      attacher: this.attacher,
      got: this.got,
      host: this.host,
      runtime: this.runtime,
      stateRoot: this.opts.stateRoot,
      cleanups: this.cleanups,
      emit: this.emitEvent,
      landlock: () => this.proc!.client!.applyLandlock(),
    };
    // A refused claim leaves the cell warm, untouched, for the next one.
    const t = performance.now();
    const rules = checkClaim(claim);
    const held = this.warmEvents;
    this.opts = { ...this.opts, ...c, policy, workspace: this.workspace };
    this.taskId = taskId;
    this.session = claim.session;
    this.warmEvents = undefined;
    if (this.opts.record !== false)
      this.rec = openCellRecord(this, this.opts, (message) => this.emit('log', message));
    for (const e of held) this.emitEvent(e);
    trace('claim: record', t);
    this.got.ws = await attachClaim(claim, rules);
    this.begin();
  }

  /** Throws unless the cell runs (every verb on a live cell). */
  protected live(): void {
    if (!this.proc?.client || this.endReason)
      throw new NanocellError('the cell has ended', 'create a new cell', 'STATE');
  }

  /** Starts a command in the cell. Output past the policy's cap is dropped with a note. */
  exec(argv: string[], opts: ExecOptions = {}): CellExec {
    this.live();
    if (this.warmEvents) {
      throw new NanocellError(
        'this cell is warm: it has no task yet',
        'claim it from its pool first',
        'STATE',
      );
    }
    const client = this.proc!.client!;
    const got = this.got!;
    const x = startExec(
      {
        client,
        policy: this.opts.policy,
        net: got.net,
        toolchainEnv: got.toolchainEnv,
        cwd: got.ws.cellPath,
        emit: this.emitEvent,
        notes: this.notes,
        endReason: () => this.endReason,
        oomKills: () => this.cgroup?.totals().oomKills ?? 0,
        started: (id, cmd) => {
          this.current.set(id, cmd);
          this.writeStatus();
        },
        ended: (id) => {
          this.current.delete(id);
          this.writeStatus();
        },
      },
      argv,
      opts,
    );
    this.running.add(x);
    void x.result.finally(() => this.running.delete(x));
    return x;
  }

  private writeStatus(): void {
    writeCellStatus(this.got!.dirs.dir, {
      taskId: this.taskId,
      session: this.session,
      startedAt: this.startedAt,
      commands: [...this.current.values()],
    });
  }

  /**
   * Runs a command to completion, collecting its output (library convenience): as UTF-8 text,
   * or as the exact bytes with `encoding: 'buffer'`.
   */
  run(argv: string[], opts: RunOptions & { encoding: 'buffer' }): Promise<RunResult<Buffer>>;
  run(argv: string[], opts?: RunOptions & { encoding?: 'utf8' }): Promise<RunResult<string>>;
  async run(argv: string[], opts: RunOptions = {}): Promise<RunResult<string | Buffer>> {
    return collectRun(this.exec(argv, opts), opts.input, opts.encoding);
  }

  /** Kills every process in the cell at once (pid 1 dies, so the pid namespace does). */
  async kill(reason: 'timeout' | 'killed'): Promise<void> {
    // A kill during a stop's grace period ends the cell now; the end stays a stop.
    if (this.endReason === 'stopped') return this.proc?.killInit();
    if (this.endReason) return;
    this.endReason = reason;
    if (reason === 'timeout') {
      this.emitEvent({
        type: 'limit.hit',
        limit: 'timeout',
        detail: `wall-clock limit of ${this.opts.policy.limits.timeout} ms reached`,
      });
    }
    this.proc?.killInit();
  }

  /** The change set so far, collected into `outDir` while the task runs on (a preview). */
  async previewChanges(outDir: string): Promise<string | undefined> {
    this.live();
    const got = this.got!;
    const layout = { ...got.layout, changeSet: () => outDir };
    return (await got.ws.collect(layout, this.taskId, this.startedAt, () => undefined))?.dir;
  }

  /**
   * Ends the cell as the timeout would (`nanocell stop`), after giving its commands `graceMs`
   * to exit on SIGTERM; the change set is collected as usual when the task ends.
   */
  async stop(graceMs: number): Promise<void> {
    if (this.endReason) return;
    this.endReason = 'stopped';
    for (const x of this.running) x.kill(15);
    const exited = Promise.allSettled([...this.running].map((x) => x.result));
    await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs).unref())]);
    this.proc?.killInit();
  }

  /** The user's answer to a refused egress destination (the dashboard, via the control socket). */
  decideEgress(host: string, port: number, decision: EgressDecision): void {
    if (!this.got || this.endReason)
      throw new NanocellError('the cell has ended', 'nothing to decide', 'STATE');
    this.got.net.decide(host, port, decision);
  }

  /**
   * Ends the task: stops every process, collects, and removes every trace but the report.
   * Aborting `o.abandonChanges` stops a change-set collection in progress; nothing of it is kept.
   */
  destroy(o: { abandonChanges?: AbortSignal } = {}): Promise<CellSummary> {
    this.destroyed ??= this.doDestroy(o.abandonChanges).then(
      (summary) => {
        this.rec?.finish({
          exitCode: null,
          endReason: summary.endReason!,
          summary,
          changes: 'keep',
        });
        return summary;
      },
      (e: Error) => {
        this.rec?.finish({ exitCode: null, endReason: 'error', error: e, changes: 'keep' });
        throw e;
      },
    );
    return this.destroyed;
  }

  private async doDestroy(abandon: AbortSignal | undefined): Promise<CellSummary> {
    // Nothing killed or timed the cell out: shutting it down is a normal end, not a kill.
    this.endReason ??= 'exited';
    clearTimeout(this.timer);
    clearInterval(this.sampler);
    const got = this.got!;
    let t = performance.now();
    await this.proc?.stop();
    trace('stop', t);
    const resources = collectResources(this.cgroup, got.plan.limits.pids, this.emitEvent);
    t = performance.now();
    const changeSet = await collectChanges(got.ws, {
      layout: got.layout,
      taskId: this.taskId,
      startedAt: this.startedAt,
      emit: this.emitEvent,
      abandon,
    });
    trace('collect', t);
    t = performance.now();
    await this.unwind();
    trace('unwind', t);
    const endedAt = Date.now();
    return {
      taskId: this.taskId,
      cellId: this.id,
      startedAt: this.startedAt,
      endedAt,
      durationMs: endedAt - this.startedAt,
      endReason: this.endReason,
      resources,
      limits: got.plan.limits,
      degradations: got.plan.degradations,
      runtime: { name: this.runtime.name, version: this.runtime.version },
      ...(changeSet !== undefined ? { changeSet } : {}),
    };
  }

  private async unwind(): Promise<void> {
    clearTimeout(this.timer);
    clearInterval(this.sampler);
    this.disposePreviews();
    await this.cleanups.unwind(this.id);
  }
}
