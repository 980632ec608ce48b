import { stripVTControlCharacters } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  colorEnabled,
  formatAge,
  paint,
  table,
  truncate,
  visibleWidth,
} from '../../../src/cli/format.js';
import { formatCommand } from '../../../src/util/display.js';

describe('colour', () => {
  it('is on only for a TTY without NO_COLOR', () => {
    expect(colorEnabled({ write: () => true, isTTY: true }, {})).toBe(true);
    expect(colorEnabled({ write: () => true, isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled({ write: () => true, isTTY: false }, {})).toBe(false);
    expect(colorEnabled({ write: () => true }, {})).toBe(false);
  });

  it('paints with escapes only when enabled', () => {
    expect(paint(false).red('x')).toBe('x');
    const red = paint(true).red('x');
    expect(red).not.toBe('x');
    expect(visibleWidth(red)).toBe(1);
  });
});

describe('table', () => {
  it('aligns columns, numbers to the right, ignoring colour', () => {
    const out = table(
      [
        ['a', paint(true).green('ok'), '5', 'echo hi'],
        ['bbbb', 'failed', '123', 'x'],
      ],
      { header: ['ID', 'STATUS', 'N', 'COMMAND'], right: [2] },
    );
    const plain = stripVTControlCharacters(out);
    expect(plain).toBe(
      ['ID    STATUS    N  COMMAND', 'a     ok        5  echo hi', 'bbbb  failed  123  x', ''].join(
        '\n',
      ),
    );
  });

  it('cuts only the last column to fit a width', () => {
    const out = table([['id1', 'a very long command line indeed']], {
      header: ['ID', 'COMMAND'],
      maxWidth: 20,
    });
    const lines = out.trimEnd().split('\n');
    expect(lines[1]).toBe('id1  a very long co…');
    expect(lines.every((l) => visibleWidth(l) <= 20)).toBe(true);
  });
});

describe('small formatters', () => {
  it('truncates by characters', () => {
    expect(truncate('abcdef', 4)).toBe('abc…');
    expect(truncate('abc', 4)).toBe('abc');
  });

  it('quotes arguments that need it', () => {
    expect(formatCommand(['sh', '-c', 'echo "hi there"'])).toBe('sh -c "echo \\"hi there\\""');
    expect(formatCommand(['ls', '-la', '/tmp'])).toBe('ls -la /tmp');
  });

  it('gives ages in the largest whole unit', () => {
    expect(formatAge(0, 45_000)).toBe('45s ago');
    expect(formatAge(0, 180_000)).toBe('3m ago');
    expect(formatAge(0, 7_200_000)).toBe('2h ago');
    expect(formatAge(0, 4 * 86_400_000)).toBe('4d ago');
  });
});
