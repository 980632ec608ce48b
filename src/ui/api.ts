// The dashboard's JSON API over the state root: live cells, the task history, a task's events
// grouped and counted, its change set a page at a time with a side-by-side diff per file, the
// sessions, and the actions (apply all or chosen files, discard, save as a patch). Strings go
// out as they were recorded; the page shows them as text with control characters made
// visible, never as markup.
import fs from 'node:fs';
import { AuditStore } from '../audit/store.js';
import { ensureStateRoot, stateLayout } from '../cell/state.js';
import { decideEgress } from '../control/client.js';
import { discardChangeSet } from '../workspace/discard.js';
import { loadChangeSet } from '../workspace/manifest.js';
import { NanocellError } from '../util/errors.js';
import { liveCells, type CpuReadings } from './cellsApi.js';
import { applyAction, changesPage, fileDiff, patchOf } from './changesApi.js';
import { json, type Body } from './http.js';
import { sessionList, sessionPage } from './sessionApi.js';
import { eventPage, history, taskPage } from './taskApi.js';

export interface ApiContext {
  stateRoot: string;
  cpu: CpuReadings;
}

interface ApiResult {
  status: number;
  body: Body;
  download?: string;
}

const ok = (v: unknown): ApiResult => ({ status: 200, body: json(v) });

export function handleApi(ctx: ApiContext, method: string, url: URL): ApiResult {
  const parts = url.pathname.split('/').slice(2).map(decodeURIComponent);
  const q = url.searchParams;
  if (method === 'GET' && parts[0] === 'cells' && parts.length === 1)
    return ok(liveCells(ctx.stateRoot, ctx.cpu));
  if (method === 'GET' && parts[0] === 'sessions' && parts.length === 1)
    return guarded(() => ok(sessionList(ctx.stateRoot)));
  if (parts[0] !== 'tasks' && parts[0] !== 'sessions') return notFound();
  // No task was ever recorded here: nothing to open (a read-only store cannot create it).
  if (!fs.existsSync(ensureStateRoot(ctx.stateRoot).db))
    return parts.length === 1 ? ok([]) : notFound();
  if (method === 'GET' && parts[0] === 'sessions' && parts.length === 2)
    return withStore(ctx, (s) => ok(sessionPage(ctx.stateRoot, s, parts[1]!)));
  if (parts[0] !== 'tasks') return notFound();
  if (method === 'GET' && parts.length === 1) return withStore(ctx, (s) => ok(history(s, q)));
  const input = parts[1] ?? '';
  return withStore(ctx, (store) => {
    let id: string;
    try {
      id = store.resolveTaskId(input);
    } catch (e) {
      return { status: 404, body: json({ error: (e as Error).message }) };
    }
    return taskRoute(ctx, store, id, method, parts[2] ?? '', q);
  });
}

function taskRoute(
  ctx: ApiContext,
  store: AuditStore,
  id: string,
  method: string,
  what: string,
  q: URLSearchParams,
): ApiResult {
  if (method === 'GET' && what === '') return ok(taskPage(store, id));
  if (method === 'GET' && what === 'events') return ok(eventPage(store, id, q));
  const dir = ensureStateRoot(ctx.stateRoot).changeSet(id);
  if (method === 'GET' && what === 'changes') return ok(changesPage(ctx.stateRoot, id, dir, q));
  if (method === 'GET' && what === 'diff') return ok(fileDiff(dir, q.get('path') ?? ''));
  if (method === 'GET' && what === 'patch') {
    const body = { type: 'text/x-diff; charset=utf-8', body: patchOf(dir) };
    return { status: 200, body, download: `${id}.patch` };
  }
  if (method === 'POST' && what === 'apply') return ok(applyAction(dir, q.getAll('only')));
  if (method === 'POST' && what === 'discard') {
    loadChangeSet(dir);
    discardChangeSet(dir);
    return ok({ discarded: true });
  }
  return notFound();
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

/** A NanocellError is the answer (409 with its message and fix); anything else is a bug. */
function guarded(f: () => ApiResult): ApiResult {
  try {
    return f();
  } catch (e) {
    if (!(e instanceof NanocellError)) throw e;
    return { status: 409, body: json({ error: e.message, fix: e.fix }) };
  }
}

function withStore(ctx: ApiContext, f: (s: AuditStore) => ApiResult): ApiResult {
  const store = AuditStore.open(ensureStateRoot(ctx.stateRoot).db, { readonly: true });
  try {
    return guarded(() => f(store));
  } finally {
    store.close();
  }
}
