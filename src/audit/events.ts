// The audit event vocabulary: one strict zod schema per event type, discriminated on `type`.
// Every stored event carries `v` (the schema version of its type), `taskId`, `session`, `time`
// (epoch ms) and `seq` (per task, from 0, contiguous). The store assigns `v`, `time` and `seq`;
// producers build an `AuditEventInput`.
//
// Objects are strict: a misspelt field from a producer is a bug we want to see at append time,
// not a silently missing fact in the audit trail.
import { z } from 'zod';

/** Version of the event schemas below; bump it (and keep reading old ones) when a type changes. */
export const AUDIT_EVENT_VERSION = 1;

const endReasons = ['exited', 'signaled', 'timeout', 'oom', 'killed', 'stopped', 'error'] as const;
export type EndReason = (typeof endReasons)[number];

const fsChangeKinds = ['added', 'modified', 'deleted', 'mode', 'symlink'] as const;
export type FsChangeKind = (typeof fsChangeKinds)[number];

/** `changes`: the change set could not be kept (too big, unreadable, hostile names). */
const limitKinds = ['oom', 'pids', 'timeout', 'output', 'disk', 'changes'] as const;

const count = z.number().int().nonnegative();
const pid = z.number().int().nonnegative();
/** Aggregated summaries (the monitor aggregates past its own cap) say how many they stand for. */
const aggregateCount = z.number().int().positive().optional();

const envelope = {
  v: z.number().int().positive(),
  taskId: z.string().min(1),
  session: z.string(),
  time: z.number().int().nonnegative(),
  seq: z.number().int().nonnegative(),
};

const payloads = {
  'task.created': {
    command: z.array(z.string()),
    /** A short, JSON-safe summary of the effective policy (limits, network, degradations). */
    policy: z.record(z.string(), z.unknown()),
    workspace: z.string().optional(),
    /** The caller's metadata labels (CellOptions.labels), checked by src/cell/labels.ts. */
    labels: z.record(z.string(), z.string()).optional(),
  },
  'task.started': {
    /** The runtime that started the cell, e.g. "runc 1.1.5". */
    runtime: z.string().optional(),
    /** The cell's id: its runtime container and cgroup name, to match host-side traces. */
    cellId: z.string().optional(),
  },
  'task.exited': {
    exitCode: z.number().int().nullable(),
    endReason: z.enum(endReasons),
    durationMs: count,
    /** Why the end is what it is when that is not obvious (e.g. crash recovery). */
    detail: z.string().optional(),
  },
  exec: {
    path: z.string(),
    argv: z.array(z.string()),
    pid,
    ppid: pid,
    /**
     * The path and argv are read from the task's memory by the seccomp agent before execve runs,
     * so a hostile task can change them afterwards (TOCTOU): they are a hint, not proof.
     */
    unverified: z.literal(true),
    count: aggregateCount,
  },
  'syscall.denied': {
    name: z.string(),
    nr: z.number().int(),
    arch: z.string(),
    pid,
    exe: z.string(),
    errno: z.number().int().nonnegative(),
    /** What was refused and why, when the monitor's exec guard refused it (one line). */
    detail: z.string().optional(),
    count: aggregateCount,
  },
  'net.allowed': netPayload(),
  'net.denied': netPayload(),
  /** The cell's DNS stub refused a name (NXDOMAIN): the name is what a task tried to reach. */
  'dns.denied': {
    name: z.string(),
    qtype: z.string(),
    rule: z.string(),
    reason: z.string(),
    /** 'udp' or 'tcp'. */
    transport: z.string(),
  },
  'fs.change': {
    path: z.string(),
    kind: z.enum(fsChangeKinds),
    /** Size in bytes after the change; absent for deletions. */
    size: count.optional(),
  },
  'limit.hit': {
    limit: z.enum(limitKinds),
    detail: z.string(),
  },
  'policy.degraded': {
    control: z.string(),
    reason: z.string(),
  },
  /** A request on the task's control socket (`nanocell exec`, `stop`, `kill`), or a refusal. */
  control: {
    verb: z.string(),
    /** The requester's uid and pid, from SO_PEERCRED (what the kernel recorded at connect). */
    uid: count,
    pid: z.number().int(),
    argv: z.array(z.string()).optional(),
    refused: z.literal(true).optional(),
  },
  /** The user's answer to a refused destination of a running cell (the dashboard's requests). */
  'net.decision': {
    host: z.string(),
    port: z.number().int().min(1).max(65535),
    decision: z.enum(['once', 'cell', 'deny']),
    uid: count,
    pid: z.number().int(),
  },
  /**
   * The cell's `network.allow` list was replaced while it ran (Cell.setNetwork), for
   * connections from then on: the entries in force before and after.
   */
  'net.rules': {
    before: z.array(z.string()),
    after: z.array(z.string()),
  },
  /** A brokered secret's placeholder was replaced by its value on a request to a bound host. */
  'secret.used': {
    name: z.string(),
    host: z.string(),
    method: z.string(),
    path: z.string(),
    /** The upstream's status (0: a plain-HTTP relay, not read). */
    status: z.number().int().min(0).max(999),
  },
  /** A placeholder went somewhere its secret is not bound to: the request was refused. */
  'secret.misuse': {
    name: z.string(),
    host: z.string(),
    path: z.string(),
    reason: z.string(),
  },
} as const;

