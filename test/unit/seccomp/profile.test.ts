import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PolicyError } from '../../../src/util/errors.js';
import {
  alignedBlocks,
  argIn,
  argNotIn,
  argsMatch,
  low32In,
  low32NotIn,
} from '../../../src/seccomp/args.js';
import { SYSCALL_CATEGORY_LISTS } from '../../../src/seccomp/syscall-table.js';
import { EXEC_GUARDED } from '../../../src/seccomp/execGuard.js';
import { decideCall } from '../../../src/seccomp/evaluate.js';
import {
  buildSeccompProfile,
  hostSeccompArch,
  validateSyscallNames,
  type SeccompArch,
  type SeccompOptions,
} from '../../../src/seccomp/index.js';
import {
  ALLOWED,
  ARG_FILTERED,
  DOCKER_DENIED_BASELINE,
  EXEC_AUDITED,
  FORBIDDEN,
  NOT_NEEDED,
} from '../../../src/seccomp/policy-data.js';
import { syscallNames, syscallNumber } from '../../../src/seccomp/syscalls.js';

const base: SeccompOptions = {
  arch: 'x86_64',
  monitor: true,
  listenerPath: '/run/nanocell/cell/monitor.sock',
  allow: [],
  deny: [],
  unsafeAllowForbidden: false,
};
const build = (o: Partial<SeccompOptions> = {}) => buildSeccompProfile({ ...base, ...o });
const call = (p: ReturnType<typeof build>, name: string, ...args: (number | bigint)[]) =>
  decideCall(
    p.profile,
    name,
    args.map((a) => BigInt(a)),
  );
const NOTIFY = { action: 'SCMP_ACT_NOTIFY' };
const ALLOW = { action: 'SCMP_ACT_ALLOW' };
const ARCHES: SeccompArch[] = ['x86_64', 'aarch64'];

describe('syscall tables', () => {
  it('puts every syscall of every ABI in exactly one category', () => {
    const seen = new Map<string, string>();
    for (const [cat, names] of Object.entries(SYSCALL_CATEGORY_LISTS)) {
      for (const n of names) {
        expect(seen.get(n), `${n} is in ${seen.get(n)} and ${cat}`).toBeUndefined();
        seen.set(n, cat);
      }
    }
    for (const abi of ['x86_64', 'i386', 'x32', 'aarch64'] as const) {
      for (const n of syscallNames(abi))
        expect(seen.has(n), `${abi} ${n} has no category`).toBe(true);
    }
  });

  it('has the well-known numbers', () => {
    expect(syscallNumber('x86_64', 'read')).toBe(0);
    expect(syscallNumber('x86_64', 'clone')).toBe(56);
    expect(syscallNumber('x86_64', 'clone3')).toBe(435);
    expect(syscallNumber('i386', 'getpid')).toBe(20);
    expect(syscallNumber('x32', 'getpid')).toBe(0x40000000 + 39);
    expect(syscallNumber('aarch64', 'openat')).toBe(56);
    expect(syscallNumber('aarch64', 'clone')).toBe(220);
    expect(syscallNumber('aarch64', 'renameat')).toBe(38);
    expect(syscallNumber('aarch64', 'fstat')).toBe(80);
    expect(syscallNumber('aarch64', 'open')).toBeUndefined();
    expect(syscallNumber('aarch64', 'fork')).toBeUndefined();
  });

  it('classifies every x86_64 and aarch64 syscall exactly once in the policy data', () => {
    const lists: [string, readonly string[]][] = [
      ['ALLOWED', ALLOWED],
      ['ARG_FILTERED', Object.keys(ARG_FILTERED)],
      ['EXEC_AUDITED', EXEC_AUDITED],
      ['FORBIDDEN', Object.keys(FORBIDDEN)],
      ['NOT_NEEDED', Object.keys(NOT_NEEDED)],
    ];
    const where = new Map<string, string>();
    for (const [list, names] of lists) {
      for (const n of names) {
        expect(where.get(n), `${n} is in ${where.get(n)} and ${list}`).toBeUndefined();
        where.set(n, list);
        expect(
          syscallNumber('x86_64', n) ?? syscallNumber('aarch64', n),
          `${list}: ${n}`,
        ).toBeDefined();
      }
    }
    for (const arch of ARCHES) {
      for (const n of syscallNames(arch))
        expect(where.has(n), `${arch} ${n} is unclassified`).toBe(true);
    }
  });

  it('gives every explicit denial a reason', () => {
    for (const [n, d] of Object.entries({ ...FORBIDDEN, ...NOT_NEEDED })) {
      expect(d.reason.length, n).toBeGreaterThan(10);
      expect(['EPERM', 'ENOSYS']).toContain(d.errno);
    }
    for (const [n, reason] of Object.entries(ARG_FILTERED))
      expect(reason.length, n).toBeGreaterThan(10);
  });

  it('maps the host architecture', () => {
    expect(hostSeccompArch()).toBe(process.arch === 'arm64' ? 'aarch64' : 'x86_64');
  });
});

