import Database from 'better-sqlite3';
import { closeSync, openSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEventInput } from '../../../src/audit/events.js';
import { AuditStore, newTaskId } from '../../../src/audit/store.js';
import { NanocellError } from '../../../src/util/errors.js';
import { sampleInputs } from '../../unit/audit/samples.js';
import { tempStateRoot } from './helpers/tempStore.js';

let env: ReturnType<typeof tempStateRoot>;
const stores: AuditStore[] = [];
function open(opts?: Parameters<typeof AuditStore.open>[1], path = env.dbPath): AuditStore {
  const s = AuditStore.open(path, opts);
  stores.push(s);
  return s;
}

beforeEach(() => {
  env = tempStateRoot();
});
afterEach(() => {
  for (const s of stores.splice(0)) s.close();
  env.cleanup();
});

function catchError(fn: () => unknown): NanocellError {
  try {
    fn();
  } catch (e) {
    return e as NanocellError;
  }
  throw new Error('expected an error');
}

function recordTask(store: AuditStore, events: AuditEventInput[] = [], session = 's1'): string {
  const id = newTaskId();
  store.createTask({
    id,
    session,
    command: ['npm', 'test'],
    workspace: '/p',
    ownerPid: process.pid,
    policy: { memory: 1 },
  });
  for (const e of events) store.append(id, e);
  return id;
}

const lifecycle = new Set(['task.created', 'task.exited']);
const body = sampleInputs.filter((e) => !lifecycle.has(e.type));

