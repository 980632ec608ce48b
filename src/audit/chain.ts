// The per-task hash chain: hash(n) = sha256(hash(n-1) || canonicalJson(event n)), with a
// genesis value for seq 0. The tasks row keeps the head and the count, so truncating the tail
// is caught as well as editing or deleting a row. Someone who can rewrite the whole database can
// rebuild a consistent chain; comparing the head with a copy kept elsewhere (the task report)
// catches that too.
import { createHash } from 'node:crypto';
import { canonicalJson } from './canonical.js';

export const GENESIS_HASH = '0'.repeat(64);

export function chainHash(prevHash: string, event: unknown): string {
  return chainHashOf(prevHash, canonicalJson(event));
}

/** The same, of an event already in its canonical form (the stored payload). */
export function chainHashOf(prevHash: string, canonical: string): string {
  return createHash('sha256').update(prevHash).update(canonical).digest('hex');
}

/** One stored events row, as verification sees it. */
export interface ChainRow {
  seq: number;
  time: number;
  type: string;
  payload: string;
  prevHash: string;
  hash: string;
}

export interface ChainVerdict {
  ok: boolean;
  /** Rows whose link was checked. */
  checked: number;
  /** The first seq that does not hold (the missing seq for a gap, the count for a short tail). */
  brokenAt?: number;
  reason?: string;
}

/**
 * Checks rows (ordered by seq) of one task against the chain rule and against the head and count
 * recorded in the tasks row. Pure: the store feeds it rows.
 */
export function verifyChain(
  taskId: string,
  rows: Iterable<ChainRow>,
  expected: { count: number; head: string },
): ChainVerdict {
  let prev = GENESIS_HASH;
  let next = 0;
  const broken = (reason: string, at = next): ChainVerdict => ({
    ok: false,
    checked: next,
    brokenAt: at,
    reason,
  });
  for (const row of rows) {
    if (row.seq !== next) {
      return broken(row.seq > next ? `event ${next} is missing` : `event ${row.seq} appears twice`);
    }
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(row.payload) as Record<string, unknown>;
    } catch {
      return broken('payload is not JSON');
    }
    if (event === null || typeof event !== 'object' || Array.isArray(event)) {
      return broken('payload is not a JSON object');
    }
    if (
      event.seq !== row.seq ||
      event.taskId !== taskId ||
      event.type !== row.type ||
      event.time !== row.time
    ) {
      return broken('payload does not match its row (seq, task, type or time)');
    }
    if (row.prevHash !== prev) return broken('prev_hash does not link to the previous event');
    if (chainHash(prev, event) !== row.hash) return broken('hash does not match the event');
    prev = row.hash;
    next++;
  }
  if (next !== expected.count) {
    return next < expected.count
      ? broken(`chain ends after ${next} events but the task recorded ${expected.count}`)
      : broken(`chain has ${next} events but the task recorded ${expected.count}`, expected.count);
  }
  if (prev !== expected.head) {
    return broken('the last hash is not the head recorded for the task', Math.max(0, next - 1));
  }
  return { ok: true, checked: next };
}
