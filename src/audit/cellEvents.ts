// The raw events a cell produces, before the task's audit sink (src/audit/sink.ts) turns
// them into stored AuditEvents. The audit layer owns the type so that the cell that emits
// them, the proxy adapter and the sink all name one union without an import cycle.
//
// Lifecycle, workspace and proxy events are built by the supervisor and typed exactly. The
// monitor's events carry what the task did (the monitor reads task memory), so their fields
// stay `unknown` here and the sink coerces each one.
import type { FsChangeKind } from './events.js';
import type { SecretEvent } from '../net/secrets.js';

type LimitKind = 'oom' | 'pids' | 'timeout' | 'output' | 'disk' | 'changes';

export interface NetCellEvent {
  type: 'net.allowed' | 'net.denied';
  host: string;
  port: number;
  ip: string | undefined;
  rule: string;
  reason: string;
  error?: string;
  protocol: string;
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
}

/** The cell's DNS stub refused a name (src/net/dnsStub.ts). */
interface DnsDeniedCellEvent {
  type: 'dns.denied';
  time: string;
  name: string;
  qtype: string;
  rule: string;
  reason: string;
  transport: string;
}

/**
 * The monitor's audit lines (src/cell/monitor.ts reads them), with the fields as it sent them:
 * exec (path, argv, pid, ppid), exec.summary (count), syscall.denied (name, nr, arch, pid,
 * exe, errno, detail), syscall.denied.summary (counts, dropped), each with its time.
 */
type MonitorLine<T extends string> = { type: T; [field: string]: unknown };
export type MonitorAuditEvent =
  | MonitorLine<'exec'>
  | MonitorLine<'exec.summary'>
  | MonitorLine<'syscall.denied'>
  | MonitorLine<'syscall.denied.summary'>;

export const monitorAuditTypes: ReadonlySet<string> = new Set([
  'exec',
  'exec.summary',
  'syscall.denied',
  'syscall.denied.summary',
]);

export type CellEvent =
  | { type: 'task.started'; cellId: string; runtime?: string }
  | { type: 'policy.degraded'; control: string; reason: string }
  | { type: 'limit.hit'; limit: LimitKind; detail: string }
  | { type: 'fs.change'; path: string; kind: FsChangeKind; size?: number }
  | { type: 'net.rules'; before: string[]; after: string[] }
  | NetCellEvent
  | DnsDeniedCellEvent
  | SecretCellEvent
  | MonitorAuditEvent;

/** The credential broker's records; values never appear in them. */
type SecretCellEvent = SecretEvent;
