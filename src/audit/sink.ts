// Turns the cell's raw events (from the monitor, the proxy and the lifecycle) into typed audit
// events, and keeps the per-task tallies the report needs. Raw events come partly from a
// process the task can influence (the monitor reads task memory), so every field is coerced.
import type { CellEvent } from './cellEvents.js';
import type { AuditEventInput } from './events.js';

const str = (v: unknown, max = 4096): string => String(v ?? '').slice(0, max);
// Integers the store accepts: safe integers (a pid of 1e300 is an integer, not a safe one).
const int = (v: unknown): number => Math.max(0, signed(v));
const signed = (v: unknown): number => {
  const n = Math.trunc(Number(v));
  return Number.isFinite(n) ? Math.max(-MAX_INT, Math.min(MAX_INT, n)) : 0;
};
const MAX_INT = Number.MAX_SAFE_INTEGER;
const strings = (v: unknown): string[] =>
  Array.isArray(v) ? v.slice(0, 256).map((a) => str(a, 512)) : [];

/**
 * The monitor's `syscall.denied.summary` counts are cumulative per (syscall, pid), and its
 * `exec.summary` count is cumulative too; it sends fresh ones every second. This keeps what was
 * already recorded so each denial and exec is counted once.
 */
export class DenialSummaries {
  private readonly recorded = new Map<string, number>();
  private execsRecorded = 0;

  /** How many of `total` execs counted past the monitor's cap are new since the last summary. */
  execDelta(total: number): number {
    if (total <= this.execsRecorded) return 0;
    const delta = total - this.execsRecorded;
    this.execsRecorded = total;
    return delta;
  }

  private droppedRecorded = 0;

  /** Denials the monitor could not attribute (its per-(syscall, pid) table was full). */
  droppedDelta(total: number): number {
    if (total <= this.droppedRecorded) return 0;
    const delta = total - this.droppedRecorded;
    this.droppedRecorded = total;
    return delta;
  }

  /** How many of `total` denials of `name` by `pid` are new since the last summary. */
  delta(name: string, pid: number, total: number): number {
    const key = `${name}\0${pid}`;
    const before = this.recorded.get(key) ?? 0;
    if (total <= before) return 0;
    this.recorded.set(key, total);
    return total - before;
  }
}

/** Maps one raw cell event; pass the task's DenialSummaries so summaries are not recounted. */
export function toAuditEvents(e: CellEvent, summaries = new DenialSummaries()): AuditEventInput[] {
  // The type may come from the monitor, which the task can influence: own keys only.
  if (!Object.hasOwn(MAPPERS, e.type)) return [];
  return (MAPPERS[e.type as keyof typeof MAPPERS] as Mapper)(e as Raw, summaries);
}

type Raw = Record<string, unknown> & { type: string };
type Mapper = (e: Raw, summaries: DenialSummaries) => AuditEventInput[];

const MAPPERS = {
  exec: (e) => [
    {
      type: 'exec',
      path: str(e.path),
      argv: Array.isArray(e.argv) ? e.argv.slice(0, 64).map((a) => str(a, 256)) : [],
      pid: int(e.pid),
      ppid: int(e.ppid),
      unverified: true,
    },
  ],
  // Past its cap the monitor reads no path or argv, only counts: keep the count.
  'exec.summary': (e, summaries) => {
    const count = summaries.execDelta(int(e.count));
    if (count === 0) return [];
    return [{ type: 'exec', path: '', argv: [], pid: 0, ppid: 0, unverified: true, count }];
  },
  'syscall.denied': (e) => [
    {
      type: 'syscall.denied',
      name: str(e.name, 64),
      nr: signed(e.nr),
      arch: str(e.arch, 16),
      pid: int(e.pid),
      exe: str(e.exe, 1024),
      errno: int(e.errno),
      ...(e.detail ? { detail: str(e.detail, 1024) } : {}),
    },
  ],
  'syscall.denied.summary': deniedSummary,
  'net.allowed': netEvent,
  'net.denied': netEvent,
  'dns.denied': (e) => [
    {
      type: 'dns.denied',
      name: str(e.name, 255),
      qtype: str(e.qtype, 16),
      rule: str(e.rule, 256),
      reason: str(e.reason, 512),
      transport: str(e.transport, 8),
    },
  ],
  'limit.hit': (e) => [{ type: 'limit.hit', limit: e.limit as 'oom', detail: str(e.detail, 1024) }],
  'policy.degraded': (e) => [
    { type: 'policy.degraded', control: str(e.control, 64), reason: str(e.reason, 1024) },
  ],
  'fs.change': (e) => [
    {
      type: 'fs.change',
      path: str(e.path),
      kind: e.kind as 'added',
      ...(e.size !== undefined ? { size: int(e.size) } : {}),
    },
  ],
  // Built by the supervisor from validated entries (netControl.ts); bounded all the same.
  'net.rules': (e) => [
    {
      type: 'net.rules',
      before: strings(e.before),
      after: strings(e.after),
    },
  ],
  'secret.used': (e) => [
    {
      type: 'secret.used',
      name: str(e.name, 128),
      host: str(e.host, 255),
      method: str(e.method, 32),
      path: str(e.path, 1024),
      status: Math.min(999, int(e.status)),
    },
  ],
  'secret.misuse': (e) => [
    {
      type: 'secret.misuse',
      name: str(e.name, 128),
      host: str(e.host, 255),
      path: str(e.path, 1024),
      reason: str(e.reason, 512),
    },
  ],
  'task.started': (e) => [
    {
      type: 'task.started',
      ...(e.runtime ? { runtime: str(e.runtime, 128) } : {}),
      ...(e.cellId ? { cellId: str(e.cellId, 128) } : {}),
    },
  ],
} satisfies Record<string, Mapper>;

