// matchAny takes shortcuts (basename-only regexes for `**` + `/NAME`, set lookups for literal
// paths); they must decide exactly as picomatch does for every pattern and path.
import fc from 'fast-check';
import picomatch from 'picomatch';
import { describe, expect, it } from 'vitest';
import { DEFAULT_EXCLUDES, DEFAULT_PROTECTED } from '../../../src/policy/defaults.js';
import { matchAny } from '../../../src/workspace/globs.js';

const segment = fc.constantFrom(
  '.env',
  '.env.local',
  'id_rsa',
  'id_rsa.pub',
  'a.pem',
  '.ssh',
  'config',
  'src',
  'lib',
  '.git',
  'hooks',
  'x.key',
  'README.md',
  'a-b_c.txt',
  '.vscode',
);
const relPath = fc.array(segment, { minLength: 1, maxLength: 5 }).map((s) => s.join('/'));
const globPart = fc.constantFrom('*', '?', '*.pem', 'id_rsa*', '.env.*', '{src,lib}', '[ab]*');
const pattern = fc.oneof(
  segment.map((s) => `**/${s}`),
  globPart.map((g) => `**/${g}`),
  fc.array(segment, { minLength: 1, maxLength: 3 }).map((s) => s.join('/')),
  fc.tuple(segment, globPart).map(([a, g]) => `${a}/${g}`),
  fc.tuple(segment, segment).map(([a, b]) => `${a}/**/${b}`),
  fc.tuple(segment, segment).map(([a, b]) => `**/${a}/${b}`),
);

function reference(patterns: string[]): (rel: string) => boolean {
  const res = patterns.map((p) => picomatch.makeRe(p, { dot: true }));
  return (rel) => res.some((re) => re.test(rel));
}

describe('matchAny', () => {
  it('decides like picomatch for random patterns and paths', () => {
    fc.assert(
      fc.property(
        fc.array(pattern, { minLength: 1, maxLength: 6 }),
        fc.array(relPath),
        (ps, rels) => {
          const fast = matchAny(ps);
          const slow = reference(ps);
          for (const rel of rels) expect(fast(rel)).toBe(slow(rel));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('decides like picomatch for the default excludes and protected paths', () => {
    fc.assert(
      fc.property(relPath, (rel) => {
        for (const ps of [[...DEFAULT_EXCLUDES], [...DEFAULT_PROTECTED]])
          expect(matchAny(ps)(rel)).toBe(reference(ps)(rel));
      }),
      { numRuns: 2000 },
    );
  });
});
