// What a task did, derived from its events and stored report (pure): the material of
// `nanocell report` and the one-line descriptions of `nanocell logs`.
import { constants } from 'node:os';
import { reportGroupOf } from '../seccomp/syscall-table.js';
import { formatCommand } from '../util/display.js';
import { formatDuration, formatSize } from '../util/units.js';
import type { AuditEvent, AuditEventOf, FsChangeKind } from './events.js';
import type { TaskRow } from './store.js';

const errnoNames = new Map(Object.entries(constants.errno).map(([name, n]) => [n, name]));
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? `errno ${errno}`;
}

/** How an exec counted past the monitor's cap (no path or argv read) is shown. */
export const COUNTED_EXECS = 'more execs, past the monitor cap (path and argv not read)';

interface Counted<T> {
  count: number;
  item: T;
}

export interface TaskResources {
  durationMs?: number;
  peakMemoryBytes?: number;
  peakPids?: number;
  cpuTimeMs?: number;
  limits?: Record<string, unknown>;
  degradations?: { control: string; reason: string }[];
}

export interface TaskSummary {
  task: TaskRow;
  durationMs: number | null;
  /**
   * Programs that ran. A shell's PATH lookup tries execve in each PATH dir with the same argv
   * from the same pid; only the last try of such a run can have succeeded, so the earlier ones
   * are counted as `lookups`, not as programs.
   */
  ran: { total: number; lookups: number; commands: Counted<{ path: string; argv: string[] }>[] };
  denied: {
    network: Counted<{ host: string; port: number; reason: string; rule?: string }>[];
    syscalls: Counted<{ name: string; exe: string; errno: number }>[];
    exec: Counted<{ name: string; exe: string; errno: number }>[];
    files: Counted<{ name: string; exe: string; errno: number }>[];
  };
  network: Counted<{ host: string; port: number; bytesUp: number; bytesDown: number }>[];
  /** Allowed connections that could not be made (no such name, refused, timed out). */
  networkFailed: Counted<{ host: string; port: number; error: string }>[];
  changed: { counts: Record<FsChangeKind, number>; paths: AuditEventOf<'fs.change'>[] };
  limits: { limit: string; detail: string }[];
  degraded: { control: string; reason: string }[];
  resources: TaskResources;
  exit: AuditEventOf<'task.exited'> | undefined;
  audit: { stored: number; dropped: number; droppedByType: Record<string, number> };
}

/** Collects counts keyed by a string; keeps the first item of each key. */
class Tally<T> {
  private readonly map = new Map<string, Counted<T>>();
  add(key: string, item: T, n = 1): Counted<T> {
    const hit = this.map.get(key);
    if (hit) hit.count += n;
    else this.map.set(key, { count: n, item });
    return this.map.get(key)!;
  }
  sorted(): Counted<T>[] {
    return [...this.map.values()].sort((a, b) => b.count - a.count);
  }
}

/** Exec events to programs that ran, folding each PATH lookup into its last try. */
class ExecTally {
  private readonly tally = new Tally<{ path: string; argv: string[] }>();
  /** Per pid, the last exec not yet known to be a failed lookup. */
  private readonly pending = new Map<number, AuditEventOf<'exec'>>();
  private total = 0;
  private lookups = 0;

  add(e: AuditEventOf<'exec'>): void {
    if (e.count !== undefined || (e.path === '' && e.argv.length === 0)) return this.count(e);
    const prev = this.pending.get(e.pid);
    if (prev && sameArgv(prev.argv, e.argv) && prev.path !== e.path) this.lookups++;
    else if (prev) this.count(prev);
    this.pending.set(e.pid, e);
  }

  result(): {
    total: number;
    lookups: number;
    commands: Counted<{ path: string; argv: string[] }>[];
  } {
    for (const e of this.pending.values()) this.count(e);
    this.pending.clear();
    return { total: this.total, lookups: this.lookups, commands: this.tally.sorted() };
  }

  private count(e: AuditEventOf<'exec'>): void {
    const n = e.count ?? 1;
    this.total += n;
    this.tally.add(`${e.path}\0${e.argv.join('\0')}`, { path: e.path, argv: e.argv }, n);
  }
}