function netEvent(e: Raw): AuditEventInput[] {
  const type = e.type as 'net.allowed' | 'net.denied';
  return [
    {
      type,
      host: str(e.host, 255),
      port: Math.min(65535, int(e.port)),
      ...(e.ip ? { ip: str(e.ip, 64) } : {}),
      ...(e.rule ? { rule: str(e.rule, 256) } : {}),
      reason: str(e.reason ?? (type === 'net.allowed' ? 'allowed' : 'denied'), 512),
      protocol: str(e.protocol, 32),
      ...(type === 'net.allowed' && e.error ? { error: str(e.error, 512) } : {}),
      ...(e.bytesUp !== undefined ? { bytesUp: int(e.bytesUp) } : {}),
      ...(e.bytesDown !== undefined ? { bytesDown: int(e.bytesDown) } : {}),
      ...(e.durationMs !== undefined ? { durationMs: int(e.durationMs) } : {}),
    },
  ];
}

function deniedSummary(e: Raw, summaries: DenialSummaries): AuditEventInput[] {
  const counts = Array.isArray(e.counts) ? (e.counts as Record<string, unknown>[]) : [];
  // Denials past the monitor's attribution table are still denials: record them as a count
  // under a name that says so, rather than letting a flood hide what followed it.
  const dropped = summaries.droppedDelta(int(e.dropped));
  const unattributed: AuditEventInput[] = dropped
    ? [
        {
          type: 'syscall.denied',
          name: '(unattributed)',
          nr: -1,
          arch: '',
          pid: 0,
          exe: '',
          errno: 1,
          count: dropped,
        },
      ]
    : [];
  return [
    ...unattributed,
    ...counts.slice(0, 1000).flatMap((c) => {
      const name = str(c.name, 64);
      const pid = int(c.pid);
      const count = summaries.delta(name, pid, int(c.count));
      if (count === 0) return [];
      return [
        {
          type: 'syscall.denied' as const,
          name,
          nr: signed(c.nr),
          arch: str(c.arch ?? '', 16),
          pid,
          exe: str(c.exe ?? '', 1024),
          errno: int(c.errno ?? 1),
          count,
        },
      ];
    }),
  ];
}

/** Per-task tallies for the report: counts plus the first few of each kind, in full. */
export class TaskTally {
  static readonly KEEP = 50;
  execs = 0;
  syscallDenied = 0;
  netAllowed = 0;
  netDenied = 0;
  limitHits: { limit: string; detail: string }[] = [];
  degradations: { control: string; reason: string }[] = [];
  readonly firstDenials: AuditEventInput[] = [];
  readonly firstNet: AuditEventInput[] = [];
  readonly firstExecs: AuditEventInput[] = [];
  readonly deniedBySyscall = new Map<string, number>();

  add(e: AuditEventInput): void {
    switch (e.type) {
      case 'exec':
        this.execs += e.count ?? 1;
        if (this.firstExecs.length < TaskTally.KEEP) this.firstExecs.push(e);
        break;
      case 'syscall.denied': {
        const n = e.count ?? 1;
        this.syscallDenied += n;
        this.deniedBySyscall.set(e.name, (this.deniedBySyscall.get(e.name) ?? 0) + n);
        if (this.firstDenials.length < TaskTally.KEEP) this.firstDenials.push(e);
        break;
      }
      case 'dns.denied':
      case 'net.allowed':
      case 'net.denied':
        if (e.type === 'net.allowed') this.netAllowed++;
        else this.netDenied++;
        if (this.firstNet.length < TaskTally.KEEP) this.firstNet.push(e);
        break;
      case 'limit.hit':
        if (this.limitHits.length < TaskTally.KEEP)
          this.limitHits.push({ limit: e.limit, detail: e.detail });
        break;
      case 'policy.degraded':
        this.degradations.push({ control: e.control, reason: e.reason });
        break;
      default:
        break;
    }
  }
}
