// The compiled filter against the profile's own evaluator: a small classic-BPF interpreter runs
// the program that nanocell-init installs, for every syscall of the tables and many argument
// values, and must answer what decideCall answers.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { actionValue, compileSeccompBpf } from '../../../src/seccomp/bpf.js';
import { decideCall } from '../../../src/seccomp/evaluate.js';
import type { OciSeccomp, OciSeccompArg } from '../../../src/seccomp/oci.js';
import { buildSeccompProfile } from '../../../src/seccomp/profile.js';
import { syscallNames, syscallNumber } from '../../../src/seccomp/syscalls.js';

const AUDIT_ARCH_X86_64 = 0xc000003e;
const AUDIT_ARCH_I386 = 0x40000003;
const KILL_PROCESS = 0x80000000;

/** Runs a sock_filter program over one struct seccomp_data. */
function run(prog: Buffer, nr: number, args: readonly bigint[], arch = AUDIT_ARCH_X86_64): number {
  const data = Buffer.alloc(64);
  data.writeInt32LE(nr | 0, 0);
  data.writeUInt32LE(arch, 4);
  args.forEach((a, i) => data.writeBigUInt64LE(BigInt.asUintN(64, a), 16 + 8 * i));
  let acc = 0;
  for (let pc = 0; pc < prog.length / 8; pc++) {
    const [code, jt, jf, k] = [
      prog.readUInt16LE(pc * 8),
      prog.readUInt8(pc * 8 + 2),
      prog.readUInt8(pc * 8 + 3),
      prog.readUInt32LE(pc * 8 + 4),
    ];
    switch (code) {
      case 0x20:
        acc = data.readUInt32LE(k);
        break;
      case 0x54:
        acc = (acc & k) >>> 0;
        break;
      case 0x05:
        pc += k;
        break;
      case 0x15:
        pc += acc === k ? jt : jf;
        break;
      case 0x25:
        pc += acc > k ? jt : jf;
        break;
      case 0x35:
        pc += acc >= k ? jt : jf;
        break;
      case 0x06:
        return k;
      default:
        throw new Error(`opcode ${code.toString(16)} at ${pc}`);
    }
  }
  throw new Error('fell off the end');
}

const expected = (profile: OciSeccomp, name: string, args: bigint[]) => {
  const o = decideCall(profile, name, args);
  return actionValue(o.action, o.errnoRet) >>> 0;
};

const profiles = [
  { allow: [], deny: [], unsafeAllowForbidden: false },
  { allow: ['ptrace'], deny: ['chmod'], unsafeAllowForbidden: true },
].map(
  (p) =>
    buildSeccompProfile({
      arch: 'x86_64',
      monitor: true,
      listenerPath: '/x',
      ...p,
    }).profile,
);

const EDGES = [0n, 1n, 2n, 17n, 0x5412n, 0xffffffffn, 0x100000000n, 0x10000000n | 17n];
const EDGES_ALL = [...EDGES, 0x7fffffffn, 0x80000000n, (1n << 63n) | 0x11n, (1n << 64n) - 1n];

describe('compileSeccompBpf', () => {
  it('answers every syscall of the tables as the profile does, for edge argument values', () => {
    for (const profile of profiles) {
      const prog = compileSeccompBpf(profile, 'x86_64');
      expect(prog.length / 8).toBeLessThanOrEqual(4096);
      for (const name of syscallNames('x86_64')) {
        const nr = syscallNumber('x86_64', name)!;
        for (const a of EDGES_ALL)
          for (const b of EDGES) {
            const args = [a, b, a & 0xffffn, b, 0n, a];
            expect(run(prog, nr, args), `${name}(${args.join(',')})`).toBe(
              expected(profile, name, args),
            );
          }
      }
    }
  });

  it('agrees with the profile on random argument values (property)', () => {
    const profile = profiles[0]!;
    const prog = compileSeccompBpf(profile, 'x86_64');
    const names = syscallNames('x86_64');
    fc.assert(
      fc.property(
        fc.constantFrom(...names),
        fc.array(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), { minLength: 6, maxLength: 6 }),
        (name, args) => {
          expect(run(prog, syscallNumber('x86_64', name)!, args)).toBe(
            expected(profile, name, args),
          );
        },
      ),
      { numRuns: 20_000 },
    );
  });

  it('kills foreign ABIs (i386, x32) and answers unknown numbers with the default', () => {
    const profile = profiles[0]!;
    const prog = compileSeccompBpf(profile, 'x86_64');
    expect(run(prog, 20, [], AUDIT_ARCH_I386)).toBe(KILL_PROCESS);
    expect(run(prog, 0x40000027, [])).toBe(KILL_PROCESS);
    expect(run(prog, 0x7fffffff, [])).toBe(KILL_PROCESS);
    expect(run(prog, 1000, [])).toBe(0x00050000 | 38); // ENOSYS
    expect(run(prog, -1, [])).toBe(KILL_PROCESS); // the number is unsigned to the filter
  });

  it('compares 64-bit values across the word boundary for every operator', () => {
    const ops: OciSeccompArg['op'][] = [
      'SCMP_CMP_EQ',
      'SCMP_CMP_NE',
      'SCMP_CMP_LT',
      'SCMP_CMP_LE',
      'SCMP_CMP_GT',
      'SCMP_CMP_GE',
      'SCMP_CMP_MASKED_EQ',
    ];
    const values = [0, 5, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 5, 3 * 2 ** 32 + 7];
    const probes = [...new Set(values.flatMap((v) => [v - 1, v, v + 1]).filter((v) => v >= 0))];
    for (const op of ops)
      for (const value of values) {
        const profile: OciSeccomp = {
          defaultAction: 'SCMP_ACT_ERRNO',
          defaultErrnoRet: 38,
          syscalls: [
            {
              names: ['getpid'],
              action: 'SCMP_ACT_ALLOW',
              args: [
                { index: 1, op, value, valueTwo: op === 'SCMP_CMP_MASKED_EQ' ? 5 : undefined },
              ],
            },
            // Two comparisons on one index: alternatives, as runc loads them.
            {
              names: ['getppid'],
              action: 'SCMP_ACT_NOTIFY',
              args: [
                { index: 0, op, value },
                { index: 0, op: 'SCMP_CMP_EQ', value: 42 },
              ],
            },
          ],
        };
        const prog = compileSeccompBpf(profile, 'x86_64');
        for (const p of probes)
          for (const name of ['getpid', 'getppid']) {
            const args = [BigInt(p), BigInt(p), 0n];
            expect(run(prog, syscallNumber('x86_64', name)!, args), `${op} ${value} ${p}`).toBe(
              expected(profile, name, args),
            );
          }
      }
  });
});
