// The audit sink maps raw cell events (partly from the monitor, which the task can influence)
// onto typed audit events: every field coerced and capped, every result valid for the store,
// unknown and prototype-named types dropped, cumulative summaries counted once.
import { describe, expect, it } from 'vitest';
import { auditEventInputSchema } from '../../../src/audit/events.js';
import { DenialSummaries, TaskTally, toAuditEvents } from '../../../src/audit/sink.js';
import type { CellEvent } from '../../../src/audit/cellEvents.js';

const raw = (e: Record<string, unknown>) => e as unknown as CellEvent;

describe('toAuditEvents', () => {
  it('coerces hostile fields into events the store accepts', () => {
    const events = [
      raw({ type: 'exec', path: 'x'.repeat(10_000), argv: [1, null, 'a'], pid: -5, ppid: 'z' }),
      raw({
        type: 'syscall.denied',
        name: {},
        nr: -1e300,
        arch: 7,
        pid: 1e300,
        exe: 'e',
        errno: 1,
      }),
      raw({ type: 'net.denied', host: 'h', port: 99_999, protocol: 'tcp', reason: 'r' }),
      raw({ type: 'net.allowed', host: 'h', port: 443, protocol: 'tcp', error: 'ENOTFOUND' }),
      raw({ type: 'fs.change', path: 'a', kind: 'added', size: -1 }),
      raw({ type: 'task.started', cellId: 'c' }),
    ];
    for (const e of events) {
      const out = toAuditEvents(e);
      expect(out).toHaveLength(1);
      expect(auditEventInputSchema.safeParse(out[0]).success, JSON.stringify(out[0])).toBe(true);
    }
    const [exec] = toAuditEvents(events[0]!);
    expect(exec).toMatchObject({ argv: ['1', '', 'a'], pid: 0, ppid: 0 });
    expect((exec as { path: string }).path).toHaveLength(4096);
    expect(toAuditEvents(events[2]!)[0]).toMatchObject({ port: 65535 });
    expect(toAuditEvents(events[3]!)[0]).toMatchObject({ reason: 'allowed', error: 'ENOTFOUND' });
  });

  it('drops unknown types, prototype names included', () => {
    for (const type of ['nope', '__proto__', 'constructor', 'toString', 'hasOwnProperty']) {
      expect(toAuditEvents(raw({ type }))).toEqual([]);
    }
  });

  it('counts cumulative summaries once, and keeps unattributed denials as a count', () => {
    const s = new DenialSummaries();
    const summary = (count: number, dropped = 0) =>
      raw({ type: 'syscall.denied.summary', dropped, counts: [{ name: 'mount', pid: 9, count }] });
    expect(toAuditEvents(summary(3), s)).toMatchObject([{ name: 'mount', count: 3 }]);
    expect(toAuditEvents(summary(3), s)).toEqual([]);
    expect(toAuditEvents(summary(5, 2), s)).toMatchObject([
      { name: '(unattributed)', count: 2 },
      { name: 'mount', count: 2 },
    ]);
    expect(toAuditEvents(raw({ type: 'exec.summary', count: 10 }), s)).toMatchObject([
      { type: 'exec', count: 10 },
    ]);
    expect(toAuditEvents(raw({ type: 'exec.summary', count: 10 }), s)).toEqual([]);
    const tally = new TaskTally();
    for (const e of toAuditEvents(summary(8), s)) tally.add(e);
    expect([tally.syscallDenied, tally.deniedBySyscall.get('mount')]).toEqual([3, 3]);
  });
});
