import { describe, expect, it } from 'vitest';
import { CappedBuffer } from '../../../src/util/cappedBuffer.js';

describe('CappedBuffer', () => {
  it('keeps up to its cap, counts what it drops, and forgets what it returned', () => {
    const b = new CappedBuffer(5);
    b.push(Buffer.from('abc'));
    b.push(Buffer.from('defg'));
    expect(b.take()).toEqual({ text: 'abcde', truncated: true, dropped: 2 });
    b.push(Buffer.from('h'));
    expect(b.take()).toEqual({ text: 'h', truncated: false, dropped: 0 });
  });

  it('keeps a character split between two reads whole', () => {
    const b = new CappedBuffer(100);
    const euro = Buffer.from('€'); // 3 bytes
    b.push(Buffer.concat([Buffer.from('a'), euro.subarray(0, 2)]));
    expect(b.take(false).text).toBe('a');
    b.push(euro.subarray(2));
    expect(b.take(false).text).toBe('€');
    // At the end an incomplete character is shown as one replacement character.
    b.push(euro.subarray(0, 1));
    expect(b.take(true).text).toBe('\ufffd');
  });
});
