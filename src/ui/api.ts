// The dashboard's JSON API over the state root: live cells, the task history, a task's events
// grouped and counted, its change set a page at a time with a side-by-side diff per file, and
// the actions (apply all, discard, save as a patch). Strings go out as they were recorded;
// the page shows them as text with control characters made visible, never as markup.
import fs from 'node:fs';
import path from 'node:path';
import { diffLines } from 'diff';
import { AuditStore } from '../audit/store.js';
import type { AuditEvent } from '../audit/events.js';
import { describeEvent } from '../audit/summary.js';
import { ensureStateRoot, stateLayout } from '../cell/state.js';
import { decideEgress } from '../control/client.js';
import { applyChangeSet } from '../workspace/apply.js';
import { entryTexts, renderDiff } from '../workspace/diff.js';
import { discardChangeSet } from '../workspace/discard.js';
import { loadChangeSet } from '../workspace/manifest.js';
import { readFate, describeFate } from '../workspace/changeFate.js';
import { NanocellError } from '../util/errors.js';
import { listLiveCells } from '../cli/ps.js';
import { json, type Body } from './http.js';

export interface ApiContext {
  stateRoot: string;
}

interface ApiResult {
  status: number;
  body: Body;
  download?: string;
}

const ok = (v: unknown): ApiResult => ({ status: 200, body: json(v) });
const MAX_PAGE = 200;
/** Events read for one task page; the store keeps at most 10,000 per task by default. */
const MAX_EVENTS = 100_000;

export function handleApi(ctx: ApiContext, method: string, url: URL): ApiResult {
  const parts = url.pathname.split('/').slice(2).map(decodeURIComponent);
  const q = url.searchParams;
  if (method === 'GET' && parts[0] === 'cells' && parts.length === 1)
    return ok(listLiveCells(ctx.stateRoot));
  if (parts[0] !== 'tasks') return notFound();
  // No task was ever recorded here: nothing to open (a read-only store cannot create it).
  if (!fs.existsSync(ensureStateRoot(ctx.stateRoot).db))
    return parts.length === 1 ? ok([]) : notFound();
  if (method === 'GET' && parts.length === 1) return withStore(ctx, (s) => ok(history(s, q)));
  const input = parts[1] ?? '';
  return withStore(ctx, (store) => {
    let id: string;
    try {
      id = store.resolveTaskId(input);
    } catch (e) {
      return { status: 404, body: json({ error: (e as Error).message }) };
    }
    const what = parts[2] ?? '';
    if (method === 'GET' && what === '') return ok(taskPage(store, id));
    if (method === 'GET' && what === 'events') return ok(eventPage(store, id, q));
    const layout = ensureStateRoot(ctx.stateRoot);
    const dir = layout.changeSet(id);
    if (method === 'GET' && what === 'changes') return ok(changesPage(ctx.stateRoot, id, dir, q));
    if (method === 'GET' && what === 'diff') return ok(fileDiff(dir, q.get('path') ?? ''));
    if (method === 'GET' && what === 'patch') {
      const cs = loadChangeSet(dir);
      return {
        status: 200,
        body: { type: 'text/x-diff; charset=utf-8', body: renderDiff(dir, cs.manifest.projectDir) },
        download: `${id}.patch`,
      };
    }
    if (method === 'POST' && what === 'apply') {
      const cs = loadChangeSet(dir);
      const r = applyChangeSet(dir, fs.realpathSync(cs.manifest.projectDir), { force: false });
      discardChangeSet(dir, { record: false });
      return ok({ applied: r.applied });
    }
    if (method === 'POST' && what === 'discard') {
      loadChangeSet(dir);
      discardChangeSet(dir);
      return ok({ discarded: true });
    }
    return notFound();
  });
}

/**
 * POST /api/tasks/:id/egress?host=&port=&decision=once|cell|deny: the user's answer to a
 * running cell's refused destination, through the task's control socket into its proxy.
 */
