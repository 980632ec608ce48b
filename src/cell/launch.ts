// Launching a cell: the native monitor, the runtime under it, init as pid 1, and (when the
// proxy listens on the cell's own loopback) the listening socket the monitor hands over. The
// running processes are a CellProcess: how to kill init, and how to stop the monitor.
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { CellEvent } from '../audit/cellEvents.js';
import { execGuardArgs } from '../plan/execRule.js';
import { CELL_PROXY_PORT } from '../plan/layout.js';
import type { CellPlan } from '../plan/plan.js';
import { deleteContainer, runtimeRunArgv, type RuntimeInfo } from '../runtime/runtime.js';
import { NanocellError } from '../util/errors.js';
import { realpathOrSelf } from '../util/fs.js';
import { delay, readPid, trace, type Cleanups } from './cleanup.js';
import { writeCaptureRules } from './captureFiles.js';
import { receiveHandles } from './captureHandover.js';
import { InitClient } from './initClient.js';
import {
  readMonitorEvents,
  runtimeFailureOf,
  spawnMonitor,
  type MonitorControlEvent,
  type MonitorProcess,
} from './monitor.js';
import { MonitorSync } from './monitorSync.js';
import type { CellNetwork } from './networkSetup.js';
import type { CellDirs, StateLayout } from './state.js';

// Generous: a cell normally starts in well under a second, but a 2-core host starting many
// cells at once can queue runc's start for seconds. Only a hung start should hit this.
const INIT_READY_TIMEOUT_MS = 60_000;

export interface LaunchInput {
  id: string;
  runtime: RuntimeInfo;
  layout: StateLayout;
  dirs: CellDirs;
  plan: CellPlan;
  net: CellNetwork;
  /** The seccomp listener is in the profile (the monitor answers its notifications). */
  withListener: boolean;
  /** init installs the filter (plan.seccompBpf) and the monitor takes its listener from init. */
  notifyFromInit: boolean;
  /** The monitor will report the cell's namespace limits ("limits") before commands run. */
  namespaceLimits: boolean;
  /** The proxy serves a socket the monitor makes on the cell's 127.0.0.1. */
  proxyOnCellLoopback: boolean;
  /** The host's nft, when the monitor also sets up transparent capture (resolve found it). */
  captureNft: string | undefined;
  /** Run the egress controls' start check (selfCheck.ts); off only for a benchmark. */
  startCheck: boolean;
  /** Tests of the start check: the proxy's listener is closed instead of served. */
  closeProxyListener?: boolean;
  cleanups: Cleanups;
  emit: (e: CellEvent) => void;
  onLog: (line: string) => void;
}

/** The cell's processes once launched: the monitor and the init it supervises. */
export class CellProcess {
  private readonly control = new EventEmitter();
  private readonly exited: Promise<void>;
  client: InitClient | undefined;
  initPid: number | undefined;
  /** Barriers on the monitor's events (a command's end waits for one: exec.ts). */
  readonly events: MonitorSync;

  private runtimeDeleted?: Promise<void>;

  private constructor(
    private readonly monitor: MonitorProcess,
    private readonly dirs: CellDirs,
    /** The monitor hands over the capture's sockets too (captureHandover.ts). */
    private readonly capture: boolean,
    private readonly deleteRuntime: () => Promise<void>,
  ) {
    this.exited = new Promise((resolve) => monitor.once('close', () => resolve()));
    this.events = new MonitorSync(monitor.stdin);
    monitor.once('exit', () => this.events.end());
  }

  /** The runtime's delete of the container (state, cgroups), run once; see stop. */
  deleteRuntimeState(): Promise<void> {
    return (this.runtimeDeleted ??= this.deleteRuntime());
  }

  static async launch(o: LaunchInput): Promise<CellProcess> {
    const rt = o.runtime;
    const capture = o.proxyOnCellLoopback ? o.captureNft : undefined;
    const runtimeArgs = runtimeRunArgv(rt, {
      runcRoot: o.layout.runtimeRoot,
      id: o.id,
      bundle: o.dirs.bundle,
      pidFile: o.dirs.initPid,
      hostSocket: o.net.enabled,
    });
    const monitor = await spawnMonitor({
      dirs: o.dirs,
      runtimeArgs,
      withListener: o.withListener,
      notifyFromInit: o.notifyFromInit,
      proxyOnCellLoopback: o.proxyOnCellLoopback,
      capture: capture ? writeCaptureRules(o.dirs.dir, capture) : undefined,
      execGuardArgs: o.withListener ? execGuardArgs(o.plan, realpathOrSelf) : [],
    });
    const p = new CellProcess(monitor, o.dirs, capture !== undefined, () =>
      deleteContainer(rt, o.layout.runtimeRoot, o.id),
    );
    o.cleanups.push('runtime state', () => p.deleteRuntimeState());
    o.cleanups.push('monitor', () => p.stop());
    await p.start(o);
    return p;
  }