const sameArgv = (a: string[], b: string[]) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** The tallies of one task's events, filled event by event (summarizeTask). */
class TaskAccumulator {
  readonly ran = new ExecTally();
  readonly netDenied = new Tally<{ host: string; port: number; reason: string; rule?: string }>();
  readonly sysDenied = new Tally<{ name: string; exe: string; errno: number }>();
  readonly execDenied = new Tally<{ name: string; exe: string; errno: number }>();
  readonly fileDenied = new Tally<{ name: string; exe: string; errno: number }>();
  readonly net = new Tally<{ host: string; port: number; bytesUp: number; bytesDown: number }>();
  readonly netFailed = new Tally<{ host: string; port: number; error: string }>();
  readonly counts: Record<FsChangeKind, number> = {
    added: 0,
    modified: 0,
    deleted: 0,
    mode: 0,
    symlink: 0,
  };
  readonly paths: AuditEventOf<'fs.change'>[] = [];
  readonly limits: { limit: string; detail: string }[] = [];
  readonly degraded: { control: string; reason: string }[] = [];
  exit: AuditEventOf<'task.exited'> | undefined;

  constructor(private readonly maxPaths: number) {}

  add(e: AuditEvent): void {
    switch (e.type) {
      case 'exec':
        return this.ran.add(e);
      case 'syscall.denied': {
        const group = reportGroupOf(e.name);
        const tally =
          group === 'exec' ? this.execDenied : group === 'files' ? this.fileDenied : this.sysDenied;
        tally.add(
          `${e.name}\0${e.exe}\0${e.errno}`,
          { name: e.name, exe: e.exe, errno: e.errno },
          e.count ?? 1,
        );
        return;
      }
      case 'dns.denied':
      case 'net.denied':
      case 'net.allowed':
        return this.addNet(e);
      case 'fs.change':
        this.counts[e.kind]++;
        if (this.paths.length < this.maxPaths) this.paths.push(e);
        return;
      case 'limit.hit':
        return void this.limits.push({ limit: e.limit, detail: e.detail });
      case 'policy.degraded':
        return void this.degraded.push({ control: e.control, reason: e.reason });
      case 'task.exited':
        this.exit = e;
        return;
      default:
        return;
    }
  }

  private addNet(e: AuditEventOf<'dns.denied' | 'net.denied' | 'net.allowed'>): void {
    if (e.type === 'dns.denied') {
      this.netDenied.add(`${e.name}\0dns\0${e.reason}`, {
        host: e.name,
        port: 53,
        reason: `DNS: ${e.reason}`,
        rule: e.rule,
      });
    } else if (e.type === 'net.denied') {
      this.netDenied.add(`${e.host}\0${e.port}\0${e.reason}`, {
        host: e.host,
        port: e.port,
        reason: e.reason,
        ...(e.rule !== undefined ? { rule: e.rule } : {}),
      });
    } else if (e.error !== undefined) {
      this.netFailed.add(`${e.host}\0${e.port}\0${e.error}`, {
        host: e.host,
        port: e.port,
        error: e.error,
      });
    } else {
      const hit = this.net.add(`${e.host}\0${e.port}`, {
        host: e.host,
        port: e.port,
        bytesUp: 0,
        bytesDown: 0,
      });
      hit.item.bytesUp += e.bytesUp ?? 0;
      hit.item.bytesDown += e.bytesDown ?? 0;
    }
  }
}

export function summarizeTask(task: TaskRow, events: AuditEvent[], maxPaths = 50): TaskSummary {
  const acc = new TaskAccumulator(maxPaths);
  for (const e of events) acc.add(e);
  const { ran, netDenied, sysDenied, execDenied, fileDenied, net, netFailed } = acc;
  const { counts, paths, limits, degraded, exit } = acc;

  const resources = readResources(task.report);
  for (const d of resources.degradations ?? []) {
    if (!degraded.some((x) => x.control === d.control)) degraded.push(d);
  }
  return {
    task,
    durationMs:
      exit?.durationMs ??
      resources.durationMs ??
      (task.endedAt !== null ? task.endedAt - task.createdAt : null),
    ran: ran.result(),
    denied: {
      network: netDenied.sorted(),
      syscalls: sysDenied.sorted(),
      exec: execDenied.sorted(),
      files: fileDenied.sorted(),
    },
    network: net.sorted(),
    networkFailed: netFailed.sorted(),
    changed: { counts, paths },
    limits,
    degraded,
    resources,
    exit,
    audit: {
      stored: task.eventCount,
      dropped: task.droppedEvents,
      droppedByType: task.droppedCounts,
    },
  };
}

const isRecord = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/**
 * Reads the resource figures from the stored task report. The report belongs to the cell
 * lifecycle; this accepts its figures at the top level or under `resources`, under the names
 * listed here, and ignores anything else.
 */