export async function handleEgress(ctx: ApiContext, url: URL): Promise<ApiResult> {
  const id = decodeURIComponent(url.pathname.split('/')[3] ?? '');
  const q = url.searchParams;
  const decision = q.get('decision');
  const port = Number(q.get('port'));
  if (decision !== 'once' && decision !== 'cell' && decision !== 'deny')
    return { status: 400, body: json({ error: 'decision must be once, cell or deny' }) };
  const layout = stateLayout(ctx.stateRoot);
  let socket: string;
  try {
    socket = layout.controlSocket(id);
  } catch (e) {
    return { status: 404, body: json({ error: (e as Error).message }) };
  }
  try {
    await decideEgress(socket, id, q.get('host') ?? '', port, decision);
  } catch (e) {
    const n = e as NanocellError;
    return { status: 409, body: json({ error: n.message, fix: n.fix }) };
  }
  return ok({ decided: decision });
}

function notFound(): ApiResult {
  return { status: 404, body: json({ error: 'no such page' }) };
}

function withStore(ctx: ApiContext, f: (s: AuditStore) => ApiResult): ApiResult {
  const store = AuditStore.open(ensureStateRoot(ctx.stateRoot).db, { readonly: true });
  try {
    return f(store);
  } catch (e) {
    if (!(e instanceof NanocellError)) throw e;
    return { status: 409, body: json({ error: e.message, fix: e.fix }) };
  } finally {
    store.close();
  }
}

/** Filters: session, end reason, only tasks with denials. */
function history(store: AuditStore, q: URLSearchParams) {
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

function deniedCount(report: unknown): number {
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

function taskPage(store: AuditStore, id: string) {
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

function eventPage(store: AuditStore, id: string, q: URLSearchParams) {
  const after = Number(q.get('after') ?? -1);
  const events = store.events(id, {
    afterSeq: Number.isInteger(after) ? after : -1,
    limit: MAX_PAGE,
  });
  return events.map((e) => ({ seq: e.seq, time: e.time, type: e.type, text: describeEvent(e) }));
}

function changesPage(stateRoot: string, id: string, dir: string, q: URLSearchParams) {
  if (!fs.existsSync(dir)) {
    const fate = readFate(stateRoot, id);
    return { exists: false, fate: fate ? describeFate(fate) : 'no change set (nothing changed)' };
  }
  const { manifest: m } = loadChangeSet(dir);
  const offset = Math.max(0, Number(q.get('offset') ?? 0) || 0);
  return {
    exists: true,
    status: m.status,
    reason: m.reason,
    projectDir: m.projectDir,
    total: m.entries.length,
    offset,
    entries: m.entries.slice(offset, offset + MAX_PAGE).map((e) => ({
      path: e.path,
      kind: e.kind,
      type: e.type,
      size: e.size,
    })),
    refused: m.refused.slice(0, MAX_PAGE),
    refusedTotal: m.refused.length,
  };
}

type Row = { left?: string; right?: string; op: 'same' | 'del' | 'add' | 'mod' };

/** Side-by-side rows of one file: removed and added runs paired line by line. */
function fileDiff(dir: string, rel: string) {
  const { manifest: m } = loadChangeSet(dir);
  const e = m.entries.find((x) => x.path === rel);
  if (!e)
    throw new NanocellError(
      `no change to ${JSON.stringify(rel)} in this change set`,
      'pick a file from the list',
      'USAGE',
    );
  if (e.type !== 'file')
    return { path: rel, kind: e.kind, type: e.type, target: e.target, rows: [] };
  const t = entryTexts(dir, path.resolve(m.projectDir), e);
  if (!('before' in t)) return { path: rel, kind: e.kind, type: e.type, ...t, rows: [] };
  const rows: Row[] = [];
  let dels: string[] = [];
  const flush = (adds: string[]) => {
    const n = Math.max(dels.length, adds.length);
    for (let i = 0; i < n; i++) {
      const left = dels[i];
      const right = adds[i];
      rows.push({
        ...(left !== undefined ? { left } : {}),
        ...(right !== undefined ? { right } : {}),
        op: left === undefined ? 'add' : right === undefined ? 'del' : 'mod',
      });
    }
    dels = [];
  };
  for (const part of diffLines(t.before, t.after)) {
    const lines = part.value.replace(/\n$/, '').split('\n');
    if (part.removed) dels.push(...lines);
    else if (part.added) flush(lines);
    else {
      flush([]);
      for (const l of lines) rows.push({ left: l, right: l, op: 'same' });
    }
  }
  flush([]);
  return { path: rel, kind: e.kind, type: e.type, rows };
}