describe('AuditStore: recording and reading', () => {
  it('creates the database privately, in WAL mode, and stores every event type in order', () => {
    const store = open();
    const id = recordTask(store, body);
    store.endTask(id, {
      status: 'exited',
      endReason: 'exited',
      exitCode: 0,
      report: { peakPids: 3 },
    });
    expect(statSync(env.dbPath).mode & 0o777).toBe(0o600);
    const raw = new Database(env.dbPath, { readonly: true });
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    raw.close();

    const events = store.events(id);
    expect(events.map((e) => e.type)).toEqual([
      'task.created',
      ...body.map((e) => e.type),
      'task.exited',
    ]);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i));
    for (const e of events) {
      expect(e).toMatchObject({ v: 1, taskId: id, session: 's1' });
      expect(e.time).toBeGreaterThan(0);
    }
    expect(events[0]).toMatchObject({
      command: ['npm', 'test'],
      policy: { memory: 1 },
      workspace: '/p',
    });
    expect(events.at(-1)).toMatchObject({ type: 'task.exited', exitCode: 0, endReason: 'exited' });

    const task = store.getTask(id)!;
    expect(task).toMatchObject({
      id,
      session: 's1',
      command: ['npm', 'test'],
      status: 'exited',
      endReason: 'exited',
      exitCode: 0,
      workspace: '/p',
      report: { peakPids: 3 },
      eventCount: events.length,
      droppedEvents: 0,
      ownerPid: process.pid,
    });
    expect(task.endedAt).toBeGreaterThanOrEqual(task.createdAt);
    expect(task.ownerStartTime).toBeGreaterThan(0);
    expect(store.events(id, { afterSeq: 2, limit: 3 }).map((e) => e.seq)).toEqual([3, 4, 5]);
    expect(store.verifyTask(id)).toEqual({ ok: true, checked: events.length });
  });

  it('makes queued events visible to other processes within the flush interval', async () => {
    const writer = open();
    const id = recordTask(writer);
    writer.append(id, body[0]!);
    expect(writer.pending).toBe(1);
    await new Promise((r) => setTimeout(r, 150));
    expect(writer.pending).toBe(0);
    const reader = open({ readonly: true });
    expect(reader.events(id).map((e) => e.type)).toEqual(['task.created', body[0]!.type]);
  });

  it('does not duplicate task.exited when the caller recorded one, and ends only once', () => {
    const store = open();
    const id = recordTask(store);
    store.append(id, {
      type: 'task.exited',
      exitCode: null,
      endReason: 'timeout',
      durationMs: 5,
      detail: 'after 5ms',
    });
    store.endTask(id, { status: 'failed', endReason: 'timeout', exitCode: 124 });
    store.endTask(id, { status: 'exited', endReason: 'exited', exitCode: 0 });
    const exits = store.events(id).filter((e) => e.type === 'task.exited');
    expect(exits).toHaveLength(1);
    expect(store.getTask(id)).toMatchObject({
      status: 'failed',
      endReason: 'timeout',
      exitCode: 124,
    });
  });

  it('counts, without storing, events that arrive after the end', () => {
    const store = open();
    const id = recordTask(store);
    store.endTask(id, { status: 'exited', endReason: 'exited', exitCode: 0 });
    store.append(id, body[2]!);
    store.flush();
    const other = open();
    other.append(id, body[2]!);
    other.flush();
    // An aggregated event stands for `count` occurrences, and is counted as that many.
    const n = 2 * ((body[2] as { count?: number }).count ?? 1);
    expect(store.getTask(id)).toMatchObject({
      eventCount: 2,
      droppedEvents: n,
      droppedCounts: { [body[2]!.type]: n },
    });
    expect(store.verifyTask(id).ok).toBe(true);
  });

  it('rejects malformed events, task.created appends and unknown tasks', () => {
    const store = open();
    const id = recordTask(store);
    expect(() =>
      store.append(id, { type: 'fs.change', path: 'a', kind: 'renamed' } as never),
    ).toThrow(/invalid fs.change/);
    expect(() => store.append(id, { ...body[0]!, bogus: 1 } as never)).toThrow(NanocellError);
    expect(() => store.append(id, { type: 'task.created', command: [], policy: {} })).toThrow(
      /createTask/,
    );
    expect(() => store.append('nope', body[0]!)).toThrow(/unknown task nope/);
    expect(() => store.append(id, { ...body[0]!, taskId: 'other' } as AuditEventInput)).toThrow(
      /appended to task/,
    );
    expect(store.getTask('nope')).toBeUndefined();
  });

  it('bounds the size of one event from hostile strings', () => {
    const store = open();
    const id = recordTask(store, [
      {
        type: 'exec',
        path: 'p'.repeat(100_000),
        argv: Array.from({ length: 10_000 }, () => 'a'),
        pid: 1,
        ppid: 0,
        unverified: true,
      },
    ]);
    const e = store.events(id)[1]!;
    expect(e.type).toBe('exec');
    expect(JSON.stringify(e).length).toBeLessThan(10_000);
    expect(store.verifyTask(id).ok).toBe(true);
  });

  it('lists tasks newest first, filtered by session, status and time', async () => {
    const store = open();
    const a = recordTask(store, [], 'alpha');
    await new Promise((r) => setTimeout(r, 5));
    const b = recordTask(store, [], 'beta');
    store.endTask(b, { status: 'exited', endReason: 'exited', exitCode: 0 });
    await new Promise((r) => setTimeout(r, 5));
    const cutoff = Date.now();
    await new Promise((r) => setTimeout(r, 5));
    const c = recordTask(store, [], 'alpha');
    expect(store.listTasks({}).map((t) => t.id)).toEqual([c, b, a]);
    expect(store.listTasks({ session: 'alpha' }).map((t) => t.id)).toEqual([c, a]);
    expect(store.listTasks({ status: 'exited' }).map((t) => t.id)).toEqual([b]);
    expect(store.listTasks({ sinceMs: cutoff }).map((t) => t.id)).toEqual([c]);
    expect(store.listTasks({ limit: 1 }).map((t) => t.id)).toEqual([c]);
  });

  it('resolves unique prefixes and refuses unknown or ambiguous ones', () => {
    const store = open();
    const a = recordTask(store);
    const b = recordTask(store);
    expect(store.resolveTaskId(a)).toBe(a);
    let i = 0;
    while (a[i] === b[i]) i++;
    expect(store.resolveTaskId(a.slice(0, i + 1))).toBe(a);
    expect(store.resolveTaskId(b.slice(0, i + 1).toUpperCase())).toBe(b);
    expect(() => store.resolveTaskId(a.slice(0, i))).toThrow(/ambiguous/);
    expect(() => store.resolveTaskId('zzzz')).toThrow(/no task "zzzz"/);
    expect(() => store.resolveTaskId("x' OR 1=1")).toThrow(NanocellError);
  });
});

describe('AuditStore: tamper detection', () => {
  function recorded(): { store: AuditStore; id: string } {
    const store = open();
    const id = recordTask(store, body);
    store.endTask(id, { status: 'exited', endReason: 'exited', exitCode: 0 });
    expect(store.verifyTask(id)).toMatchObject({ ok: true });
    return { store, id };
  }

  it('finds a payload edited with raw SQL at its seq', () => {
    const { store, id } = recorded();
    const raw = new Database(env.dbPath);
    raw
      .prepare(
        "UPDATE events SET payload = replace(payload, 'evil.example', 'good.example') WHERE task_id = ? AND seq = 5",
      )
      .run(id);
    raw.close();
    expect(store.events(id)[5]).toMatchObject({ type: 'net.denied', host: 'good.example' });
    expect(store.verifyTask(id)).toMatchObject({ ok: false, brokenAt: 5, checked: 5 });
  });

  it('finds a deleted row in the middle and at the end', () => {
    const { store, id } = recorded();
    const raw = new Database(env.dbPath);
    raw.prepare('DELETE FROM events WHERE task_id = ? AND seq = 3').run(id);
    expect(store.verifyTask(id)).toMatchObject({
      ok: false,
      brokenAt: 3,
      reason: 'event 3 is missing',
    });
    const second = recordTask(store, body);
    store.endTask(second, { status: 'exited', endReason: 'exited', exitCode: 0 });
    raw
      .prepare(
        'DELETE FROM events WHERE task_id = ? AND seq = (SELECT MAX(seq) FROM events WHERE task_id = ?)',
      )
      .run(second, second);
    raw.close();
    expect(store.verifyTask(second)).toMatchObject({ ok: false, brokenAt: body.length + 1 });
  });

  it('finds a row whose hash was recomputed but no longer links', () => {
    const { store, id } = recorded();
    const raw = new Database(env.dbPath);
    raw.prepare("UPDATE events SET type = 'exec' WHERE task_id = ? AND seq = 1").run(id);
    raw.close();
    expect(store.verifyTask(id)).toMatchObject({ ok: false, brokenAt: 1 });
  });
});

