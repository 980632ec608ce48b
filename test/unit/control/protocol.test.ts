import { describe, expect, it } from 'vitest';
import {
  LineSplitter,
  parseExecInput,
  parseRequest,
  ProtocolError,
} from '../../../src/control/protocol.js';

function split(chunks: (string | Buffer)[], max?: number) {
  const out: string[] = [];
  const s = new LineSplitter(
    (l) => out.push(l),
    () => out.push('<overflow>'),
    max,
  );
  for (const c of chunks) s.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return out;
}

describe('LineSplitter', () => {
  it('joins lines across chunks and splits several in one', () => {
    expect(split(['{"a"', ':1}\n{"b":2}\n{"c"', ':3}\n'])).toEqual([
      '{"a":1}',
      '{"b":2}',
      '{"c":3}',
    ]);
  });
  it('skips a line past the bound once, to its newline, and goes on', () => {
    expect(split(['x'.repeat(6), 'y'.repeat(6), 'zz\nok\n'], 10)).toEqual(['<overflow>', 'ok']);
    expect(split(['0123456789\n'], 10)).toEqual(['0123456789']);
  });
  it('keeps a multi-byte character split across chunks whole', () => {
    const b = Buffer.from('é\n');
    expect(split([b.subarray(0, 1), b.subarray(1)])).toEqual(['é']);
  });
});

describe('requests', () => {
  it('accepts each verb and refuses extra fields, bad types and other versions', () => {
    expect(parseRequest('{"v":1,"verb":"exec","argv":["ls"],"stdin":true}')).toMatchObject({
      verb: 'exec',
      argv: ['ls'],
    });
    expect(parseRequest('{"v":1,"verb":"stop","graceMs":0}')).toMatchObject({ graceMs: 0 });
    const bad = [
      '{"v":1,"verb":"kill","now":true}',
      '{"v":1,"verb":"exec","argv":[1]}',
      '{"v":1,"verb":"stop","graceMs":-1}',
      '{"v":"1","verb":"hello"}',
      '{"v":1,"verb":"__proto__"}',
      'null',
    ];
    for (const line of bad) expect(() => parseRequest(line), line).toThrow(ProtocolError);
  });
  it('checks exec input: base64 stdin, eof, a signal number', () => {
    expect(parseExecInput('{"v":1,"op":"stdin","data":"aGk="}')).toEqual({
      v: 1,
      op: 'stdin',
      data: 'aGk=',
    });
    expect(() => parseExecInput('{"v":1,"op":"stdin","data":"<script>"}')).toThrow(ProtocolError);
    expect(() => parseExecInput('{"v":1,"op":"signal","signal":0}')).toThrow(ProtocolError);
  });
});