function netPayload() {
  return {
    host: z.string(),
    port: z.number().int().min(0).max(65535),
    /** The address actually dialled (allowed) or resolved (denied), when known. */
    ip: z.string().optional(),
    /** The policy rule that decided, when one did. */
    rule: z.string().optional(),
    reason: z.string(),
    /** e.g. "http-connect", "socks5", "http". */
    protocol: z.string(),
    /** An allowed connection that could not be made: why (e.g. the name does not resolve). */
    error: z.string().optional(),
    /** Known once the connection closed; absent for refusals. */
    bytesUp: count.optional(),
    bytesDown: count.optional(),
    durationMs: count.optional(),
  };
}

type Payloads = typeof payloads;
export type AuditEventType = keyof Payloads;
export const auditEventTypes = Object.keys(payloads) as AuditEventType[];

function eventSchema<T extends AuditEventType>(type: T) {
  return z.strictObject({ type: z.literal(type), ...envelope, ...payloads[type] });
}

function inputSchema<T extends AuditEventType>(type: T) {
  // taskId and session may be given; the store checks them against the task it appends to.
  return z.strictObject({
    type: z.literal(type),
    taskId: envelope.taskId.optional(),
    session: envelope.session.optional(),
    ...payloads[type],
  });
}

export const auditEventSchema = z.discriminatedUnion('type', [
  eventSchema('task.created'),
  eventSchema('task.started'),
  eventSchema('task.exited'),
  eventSchema('exec'),
  eventSchema('syscall.denied'),
  eventSchema('net.allowed'),
  eventSchema('net.denied'),
  eventSchema('dns.denied'),
  eventSchema('fs.change'),
  eventSchema('limit.hit'),
  eventSchema('policy.degraded'),
  eventSchema('control'),
  eventSchema('net.decision'),
  eventSchema('net.rules'),
  eventSchema('secret.used'),
  eventSchema('secret.misuse'),
]);

export const auditEventInputSchema = z.discriminatedUnion('type', [
  inputSchema('task.created'),
  inputSchema('task.started'),
  inputSchema('task.exited'),
  inputSchema('exec'),
  inputSchema('syscall.denied'),
  inputSchema('net.allowed'),
  inputSchema('net.denied'),
  inputSchema('dns.denied'),
  inputSchema('fs.change'),
  inputSchema('limit.hit'),
  inputSchema('policy.degraded'),
  inputSchema('control'),
  inputSchema('net.decision'),
  inputSchema('net.rules'),
  inputSchema('secret.used'),
  inputSchema('secret.misuse'),
]);

export type AuditEvent = z.output<typeof auditEventSchema>;
/** What producers append: an event without `v`, `time` and `seq` (taskId/session optional). */
export type AuditEventInput = z.input<typeof auditEventInputSchema>;
export type AuditEventOf<T extends AuditEventType> = Extract<AuditEvent, { type: T }>;

/** Events the supervisor itself emits, a handful per task; they are stored even past the cap. */
export const lifecycleEventTypes: ReadonlySet<AuditEventType> = new Set([
  'task.created',
  'task.started',
  'task.exited',
]);

/**
 * Bounds what one event can cost: a hostile task controls argv, paths and host names, so long
 * strings and arrays are cut (with a visible marker) before they are stored.
 */
export function boundEventSize<T>(value: T, maxString = 4096, maxArray = 256): T {
  return bound(value, maxString, maxArray) as T;
}

function bound(value: unknown, maxString: number, maxArray: number): unknown {
  if (typeof value === 'string') {
    return value.length > maxString
      ? `${value.slice(0, maxString)}…[${value.length - maxString} more chars]`
      : value;
  }
  if (Array.isArray(value)) {
    const kept = value.slice(0, maxArray).map((v) => bound(v, maxString, maxArray));
    if (value.length > maxArray) kept.push(`…[${value.length - maxArray} more items]`);
    return kept;
  }
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = bound(v, maxString, maxArray);
    return out;
  }
  return value;
}
