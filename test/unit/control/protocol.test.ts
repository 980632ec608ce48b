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
    expect(parseRequest('{"v":2,"verb":"exec","argv":["ls"],"stdin":true}')).toMatchObject({
      verb: 'exec',
      argv: ['ls'],
    });
    expect(parseRequest('{"v":2,"verb":"stop","graceMs":0}')).toMatchObject({ graceMs: 0 });
    const bad = [
      '{"v":2,"verb":"kill","now":true}',
      '{"v":2,"verb":"exec","argv":[1]}',
      '{"v":2,"verb":"stop","graceMs":-1}',
      '{"v":"1","verb":"hello"}',
      '{"v":2,"verb":"__proto__"}',
      'null',
    ];
    for (const line of bad) expect(() => parseRequest(line), line).toThrow(ProtocolError);
  });
  it('checks exec input: base64 stdin, eof, a signal number', () => {
    expect(parseExecInput('{"v":2,"op":"stdin","data":"aGk="}')).toEqual({
      v: 2,
      op: 'stdin',
      data: 'aGk=',
    });
    expect(() => parseExecInput('{"v":2,"op":"stdin","data":"<script>"}')).toThrow(ProtocolError);
    expect(() => parseExecInput('{"v":2,"op":"signal","signal":0}')).toThrow(ProtocolError);
  });
  it('a terminal exec: a bounded size on open, resize frames, nothing else', () => {
    expect(
      parseRequest('{"v":2,"verb":"exec","argv":["bash"],"tty":{"cols":100,"rows":30}}'),
    ).toMatchObject({ tty: { cols: 100, rows: 30 } });
    expect(parseExecInput('{"v":2,"op":"resize","cols":132,"rows":43}')).toEqual({
      v: 2,
      op: 'resize',
      cols: 132,
      rows: 43,
    });
    const badOpen = [
      '{"v":2,"verb":"exec","argv":["sh"],"tty":{"cols":0,"rows":30}}',
      '{"v":2,"verb":"exec","argv":["sh"],"tty":{"cols":80,"rows":4097}}',
      '{"v":2,"verb":"exec","argv":["sh"],"tty":{"cols":80.5,"rows":24}}',
      '{"v":2,"verb":"exec","argv":["sh"],"tty":{"cols":80,"rows":24,"xpixel":1}}',
      '{"v":2,"verb":"exec","argv":["sh"],"tty":true}',
      // A v1 client (no terminal frames) is told the version, not half-served.
      '{"v":1,"verb":"exec","argv":["sh"]}',
    ];
    for (const line of badOpen) expect(() => parseRequest(line), line).toThrow(ProtocolError);
    const badResize = [
      '{"v":2,"op":"resize","cols":70000,"rows":24}',
      '{"v":2,"op":"resize","cols":-1,"rows":24}',
      '{"v":2,"op":"resize","cols":"80","rows":24}',
      '{"v":2,"op":"resize","cols":80}',
    ];
    for (const line of badResize) expect(() => parseExecInput(line), line).toThrow(/bad resize/);
  });
  it('an unknown exec input is named, with the ops that exist', () => {
    expect(() => parseExecInput('{"v":2,"op":"ioctl","req":21522}')).toThrow(
      'unknown exec input "ioctl"',
    );
    try {
      parseExecInput('{"v":2,"op":"__proto__"}');
    } catch (e) {
      expect((e as ProtocolError).fix).toBe('send one of stdin, eof, signal, resize');
    }
    expect(() => parseExecInput('{"v":2}')).toThrow('unknown exec input undefined');
  });
});
