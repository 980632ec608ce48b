// Canonical JSON: object keys sorted by code unit, no whitespace, arrays in order. Two
// semantically equal events always serialize to the same bytes, so the hash chain does not
// depend on key order or on how a row was re-serialized.
import { NanocellError } from '../util/errors.js';

export function canonicalJson(value: unknown): string {
  return write(value, '$');
}

function write(value: unknown, where: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return JSON.stringify(value);
    case 'number':
      // JSON.stringify would turn these into null: a hashed value must round-trip exactly.
      if (!Number.isFinite(value)) throw notCanonical(where, String(value));
      return JSON.stringify(value);
    case 'object': {
      if (Array.isArray(value)) {
        return `[${value.map((v, i) => write(v === undefined ? null : v, `${where}[${i}]`)).join(',')}]`;
      }
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) {
        throw notCanonical(where, proto?.constructor?.name ?? 'object');
      }
      const keys = Object.keys(value).sort();
      const parts: string[] = [];
      for (const k of keys) {
        const v = (value as Record<string, unknown>)[k];
        if (v === undefined) continue; // as JSON.stringify does: an absent field
        parts.push(`${JSON.stringify(k)}:${write(v, `${where}.${k}`)}`);
      }
      return `{${parts.join(',')}}`;
    }
    default:
      throw notCanonical(where, typeof value);
  }
}

function notCanonical(where: string, what: string): NanocellError {
  return new NanocellError(
    `audit event field ${where} is ${what}, which has no canonical JSON form`,
    'emit only strings, finite numbers, booleans, null, arrays and plain objects',
    'INTERNAL',
  );
}
