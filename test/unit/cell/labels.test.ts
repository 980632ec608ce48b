import { describe, expect, it } from 'vitest';
import { checkLabels, parseLabelFilter } from '../../../src/cell/labels.js';

describe('labels', () => {
  it('accepts keys with ._/- and returns them sorted', () => {
    expect(checkLabels({ z: '1', 'app.example/run-id': 'r_1', A9: '' })).toEqual({
      A9: '',
      'app.example/run-id': 'r_1',
      z: '1',
    });
    expect(Object.keys(checkLabels({ z: '1', a: '2' }))).toEqual(['a', 'z']);
    expect(checkLabels(undefined)).toEqual({});
  });

  it('refuses bad keys, values and counts with one-line errors', () => {
    const bad: unknown[] = [
      [],
      'k=v',
      { '': 'v' },
      { '-k': 'v' },
      { 'k.': 'v' },
      { 'a b': 'v' },
      { ['k'.repeat(64)]: 'v' },
      { k: 1 },
      { k: 'a\tb' },
      { k: 'v'.repeat(257) },
      Object.fromEntries(Array.from({ length: 33 }, (_, i) => [`k${i}`, ''])),
    ];
    for (const b of bad) {
      expect(() => checkLabels(b), JSON.stringify(b)).toThrow(/^labels: [^\n]+$/);
    }
  });

  it('parses k=v filters (the value may hold =)', () => {
    expect(parseLabelFilter('ticket=NC-16')).toEqual(['ticket', 'NC-16']);
    expect(parseLabelFilter('q=a=b')).toEqual(['q', 'a=b']);
    expect(parseLabelFilter('empty=')).toEqual(['empty', '']);
    expect(() => parseLabelFilter('=v')).toThrow(/is not k=v/);
    expect(() => parseLabelFilter('bad key=v')).toThrow(/not a label key/);
  });
});