describe('AuditStore: bad databases and state roots', () => {
  it('refuses a database from a newer schema, and leaves it untouched', () => {
    open().close();
    stores.length = 0;
    const raw = new Database(env.dbPath);
    raw.prepare("UPDATE meta SET value = '99' WHERE key = 'schema_version'").run();
    raw.close();
    const err = catchError(() => AuditStore.open(env.dbPath));
    expect(err).toBeInstanceOf(NanocellError);
    expect(err.message).toMatch(/schema version 99, newer than this nanocell understands \(1\)/);
    expect(err.fix).toMatch(/never migrated down/);
    expect(() => AuditStore.open(env.dbPath, { readonly: true })).toThrow(/schema version 99/);
    const check = new Database(env.dbPath, { readonly: true });
    expect(check.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get()).toEqual({
      value: '99',
    });
    check.close();
  });

  it('refuses a file that is not SQLite, naming the path and the fix, without touching it', () => {
    const text = 'this is not a database, just some text that is long enough\n';
    writeFileSync(env.dbPath, text);
    expect(() => AuditStore.open(env.dbPath)).toThrow(NanocellError);
    try {
      AuditStore.open(env.dbPath);
    } catch (e) {
      expect((e as NanocellError).oneLine()).toMatch(
        new RegExp(`${env.dbPath} is corrupted .*mv ${env.dbPath}`),
      );
    }
    expect(statSync(env.dbPath).size).toBe(text.length);
  });

  it('refuses a SQLite file whose pages are damaged', () => {
    const store = open();
    const id = recordTask(store);
    for (let i = 0; i < 2000; i++) store.append(id, body[2]!);
    store.endTask(id, { status: 'exited', endReason: 'exited', exitCode: 0 });
    store.close();
    stores.length = 0;
    const cp = new Database(env.dbPath);
    cp.pragma('wal_checkpoint(TRUNCATE)');
    cp.close();
    const fd = openSync(env.dbPath, 'r+');
    // Keep the header (page 1, 4096 bytes) but smash the b-tree pages after it.
    writeSync(fd, Buffer.alloc(3 * 4096, 0xa5), 0, 3 * 4096, 4096);
    closeSync(fd);
    const err = catchError(() => AuditStore.open(env.dbPath));
    expect(err).toBeInstanceOf(NanocellError);
    expect(err.message).toMatch(new RegExp(`${env.dbPath} is corrupted`));
    expect(err.fix).toMatch(/move it aside/);
  });

  it('names an unusable state root', () => {
    writeFileSync(join(env.root, 'file'), '');
    const path = join(env.root, 'file', 'nanocell.db');
    expect(() => AuditStore.open(path)).toThrow(NanocellError);
    expect(() => AuditStore.open(path)).toThrow(/state root .*file is not usable/);
    expect(() =>
      AuditStore.open(join(env.root, 'missing', 'nanocell.db'), { readonly: true }),
    ).toThrow(/not usable|no audit database/);
  });

  it('keeps the rest of the store usable after a bad task id', () => {
    const store = open();
    const id = recordTask(store);
    expect(() => store.resolveTaskId('0000000000')).toThrow(NanocellError);
    store.append(id, body[0]!);
    expect(store.events(id)).toHaveLength(2);
  });
});

describe('AuditStore: gc', () => {
  it('deletes ended tasks older than the cutoff with their events, and keeps the rest', async () => {
    const store = open();
    const old = recordTask(store, body);
    store.endTask(old, { status: 'exited', endReason: 'exited', exitCode: 0 });
    const running = recordTask(store, body);
    await new Promise((r) => setTimeout(r, 60));
    const recent = recordTask(store, body);
    store.endTask(recent, { status: 'exited', endReason: 'exited', exitCode: 0 });
    expect(store.gc({ olderThanMs: 30 })).toEqual({ tasks: 1, events: body.length + 2 });
    expect(store.getTask(old)).toBeUndefined();
    expect(store.events(old)).toEqual([]);
    expect(store.getTask(running)?.status).toBe('running');
    expect(store.getTask(recent)?.eventCount).toBe(body.length + 2);
    expect(store.gc({ olderThanMs: 30 })).toEqual({ tasks: 0, events: 0 });
  });
});
