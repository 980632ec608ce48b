// Property tests that complete issue 7's list where the area suites stop: policy parsing against
// hostile documents (unknown keys anywhere, re-allowing forbidden syscalls, dangerous network
// patterns), and glob scoping against secrets at any depth and include/exclude precedence.
// The apply path is covered by test/integration/workspace/applyProperty.test.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_EXCLUDES, DEFAULT_PROTECTED } from '../../src/policy/defaults.js';
import { parsePolicy, resolvePolicy } from '../../src/policy/load.js';
import { PolicyError } from '../../src/util/errors.js';
import { compileNetRules } from '../../src/net/rules.js';
import { decideSyscalls } from '../../src/seccomp/profile.js';
import { SYSCALL_NUMBERS } from '../../src/seccomp/syscall-numbers.generated.js';
import { FORBIDDEN } from '../../src/seccomp/policy-data.js';
import { compileScope } from '../../src/workspace/globs.js';

const SECTIONS = ['limits', 'workspace', 'exec', 'network', 'syscalls', 'env'] as const;
const key = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,12}$/);
const segment = fc.stringMatching(/^[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,10}$/).filter((s) => s !== '..');
const dirs = fc.array(segment, { maxLength: 4 });
const fails = (doc: unknown) => {
  try {
    // Network patterns are compiled (and checked) when a cell starts its proxy.
    compileNetRules(resolvePolicy(parsePolicy(doc)).network);
    return false;
  } catch (e) {
    expect(e).toBeInstanceOf(PolicyError);
    return true;
  }
};

describe('policy parsing (property)', () => {
  it('rejects an unknown key at the top level or in any section', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('', ...SECTIONS.filter((s) => s !== 'env')),
        key,
        (section, k) => {
          const known = new Set<string>(
            section === '' ? [...SECTIONS, 'runtime', 'allowDegraded'] : [],
          );
          fc.pre(!known.has(k));
          const doc = section === '' ? { [k]: 1 } : { [section]: { [`${k}_x`]: 1 } };
          expect(fails(doc)).toBe(true);
        },
      ),
    );
  });

  it('never re-allows a forbidden syscall without the unsafe flag, and records it with the flag', () => {
    const arch = process.arch === 'arm64' ? 'aarch64' : 'x86_64';
    // Syscalls Linux removed (answered ENOSYS anyway) are left out: re-allowing them is moot.
    const names = Object.keys(FORBIDDEN).filter((n) => FORBIDDEN[n]!.errno === 'EPERM');
    fc.assert(
      fc.property(fc.subarray(names, { minLength: 1 }), (allow) => {
        // The syscall section is decided when the cell's profile is built.
        const p = resolvePolicy(parsePolicy({ syscalls: { allow } }));
        const decide = (unsafe: boolean) =>
          decideSyscalls({ arch, allow: p.syscalls.allow, deny: [], unsafeAllowForbidden: unsafe });
        expect(() => decide(false)).toThrow(PolicyError);
        const known = (n: string) => Object.hasOwn(SYSCALL_NUMBERS[arch], n);
        expect(decide(true).unsafeAllowed.sort()).toEqual(allow.filter(known).sort());
      }),
    );
  });

  it('rejects allow patterns that would open the whole network', () => {
    const broad = fc.constantFrom(
      '*',
      '*.com',
      '*.co.uk',
      '',
      'http://a.test',
      'a.test/x',
      'a.test:0',
      'a.test:70000',
      '*.*',
    );
    fc.assert(
      fc.property(broad, (p) => {
        expect(fails({ network: { allow: [p] } })).toBe(true);
      }),
    );
  });

  it('keeps the default secret excludes whatever include and exclude a policy adds', () => {
    fc.assert(
      fc.property(
        fc.array(segment, { maxLength: 3 }),
        fc.array(segment, { maxLength: 3 }),
        (inc, exc) => {
          const p = resolvePolicy(
            parsePolicy({ workspace: { include: inc.map((s) => `${s}/**`), exclude: exc } }),
          );
          for (const d of DEFAULT_EXCLUDES) expect(p.workspace.exclude).toContain(d);
          for (const d of DEFAULT_PROTECTED) expect(p.workspace.protected).toContain(d);
        },
      ),
    );
  });
});

describe('glob scoping (property)', () => {
  const m = compileScope({
    include: ['**'],
    exclude: [...DEFAULT_EXCLUDES],
    protected: [...DEFAULT_PROTECTED],
  });
  const secret = fc.constantFrom(
    '.env',
    '.env.production',
    'server.pem',
    'tls.key',
    'id_rsa',
    'id_ed25519.pub',
    '.npmrc',
    '.netrc',
    '.pypirc',
    '.git-credentials',
    'credentials.json',
  );
  const secretDir = fc.constantFrom('.ssh', '.aws', '.gnupg');

  it('excludes a secret file at any depth, and everything under a secret dir', () => {
    fc.assert(
      fc.property(dirs, secret, (d, s) => {
        expect(m.isExcluded([...d, s].join('/'))).toBe(true);
      }),
    );
    fc.assert(
      fc.property(dirs, secretDir, dirs, (d, s, below) => {
        expect(m.isExcluded([...d, s, ...below].join('/'))).toBe(true);
      }),
    );
  });

  it('exclude always wins over include', () => {
    fc.assert(
      fc.property(dirs, segment, (d, name) => {
        const rel = [...d, name].join('/');
        const s = compileScope({ include: ['**', rel], exclude: [rel], protected: [] });
        expect(s.isExcluded(rel)).toBe(true);
        expect(s.inScope(rel)).toBe(false);
      }),
    );
  });

  it('protects everything under a persistence path at the project root', () => {
    fc.assert(
      fc.property(fc.constantFrom(...DEFAULT_PROTECTED), dirs, (p, below) => {
        expect(m.isProtected([p, ...below].join('/'))).toBe(true);
      }),
    );
  });

  it('an include pattern never brings in a path outside it', () => {
    fc.assert(
      fc.property(segment, segment, dirs, (a, b, below) => {
        fc.pre(a !== b);
        const s = compileScope({ include: [`${a}/**`], exclude: [], protected: [] });
        expect(s.inScope([b, ...below, 'f'].join('/'))).toBe(false);
      }),
    );
  });
});
