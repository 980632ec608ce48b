import { describe, expect, it } from 'vitest';
import { canonicalJson } from '../../../src/audit/canonical.js';
import { chainHash, GENESIS_HASH, verifyChain, type ChainRow } from '../../../src/audit/chain.js';

function buildChain(taskId: string, n: number): { rows: ChainRow[]; head: string } {
  const rows: ChainRow[] = [];
  let prev = GENESIS_HASH;
  for (let seq = 0; seq < n; seq++) {
    const event = {
      type: 'limit.hit',
      limit: 'pids',
      detail: `d${seq}`,
      v: 1,
      taskId,
      session: 's',
      time: 1000 + seq,
      seq,
    };
    const hash = chainHash(prev, event);
    rows.push({
      seq,
      time: event.time,
      type: event.type,
      payload: canonicalJson(event),
      prevHash: prev,
      hash,
    });
    prev = hash;
  }
  return { rows, head: prev };
}

describe('hash chain', () => {
  it('hashes the previous hash and the canonical event, independent of key order', () => {
    const a = chainHash(GENESIS_HASH, { b: 1, a: 2 });
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(chainHash(GENESIS_HASH, { a: 2, b: 1 })).toBe(a);
    expect(chainHash(a, { a: 2, b: 1 })).not.toBe(a);
  });

  it('accepts an intact chain, and an empty one', () => {
    const { rows, head } = buildChain('t1', 5);
    expect(verifyChain('t1', rows, { count: 5, head })).toEqual({ ok: true, checked: 5 });
    expect(verifyChain('t1', [], { count: 0, head: GENESIS_HASH })).toEqual({
      ok: true,
      checked: 0,
    });
  });

  it('finds an edited payload at its seq', () => {
    const { rows, head } = buildChain('t1', 5);
    rows[2]!.payload = rows[2]!.payload.replace('"d2"', '"dX"');
    expect(verifyChain('t1', rows, { count: 5, head })).toMatchObject({
      ok: false,
      brokenAt: 2,
      checked: 2,
    });
  });

  it('finds a payload whose seq or task no longer matches its row', () => {
    const { rows, head } = buildChain('t1', 3);
    expect(verifyChain('t2', rows, { count: 3, head })).toMatchObject({ ok: false, brokenAt: 0 });
    const moved = buildChain('t1', 3);
    moved.rows[1]!.time = 5;
    expect(verifyChain('t1', moved.rows, { count: 3, head })).toMatchObject({
      ok: false,
      brokenAt: 1,
    });
  });

  it('finds a deleted row, a duplicated row and a re-linked row', () => {
    const a = buildChain('t1', 5);
    expect(
      verifyChain(
        't1',
        a.rows.filter((r) => r.seq !== 3),
        { count: 5, head: a.head },
      ),
    ).toMatchObject({
      ok: false,
      brokenAt: 3,
      reason: 'event 3 is missing',
    });
    const b = buildChain('t1', 3);
    expect(
      verifyChain('t1', [b.rows[0]!, b.rows[0]!, ...b.rows.slice(1)], { count: 3, head: b.head }),
    ).toMatchObject({ ok: false, brokenAt: 1 });
    const c = buildChain('t1', 3);
    c.rows[1]!.prevHash = 'f'.repeat(64);
    expect(verifyChain('t1', c.rows, { count: 3, head: c.head })).toMatchObject({
      ok: false,
      brokenAt: 1,
    });
  });

  it('finds a truncated tail through the count and head of the task', () => {
    const { rows, head } = buildChain('t1', 5);
    expect(verifyChain('t1', rows.slice(0, 4), { count: 5, head })).toMatchObject({
      ok: false,
      brokenAt: 4,
    });
    expect(verifyChain('t1', rows.slice(0, 4), { count: 4, head })).toMatchObject({
      ok: false,
      brokenAt: 3,
    });
  });
});
