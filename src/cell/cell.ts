// A cell's life: create (plan, mount, start), exec commands, destroy (collect, clean up).
// Every step that acquires something registers how to release it, so any failure, timeout
// or signal unwinds exactly what was done.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PassThrough, type Duplex, type Readable, type Writable } from 'node:stream';
import type { Policy } from '../policy/defaults.js';
import { probeHost } from '../host/probe.js';
import type { HostFacts } from '../host/facts.js';
import { nativeBinary } from '../host/native.js';
import { NanocellError } from '../util/errors.js';
import { removeTree } from '../util/fs.js';
import { CgroupReader, type CgroupTotals } from './cgroupStats.js';
import { cellEnv } from './env.js';
import { ensureEtcDir } from './etc.js';
import { InitClient, type ExecHandle, type ExecResult } from './initClient.js';
import { currentOwner } from './owner.js';
import {
  CELL_GID,
  CELL_PROXY_PORT,
  CELL_UID,
  planCell,
  type AppliedLimits,
  type CellPlan,
  type Degradation,
} from './plan.js';
import {
  assertRuntimeWorksHere,
  deleteContainer,
  resolveRuntime,
  runtimeRunArgv,
  type RuntimeInfo,
} from './runtime.js';
import { runtimeTraits } from './runtimeTraits.js';
import { leaseSlot, releaseSlot, type SlotLease } from './slots.js';
import {
  cellDirs,
  defaultStateRoot,
  ensureStateRoot,
  type CellDirs,
  type StateLayout,
} from './state.js';
import { materializeBundle } from './bundle.js';
import { resolveExecAllow } from './execAllow.js';
import { execGuardArgs, planExecRule } from './execRule.js';
import { realpathOrSelf } from '../util/fs.js';
import { CellWorkspace } from './workspaceMount.js';
import { CellSeccomp } from './seccompSetup.js';
import { CellNetwork } from './networkSetup.js';
import { gcStaleCells } from './gc.js';

export type EndReason = 'exited' | 'signaled' | 'timeout' | 'oom' | 'killed' | 'error';

/** An event for the audit trail; the sink adds task id, session, time and sequence. */
export interface CellEvent {
  type: string;
  [k: string]: unknown;
}

export interface CellOptions {
  policy: Policy;
  /** The project directory; it appears in the cell at the same absolute path. */
  workspace: string;
  taskId?: string;
  session?: string;
  stateRoot?: string;
  /** Extra `network.allow` entries (the CLI's --allow-net). */
  extraAllowNet?: string[];
  onEvent?: (e: CellEvent) => void;
  /** Skip parts of the cell, for benchmarks that show what each part costs. Not for users. */
  benchOff?: { seccomp?: boolean; workspace?: boolean; cgroups?: boolean };
}

export interface ExecOptions {
  env?: Record<string, string>;
  cwd?: string;
}

export interface ExecOutcome {
  /** Exit status with Docker's conventions (124 timeout, 125 nanocell, 126/127 exec, 137 kill). */
  exitCode: number;
  endReason: EndReason;
  signal?: number;
  outputTruncated: boolean;
}

export interface CellExec {
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly stdin: Writable;
  readonly result: Promise<ExecOutcome>;
  kill(signal?: number): void;
}

export interface CellSummary {
  taskId: string;
  cellId: string;
  startedAt: number;
  endedAt: number;
  durationMs: number;
  endReason: EndReason | null;
  resources: CgroupTotals;
  limits: AppliedLimits;
  degradations: Degradation[];
  runtime: { name: string; version: string };
  changeSet?: unknown;
}

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

