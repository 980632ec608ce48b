// Flood bounding, concurrent writers and crash recovery, against real SQLite files and real
// processes.
import Database from 'better-sqlite3';
import { once } from 'node:events';
import { statSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditStore, newTaskId } from '../../../src/audit/store.js';
import { spawnWriter, tempStateRoot } from './helpers/tempStore.js';

let env: ReturnType<typeof tempStateRoot>;
const stores: AuditStore[] = [];
const children: ReturnType<typeof spawnWriter>[] = [];
beforeEach(() => {
  env = tempStateRoot();
});
afterEach(() => {
  for (const c of children.splice(0))
    if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const s of stores.splice(0)) s.close();
  env.cleanup();
});
function open(opts?: Parameters<typeof AuditStore.open>[1]): AuditStore {
  const s = AuditStore.open(env.dbPath, opts);
  stores.push(s);
  return s;
}

function dbBytes(): number {
  let total = 0;
  for (const suffix of ['', '-wal', '-shm']) {
    try {
      total += statSync(env.dbPath + suffix).size;
    } catch {
      // absent
    }
  }
  return total;
}

describe('flood bounding', () => {
  it('stores the first events up to the cap, then only counts, in bounded disk and memory', () => {
    const store = open({ maxEventsPerTask: 1000 });
    const id = newTaskId();
    store.createTask({ id, session: 'flood', command: ['flood'], ownerPid: process.pid });
    const heapBefore = process.memoryUsage().heapUsed;
    let maxPending = 0;
    const started = performance.now();
    for (let i = 0; i < 50_000; i++) {
      store.append(id, {
        type: i % 2 ? 'syscall.denied' : 'net.denied',
        ...(i % 2
          ? { name: 'ptrace', nr: 101, arch: 'x86_64', pid: i, exe: '/tmp/x', errno: 1 }
          : { host: `h${i}.example`, port: 443, reason: 'not allowed', protocol: 'socks5' }),
      } as never);
      maxPending = Math.max(maxPending, store.pending);
    }
    const elapsed = performance.now() - started;
    const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
    store.endTask(id, { status: 'exited', endReason: 'exited', exitCode: 0 });

    const task = store.getTask(id)!;
    // 1000 stored (task.created is one of them) plus task.exited, which is always stored.
    expect(task.eventCount).toBe(1001);
    expect(task.droppedEvents).toBe(50_000 - 999);
    // Stored: i = 0..998 (500 net.denied at even i, 499 syscall.denied at odd i).
    expect(task.droppedCounts).toEqual({ 'net.denied': 24_500, 'syscall.denied': 24_501 });
    expect(task.droppedCounts['syscall.denied']! + task.droppedCounts['net.denied']!).toBe(
      task.droppedEvents,
    );
    expect(store.events(id).at(-1)?.type).toBe('task.exited');
    expect(store.verifyTask(id)).toEqual({ ok: true, checked: 1001 });
    expect(maxPending).toBeLessThanOrEqual(256);
    expect(dbBytes()).toBeLessThan(4 * 1024 * 1024);
    expect(heapGrowth).toBeLessThan(40 * 1024 * 1024);
    // Dropping is cheap: 50k appends take well under a second or two even on a slow CI box.
    expect(elapsed).toBeLessThan(5000);
  });

  it('also caps stored bytes per task', () => {
    const store = open({ maxEventsPerTask: 1_000_000, maxBytesPerTask: 64 * 1024 });
    const id = newTaskId();
    store.createTask({ id, session: 'flood', command: ['flood'], ownerPid: process.pid });
    for (let i = 0; i < 2000; i++) {
      store.append(id, {
        type: 'fs.change',
        path: `dir/${'x'.repeat(200)}/${i}`,
        kind: 'added',
        size: i,
      });
    }
    store.endTask(id, { status: 'exited', endReason: 'exited', exitCode: 0 });
    const task = store.getTask(id)!;
    expect(task.storedBytes).toBeLessThan(64 * 1024 + 1024);
    expect(task.eventCount + task.droppedEvents).toBe(2002);
    expect(task.droppedCounts['fs.change']).toBe(task.droppedEvents);
    expect(store.verifyTask(id).ok).toBe(true);
  });
});