describe('buildSeccompProfile', () => {
  it('denies by default with ENOSYS, for x86_64 alone, through the listener', () => {
    const { profile } = build();
    expect(profile.defaultAction).toBe('SCMP_ACT_ERRNO');
    expect(profile.defaultErrnoRet).toBe(38);
    expect(profile.architectures).toEqual(['SCMP_ARCH_X86_64']);
    expect(profile.listenerPath).toBe(base.listenerPath);
    expect(call(build(), 'no_such_syscall')).toEqual({ action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
  });

  it('respects runc 1.1: no NOTIFY default, no NOTIFY for write', () => {
    for (const deny of [[], ['write']]) {
      const { profile } = build({ deny });
      expect(profile.defaultAction).not.toBe('SCMP_ACT_NOTIFY');
      for (const r of profile.syscalls ?? []) {
        if (r.action === 'SCMP_ACT_NOTIFY') expect(r.names).not.toContain('write');
      }
    }
    expect(call(build({ deny: ['write'] }), 'write')).toEqual({
      action: 'SCMP_ACT_ERRNO',
      errnoRet: 1,
    });
  });

  it('refuses a monitored profile without a listener', () => {
    expect(() => build({ listenerPath: undefined })).toThrow(/listener/);
  });

  it('sends every forbidden syscall to the monitor with a recorded denial', () => {
    const p = build();
    for (const n of Object.keys(FORBIDDEN)) {
      if (syscallNumber('x86_64', n) !== undefined) expect(call(p, n), n).toEqual(NOTIFY);
    }
    for (const n of [
      'mount',
      'umount2',
      'fsopen',
      'fsmount',
      'open_tree',
      'move_mount',
      'mount_setattr',
      'pivot_root',
      'unshare',
      'setns',
      'ptrace',
      'process_vm_readv',
      'process_vm_writev',
      'kcmp',
      'pidfd_getfd',
      'bpf',
      'perf_event_open',
      'userfaultfd',
      'io_uring_setup',
      'io_uring_enter',
      'io_uring_register',
      'keyctl',
      'add_key',
      'request_key',
      'kexec_load',
      'init_module',
      'finit_module',
      'reboot',
      'swapon',
      'acct',
      'quotactl',
      'syslog',
      'open_by_handle_at',
      'name_to_handle_at',
      'clock_settime',
      'settimeofday',
      'adjtimex',
      'iopl',
      'ioperm',
    ]) {
      expect(FORBIDDEN[n], n).toBeDefined();
    }
  });

  it('audits exec through the monitor', () => {
    const p = build();
    expect(call(p, 'execve')).toEqual(NOTIFY);
    expect(call(p, 'execveat')).toEqual(NOTIFY);
    expect(p.notifyTable).toMatch(/^x86_64 59 execve 0$/m);
    expect(p.notifyTable).toMatch(/^aarch64 221 execve 0$/m);
  });

  it('allows clone without namespace flags and records clone with them', () => {
    const p = build();
    const threadFlags = 0x3d0f00; // glibc pthread_create
    expect(call(p, 'clone', threadFlags)).toEqual(ALLOW);
    expect(call(p, 'clone', 0x01200011)).toEqual(ALLOW); // fork()
    for (const ns of [
      0x20000, 0x2000000, 0x4000000, 0x8000000, 0x10000000, 0x20000000, 0x40000000, 0x80,
    ]) {
      expect(call(p, 'clone', ns | 17), ns.toString(16)).toEqual(NOTIFY);
    }
    // clone3's flags are in memory: the monitor reads them (native/monitor/clone3.c).
    expect(call(p, 'clone3')).toEqual(NOTIFY);
    expect(p.notifyTable).toMatch(/^x86_64 435 clone3 1$/m);
    // Without the monitor, ENOSYS sends libc back to clone, whose flags the filter sees.
    expect(call(build({ monitor: false }), 'clone3')).toEqual({
      action: 'SCMP_ACT_ERRNO',
      errnoRet: 38,
    });
  });

  it('allows only unix and IP sockets, whatever the upper bits', () => {
    const p = build();
    for (const af of [1, 2, 10]) expect(call(p, 'socket', af, 1, 0)).toEqual(ALLOW);
    for (const af of [0, 3, 4, 9, 11, 17, 40, 0xffff, 2 ** 32 + 1, 2 ** 32 + 16]) {
      expect(call(p, 'socket', af, 3, 0), af.toString(16)).toEqual(NOTIFY);
    }
    expect(call(p, 'socket', 0xffffffffffffffffn)).toEqual(NOTIFY);
    expect(call(p, 'socketpair', 1)).toEqual(ALLOW);
    expect(call(p, 'socketpair', 2)).toEqual(NOTIFY);
  });

  it('records raw and packet IP sockets, whatever the SOCK_* flags', () => {
    const p = build();
    const flags = 0x80000 | 0x800; // SOCK_CLOEXEC | SOCK_NONBLOCK
    for (const af of [2, 10]) {
      for (const type of [1, 2, 5, 6, 1 | flags]) {
        expect(call(p, 'socket', af, type, 0), `${af}/${type}`).toEqual(ALLOW);
      }
      for (const type of [3, 10, 3 | flags, 10 | flags, 2 ** 32 + 3]) {
        expect(call(p, 'socket', af, type, 0), `${af}/${type}`).toEqual(NOTIFY);
      }
    }
    expect(call(p, 'socket', 1, 3, 0)).toEqual(ALLOW); // unix SOCK_RAW is just a datagram socket
    // Netlink: only NETLINK_ROUTE, which getifaddrs() needs.
    expect(call(p, 'socket', 16, 3 | 0x80000, 0)).toEqual(ALLOW);
    for (const proto of [4, 9, 15, 2 ** 32]) {
      expect(call(p, 'socket', 16, 3, proto), `netlink ${proto}`).toEqual(NOTIFY);
    }
  });

  it('allows only the harmless personality values', () => {
    const p = build();
    for (const v of [0, 8, 0x20000, 0x20008, 0xffffffff])
      expect(call(p, 'personality', v)).toEqual(ALLOW);
    for (const v of [0x40000, 0x400000, 0x0100000, 1, 0x20009, 0xfffffffe, 2 ** 32]) {
      expect(call(p, 'personality', v), v.toString(16)).toEqual(NOTIFY);
    }
  });

  it('refuses TIOCSTI and TIOCLINUX, also with garbage in the upper bits', () => {
    const p = build();
    expect(call(p, 'ioctl', 0, 0x5412)).toEqual(NOTIFY);
    expect(call(p, 'ioctl', 0, 0x541c)).toEqual(NOTIFY);
    expect(call(p, 'ioctl', 0, 0xdead00005412n)).toEqual(NOTIFY);
    for (const req of [0x5401, 0x5413, 0x541b, 0x541d, 0x80045430, 0xc0185879]) {
      expect(call(p, 'ioctl', 0, req)).toEqual(ALLOW);
    }
  });

  it('never lets two rules disagree on the same call (argument filters partition the space)', () => {
    const p = build();
    const value = fc.oneof(
      fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
      fc.bigInt({ min: 0n, max: 0x30000n }),
      fc.constantFrom(0n, 1n, 2n, 3n, 8n, 10n, 0x5412n, 0x541cn, 0xffffffffn, 2n ** 32n),
    );
    fc.assert(
      fc.property(
        fc.constantFrom('clone', 'socket', 'socketpair', 'personality', 'ioctl'),
        value,
        value,
        (n, a0, a1) => {
          const out = decideCall(p.profile, n, [a0, a1]); // throws if rules overlap
          expect(['SCMP_ACT_ALLOW', 'SCMP_ACT_NOTIFY']).toContain(out.action);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('sends only file-backed executable mappings and memfd_create to the exec guard', () => {
    const p = build();
    const [PROT_READ, PROT_EXEC, MAP_PRIVATE, MAP_ANONYMOUS] = [1, 4, 2, 0x20];
    expect(call(p, 'mmap', 0, 4096, PROT_READ, MAP_PRIVATE, 3, 0)).toEqual(ALLOW);
    expect(call(p, 'mmap', 0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS)).toEqual(
      ALLOW,
    );
    expect(call(p, 'mmap', 0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, 3, 0)).toEqual(NOTIFY);
    expect(call(p, 'memfd_create', 0, 1)).toEqual(NOTIFY);
  });

  it('leaves mappings to the kernel when the plan needs no mapping guard, memfds still guarded', () => {
    const p = build({ guardMappings: false });
    const [PROT_READ, PROT_EXEC, MAP_PRIVATE] = [1, 4, 2];
    expect(call(p, 'mmap', 0, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, 3, 0)).toEqual(ALLOW);
    expect(call(p, 'memfd_create', 0, 1)).toEqual(NOTIFY);
    expect(call(p, 'execve')).toEqual(NOTIFY);
    // The monitor's table names only what it can be sent.
    expect(p.notifyTable).not.toMatch(/ mmap /);
    expect(build().notifyTable).toMatch(/^x86_64 9 mmap 0$/m);
  });

  it('with monitor off answers by errno and notifies nothing', () => {
    const p = build({ monitor: false, listenerPath: undefined });
    expect(p.profile.listenerPath).toBeUndefined();
    expect(p.notifyTable).toBe('');
    for (const r of p.profile.syscalls ?? []) expect(r.action).not.toBe('SCMP_ACT_NOTIFY');
    expect(call(p, 'mount')).toEqual({ action: 'SCMP_ACT_ERRNO', errnoRet: 1 });
    expect(call(p, 'get_mempolicy')).toEqual({ action: 'SCMP_ACT_ERRNO', errnoRet: 38 });
    expect(call(p, 'socket', 17)).toEqual({ action: 'SCMP_ACT_ERRNO', errnoRet: 1 });
    expect(call(p, 'execve')).toEqual(ALLOW);
    // Same allowlist as the monitored profile.
    const names = (q: typeof p) =>
      (q.profile.syscalls ?? [])
        .filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args)
        .flatMap((r) => r.names);
    expect(names(p).filter((n) => !EXEC_AUDITED.includes(n) && !EXEC_GUARDED.includes(n))).toEqual(
      names(build()),
    );
    // Without the monitor nothing guards mmap or memfd_create: they are plainly allowed.
    expect(names(p)).toEqual(expect.arrayContaining([...EXEC_GUARDED]));
  });

  it('never names a syscall both allowed unconditionally and denied', () => {
    for (const arch of ARCHES) {
      const rules = build({ arch }).profile.syscalls ?? [];
      const allowed = new Set(
        rules.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names),
      );
      for (const r of rules.filter((r) => r.action !== 'SCMP_ACT_ALLOW')) {
        for (const n of r.names) expect(allowed.has(n), `${arch} ${n}`).toBe(false);
      }
    }
  });

  it('is at least as strict as Docker for a container without capabilities', () => {
    for (const arch of ARCHES) {
      const p = build({ arch });
      for (const n of DOCKER_DENIED_BASELINE) {
        if (syscallNumber(arch, n) === undefined) continue;
        expect(call(p, n).action, `${arch} ${n}`).not.toBe('SCMP_ACT_ALLOW');
      }
    }
  });

  it('builds an aarch64 profile from the aarch64 table', () => {
    const p = build({ arch: 'aarch64' });
    expect(p.profile.architectures).toEqual(['SCMP_ARCH_AARCH64']);
    const names = new Set((p.profile.syscalls ?? []).flatMap((r) => r.names));
    for (const n of [
      'open',
      'fork',
      'stat',
      'pipe',
      'dup2',
      'arch_prctl',
      'iopl',
      'modify_ldt',
      'epoll_wait',
    ]) {
      expect(names.has(n), n).toBe(false);
    }
    for (const n of names) expect(syscallNumber('aarch64', n), n).toBeDefined();
    expect(call(p, 'openat')).toEqual(ALLOW);
    expect(call(p, 'clone', 0x10000000)).toEqual(NOTIFY);
  });

  it('makes every known, not allowed syscall an explicit NOTIFY rule', () => {
    for (const arch of ARCHES) {
      const p = build({ arch });
      for (const n of syscallNames(arch)) {
        const out = call(p, n, 0x10000000 | 17, 0x5412); // arguments that trip every filter
        expect(out.action === 'SCMP_ACT_ERRNO' && out.errnoRet === 38, `${arch} ${n}`).toBe(false);
      }
    }
  });
});

describe('policy additions', () => {
  it('rejects unknown names, naming the entry', () => {
    expect(() => validateSyscallNames(['read', 'opne'], 'syscalls.allow')).toThrow(PolicyError);
    expect(() => validateSyscallNames(['read', 'opne'], 'syscalls.allow')).toThrow(
      /syscalls\.allow\[1\]: unknown syscall "opne"/,
    );
    expect(() => build({ deny: ['sys_open'] })).toThrow(
      /syscalls\.deny\[0\]: unknown syscall "sys_open"/,
    );
    expect(() => build({ allow: ['socketcall'] })).toThrow(/syscalls\.allow\[0\]/); // i386 only
    expect(() => validateSyscallNames(['openat', 'open', 'renameat'], 'x')).not.toThrow();
  });

  it('rejects a name in both lists', () => {
    expect(() => build({ allow: ['mbind'], deny: ['mbind'] })).toThrow(
      /syscalls\.allow\[0\]: mbind is also in syscalls\.deny/,
    );
  });

  it('re-allows a not-needed syscall without ceremony', () => {
    const p = build({ allow: ['mbind', 'modify_ldt'] });
    expect(call(p, 'mbind')).toEqual(ALLOW);
    expect(call(p, 'modify_ldt')).toEqual(ALLOW);
    expect(p.unsafeAllowed).toEqual([]);
    expect(p.notifyTable).not.toMatch(/ mbind /);
  });

  it('re-allows a forbidden syscall only with the unsafe flag, and records it', () => {
    expect(() => build({ allow: ['ptrace'] })).toThrow(PolicyError);
    let err: unknown;
    try {
      build({ allow: ['ptrace'] });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PolicyError);
    expect((err as PolicyError).message).toMatch(
      /^syscalls\.allow\[0\]: ptrace is forbidden by the threat model/,
    );
    expect((err as PolicyError).fix).toMatch(/unsafeAllowForbidden: true/);
    expect(() => build({ allow: ['socket'] })).toThrow(/socket is forbidden/);
    const p = build({ allow: ['ptrace', 'socket', 'read'], unsafeAllowForbidden: true });
    expect(p.unsafeAllowed).toEqual(['ptrace', 'socket']);
    expect(call(p, 'ptrace')).toEqual(ALLOW);
    expect(call(p, 'socket', 17)).toEqual(ALLOW);
    expect(p.notifyTable).not.toMatch(/ ptrace /);
  });

  it('the unsafe flag alone re-allows nothing', () => {
    const p = build({ unsafeAllowForbidden: true });
    expect(p.unsafeAllowed).toEqual([]);
    expect(call(p, 'ptrace')).toEqual(NOTIFY);
  });

  it('denies extra syscalls through the monitor', () => {
    const p = build({ deny: ['chmod', 'socket', 'get_mempolicy'] });
    expect(call(p, 'chmod')).toEqual(NOTIFY);
    expect(call(p, 'socket', 2)).toEqual(NOTIFY);
    expect(p.notifyTable).toMatch(/^x86_64 90 chmod 1$/m);
    expect(p.notifyTable).toMatch(/^x86_64 239 get_mempolicy 38$/m);
    expect(p.notifyTable).not.toMatch(/ fchmod /);
  });
});

describe('notify table', () => {
  const table = build().notifyTable;
  const rows = table
    .trim()
    .split('\n')
    .map((l) => l.split(' '));

  it('has one well-formed row per arch and syscall', () => {
    const keys = new Set<string>();
    for (const [arch, nr, name, errno, ...rest] of rows) {
      expect(rest).toEqual([]);
      expect(['x86_64', 'i386', 'aarch64']).toContain(arch);
      expect(syscallNumber(arch as 'x86_64', name!)).toBe(Number(nr));
      expect(['0', '1', '38']).toContain(errno);
      expect(keys.has(`${arch} ${name}`)).toBe(false);
      keys.add(`${arch} ${name}`);
    }
  });

  it('covers every NOTIFY rule of both profiles', () => {
    for (const [arch, abi] of [
      ['x86_64', 'x86_64'],
      ['aarch64', 'aarch64'],
    ] as const) {
      const p = build({ arch });
      for (const r of p.profile.syscalls ?? []) {
        if (r.action !== 'SCMP_ACT_NOTIFY') continue;
        for (const n of r.names)
          expect(table, `${abi} ${n}`).toMatch(new RegExp(`^${abi} \\d+ ${n} \\d+$`, 'm'));
      }
    }
    expect(table).toMatch(/^i386 \d+ mount 1$/m);
    expect(table).toMatch(/^x86_64 165 mount 1$/m);
    expect(table).toMatch(/^x86_64 41 socket 1$/m);
    expect(table).toMatch(/^x86_64 \d+ afs_syscall 38$/m);
    expect(table).not.toMatch(/ (read|write|openat) /);
  });
});

describe('argument helpers', () => {
  it('aligned blocks cover a range exactly', () => {
    fc.assert(
      fc.property(fc.nat(0xffffffff), fc.nat(0xffff), (lo, len) => {
        const hi = Math.min(0xffffffff, lo + len);
        const blocks = alignedBlocks(lo, hi);
        let at = lo;
        for (const b of blocks) {
          expect(b.base).toBe(at);
          expect(b.base % b.size).toBe(0);
          at += b.size;
        }
        expect(at).toBe(hi + 1);
        expect(blocks.length).toBeLessThanOrEqual(64);
      }),
    );
  });

  it('argIn/argNotIn and low32In/low32NotIn are complements', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.nat(0xffffffff), { minLength: 1, maxLength: 5 }),
        fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
        (values, x) => {
          const inSet = values.map(BigInt).includes(x);
          expect(argsMatch(argIn(0, values), [x])).toBe(inSet);
          expect(argsMatch(argNotIn(0, values), [x])).toBe(!inSet);
          const low = values.map(BigInt).includes(x & 0xffffffffn);
          expect(argsMatch(low32In(1, values), [0n, x])).toBe(low);
          expect(argsMatch(low32NotIn(1, values), [0n, x])).toBe(!low);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
