import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PolicyError } from '../../../src/util/errors.js';
import { parseHostPattern, patternMatchesName } from '../../../src/net/patterns.js';
import { compileNetRules, decideHost } from '../../../src/net/rules.js';
import { formatIp, parseIp } from '../../../src/net/ip.js';

const label = fc.stringMatching(/^[a-z0-9](?:[a-z0-9-]{0,10}[a-z0-9])?$/);
const tld = fc.stringMatching(/^[a-z]{2,6}$/);
const domain = fc
  .tuple(fc.array(label, { minLength: 1, maxLength: 3 }), tld)
  .map(([ls, t]) => [...ls, t].join('.'));
const tricky = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.constantFrom(
    '*',
    '*.',
    '[',
    ']',
    ':',
    '::',
    '/',
    '%',
    '@',
    '.',
    '..',
    '0x',
    '*.com',
    '[::1]',
    ':0',
  ),
);
const entry = fc.oneof(
  domain,
  domain.map((d) => `*.${d}`),
  fc.array(fc.oneof(tricky, domain), { minLength: 1, maxLength: 4 }).map((parts) => parts.join('')),
);

describe('host pattern parser properties', () => {
  it('throws nothing but PolicyError, whatever it is given', () => {
    fc.assert(
      fc.property(
        fc.oneof(entry, fc.anything()),
        fc.constantFrom('network.allow', 'network.deny'),
        (e, field) => {
          try {
            parseHostPattern(e, field as 'network.allow');
          } catch (err) {
            expect(err).toBeInstanceOf(PolicyError);
            expect((err as Error).message).toContain(field);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('*.x.y never matches x.y itself, and matches every subdomain of it', () => {
    fc.assert(
      fc.property(domain, label, (d, sub) => {
        let p;
        try {
          p = parseHostPattern(`*.${d}`, 'network.allow');
        } catch (err) {
          expect(err).toBeInstanceOf(PolicyError); // public suffixes
          return;
        }
        expect(patternMatchesName(p, d)).toBe(false);
        expect(patternMatchesName(p, `${sub}.${d}`)).toBe(true);
        const r = compileNetRules({ allow: [`*.${d}`], deny: [], cidrs: [], hosts: {} });
        expect(decideHost(r, d, 443).decision).toBe('denied');
        expect(decideHost(r, `${sub}.${d}`, 443).decision).toBe('allowed');
      }),
      { numRuns: 1000 },
    );
  });

  it('deny always beats allow for the same pattern', () => {
    fc.assert(
      fc.property(domain, fc.boolean(), fc.integer({ min: 1, max: 65535 }), (d, wild, port) => {
        const p = wild ? `*.${d}` : d;
        let r;
        try {
          r = compileNetRules({ allow: [`${p}:${port}`], deny: [p], cidrs: [], hosts: {} });
        } catch {
          return;
        }
        expect(decideHost(r, wild ? `a.${d}` : d, port).decision).toBe('denied');
      }),
    );
  });

  it('IP text round-trips through the canonical form', () => {
    fc.assert(
      fc.property(fc.oneof(fc.ipV4(), fc.ipV6()), (text) => {
        const ip = parseIp(text)!;
        expect(ip).toBeDefined();
        expect(parseIp(formatIp(ip))).toEqual(ip);
      }),
      { numRuns: 2000 },
    );
  });
});