  private async start(o: LaunchInput): Promise<void> {
    const monitor = this.monitor;
    const runtime = runtimeFailureOf(monitor, o.runtime.name);
    readMonitorEvents(monitor.stdout!, {
      listener: (pid) => (this.initPid = pid),
      runtimeExited: (status) => runtime.failed(status),
      sync: () => this.events.answered(),
      monitor: (ev) => {
        // The monitor says why it gave up on a JSON line; that beats "the monitor exited".
        if (ev.type === 'error') runtime.noteError(String(ev.message));
        this.control.emit('monitor', ev);
      },
      audit: o.emit,
    });
    const proxyListener = o.proxyOnCellLoopback
      ? this.adoptProxyListener(o.net, o.closeProxyListener === true)
      : undefined;
    proxyListener?.catch(() => undefined);
    // Concurrent with init's start: a broken control fails the start within a second.
    const where = o.proxyOnCellLoopback ? `the cell's 127.0.0.1:${CELL_PROXY_PORT}` : 'its socket';
    const checked = (proxyListener ?? Promise.resolve(undefined)).then((probe) => {
      if (o.startCheck && o.net.enabled) return o.net.startCheck(probe, where);
      probe?.destroy();
    });
    checked.catch(() => undefined);
    // With a listener the monitor limits the cell's namespaces in a child it does not wait for;
    // no task command may run before it says they are in place.
    const limits = o.namespaceLimits ? this.monitorSays('limits') : undefined;

    const client = new InitClient(monitor.stdio[3] as Duplex);
    this.client = client;
    client.on('log', o.onLog);
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
      const t0 = performance.now();
      await Promise.race([
        Promise.all([
          client.ready().then(() => trace('launch: init ready', t0)),
          checked.then(() => trace('launch: start check', t0)),
          limits?.then(() => trace('launch: namespace limits', t0)),
        ]),
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
  }

  /** Resolves when the monitor reports an event of this type. */
  private monitorSays(type: MonitorControlEvent['type']): Promise<void> {
    return new Promise((resolve) => {
      const on = (ev: MonitorControlEvent) => {
        if (ev.type !== type) return;
        this.control.off('monitor', on);
        resolve();
      };
      this.control.on('monitor', on);
    });
  }

  /**
   * Resolves once the proxy serves the socket the monitor made on the cell's loopback, with the
   * connection to it the monitor made for the start check.
   */
  private adoptProxyListener(cellNet: CellNetwork, close: boolean): Promise<Socket> {
    const monitor = this.monitor;
    return new Promise((resolve, reject) => {
      const onMonitorEvent = (ev: MonitorControlEvent) => {
        if (ev.type !== 'error' || !String(ev.message).startsWith('proxy listener')) return;
        this.control.off('monitor', onMonitorEvent);
        reject(new NanocellError(String(ev.message), 'run `nanocell doctor`', 'RUNTIME'));
      };
      this.control.on('monitor', onMonitorEvent);
      receiveHandles(monitor, this.capture).then(
        (h) => {
          this.control.off('monitor', onMonitorEvent);
          if (close) {
            h.proxy.close();
            for (const s of h.accepted) s.destroy();
          } else cellNet.adopt(h.proxy, h.accepted);
          if (h.capture) cellNet.adoptCapture(h.capture);
          // Nothing else travels on the channel. It stays open until the monitor exits: Node
          // never emits 'close' for a child whose channel was disconnected before it exited.
          monitor.channel?.unref();
          resolve(h.probe);
        },
        (e: unknown) => {
          this.control.off('monitor', onMonitorEvent);
          reject(e instanceof Error ? e : new Error(String(e)));
        },
      );
    });
  }

  /** Kills init, so every process of the cell dies with its pid namespace. */
  killInit(): void {
    const pid = this.initPid ?? readPid(this.dirs.initPid);
    if (pid) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  /**
   * Asks init to shut down, then escalates: SIGKILL to init, SIGTERM and SIGKILL to the monitor.
   * Once the monitor is gone the runtime's delete starts, so it runs while the caller collects
   * the change set; the 'runtime state' cleanup waits for it and reports its failure.
   */
  async stop(): Promise<void> {
    await this.stopMonitor();
    this.deleteRuntimeState().catch(() => undefined);
  }

  private async stopMonitor(): Promise<void> {
    const monitor = this.monitor;
    if (monitor.exitCode !== null || monitor.signalCode !== null) return;
    this.client?.shutdown();
    const exitedWithin = (ms: number) =>
      Promise.race([this.exited.then(() => true), delay(ms).then(() => false)]);
    if (await exitedWithin(3000)) return;
    this.killInit();
    monitor.kill('SIGTERM');
    if (!(await exitedWithin(3000))) monitor.kill('SIGKILL');
    await this.exited;
  }
}
