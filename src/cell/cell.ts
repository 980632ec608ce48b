// A cell's life: create (plan, mount, start), exec commands, destroy (collect, clean up).
// Every step that acquires something registers how to release it, so any failure, timeout
// or signal unwinds exactly what was done.
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PassThrough, type Duplex, type Readable } from 'node:stream';
import { probeHost } from '../host/probe.js';
import type { HostFacts } from '../host/facts.js';
import { nativeBinary } from '../host/native.js';
import { NanocellError } from '../util/errors.js';
import { realpathOrSelf, removeTree } from '../util/fs.js';
import { CgroupReader } from '../host/cgroups.js';
import { cellEnv } from '../plan/env.js';
import { ensureEtcDir } from './etc.js';
import { InitClient, type ExecHandle, type ExecResult } from './initClient.js';
import { currentOwner } from '../host/owner.js';
import { planCell, type AppliedLimits, type CellPlan, type Degradation } from '../plan/plan.js';
import { CELL_GID, CELL_PROXY_PORT, CELL_UID } from '../plan/layout.js';
import {
  assertRuntimeWorksHere,
  deleteContainer,
  resolveRuntime,
  runtimeRunArgv,
  type RuntimeInfo,
} from '../runtime/runtime.js';
import { runtimeTraits } from '../runtime/traits.js';
import { leaseSlot, releaseSlot, type SlotLease } from '../host/slots.js';
import {
  cellDirs,
  defaultStateRoot,
  ensureStateRoot,
  type CellDirs,
  type StateLayout,
} from './state.js';
import { materializeBundle } from './bundle.js';
import { resolveCell, type ResolvedCell } from '../plan/resolve.js';
import { execGuardArgs } from '../plan/execRule.js';
import { CellWorkspace } from './workspaceMount.js';
import { hostHomeDirs } from '../workspace/homeSecrets.js';
import { CellSeccomp } from '../plan/seccomp.js';
import { CellNetwork, cellCaMount } from './networkSetup.js';
import { gcStaleCells } from './gc.js';
import { readMonitorEvents, runtimeFailureOf, spawnMonitor } from './monitor.js';
import type {
  CellEvent,
  CellExec,
  CellOptions,
  CellSummary,
  EndReason,
  ExecOptions,
  ExecOutcome,
} from './types.js';

type Cleanup = { what: string; run: () => Promise<void> | void };

// Generous: a cell normally starts in well under a second, but a 2-core host starting many
// cells at once can queue runc's start for seconds. Only a hung start should hit this.
const INIT_READY_TIMEOUT_MS = 60_000;

/** NANOCELL_TRACE=1 prints how long each step of a cell's life takes (for benchmarks). */
const trace: (step: string, since: number) => void = process.env.NANOCELL_TRACE
  ? (step, since) =>
      process.stderr.write(`nanocell trace: ${step} ${(performance.now() - since).toFixed(1)}ms\n`)
  : () => undefined;
const SIGKILL = 9;

function newCellId(): string {
  // Sortable by creation time; short enough for unix socket paths under the state root.
  return `${Date.now().toString(36)}${randomBytes(5).toString('hex')}`;
}

export class Cell extends EventEmitter {
  readonly id: string;
  readonly taskId: string;
  readonly session: string;
  readonly workspace: string;
  readonly startedAt = Date.now();
  private readonly cleanups: Cleanup[] = [];
  private plan!: CellPlan;
  private runtime!: RuntimeInfo;
  private dirs!: CellDirs;
  private layout!: StateLayout;
  private host!: HostFacts;
  private monitor?: ChildProcess;
  private monitorExited!: Promise<void>;
  private client?: InitClient;
  private initPid?: number;
  private cgroup?: CgroupReader;
  private timer?: NodeJS.Timeout;
  private endReason: EndReason | null = null;
  private destroyed?: Promise<CellSummary>;
  private readonly execs = new Set<ExecHandle>();
  private ws?: CellWorkspace;
  private net?: CellNetwork;
  private sampler?: NodeJS.Timeout;
  readonly current = new Map<number, string[]>();

