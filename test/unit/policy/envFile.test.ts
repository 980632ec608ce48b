import { describe, expect, it } from 'vitest';
import { parseEnvFile, parseEnvFlags } from '../../../src/policy/envFile.js';

describe('env by name and env files (Docker syntax)', () => {
  const host = { TOKEN: 'from-host', EMPTY: '' };

  it('reads NAME=VALUE verbatim, skips comments and blanks, takes NAME alone from the host', () => {
    const text = '\uFEFF# comment\n\n  A=1\nB="quoted" \nC=x=y\nTOKEN\nUNSET\nEMPTY\nD=\r\n';
    expect(parseEnvFile(text, 'f.env', host)).toEqual({
      A: '1',
      B: '"quoted" ',
      C: 'x=y',
      TOKEN: 'from-host',
      EMPTY: '',
      D: '',
    });
  });

  it('names the line of a bad variable name', () => {
    expect(() => parseEnvFile('A=1\nBAD NAME=2\n', 'f.env', host)).toThrow(
      /f\.env:2: "BAD NAME" is not a variable name/,
    );
    expect(() => parseEnvFile('=x\n', 'f.env', host)).toThrow(/f\.env:1/);
  });

  it('--env NAME takes the host value; an unset NAME is an error with the fix', () => {
    expect(parseEnvFlags(['TOKEN', 'X=1'], host)).toEqual({ TOKEN: 'from-host', X: '1' });
    expect(() => parseEnvFlags(['NOPE'], host)).toThrow(/--env NOPE: NOPE is not set/);
    expect(() => parseEnvFlags(['1X=2'], host)).toThrow(/is not a variable name/);
  });
});
