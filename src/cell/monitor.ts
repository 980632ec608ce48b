// The per-cell native monitor: how it is started, how its failures surface, and its JSON
// lines on stdout. readMonitorEvents is the one place that parses them; the monitor relays
// what the cell did (execs, denied syscalls), so every line is untrusted input.
import { spawn, type ChildProcess } from 'node:child_process';
import { forkServerSpawn, ForkedProcess } from '../util/forkServer.js';
import type { Readable } from 'node:stream';
import { monitorAuditTypes, type MonitorAuditEvent } from '../audit/cellEvents.js';
import { nativeBinary } from '../host/native.js';
import { droppedPacketEvent } from '../net/capture.js';
import { CELL_PROXY_PORT } from '../plan/layout.js';
import { NanocellError } from '../util/errors.js';
import type { CellDirs } from './state.js';

/** The monitor as started: from the fork server, or by Node where this install has none. */
export type MonitorProcess = ChildProcess | ForkedProcess;

export async function spawnMonitor(o: {
  dirs: CellDirs;
  runtimeArgs: string[];
  withListener: boolean;
  /** init installs the filter; the monitor takes its listener from init (native/monitor/initfd.c). */
  notifyFromInit: boolean;
  proxyOnCellLoopback: boolean;
  /** Transparent capture: the ruleset file and the host's nft (captureFiles.ts). */
  capture: { rules: string; nft: string } | undefined;
  /** The exec guard's paths (execGuardArgs), given only with a listener. */
  execGuardArgs: string[];
}): Promise<MonitorProcess> {
  const { dirs } = o;
  // The monitor requires a listener; with seccomp off (benchmarks) nothing connects to it.
  const args = ['--pid-file', dirs.initPid, '--listener', dirs.seccompSocket];
  if (o.withListener) args.push('--syscall-table', dirs.syscallTable, ...o.execGuardArgs);
  if (o.notifyFromInit) args.push('--notify-from-init');
  if (o.proxyOnCellLoopback) args.push('--proxy-port', String(CELL_PROXY_PORT));
  if (o.capture) args.push('--capture', o.capture.rules, '--nft', o.capture.nft);
  const bin = nativeBinary('nanocell-monitor');
  const argv = [...args, '--', ...o.runtimeArgs];
  const env = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin' };
  // fd 3: init's control socket; fd 4: the IPC channel, the one way a child can hand this
  // process a socket (the fork server relays what comes on it).
  const forked = forkServerSpawn(bin, argv, {
    cwd: dirs.bundle,
    env: o.proxyOnCellLoopback ? { ...env, NODE_CHANNEL_FD: '4' } : env,
    stdio: o.proxyOnCellLoopback ? 'ppppi' : 'pppp',
  });
  if (forked) return new ForkedProcess(await forked);
  return spawn(bin, argv, {
    stdio: o.proxyOnCellLoopback
      ? ['pipe', 'pipe', 'pipe', 'pipe', 'ipc']
      : ['pipe', 'pipe', 'pipe', 'pipe'],
    cwd: dirs.bundle,
    env,
  });
}

/** The monitor's lines about itself and init, for the lifecycle (not the audit trail). */
export type MonitorControlEvent =
  | { type: 'init.exited'; status?: unknown }
  | { type: 'error'; message?: unknown }
  /** The cell's namespace limits are in place (native/monitor/nslimits.c). */
  | { type: 'limits' };

export interface MonitorHandlers {
  /** The monitor learned init's host pid. */
  listener(initPid: number): void;
  runtimeExited(status: number): void;
  /** init.exited and error: the lifecycle's business. */
  monitor(ev: MonitorControlEvent): void;
  /** The answer to a barrier (monitorSync.ts). */
  sync(): void;
  /** exec, exec.summary, syscall.denied, syscall.denied.summary: audit events. */
  audit(ev: MonitorAuditEvent | ReturnType<typeof droppedPacketEvent>): void;
}

export function readMonitorEvents(stream: Readable, h: MonitorHandlers): void {
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      let ev: { type?: unknown; [k: string]: unknown };
      try {
        ev = JSON.parse(line) as typeof ev;
      } catch {
        continue;
      }
      if (ev === null || typeof ev !== 'object' || typeof ev.type !== 'string') continue;
      switch (ev.type) {
        case 'listener':
          h.listener(Number(ev.initPid));
          break;
        case 'runtime.exited':
          h.runtimeExited(Number(ev.status));
          break;
        case 'sync':
          h.sync();
          break;
        case 'net.dropped':
        case 'net.dropped.summary':
          h.audit(droppedPacketEvent(ev));
          break;
        case 'init.exited':
        case 'error':
        case 'limits':
          h.monitor(ev as MonitorControlEvent);
          break;
        default:
          // Anything else is no event nanocell knows: dropped, as the audit sink would.
          if (monitorAuditTypes.has(ev.type)) h.audit(ev as MonitorAuditEvent);
      }
    }
  });
}

/**
 * A promise that rejects, naming the runtime's last stderr line, if the runtime fails or the
 * monitor exits before the cell is up; disarm() once it is.
 */
export function runtimeFailureOf(
  monitor: MonitorProcess,
  runtimeName: string,
): {
  failure: Promise<never>;
  failed(status: number): void;
  noteError(message: string): void;
  disarm(): void;
} {
  let stderr = '';
  let monitorError: string | undefined;
  monitor.stderr!.setEncoding('utf8');
  monitor.stderr!.on('data', (d: string) => {
    if (stderr.length < 8192) stderr += d;
  });
  let fail: ((msg: string) => void) | undefined;
  const failure = new Promise<never>((_, reject) => {
    fail = (msg) =>
      reject(
        new NanocellError(
          `the ${runtimeName} runtime could not start the cell: ${msg}`,
          'run `nanocell doctor` to see what this host lacks',
          'RUNTIME',
        ),
      );
  });
  failure.catch(() => undefined);
  monitor.once('close', () => fail?.(lastLine(stderr) || monitorError || 'the monitor exited'));
  return {
    failure,
    failed: (status) => {
      if (status !== 0) fail?.(lastLine(stderr) || monitorError || `exit status ${status}`);
    },
    noteError: (message) => {
      monitorError = message.slice(0, 500);
    },
    disarm: () => {
      fail = undefined;
    },
  };
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