  private constructor(private readonly opts: CellOptions) {
    super();
    this.id = newCellId();
    this.taskId = opts.taskId ?? this.id;
    this.session = opts.session ?? 'default';
    this.workspace = opts.workspace;
  }

  static async create(opts: CellOptions): Promise<Cell> {
    const cell = new Cell(opts);
    try {
      await cell.start();
    } catch (e) {
      cell.endReason = 'error';
      await cell.unwind().catch(() => undefined);
      throw e;
    }
    return cell;
  }

  private emitEvent(e: CellEvent): void {
    try {
      this.opts.onEvent?.(e);
    } catch {
      // An audit sink failure must not take the cell down; the sink reports its own errors.
    }
  }

  /** First host uid of this cell's range (root mode), for tests and diagnostics. */
  get hostUidBase(): number | undefined {
    return this.plan?.spec.linux.uidMappings[0]?.hostID;
  }

  get limits(): AppliedLimits {
    return this.plan.limits;
  }

  get degradations(): Degradation[] {
    return this.plan.degradations;
  }

  // The order is the point: resolve refuses a bad policy or host before anything exists;
  // each acquire step registers its release before the next one runs.
  private async start(): Promise<void> {
    // 1. Resolve: policy + flags + host facts -> a validated, frozen plan. No side effect.
    this.host = probeHost();
    this.runtime = resolveRuntime(this.opts.policy.runtime.name, this.opts.policy.runtime.path);
    assertRuntimeWorksHere(this.runtime);
    const r = resolveCell({
      policy: this.opts.policy,
      host: this.host,
      workspace: this.opts.workspace,
      extraAllowNet: this.opts.extraAllowNet,
      benchOff: this.opts.benchOff,
      stateRoot: path.resolve(this.opts.stateRoot ?? defaultStateRoot()),
      homes: hostHomeDirs(),
    });

    // 2. Acquire: state dirs, uid slot, workspace view, proxy, bundle.
    let t = performance.now();
    const lease = await this.acquireDirs();
    trace('gc', t);
    t = performance.now();
    await this.acquireWorkspace(r, lease);
    trace('workspace', t);
    t = performance.now();
    await this.acquireNetwork(r, lease);
    trace('network', t);
    t = performance.now();
    this.writeBundle(r, lease);
    trace('plan', t);

    // 3. Launch: monitor, runtime, init.
    t = performance.now();
    await this.launch(r.seccomp !== undefined, this.net!.enabled && r.proxyOnCellLoopback);
    trace('launch', t);
    this.cgroup = new CgroupReader(this.host.cgroup, this.id);
    this.sampler = setInterval(() => this.cgroup?.sample(), 250);
    this.sampler.unref();
    this.timer = setTimeout(() => void this.kill('timeout'), r.policy.limits.timeout);
    this.timer.unref();
    this.emitEvent({ type: 'task.started', cellId: this.id });
  }

  /** The state root, this cell's dir and owner file, and (root mode) its host uid range. */
  private async acquireDirs(): Promise<SlotLease | undefined> {
    this.layout = ensureStateRoot(this.opts.stateRoot ?? defaultStateRoot());
    await gcStaleCells(this.layout, this.runtime).catch(() => undefined);
    this.dirs = cellDirs(this.layout, this.id);
    fs.mkdirSync(this.dirs.dir, { mode: 0o711 });
    this.cleanups.push({ what: 'cell dir', run: () => removeTree(this.dirs.dir) });
    fs.writeFileSync(this.dirs.owner, JSON.stringify(currentOwner(this.taskId)));
    if (this.host.rootless) return undefined;
    const lease = leaseSlot(this.layout.slots, this.dirs.dir);
    this.cleanups.push({ what: 'uid slot', run: () => releaseSlot(lease) });
    return lease;
  }

