// A hostile task against the monitor: a flood of denials must neither flood nor slow the
// supervisor, and a dead monitor must leave every notified syscall failing (fail closed).
import fs from 'node:fs';
import { describe, it } from 'vitest';
import type { CellEvent } from '../../../src/cell/types.js';
import { DenialSummaries, toAuditEvents } from '../../../src/audit/sink.js';
import { denials, eventually, PROBE_PY, withCell } from './harness.js';
import { helperParents } from '../../helpers/cells.js';

const files = { 'probe.py': PROBE_PY };
const FLOOD = 200_000;
/** The monitor's default cap of denials reported in full (nanocell-monitor --max-events). */
const MAX_FULL_EVENTS = 200;
const EPERM = 1;

/** Live monitors of this process (its fork server's children) that name `cellId`. */
function monitorPids(cellId: string): number[] {
  const out: number[] = [];
  const parents = helperParents();
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      if (!parents.has(Number(/^PPid:\s+(\d+)/m.exec(status)?.[1]))) continue;
      const argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      if (argv[0]?.endsWith('nanocell-monitor') && argv.some((a) => a.includes(cellId))) {
        out.push(Number(pid));
      }
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

function alive(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** A line-oriented conversation with `probe.py serve` running in the cell. */
function server(x: { stdout: NodeJS.ReadableStream; stdin: NodeJS.WritableStream }) {
  let buf = '';
  let ended = false;
  const waiters: (() => void)[] = [];
  const lines: string[] = [];
  x.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, nl));
      buf = buf.slice(nl + 1);
    }
    waiters.splice(0).forEach((w) => w());
  });
  x.stdout.on('end', () => {
    ended = true;
    waiters.splice(0).forEach((w) => w());
  });
  /** The probe's answer to `attempt`, or undefined if the probe is gone. */
  return async (attempt: string): Promise<{ ret: number; errno: number } | undefined> => {
    if (ended) return undefined;
    x.stdin.write(`${attempt}\n`);
    while (lines.length === 0 && !ended) {
      await Promise.race([
        new Promise<void>((r) => waiters.push(r)),
        new Promise((r) => setTimeout(r, 30_000)),
      ]);
      if (lines.length === 0 && !ended) throw new Error(`no answer to ${attempt} in 30 s`);
    }
    const line = lines.shift();
    if (line === undefined) return undefined;
    const { ret, errno } = JSON.parse(line) as { ret: number; errno: number };
    return { ret, errno };
  };
}

describe.concurrent('hostile tasks against the monitor', { timeout: 240_000 }, () => {
  it('a loop of 200k denials finishes, the supervisor stays responsive, events are aggregated', async ({
    expect,
  }) => {
    let events: CellEvent[] = [];
    const { flood, probeMs, maxLagMs } = await withCell({ files }, async (c) => {
      events = c.events;
      const x = c.cell.exec(['python3', 'probe.py', 'flood', String(FLOOD)]);
      let out = '';
      x.stdout.on('data', (d: Buffer) => (out += d.toString()));
      x.stdin.end();

      // The supervisor's event loop while the flood runs: timers must keep firing on time.
      let maxLagMs = 0;
      let last = Date.now();
      const ticker = setInterval(() => {
        const now = Date.now();
        maxLagMs = Math.max(maxLagMs, now - last - 50);
        last = now;
      }, 50);
      try {
        // Wait until the flood is well past the full-event cap, then use the same cell.
        expect(
          await eventually(() => events.some((e) => e.type === 'syscall.denied.summary'), 120_000),
        ).toBe(true);
        const t0 = Date.now();
        const echo = await c.cell.run(['echo', 'still here']);
        const probeMs = Date.now() - t0;
        expect(echo).toMatchObject({ exitCode: 0, stdout: 'still here\n' });
        const res = await x.result;
        expect(res.exitCode).toBe(0);
        return { flood: out, probeMs, maxLagMs };
      } finally {
        clearInterval(ticker);
      }
    });

    // The task saw every call fail with EPERM.
    expect(JSON.parse(flood)).toMatchObject({ calls: FLOOD, eperm: FLOOD });
    // Generous bounds: the machine may be busy with other work; a blocked supervisor or a
    // monitor stuck behind 200k events would take far longer.
    expect(probeMs).toBeLessThan(5000);
    expect(maxLagMs).toBeLessThan(2000);

    // The first denials in full, then counts: a bounded number of events.
    const full = denials(events);
    expect(full).toHaveLength(MAX_FULL_EVENTS);
    expect(full[0]).toMatchObject({ name: 'mount', errno: EPERM, exe: '/usr/bin/python3.11' });
    const summaries = events.filter((e) => e.type === 'syscall.denied.summary');
    expect(summaries.length).toBeGreaterThan(0);
    expect(summaries.length).toBeLessThan(120); // about one a second
    const last = summaries.at(-1) as unknown as { counts: { name: string; count: number }[] };
    expect(last.counts.filter((c) => c.name === 'mount').reduce((n, c) => n + c.count, 0)).toBe(
      FLOOD - MAX_FULL_EVENTS,
    );

    // Mapped for the audit trail, every denial is counted exactly once, in a few rows.
    const state = new DenialSummaries();
    const audit = events.flatMap((e) => toAuditEvents(e, state));
    const rows = audit.filter((e) => e.type === 'syscall.denied');
    expect(rows.reduce((n, e) => n + ((e as { count?: number }).count ?? 1), 0)).toBe(FLOOD);
    expect(rows.length).toBeLessThan(MAX_FULL_EVENTS + summaries.length + 1);
  });

  it('if the monitor dies, notified syscalls fail closed', async ({ expect }) => {
    await withCell({ files }, async ({ cell, events }) => {
      const x = cell.exec(['python3', 'probe.py', 'serve']);
      x.stderr.resume();
      const ask = server(x);

      // With the monitor alive: mount is denied and recorded, exec is audited and allowed.
      expect(await ask('mount')).toEqual({ ret: -1, errno: EPERM });
      expect(await ask('exec')).toEqual({ ret: 0, errno: 0 });
      expect(await eventually(() => denials(events).length === 1)).toBe(true);

      const [monitor, ...others] = monitorPids(cell.id);
      expect(monitor).toBeGreaterThan(0);
      expect(others).toEqual([]);
      process.kill(monitor!, 'SIGKILL');
      expect(await eventually(() => !alive(monitor!), 5000)).toBe(true);

      // Nothing that needed the monitor succeeds now. The probe (or the whole cell) may be
      // gone too, which is also closed; what must never happen is a success.
      const after: Record<string, { ret: number; errno: number } | undefined> = {};
      for (const attempt of ['mount', 'exec', 'unshare_user', 'ptrace', 'getpid']) {
        after[attempt] = await ask(attempt);
      }
      for (const attempt of ['mount', 'exec', 'unshare_user', 'ptrace']) {
        const r = after[attempt];
        if (r) expect(r.ret, attempt).toBe(-1);
      }
      // The probe did survive here: the filter itself stays and allowed calls still work.
      expect(after.getpid?.ret).toBeGreaterThan(0);
      expect(after.mount).toEqual({ ret: -1, errno: 38 }); // ENOSYS from the kernel

      // A new command cannot even be started: its execve needs the monitor.
      const fresh = await cell.run(['true']).catch(() => ({ exitCode: -1 }));
      expect(fresh.exitCode).not.toBe(0);
      x.stdin.end();
    });
  });
});
