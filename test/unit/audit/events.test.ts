import { describe, expect, it } from 'vitest';
import {
  auditEventInputSchema,
  auditEventSchema,
  auditEventTypes,
  boundEventSize,
} from '../../../src/audit/events.js';
import { controlSampleInputs, sampleInputs } from './samples.js';

const everySample = [...sampleInputs, ...controlSampleInputs];

describe('audit event schemas', () => {
  it('has a sample for every type, and each sample is a valid input', () => {
    expect(new Set(everySample.map((e) => e.type))).toEqual(new Set(auditEventTypes));
    for (const e of everySample) expect(auditEventInputSchema.safeParse(e).success).toBe(true);
  });

  it('requires the envelope on stored events', () => {
    for (const e of sampleInputs) {
      const stored = { ...e, v: 1, taskId: 't', session: 's', time: 1, seq: 0 };
      expect(auditEventSchema.safeParse(stored).success).toBe(true);
      const { seq: _seq, ...noSeq } = stored;
      expect(auditEventSchema.safeParse(noSeq).success).toBe(false);
    }
  });

  it('rejects unknown fields, unknown types and wrong enums', () => {
    expect(auditEventInputSchema.safeParse({ ...sampleInputs[8], extra: 1 }).success).toBe(false);
    expect(auditEventInputSchema.safeParse({ type: 'fs.read', path: 'x' }).success).toBe(false);
    expect(
      auditEventInputSchema.safeParse({ type: 'limit.hit', limit: 'cpu', detail: '' }).success,
    ).toBe(false);
    expect(
      auditEventInputSchema.safeParse({
        type: 'task.exited',
        exitCode: null,
        endReason: 'crashed',
        durationMs: 1,
      }).success,
    ).toBe(false);
    // exec events are always marked unverified: the path comes from the task's own memory.
    expect(auditEventInputSchema.safeParse({ ...sampleInputs[3], unverified: false }).success).toBe(
      false,
    );
  });

  it('does not let producers set seq, time or v', () => {
    expect(auditEventInputSchema.safeParse({ ...sampleInputs[1], seq: 3 }).success).toBe(false);
    expect(auditEventInputSchema.safeParse({ ...sampleInputs[1], time: 3 }).success).toBe(false);
    expect(auditEventInputSchema.safeParse({ ...sampleInputs[1], v: 1 }).success).toBe(false);
  });
});

describe('boundEventSize', () => {
  it('cuts long strings and arrays with a visible marker', () => {
    const e = boundEventSize(
      { path: 'x'.repeat(5000), argv: Array.from({ length: 300 }, String) },
      100,
      10,
    );
    expect(e.path).toHaveLength(100 + '…[4900 more chars]'.length);
    expect(e.path.endsWith('…[4900 more chars]')).toBe(true);
    expect(e.argv).toHaveLength(11);
    expect(e.argv[10]).toBe('…[290 more items]');
  });

  it('leaves small events unchanged', () => {
    for (const e of sampleInputs) expect(boundEventSize(e)).toEqual(e);
  });
});