export function newCellId(): string {
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

  private async start(): Promise<void> {
    const { policy } = this.opts;
    this.host = probeHost();
    this.runtime = resolveRuntime(policy.runtime.name, policy.runtime.path);
    assertRuntimeWorksHere(this.runtime);
    this.layout = ensureStateRoot(this.opts.stateRoot ?? defaultStateRoot());
    let t = performance.now();
    await gcStaleCells(this.layout, this.runtime).catch(() => undefined);
    trace('gc', t);
    this.dirs = cellDirs(this.layout, this.id);

    fs.mkdirSync(this.dirs.dir, { mode: 0o711 });
    this.cleanups.push({
      what: 'cell dir',
      run: () => removeTree(this.dirs.dir),
    });
    fs.writeFileSync(this.dirs.owner, JSON.stringify(currentOwner(this.taskId)));

    let lease: SlotLease | undefined;
    if (!this.host.rootless) {
      lease = leaseSlot(this.layout.slots, this.dirs.dir);
      const l = lease;
      this.cleanups.push({ what: 'uid slot', run: () => releaseSlot(l) });
    }

    // Workspace: scoped overlay of the project.
    t = performance.now();
    this.ws = await CellWorkspace.prepare({
      project: this.opts.workspace,
      policy,
      dirs: this.dirs,
      host: this.host,
      cellUidBase: lease?.uidBase,
      disabled: this.opts.benchOff?.workspace === true,
      stateRoot: this.layout.root,
    });
    const ws = this.ws;
    const merged = ws.mountPlan.mergedDir;
    if (merged && runtimeTraits(policy.runtime.name).opensMountsAsCellRoot) {
      // Search-only for others, like the cell dir above it: runsc's gofer reaches the merged
      // view as the cell's root, which owns no parent on the path.
      fs.chmodSync(path.dirname(merged), 0o711);
    }
    trace('workspace', t);
    t = performance.now();
    this.cleanups.push({ what: 'workspace', run: () => ws.unmount() });

    const seccomp = CellSeccomp.plan({
      policy,
      host: this.host,
      listenerPath: this.dirs.seccompSocket,
      disabled: this.opts.benchOff?.seccomp === true,
    });
    // With a seccomp listener the monitor learns the cell's pid before init runs, so it makes
    // the proxy's port inside the cell's own network namespace and no relay is needed. Without
    // one (gVisor, or seccomp off for a benchmark), init bridges the port to a unix socket.
    const proxyOnCellLoopback = seccomp?.profile.listenerPath !== undefined;

    // Network: a proxy only when the policy allows some destination.
    this.net = await CellNetwork.start({
      policy,
      extraAllow: this.opts.extraAllowNet ?? [],
      socketPath: proxyOnCellLoopback ? undefined : this.dirs.proxySocket,
      // The cell user must be able to connect; nobody else on the host should.
      ...(lease
        ? { socketOwner: { uid: lease.uidBase + CELL_UID, gid: lease.uidBase + CELL_GID } }
        : {}),
      onEvent: (e) => this.emitEvent(e),
    });
    const net = this.net;
    this.cleanups.push({ what: 'proxy', run: () => net.close() });

    trace('network', t);
    t = performance.now();
    const execRule = planExecRule(
      resolveExecAllow(policy.exec.allow, this.ws.cellPath),
      this.ws.cellPath,
      policy.exec.scratch,
    );
    this.plan = planCell({
      cellId: this.id,
      policy,
      host: this.host,
      rootfsDir: this.dirs.rootfs,
      etcDir: ensureEtcDir(this.layout.etc),
      initBinary: nativeBinary('nanocell-init'),
      hostUidBase: lease?.uidBase,
      workspace: this.ws.mountPlan,
      execAllow: execRule.paths,
      execMounts: execRule.mounts,
      seccomp: seccomp?.profile,
      proxySocket: this.net.enabled && !proxyOnCellLoopback ? this.dirs.proxySocket : undefined,
    });
    if (this.opts.benchOff?.cgroups) {
      // Bench only: no limits and no cgroupsPath; runc still makes its default cgroups.
      delete this.plan.spec.linux.resources;
      delete this.plan.spec.linux.cgroupsPath;
      Object.assign(this.plan.limits, { memoryBytes: null, pids: null, cpus: null });
    }
    // A part switched off for a benchmark is never silent: it is a degradation like any other.
    for (const [part, off] of Object.entries(this.opts.benchOff ?? {})) {
      if (off) {
        this.plan.degradations.push({
          control: `bench:${part}`,
          reason: `${part} switched off for a benchmark`,
        });
      }
    }
    for (const d of this.plan.degradations) this.emitEvent({ type: 'policy.degraded', ...d });
    for (const n of this.ws.notices) this.emitEvent({ type: 'policy.degraded', ...n });
    if (seccomp?.unsafeAllowed.length) {
      this.emitEvent({
        type: 'policy.degraded',
        control: 'syscalls',
        reason: `policy re-allowed forbidden syscalls: ${seccomp.unsafeAllowed.join(', ')}`,
      });
    }
    materializeBundle(this.plan, this.dirs);
    if (seccomp) fs.writeFileSync(this.dirs.syscallTable, seccomp.notifyTable);

    trace('plan', t);
    t = performance.now();
    await this.launch(Boolean(seccomp), this.net.enabled && proxyOnCellLoopback);
    trace('launch', t);
    this.cgroup = new CgroupReader(this.host.cgroup, this.id);
    this.sampler = setInterval(() => this.cgroup?.sample(), 250);
    this.sampler.unref();
    this.timer = setTimeout(() => void this.kill('timeout'), policy.limits.timeout);
    this.timer.unref();
    this.emitEvent({ type: 'task.started', cellId: this.id });
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
    // The monitor requires a listener; with seccomp off (benchmarks) nothing connects to it.
    const monitorArgs = ['--pid-file', this.dirs.initPid, '--listener', this.dirs.seccompSocket];
    if (withListener) monitorArgs.push('--syscall-table', this.dirs.syscallTable);
    if (withListener) monitorArgs.push(...execGuardArgs(this.plan!, realpathOrSelf));
    if (proxyOnCellLoopback) monitorArgs.push('--proxy-port', String(CELL_PROXY_PORT));
    const monitor = spawn(
      nativeBinary('nanocell-monitor'),
      [...monitorArgs, '--', ...runtimeArgs],
      {
        // fd 4: Node's IPC channel, the one way a child can hand this process a socket.
        stdio: proxyOnCellLoopback
          ? ['ignore', 'pipe', 'pipe', 'pipe', 'ipc']
          : ['ignore', 'pipe', 'pipe', 'pipe'],
        cwd: this.dirs.bundle,
        env: { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' },
      },
    );
    this.monitor = monitor;
    this.monitorExited = new Promise((resolve) => monitor.once('close', () => resolve()));
    this.cleanups.push({
      what: 'runtime state',
      run: () => deleteContainer(rt, this.layout.runtimeRoot, this.id),
    });
    this.cleanups.push({ what: 'monitor', run: () => this.stopMonitor() });

    let stderr = '';
    monitor.stderr!.setEncoding('utf8');
    monitor.stderr!.on('data', (d: string) => {
      if (stderr.length < 8192) stderr += d;
    });
    let runtimeFailed: ((msg: string) => void) | undefined;
    const runtimeFailure = new Promise<never>((_, reject) => {
      runtimeFailed = (msg) =>
        reject(
          new NanocellError(
            `the ${rt.name} runtime could not start the cell: ${msg}`,
            'run `nanocell doctor` to see what this host lacks',
            'RUNTIME',
          ),
        );
    });
    runtimeFailure.catch(() => undefined);
    this.readMonitorEvents(monitor.stdout!, (status) => {
      if (status !== 0) runtimeFailed?.(lastLine(stderr) || `exit status ${status}`);
    });
    monitor.once('close', () => runtimeFailed?.(lastLine(stderr) || 'the monitor exited'));

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
        runtimeFailure,
        timeout,
      ]);
    } catch (e) {
      if (e instanceof NanocellError) throw e;
      // The init channel closes as soon as the runtime fails, usually just before the
      // runtime's exit is reported; its stderr names the real problem, so wait briefly for it.
      await Promise.race([runtimeFailure, delay(2000)]);
      throw new NanocellError(
        `the cell's init failed to start: ${(e as Error).message}`,
        'run `nanocell doctor` to see what this host lacks',
        'RUNTIME',
      );
    } finally {
      clearTimeout(readyTimer);
    }
    runtimeFailed = undefined;
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

  private readMonitorEvents(stream: Readable, onRuntimeExit: (status: number) => void): void {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let ev: CellEvent;
        try {
          ev = JSON.parse(line) as CellEvent;
        } catch {
          continue;
        }
        switch (ev.type) {
          case 'listener':
            this.initPid = Number(ev.initPid);
            break;
          case 'runtime.exited':
            onRuntimeExit(Number(ev.status));
            break;
          case 'init.exited':
          case 'error':
            this.emit('monitor', ev);
            break;
          default:
            // exec, syscall.denied, syscall.denied.summary: audit events.
            this.emitEvent(ev);
        }
      }
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
    const handle = this.client.exec({ argv, env, cwd: opts.cwd ?? this.ws!.cellPath });
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

function lastLine(s: string): string {
  return (
    s
      .trim()
      .split('\n')
      .filter(Boolean)
      .pop()
      ?.replace(/^time=".*?" level=\w+ msg=/, '') ?? ''
  );
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