async function waitExit(
  child: ReturnType<typeof spawnWriter>,
): Promise<{ code: number | null; stderr: string }> {
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stderr };
}

describe('concurrent writers', () => {
  it('lets 4 processes record tasks into one database at once without lock errors', async () => {
    open().close(); // the schema exists before the race, as after any nanocell start
    stores.length = 0;
    const ids = Array.from({ length: 4 }, () => newTaskId());
    const writers = ids.map((id) => spawnWriter(env.dbPath, id, 3000, 'race'));
    children.push(...writers);
    const runs = writers.map(waitExit);
    // Release all writers at once: 4 x 150 write transactions contend for the lock.
    await Promise.all(writers.map((w) => once(w.stdout!, 'data')));
    for (const w of writers) w.stdin!.write('go\n');
    const results = await Promise.all(runs);
    for (const r of results) expect(r).toEqual({ code: 0, stderr: '' });
    const store = open({ readonly: true });
    for (const id of ids) {
      expect(store.getTask(id)).toMatchObject({
        status: 'exited',
        eventCount: 3002,
        droppedEvents: 0,
      });
      expect(store.verifyTask(id)).toEqual({ ok: true, checked: 3002 });
    }
  });

  it('lets processes race to create a fresh database', async () => {
    const ids = Array.from({ length: 4 }, () => newTaskId());
    const results = await Promise.all(
      ids.map((id) => {
        const child = spawnWriter(env.dbPath, id, 50, 'end');
        children.push(child);
        return waitExit(child);
      }),
    );
    for (const r of results) expect(r).toEqual({ code: 0, stderr: '' });
    const store = open();
    expect(store.listTasks({ session: 'writers' })).toHaveLength(4);
  });
});

describe('crash recovery', () => {
  it('marks the task of a SIGKILLed recorder abnormal and keeps what it recorded', async () => {
    const id = newTaskId();
    const child = spawnWriter(env.dbPath, id, 500, 'hang');
    children.push(child);
    const [data] = (await once(child.stdout!, 'data')) as [Buffer];
    expect(data.toString()).toBe('ready\n');

    const store = open();
    // While the owner lives, its task is not touched.
    expect(store.recoverAbandoned()).toEqual([]);
    expect(store.getTask(id)?.status).toBe('running');

    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(store.recoverAbandoned()).toEqual([id]);
    expect(store.recoverAbandoned()).toEqual([]);

    const task = store.getTask(id)!;
    expect(task).toMatchObject({
      status: 'abnormal',
      endReason: 'killed',
      exitCode: null,
      eventCount: 502,
    });
    const events = store.events(id);
    expect(events).toHaveLength(502);
    expect(events.filter((e) => e.type === 'syscall.denied')).toHaveLength(500);
    expect(events.at(-1)).toMatchObject({
      type: 'task.exited',
      endReason: 'killed',
      exitCode: null,
      seq: 501,
    });
    expect(store.verifyTask(id)).toEqual({ ok: true, checked: 502 });
  });

  it('does not mistake a reused pid for the owner', () => {
    const store = open();
    const id = newTaskId();
    store.createTask({ id, session: 's', command: ['x'], ownerPid: process.pid });
    store.close();
    stores.length = 0;
    // Same pid, different start time: what a reused pid looks like.
    const sql = new Database(env.dbPath);
    sql.prepare('UPDATE tasks SET owner_start_time = owner_start_time + 1 WHERE id = ?').run(id);
    sql.close();
    const again = open();
    expect(again.recoverAbandoned()).toEqual([id]);
    expect(again.getTask(id)?.status).toBe('abnormal');
  });
});
