import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { PolicyError } from '../../../src/util/errors.js';
import { DEFAULT_EXCLUDES, DEFAULT_LIMITS } from '../../../src/policy/defaults.js';
import { policyJsonSchema } from '../../../src/policy/jsonSchema.js';
import { parseDuration, parseSize } from '../../../src/util/units.js';

describe('policy', () => {
  it('fills defaults and parses units', () => {
    const p = resolvePolicy(parsePolicy({ limits: { memory: '512m', timeout: '90s' } }));
    expect(p.limits).toEqual({ ...DEFAULT_LIMITS, memory: 512 * 1024 ** 2, timeout: 90_000 });
    expect(p.workspace.exclude).toEqual(DEFAULT_EXCLUDES);
    expect(p.runtime.name).toBe('runc');
  });

  it('lets later layers win key by key', () => {
    const p = resolvePolicy(
      parsePolicy({ limits: { memory: '1g', pids: 100 }, env: { A: '1' } }),
      parsePolicy({ limits: { pids: 50 }, env: { B: '2' } }),
    );
    expect(p.limits.memory).toBe(1024 ** 3);
    expect(p.limits.pids).toBe(50);
    expect(p.env).toEqual({ A: '1', B: '2' });
  });

  it.each([
    [{ limits: { memroy: '1g' } }, /limits: unknown key "memroy"/],
    [{ limits: { memory: 'lots' } }, /limits\.memory/],
    [{ limits: { pids: 1.5 } }, /limits\.pids/],
    [{ env: { 'BAD-NAME': 'x' } }, /env/],
    [{ runtime: { name: 'docker' } }, /runtime\.name/],
    [{ extra: 1 }, /unknown key "extra"/],
  ])('names the field of a bad policy %j', (doc, msg) => {
    expect(() => parsePolicy(doc)).toThrow(PolicyError);
    expect(() => parsePolicy(doc)).toThrow(msg);
  });

  it('never throws anything but PolicyError on arbitrary input', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (doc) => {
        try {
          parsePolicy(doc);
        } catch (e) {
          if (!(e instanceof PolicyError)) throw e;
        }
      }),
    );
  });

  it('parses sizes and durations', () => {
    expect(parseSize('1.5g')).toBe(1.5 * 1024 ** 3);
    expect(parseSize('64k')).toBe(65536);
    expect(parseSize('x')).toBeUndefined();
    expect(parseDuration('10m')).toBe(600_000);
    expect(parseDuration('7d')).toBe(7 * 86_400_000);
    expect(parseDuration(2)).toBe(2000);
  });

  it('ships an up-to-date JSON Schema for editors', () => {
    const shipped = JSON.parse(
      fs.readFileSync(new URL('../../../schema/policy.schema.json', import.meta.url), 'utf8'),
    );
    expect(shipped).toEqual(policyJsonSchema());
    expect(shipped.additionalProperties).toBe(false);
  });
});