export function readResources(report: unknown): TaskResources {
  if (!isRecord(report)) return {};
  const scopes = [isRecord(report.resources) ? report.resources : {}, report];
  const num = (...names: string[]): number | undefined => {
    for (const scope of scopes) {
      for (const n of names) {
        const v = scope[n];
        if (typeof v === 'number' && Number.isFinite(v)) return v;
      }
    }
    return undefined;
  };
  const out: TaskResources = {};
  const set = <K extends keyof TaskResources>(k: K, v: TaskResources[K] | undefined) => {
    if (v !== undefined) out[k] = v;
  };
  set('durationMs', num('durationMs'));
  set('peakMemoryBytes', num('peakMemoryBytes', 'memoryPeakBytes', 'peakMemory'));
  set('peakPids', num('peakPids', 'pidsPeak'));
  set('cpuTimeMs', num('cpuTimeMs', 'cpuMs'));
  const limits = scopes.map((s) => s.limits).find(isRecord);
  set('limits', limits);
  const rawDegraded = scopes.map((s) => s.degradations ?? s.degraded).find(Array.isArray);
  if (rawDegraded) {
    set(
      'degradations',
      rawDegraded.map((d: unknown) =>
        isRecord(d)
          ? { control: String(d.control ?? d.name ?? '?'), reason: String(d.reason ?? '') }
          : { control: String(d), reason: '' },
      ),
    );
  }
  return out;
}

/** One line describing an event, without its time and seq. */
export function describeEvent(e: AuditEvent): string {
  const times = (n: number | undefined) => (n && n > 1 ? ` (×${n})` : '');
  switch (e.type) {
    case 'task.created':
      return `created: ${formatCommand(e.command)}${e.workspace ? ` in ${e.workspace}` : ''}`;
    case 'task.started':
      return `started${e.runtime ? ` (${e.runtime})` : ''}${e.cellId ? ` cell ${e.cellId}` : ''}`;
    case 'task.exited':
      return `ended: ${e.endReason}${e.exitCode !== null ? `, exit ${e.exitCode}` : ''} after ${formatDuration(e.durationMs)}${e.detail ? ` (${e.detail})` : ''}`;
    case 'exec':
      if (e.path === '' && e.argv.length === 0) return `${COUNTED_EXECS}${times(e.count)}`;
      return `${formatCommand(e.argv.length ? e.argv : [e.path])} [${e.path}] pid ${e.pid} ppid ${e.ppid} (unverified)${times(e.count)}`;
    case 'syscall.denied':
      return `${e.name} (nr ${e.nr}, ${e.arch}) by ${e.exe} pid ${e.pid} -> ${errnoName(e.errno)}${e.detail ? `: ${e.detail}` : ''}${times(e.count)}`;
    case 'net.allowed':
    case 'net.denied': {
      const traffic =
        e.bytesUp !== undefined || e.bytesDown !== undefined
          ? `, ${formatSize(e.bytesUp ?? 0)} up ${formatSize(e.bytesDown ?? 0)} down`
          : '';
      const took = e.durationMs !== undefined ? ` in ${formatDuration(e.durationMs)}` : '';
      const failed = e.type === 'net.allowed' && e.error ? ` (failed: ${e.error})` : '';
      return `${e.protocol} ${e.host}:${e.port}${e.ip && e.ip !== e.host ? ` (${e.ip})` : ''}: ${e.reason}${failed}${e.rule ? ` [rule ${e.rule}]` : ''}${traffic}${took}`;
    }
    case 'dns.denied':
      return `DNS ${e.qtype} ${e.name} over ${e.transport}: NXDOMAIN, ${e.reason} [rule ${e.rule}]`;
    case 'fs.change':
      return `${e.kind} ${e.path}${e.size !== undefined ? ` (${formatSize(e.size)})` : ''}`;
    case 'limit.hit':
      return `${e.limit}: ${e.detail}`;
    case 'policy.degraded':
      return `${e.control}: ${e.reason}`;
    case 'net.decision':
      return `${e.host}:${e.port}: ${e.decision === 'deny' ? 'denied' : e.decision === 'once' ? 'allowed once' : 'allowed for this cell'} by the user (uid ${e.uid})`;
    case 'net.rules': {
      const list = (l: string[]) => (l.length ? l.join(', ') : 'nothing');
      return `network.allow replaced: ${list(e.before)} -> ${list(e.after)}`;
    }
    case 'control':
      return `${e.refused ? 'refused ' : ''}${e.verb} by uid ${e.uid} pid ${e.pid}${e.argv ? `: ${e.argv.join(' ')}` : ''}`;
    case 'secret.used':
      return `${e.name} sent to ${e.host} (${e.method} ${e.path} -> ${e.status})`;
    case 'secret.misuse':
      return `${e.name} refused toward ${e.host}${e.path}: ${e.reason}`;
  }
}
