// The task views of the dashboard's API: the history with its filters, one task's events
// grouped and counted (a flood of 10,000 stays one row), and a page of its raw events.
import type { AuditEvent } from '../audit/events.js';
import type { AuditStore } from '../audit/store.js';
import { describeEvent } from '../audit/summary.js';

const MAX_PAGE = 200;
/** Events read for one task page; the store keeps at most 10,000 per task by default. */
const MAX_EVENTS = 100_000;

/** Filters: session, end reason, only tasks with denials. */
export function history(store: AuditStore, q: URLSearchParams) {
  const session = q.get('session') || undefined;
  const reason = q.get('reason') || undefined;
  const denials = q.get('denials') === '1';
  const rows = store.listTasks({ ...(session ? { session } : {}), limit: 5000 });
  return rows
    .filter((t) => !reason || t.endReason === reason)
    .map((t) => ({ ...t, denied: deniedCount(t.report) }))
    .filter((t) => !denials || t.denied > 0)
    .slice(0, 500)
    .map((t) => ({
      id: t.id,
      session: t.session,
      command: t.command,
      status: t.status,
      endReason: t.endReason,
      exitCode: t.exitCode,
      createdAt: t.createdAt,
      endedAt: t.endedAt,
      events: t.eventCount,
      denied: t.denied,
    }));
}

export function deniedCount(report: unknown): number {
  const e = (report as { events?: { syscallDenied?: number; netDenied?: number } } | null)?.events;
  return (e?.syscallDenied ?? 0) + (e?.netDenied ?? 0);
}

/** What an event is "the same" as, for counting: execs by path, denials by syscall, ... */
function groupKey(e: AuditEvent): string {
  switch (e.type) {
    case 'exec':
      return e.path;
    case 'syscall.denied':
      return `${e.name} -> ${e.errno}`;
    case 'net.allowed':
    case 'net.denied':
      return `${e.host}:${e.port}`;
    case 'fs.change':
      return e.kind;
    case 'limit.hit':
      return e.limit;
    case 'control':
      return `${e.refused ? 'refused ' : ''}${e.verb}`;
    default:
      return '';
  }
}

export function taskPage(store: AuditStore, id: string) {
  const task = store.getTask(id)!;
  const verdict = store.verifyTask(id);
  const events = store.events(id, { limit: MAX_EVENTS });
  const groups = new Map<
    string,
    { type: string; key: string; count: number; first: number; last: number; sample: string }
  >();
  for (const e of events) {
    const key = groupKey(e);
    const k = `${e.type}\0${key}`;
    const n = (e as { count?: number }).count ?? 1;
    const g = groups.get(k);
    if (g) {
      g.count += n;
      g.last = e.time;
    } else {
      groups.set(k, {
        type: e.type,
        key,
        count: n,
        first: e.time,
        last: e.time,
        sample: describeEvent(e),
      });
    }
  }
  return {
    task: { ...task, report: undefined },
    report: task.report,
    chain: verdict,
    eventCount: events.length,
    groups: [...groups.values()],
  };
}

export function eventPage(store: AuditStore, id: string, q: URLSearchParams) {
  const after = Number(q.get('after') ?? -1);
  const events = store.events(id, {
    afterSeq: Number.isInteger(after) ? after : -1,
    limit: MAX_PAGE,
  });
  return events.map((e) => ({ seq: e.seq, time: e.time, type: e.type, text: describeEvent(e) }));
}