  /** The scoped copy-on-write view of the project. */
  private async acquireWorkspace(r: ResolvedCell, lease: SlotLease | undefined): Promise<void> {
    const ws = await CellWorkspace.prepare({
      project: r.project,
      policy: r.policy,
      dirs: this.dirs,
      host: this.host,
      cellUidBase: lease?.uidBase,
      disabled: r.benchOff.workspace === true,
      stateRoot: this.layout.root,
    });
    this.ws = ws;
    this.cleanups.push({ what: 'workspace', run: () => ws.unmount() });
    const merged = ws.mountPlan.mergedDir;
    if (merged && runtimeTraits(r.policy.runtime.name).opensMountsAsCellRoot) {
      // Search-only for others, like the cell dir above it: runsc's gofer reaches the merged
      // view as the cell's root, which owns no parent on the path.
      fs.chmodSync(path.dirname(merged), 0o711);
    }
  }

  /** The egress proxy, when the policy allows some destination. */
  private async acquireNetwork(r: ResolvedCell, lease: SlotLease | undefined): Promise<void> {
    const net = await CellNetwork.start({
      rules: r.netRules,
      socketPath: r.proxyOnCellLoopback ? undefined : this.dirs.proxySocket,
      // The cell user must be able to connect; nobody else on the host should.
      ...(lease
        ? { socketOwner: { uid: lease.uidBase + CELL_UID, gid: lease.uidBase + CELL_GID } }
        : {}),
      onEvent: (e) => this.emitEvent(e),
      secrets: r.policy.secrets,
      cellId: this.id,
    });
    this.net = net;
    this.cleanups.push({ what: 'proxy', run: () => net.close() });
  }

  /** The OCI spec for what was acquired, written out as the bundle; reports degradations. */
  private writeBundle(r: ResolvedCell, lease: SlotLease | undefined): void {
    const ws = this.ws!;
    this.plan = planCell({
      cellId: this.id,
      policy: r.policy,
      host: this.host,
      rootfsDir: this.dirs.rootfs,
      etcDir: ensureEtcDir(this.layout.etc),
      initBinary: nativeBinary('nanocell-init'),
      hostUidBase: lease?.uidBase,
      workspace: ws.mountPlan,
      execAllow: [...r.execAllow],
      hostMounts: [...r.hostMounts, ...cellCaMount(this.net!, this.dirs.dir)],
      execMounts: { ...r.execMounts },
      seccomp: r.seccomp && CellSeccomp.profileFor(r.seccomp, this.dirs.seccompSocket),
      proxySocket: this.net!.enabled && !r.proxyOnCellLoopback ? this.dirs.proxySocket : undefined,
      benchOff: r.benchOff,
    });
    for (const d of this.plan.degradations) this.emitEvent({ type: 'policy.degraded', ...d });
    for (const n of ws.notices) this.emitEvent({ type: 'policy.degraded', ...n });
    if (r.seccomp?.unsafeAllowed.length) {
      this.emitEvent({
        type: 'policy.degraded',
        control: 'syscalls',
        reason: `policy re-allowed forbidden syscalls: ${r.seccomp.unsafeAllowed.join(', ')}`,
      });
    }
    materializeBundle(this.plan, this.dirs);
    if (r.seccomp) fs.writeFileSync(this.dirs.syscallTable, r.seccomp.notifyTable);
  }

