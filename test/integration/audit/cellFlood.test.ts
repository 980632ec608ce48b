// A hostile event flood from a real cell: 50k denied syscalls, 20k execs and 11k denied
// connections. The monitor aggregates the first two past its caps; the connections reach the
// store one by one, past its per-task cap. The database stays bounded, every attempt is
// counted, and the supervisor's event loop keeps running on time.
import { MAX_NOTES_PER_COMMAND } from '../../../src/cell/denialNotes.js';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditStore } from '../../../src/audit/store.js';
import { runTask } from '../../../src/task/task.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { makeSandbox, type Sandbox } from '../../helpers/cells.js';

const DENIALS = 50_000;
const EXECS = 20_000;
const CONNECTIONS = 11_000;
/** AuditStore's default per-task cap. */
const CAP = 10_000;

const FLOOD_PY = `
import ctypes, os, socket, sys
libc = ctypes.CDLL(None, use_errno=True)
z = ctypes.c_ulong(0)
eperm = sum(1 for _ in range(${DENIALS}) if libc.syscall(165, z, z, z, z, z, z) < 0 and ctypes.get_errno() == 1)
failed = 0
for i in range(${EXECS}):
    try:
        os.execv('/nonexistent/x%d' % i, ['x'])
    except OSError:
        failed += 1
port = int(os.environ['HTTP_PROXY'].rsplit(':', 1)[1].strip('/'))
refused = 0
for i in range(${CONNECTIONS}):
    s = socket.create_connection(('127.0.0.1', port))
    s.sendall(b'CONNECT evil%d.test:443 HTTP/1.1\\r\\nHost: evil%d.test:443\\r\\n\\r\\n' % (i, i))
    if b' 403 ' in s.recv(200):
        refused += 1
    s.close()
print(eperm, failed, refused)
`;

let sb: Sandbox;
beforeAll(() => {
  sb = makeSandbox({ 'flood.py': FLOOD_PY });
});
afterAll(() => sb?.cleanup());

describe('a hostile event flood from a real cell', () => {
  it('keeps the database bounded, counts everything, and leaves the supervisor responsive', async () => {
    let stdout = '';
    const out = new PassThrough();
    out.on('data', (d: Buffer) => (stdout += d.toString()));
    let stderr = '';
    const err = new PassThrough();
    err.on('data', (d: Buffer) => (stderr += d.toString()));

    // The supervisor's event loop while the flood runs (from the cell's start to the flood's
    // last line), not during setup and teardown: timers must keep firing on time.
    let maxLagMs = 0;
    let flooding = false;
    let last = Date.now();
    const ticker = setInterval(() => {
      const now = Date.now();
      if (flooding) maxLagMs = Math.max(maxLagMs, now - last - 50);
      last = now;
    }, 50);
    out.on('data', () => (flooding = false));
    let report;
    try {
      report = await runTask({
        policy: resolvePolicy(
          parsePolicy({ network: { allow: ['allowed.test'] }, limits: { timeout: '5m' } }),
        ),
        workspace: sb.project,
        stateRoot: sb.stateRoot,
        command: ['python3', 'flood.py'],
        stdout: out,
        stderr: err,
        onEvent: (e) => {
          if (e.type === 'task.started') flooding = true;
        },
      });
    } finally {
      clearInterval(ticker);
    }
    // The flood's notes: one line for its one denied syscall, then the distinct refused hosts up
    // to the per-command cap and one line for the rest (src/cell/denialNotes.ts).
    const lines = stderr.split('\n').filter(Boolean);
    expect(lines[0]).toBe('nanocell: blocked syscall mount (mounts are not allowed)');
    expect(lines.length).toBe(MAX_NOTES_PER_COMMAND + 1);
    expect(lines.at(-1)).toMatch(/^nanocell: further denials are not shown here/);
    expect(stdout).toBe(`${DENIALS} ${EXECS} ${CONNECTIONS}\n`);
    expect(report.exitCode).toBe(0);
    expect(maxLagMs).toBeLessThan(1000);

    // Every attempt is counted once, whether stored in full, aggregated or only counted.
    expect(report.events.syscallDenied).toBe(DENIALS);
    expect(report.events.netDenied).toBe(CONNECTIONS);
    expect(report.events.execs).toBeGreaterThanOrEqual(EXECS);

    const store = AuditStore.open(path.join(sb.stateRoot, 'nanocell.db'), { readonly: true });
    try {
      const task = store.getTask(report.taskId)!;
      // Stored: up to the cap plus the lifecycle events; the rest only counted.
      expect(task.eventCount).toBeLessThanOrEqual(CAP + 1);
      expect(task.eventCount).toBeGreaterThanOrEqual(CAP);
      expect(task.droppedEvents).toBeGreaterThan(0);
      expect(task.droppedCounts['net.denied']).toBeGreaterThan(0);
      const events = store.events(report.taskId);
      expect(events.map((e) => e.seq)).toEqual([...events.keys()]);
      expect(events.at(-1)).toMatchObject({ type: 'task.exited', endReason: 'exited' });
      const count = (type: string) =>
        events
          .filter((e) => e.type === type)
          .reduce((n, e) => n + ((e as { count?: number }).count ?? 1), 0);
      // An aggregated event past the cap is counted as what it stands for, not as one.
      const dropped = (type: string) => task.droppedCounts[type] ?? 0;
      expect(count('syscall.denied') + dropped('syscall.denied')).toBe(DENIALS);
      expect(count('exec') + dropped('exec')).toBe(report.events.execs);
      expect(count('net.denied') + dropped('net.denied')).toBe(CONNECTIONS);
      expect(store.verifyTask(report.taskId)).toMatchObject({ ok: true });
    } finally {
      store.close();
    }
    let bytes = 0;
    for (const f of ['nanocell.db', 'nanocell.db-wal']) {
      bytes += fs.statSync(path.join(sb.stateRoot, f), { throwIfNoEntry: false })?.size ?? 0;
    }
    expect(bytes).toBeLessThan(32 * 1024 * 1024);
  }, 180_000);
});
