// A cell's life, as a thin facade over its steps: start (start.ts: resolve, acquire, launch),
// exec (commands.ts, exec.ts), then destroy (teardown.ts: stop, collect, release). Every
// acquire step registers how to release it, so any failure, timeout or signal unwinds exactly
// what was done. The Cell holds what the steps made and the cell's state; they hold the order.
import type { CellEvent } from '../audit/cellEvents.js';
import { CgroupReader, withCellFrozen } from '../host/cgroups.js';
import type { HostFacts } from '../host/facts.js';
import type { AppliedLimits, Degradation } from '../plan/plan.js';
import type { ResolvedCell } from '../plan/resolve.js';
import { attachClaim, claimParts } from './claim.js';
import type { NetRules } from '../net/rules.js';
import type { CellPool } from './pool.js';
import type { RuntimeInfo } from '../runtime/runtime.js';
import { NanocellError } from '../util/errors.js';
import { CELL_GID, CELL_UID } from '../plan/layout.js';
import { CellFiles } from './files.js';
import type { EgressDecision } from '../net/grants.js';
import type { Acquired } from './acquire.js';
import { checkpointLiveCell } from './checkpoint.js';
import { Cleanups, trace } from './cleanup.js';
import { CellCommands } from './commands.js';
import { EventRoute } from './eventRoute.js';
import { collectRun } from './exec.js';
import type { CellProcess } from './launch.js';
import { newCellId, openCellRecord, type TaskRecord } from './record.js';
import { acquireAndLaunch, resolveStart } from './start.js';
import { teardownCell } from './teardown.js';
import { CellVerbs } from './cellVerbs.js';
import { RemoteCell, type ServerLocation } from './remote/remoteCell.js';
import { newTaskId } from '../audit/taskId.js';
import type { AttachHelper } from './attachHelper.js';
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
  /** The warm pool this cell was claimed from; undefined for a cell started for its task. */
  warmPool?: string;
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
  /** Audit record, denial notes, onEvent; a warm cell's are held until its claim. */
  private readonly events: EventRoute;
  protected readonly emitEvent: (e: CellEvent) => void;
  private readonly commands = new CellCommands(() => ({
    dir: this.got!.dirs.dir,
    taskId: this.taskId,
    session: this.session,
    startedAt: this.startedAt,
  }));
  private attacher?: AttachHelper;
  private resolved?: ResolvedCell;

  private constructor(private opts: CellOptions) {
    super(opts.labels);
    this.events = new EventRoute(opts.denialNotes ?? opts.policy.denialNotes ?? true, opts.onEvent);
    this.emitEvent = this.events.emit;
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
    return new Cell(opts).started(false);
  }

  /** Starts the cell; a start that fails unwinds what it did, and its record says why. */
  private async started(warm: boolean): Promise<Cell> {
    try {
      await this.start(warm);
    } catch (e) {
      this.endReason = 'error';
      await this.unwind().catch(() => undefined);
      // A warm cell has no record yet: this is a no-op for it.
      this.events.failed(e as Error);
      throw e;
    }
    return this;
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

  protected netOf() {
    return this.got && { net: this.got.net, policy: this.opts.policy };
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
    return this.got!.plan.limits;
  }

  get degradations(): Degradation[] {
    return this.got!.plan.degradations;
  }

  // The order is the point: resolve refuses a bad policy or host before anything exists;
  // each acquire step registers its release before the next one runs (start.ts).
  private async start(warm = false): Promise<void> {
    const r = resolveStart(this.opts, warm);
    ({ host: this.host, runtime: this.runtime, resolved: this.resolved } = r);
    // Only now: a cell refused by resolve leaves nothing behind, not even a task row.
    if (this.opts.record !== false && !warm) this.events.record(this.newRecord());
    const s = await acquireAndLaunch({
      ...r,
      id: this.id,
      taskId: this.taskId,
      session: this.session,
      opts: this.opts,
      warm,
      cleanups: this.cleanups,
      emit: this.emitEvent,
      onLog: (line) => this.emit('log', line),
    });
    ({ got: this.got, proc: this.proc, attacher: this.attacher } = s);
    this.proc!.client!.closed.then(() => (this.endReason ??= 'killed')).catch(() => undefined);
    this.cgroup = new CgroupReader(this.host.cgroup, this.id);
    this.sampler = setInterval(() => this.cgroup?.sample(), 250);
    this.sampler.unref();
    if (!warm) this.begin();
  }

  private newRecord(): TaskRecord {
    return openCellRecord(this, this.opts, (message) => this.emit('log', message));
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
    cell.events.hold();
    return cell.started(true);
  }

  /**
   * A warm cell becomes the task `c` asks for (claim.ts attaches its workspace and rules);
   * the events of its start are replayed into the task's record. Once only. The pool checked
   * the claim (checkClaim) before it took this cell; `rules` are the claim's. @internal
   */
  async bindClaim(
    c: ClaimRequest,
    pool: { name: string; policy: CellOptions['policy'] },
    rules: NetRules,
  ) {
    if (!this.events.holding || !this.got || !this.attacher || this.endReason)
      throw new NanocellError('this cell cannot be claimed', 'claim from a pool', 'STATE');
    const claim = {
      ...claimParts(c, pool, this.resolved!),
      cellId: this.id,
      attacher: this.attacher,
      got: this.got,
      host: this.host,
      runtime: this.runtime,
      stateRoot: this.opts.stateRoot,
      cleanups: this.cleanups,
      emit: this.emitEvent,
      landlock: () => this.proc!.client!.applyLandlock(),
    };
    const t = performance.now();
    this.opts = { ...this.opts, ...c, policy: claim.policy, workspace: this.workspace };
    this.taskId = claim.taskId;
    this.session = claim.session;
    this.events.release(this.opts.onEvent, () =>
      this.opts.record !== false ? this.newRecord() : undefined,
    );
    trace('claim: record', t);
    this.got.ws = await attachClaim(claim, rules);
    this.warmPool = pool.name;
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
    if (this.events.holding) {
      throw new NanocellError(
        'this cell is warm: it has no task yet',
        'claim it from its pool first',
        'STATE',
      );
    }
    const got = this.got!;
    const ctx = {
      client: this.proc!.client!,
      policy: this.opts.policy,
      net: got.net,
      toolchainEnv: got.toolchainEnv,
      cwd: got.ws.cellPath,
      emit: this.emitEvent,
      notes: this.events.notes,
      monitorEventsRead: () => this.proc?.events.read() ?? Promise.resolve(),
      endReason: () => this.endReason,
      oomKills: () => this.cgroup?.totals().oomKills ?? 0,
    };
    return this.commands.start(ctx, argv, opts);
  }

  /** The commands running now (argv by id), as the cell's status file lists them. */
  get current(): Map<number, string[]> {
    return this.commands.current;
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
    await this.commands.terminate(graceMs);
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
    return (this.destroyed ??= this.events.endsWith(this.doDestroy(o.abandonChanges)));
  }

  private async doDestroy(abandon: AbortSignal | undefined): Promise<CellSummary> {
    // Nothing killed or timed the cell out: shutting it down is a normal end, not a kill.
    this.endReason ??= 'exited';
    clearTimeout(this.timer);
    clearInterval(this.sampler);
    return teardownCell({
      cellId: this.id,
      taskId: this.taskId,
      startedAt: this.startedAt,
      endReason: this.endReason,
      got: this.got!,
      proc: this.proc,
      cgroup: this.cgroup,
      runtime: this.runtime,
      emit: this.emitEvent,
      abandon,
      unwind: () => this.unwind(),
    });
  }

  private async unwind(): Promise<void> {
    clearTimeout(this.timer);
    clearInterval(this.sampler);
    this.disposePreviews();
    await this.cleanups.unwind(this.id);
  }
}