  private async launch(withListener: boolean, proxyOnCellLoopback: boolean): Promise<void> {
    const rt = this.runtime;
    const runtimeArgs = runtimeRunArgv(rt, {
      runcRoot: this.layout.runtimeRoot,
      id: this.id,
      bundle: this.dirs.bundle,
      pidFile: this.dirs.initPid,
      hostSocket: this.net?.enabled === true,
    });
    const monitor = spawnMonitor({
      dirs: this.dirs,
      runtimeArgs,
      withListener,
      proxyOnCellLoopback,
      execGuardArgs: withListener ? execGuardArgs(this.plan, realpathOrSelf) : [],
    });
    this.monitor = monitor;
    this.monitorExited = new Promise((resolve) => monitor.once('close', () => resolve()));
    this.cleanups.push({
      what: 'runtime state',
      run: () => deleteContainer(rt, this.layout.runtimeRoot, this.id),
    });
    this.cleanups.push({ what: 'monitor', run: () => this.stopMonitor() });

    const runtime = runtimeFailureOf(monitor, rt.name);
    readMonitorEvents(monitor.stdout!, {
      listener: (pid) => (this.initPid = pid),
      runtimeExited: (status) => runtime.failed(status),
      monitor: (ev) => this.emit('monitor', ev),
      audit: (ev) => this.emitEvent(ev),
    });

    const proxyListener = proxyOnCellLoopback
      ? this.adoptProxyListener(monitor)
      : Promise.resolve();
    proxyListener.catch(() => undefined);

    this.client = new InitClient(monitor.stdio[3] as Duplex);
    this.client.on('log', (line: string) => this.emit('log', line));
    let readyTimer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      readyTimer = setTimeout(
        () =>
          reject(
            new NanocellError(
              'the cell did not start within 60 s',
              'run `nanocell doctor`',
              'RUNTIME',
            ),
          ),
        INIT_READY_TIMEOUT_MS,
      );
    });
    try {
      await Promise.race([
        Promise.all([this.client.ready(), proxyListener]),
        runtime.failure,
        timeout,
      ]);
    } catch (e) {
      if (e instanceof NanocellError) throw e;
      // The init channel closes as soon as the runtime fails, usually just before the
      // runtime's exit is reported; its stderr names the real problem, so wait briefly for it.
      await Promise.race([runtime.failure, delay(2000)]);
      throw new NanocellError(
        `the cell's init failed to start: ${(e as Error).message}`,
        'run `nanocell doctor` to see what this host lacks',
        'RUNTIME',
      );
    } finally {
      clearTimeout(readyTimer);
    }
    runtime.disarm();
    this.initPid ??= readPid(this.dirs.initPid);
    this.client.closed.then(() => this.onInitGone()).catch(() => undefined);
  }

  /** Resolves once the proxy serves the socket the monitor made on the cell's loopback. */
  private adoptProxyListener(monitor: ChildProcess): Promise<void> {
    return new Promise((resolve, reject) => {
      const onMonitorEvent = (ev: { type?: string; message?: unknown }) => {
        if (ev.type !== 'error' || !String(ev.message).startsWith('proxy listener')) return;
        this.off('monitor', onMonitorEvent);
        reject(new NanocellError(String(ev.message), 'run `nanocell doctor`', 'RUNTIME'));
      };
      this.on('monitor', onMonitorEvent);
      monitor.once('message', (m: unknown, handle: unknown) => {
        this.off('monitor', onMonitorEvent);
        const ok =
          (m as { nanocell?: string } | null)?.nanocell === 'proxy-listener' &&
          handle instanceof net.Server;
        if (!ok) {
          reject(
            new NanocellError(
              'the monitor did not hand over the proxy socket',
              'rebuild the native helpers (make -C native)',
              'INTERNAL',
            ),
          );
          return;
        }
        this.net!.adopt(handle);
        // Nothing else travels on the channel. It stays open until the monitor exits: Node
        // never emits 'close' for a child whose channel was disconnected before it exited.
        monitor.channel?.unref();
        resolve();
      });
    });
  }

  /** Starts a command in the cell. Output past the policy's cap is dropped with a note. */
  exec(argv: string[], opts: ExecOptions = {}): CellExec {
    if (!this.client || this.endReason) {
      throw new NanocellError('the cell has ended', 'create a new cell', 'STATE');
    }
    if (argv.length === 0)
      throw new NanocellError('no command given', 'pass a command after --', 'USAGE');
    const env = cellEnv({
      hostEnv: process.env,
      policyEnv: this.opts.policy.env,
      proxyEnv: this.net?.enabled ? this.net.env(CELL_PROXY_PORT) : undefined,
      execEnv: opts.env,
    });
    const cwd = opts.cwd ?? this.ws!.cellPath;
    const handle = this.client.exec({ argv, env, cwd, ...(opts.tty ? { tty: opts.tty } : {}) });
    this.execs.add(handle);
    handle.started
      .then(() => {
        this.current.set(handle.id, argv);
        this.writeStatus();
      })
      .catch(() => undefined);

    const cap = this.opts.policy.limits.output;
    let used = 0;
    let truncated = false;
    const capped = (src: Readable): PassThrough => {
      const out = new PassThrough();
      src.on('data', (chunk: Buffer) => {
        if (truncated) return;
        const room = cap - used;
        if (chunk.length <= room) {
          used += chunk.length;
          if (!out.write(chunk)) {
            src.pause();
            out.once('drain', () => src.resume());
          }
          return;
        }
        if (room > 0) out.write(chunk.subarray(0, room));
        used = cap;
        truncated = true;
        // Keep draining the source so the task is never blocked on a full pipe.
        src.resume();
        out.write(`\n[nanocell: output truncated after ${cap} bytes]\n`);
        this.emitEvent({
          type: 'limit.hit',
          limit: 'output',
          detail: `output cap of ${cap} bytes reached`,
        });
      });
      src.on('end', () => out.end());
      src.on('error', (e) => out.destroy(e));
      return out;
    };
    const stdout = capped(handle.stdout);
    const stderr = capped(handle.stderr);

    const result = handle.result.then(
      (r) => this.outcome(r, truncated),
      () => this.outcome({ kind: 'signaled', signal: SIGKILL }, truncated),
    );
    result.finally(() => {
      this.execs.delete(handle);
      this.current.delete(handle.id);
      this.writeStatus();
    });
    return {
      stdout,
      stderr,
      stdin: handle.stdin,
      result,
      kill: (signal = 15) => handle.kill(signal),
      resize: (size) => handle.resize(size),
    };
  }

  /** What `nanocell ps` shows: written on every exec start and end. */
  private writeStatus(): void {
    const status = {
      taskId: this.taskId,
      session: this.session,
      startedAt: this.startedAt,
      commands: [...this.current.values()],
    };
    try {
      fs.writeFileSync(`${this.dirs.dir}/status.json`, JSON.stringify(status));
    } catch {
      // best effort: the cell may be tearing down
    }
  }

  /** Runs a command to completion, collecting its output (library convenience). */
  async run(argv: string[], opts: ExecOptions & { input?: string | Buffer } = {}) {
    const x = this.exec(argv, opts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    x.stdout.on('data', (d: Buffer) => out.push(d));
    x.stderr.on('data', (d: Buffer) => err.push(d));
    x.stdin.end(opts.input ?? '');
    const outcome = await x.result;
    await Promise.all([onceEnded(x.stdout), onceEnded(x.stderr)]);
    return {
      ...outcome,
      stdout: Buffer.concat(out).toString('utf8'),
      stderr: Buffer.concat(err).toString('utf8'),
    };
  }

  private outcome(r: ExecResult, outputTruncated: boolean): ExecOutcome {
    if (this.endReason === 'timeout')
      return { exitCode: 124, endReason: 'timeout', outputTruncated };
    if (r.kind === 'exited') return { exitCode: r.code, endReason: 'exited', outputTruncated };
    if (r.kind === 'spawn-failed') return { exitCode: r.code, endReason: 'error', outputTruncated };
    const oom = r.signal === SIGKILL && (this.cgroup?.totals().oomKills ?? 0) > 0;
    if (oom) {
      this.emitEvent({
        type: 'limit.hit',
        limit: 'oom',
        detail: 'the memory limit was reached and the kernel killed the task',
      });
      return { exitCode: 137, endReason: 'oom', signal: r.signal, outputTruncated };
    }
    if (this.endReason === 'killed')
      return { exitCode: 137, endReason: 'killed', signal: r.signal, outputTruncated };
    return { exitCode: 128 + r.signal, endReason: 'signaled', signal: r.signal, outputTruncated };
  }

  /** Kills every process in the cell at once (pid 1 dies, so the pid namespace does). */
  async kill(reason: 'timeout' | 'killed'): Promise<void> {
    if (this.endReason) return;
    this.endReason = reason;
    if (reason === 'timeout') {
      this.emitEvent({
        type: 'limit.hit',
        limit: 'timeout',
        detail: `wall-clock limit of ${this.opts.policy.limits.timeout} ms reached`,
      });
    }
    this.killInit();
  }

  private killInit(): void {
    const pid = this.initPid ?? readPid(this.dirs.initPid);
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  private onInitGone(): void {
    this.endReason ??= 'killed';
  }

  private async stopMonitor(): Promise<void> {
    if (!this.monitor || this.monitor.exitCode !== null || this.monitor.signalCode !== null) return;
    this.client?.shutdown();
    const gone = await Promise.race([
      this.monitorExited.then(() => true),
      delay(3000).then(() => false),
    ]);
    if (!gone) {
      this.killInit();
      this.monitor.kill('SIGTERM');
      const gone2 = await Promise.race([
        this.monitorExited.then(() => true),
        delay(3000).then(() => false),
      ]);
      if (!gone2) this.monitor.kill('SIGKILL');
      await this.monitorExited;
    }
  }

  /**
   * Ends the task: stops every process, collects, and removes every trace but the report.
   * Aborting `o.abandonChanges` stops a change-set collection in progress; nothing of it is kept.
   */
  destroy(o: { abandonChanges?: AbortSignal } = {}): Promise<CellSummary> {
    this.destroyed ??= this.doDestroy(o.abandonChanges);
    return this.destroyed;
  }

  private async doDestroy(abandonChanges: AbortSignal | undefined): Promise<CellSummary> {
    clearTimeout(this.timer);
    clearInterval(this.sampler);
    let t = performance.now();
    await this.stopMonitor();
    trace('stop', t);
    const resources = this.cgroup?.totals() ?? {
      peakMemoryBytes: null,
      peakPids: null,
      cpuMs: null,
      oomKills: 0,
      pidsLimitHits: 0,
    };
    // cgroup v1 does not count refusals in pids.events when RLIMIT_NPROC (same cap, on the
    // cell's uids) refuses the fork first, so reaching the cap counts as hitting it too.
    const pidsCap = this.plan?.limits.pids;
    const atCap = pidsCap != null && (resources.peakPids ?? 0) >= pidsCap;
    if (resources.pidsLimitHits > 0 || atCap) {
      this.emitEvent({
        type: 'limit.hit',
        limit: 'pids',
        detail:
          resources.pidsLimitHits > 0
            ? `the pids limit refused ${resources.pidsLimitHits} forks`
            : `the task reached the pids limit of ${pidsCap}`,
      });
    }
    let changeSet: unknown;
    t = performance.now();
    try {
      changeSet = await this.ws?.collect(
        this.layout,
        this.taskId,
        this.startedAt,
        (e) => this.emitEvent(e),
        abandonChanges,
      );
    } catch (e) {
      changeSet = { error: (e as Error).message };
    }
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
      limits: this.plan.limits,
      degradations: this.plan.degradations,
      runtime: { name: this.runtime.name, version: this.runtime.version },
      ...(changeSet !== undefined ? { changeSet } : {}),
    };
  }

  /** Runs every registered cleanup in reverse; keeps going past failures, then reports them. */
  private async unwind(): Promise<void> {
    clearTimeout(this.timer);
    clearInterval(this.sampler);
    const failures: string[] = [];
    while (this.cleanups.length) {
      const c = this.cleanups.pop()!;
      try {
        await c.run();
      } catch (e) {
        failures.push(`${c.what}: ${(e as Error).message}`);
      }
    }
    if (failures.length) {
      throw new NanocellError(
        `cleanup of cell ${this.id} was incomplete (${failures.join('; ')})`,
        'run `nanocell gc`',
        'STATE',
      );
    }
  }
}

function readPid(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

function onceEnded(s: Readable): Promise<void> {
  if (s.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    s.once('end', () => resolve());
    s.once('close', () => resolve());
  });
}
