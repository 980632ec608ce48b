// New namespaces and new mounts (issue 13 B4): every way to get a new user namespace or a new
// mount, including clone3 (flags in memory) and the mount API, is refused and recorded; a race
// on clone3's flags meets the cell's namespace limits; and NS-00 walks this kernel's syscall
// list so that a syscall nanocell's tables do not know fails here instead of slipping through.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSeccompProfile } from '../../src/seccomp/profile.js';
import { decideCall } from '../../src/seccomp/evaluate.js';
import { SYSCALL_NUMBERS } from '../../src/seccomp/syscall-numbers.generated.js';
import { attempts, AttackCell, EPERM, HostSentinels, type Attempt } from './harness.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const NS_PY = fs.readFileSync(path.join(HERE, 'fixtures', 'ns.py'), 'utf8');
const RACE_C = fs.readFileSync(path.join(HERE, 'fixtures', 'clone3race.c'), 'utf8');
const ENOSPC = 28;
const ENOSYS = 38;
const X64: Readonly<Record<string, number>> = SYSCALL_NUMBERS.x86_64;
const I386: Readonly<Record<string, number>> = SYSCALL_NUMBERS.i386;

/**
 * The syscalls this kernel implements for x86_64 programs and its i386 emulation: every
 * `T __x64_sys_NAME` in /proc/kallsyms. Weak (`W`) symbols are COND_SYSCALL stubs of syscalls
 * the kernel was built without. A few entry points carry an internal name; they are mapped to
 * the table name they implement.
 */
function kernelSyscalls(): string[] {
  const alias: Record<string, string> = {
    newuname: 'uname',
    newstat: 'stat',
    newlstat: 'lstat',
    newfstat: 'fstat',
    old_readdir: 'readdir',
    oldumount: 'umount',
    old_getrlimit: 'getrlimit',
    mmap_pgoff: 'mmap2',
    llseek: '_llseek',
  };
  // Generic entry points compiled in but wired into no x86 table (other architectures' calls).
  const notWired = new Set(['ni_syscall', 'send', 'recv', 'gethostname', 'sync_file_range2']);
  const names = new Set<string>();
  for (const line of fs.readFileSync('/proc/kallsyms', 'utf8').split('\n')) {
    const [, type, sym] = line.split(' ');
    if (!sym?.startsWith('__x64_sys_') || (type !== 'T' && type !== 't')) continue;
    let n = sym.slice('__x64_sys_'.length);
    if (n.includes('.') || notWired.has(n)) continue; // foo.cold: a compiler-split part
    // i386 emulation: ia32_ wrappers split 64-bit arguments, *16 take 16-bit ids, *time32 and
    // *32 take 32-bit times; each implements the i386 call of the base name.
    n = n
      .replace(/^ia32_/, '')
      .replace(/16$/, '')
      .replace(/_time32$/, '');
    if (!(n in X64) && !(n in I386)) n = n.replace(/32$/, '');
    names.add(alias[n] ?? n);
  }
  return [...names].sort();
}

const profile = buildSeccompProfile({
  arch: 'x86_64',
  monitor: true,
  listenerPath: '/x',
  allow: [],
  deny: [],
  unsafeAllowForbidden: false,
}).profile;

let ac: AttackCell;
let host: HostSentinels;

async function ns(...args: string[]): Promise<Attempt[]> {
  const r = await ac.run(['python3', 'ns.py', ...args]);
  const out = attempts(r.stdout);
  if (out.length === 0) throw new Error(`ns.py printed nothing: ${r.stdout} ${r.stderr}`);
  return out;
}

beforeAll(async () => {
  host = new HostSentinels();
  ac = await AttackCell.start({ files: { 'ns.py': NS_PY, 'clone3race.c': RACE_C } });
});
afterAll(async () => {
  await ac?.dispose();
  host?.cleanup();
});

describe('new namespaces and mounts', () => {
  it('NS-00 walks this kernel’s syscalls: each is known, and allowed or refused and recorded', async () => {
    const kernel = kernelSyscalls();
    expect(kernel.length).toBeGreaterThan(350);
    const unknown = kernel.filter((n) => !(n in X64) && !(n in I386));
    // A syscall here is new to nanocell: add it to NEWER in scripts/gen-syscall-tables.mjs and
    // classify it in src/seccomp/syscall-table.ts.
    expect(unknown, 'kernel syscalls unknown to the tables').toEqual([]);
    // The profile: every x86_64 syscall is allowed (maybe by argument) or notified to the
    // monitor, which records it; an unrecorded errno answer would be a silent refusal.
    const x64 = kernel.filter((n) => n in X64);
    const toCall: string[] = [];
    for (const n of x64) {
      const outcomes = [[], [0x10000000n | 17n, 0x5412n]].map((a) => decideCall(profile, n, a));
      for (const o of outcomes) expect(o.action, n).not.toBe('SCMP_ACT_ERRNO');
      if (outcomes[0]!.action === 'SCMP_ACT_NOTIFY') toCall.push(n);
    }
    // In a real cell: each notified call with zero arguments (the exec guard's calls, which
    // continue when harmless, aside) is refused and recorded.
    const guarded = new Set(['execve', 'execveat', 'mmap', 'memfd_create', 'clone3']);
    const denied = toCall.filter((n) => !guarded.has(n));
    expect(denied).toEqual(expect.arrayContaining(['unshare', 'setns', 'mount', 'open_tree']));
    const results = await ns('walk', ...denied.map((n) => String(X64[n])));
    expect(results.length, `stopped before ${denied[results.length]}`).toBe(denied.length);
    // Every one, newer kernels' calls included (statmount, listmount, lsm_*, open_tree_attr):
    // nanocell-init installs a filter compiled from nanocell's own tables (src/seccomp/bpf.ts).
    for (const [i, n] of denied.entries()) {
      const r = results[i]!;
      expect(r.ok, `${n} succeeded`).toBe(false);
      expect([EPERM, ENOSYS], `${n} errno ${r.errno}`).toContain(r.errno);
      await ac.deniedRecorded(n);
    }
    expect(denied).toEqual(
      expect.arrayContaining(['statmount', 'listmount'].filter((n) => kernel.includes(n))),
    );
    // The kernel exempts uretprobe and uprobe from seccomp; outside the uprobe trampoline they
    // kill their caller (uretprobe) or fail (uprobe), and touch nothing else.
    for (const n of ['uretprobe', 'uprobe'].filter((x) => kernel.includes(x))) {
      const py = `import ctypes; l = ctypes.CDLL(None, use_errno=True); print(l.syscall(${X64[n]}), ctypes.get_errno())`;
      const r = await ac.run(['python3', '-c', py]);
      if (r.exitCode === 0) expect(r.stdout, n).toMatch(/^-1 [1-9]\d*\n$/);
      else expect(r.stdout, n).toBe('');
    }
    const alive = await ac.sh('echo alive');
    expect(alive.stdout).toBe('alive\n');
    expect(host.changes()).toEqual([]);
  }, 180_000);

  it('NS-01 clone3 with any namespace flag is refused with EPERM and recorded with the flags', async () => {
    const flags = [
      'CLONE_NEWUSER',
      'CLONE_NEWNS',
      'CLONE_NEWPID',
      'CLONE_NEWNET',
      'CLONE_NEWIPC',
      'CLONE_NEWUTS',
      'CLONE_NEWCGROUP',
      'CLONE_NEWTIME',
      'CLONE_NEWUSER|CLONE_NEWNS',
    ];
    const results = await ns('clone3', ...flags);
    for (const r of results) {
      expect(r.ok, r.t).toBe(false);
      expect(r.errno, r.t).toBe(EPERM);
    }
    // The detail names the flags in the kernel's bit order.
    for (const f of ['CLONE_NEWUSER', 'CLONE_NEWTIME', 'CLONE_NEWNS|CLONE_NEWUSER']) {
      await ac.recorded(
        (e) =>
          e.type === 'syscall.denied' &&
          e.name === 'clone3' &&
          e.detail === `clone3 asked for ${f}: a new namespace is refused`,
      );
    }
    expect(host.changes()).toEqual([]);
  });

  it('NS-02 plain clone3 (fork) and pthread_create keep working and are not recorded as denials', async () => {
    const before = ac.events().filter((e) => e.type === 'syscall.denied').length;
    const [fork, threads] = await ns('clone3-plain');
    expect(fork).toMatchObject({ ok: true, out: 'exit 0' });
    expect(threads).toMatchObject({ ok: true, out: '32' });
    const r = await ac.sh(
      'nproc; python3 -c "import concurrent.futures as f; print(sum(f.ThreadPoolExecutor(8).map(abs, range(-50, 0))))"',
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('1275');
    expect(ac.events().filter((e) => e.type === 'syscall.denied').length).toBe(before);
  });

  it('NS-03 racing clone3’s flags past the monitor still gets no user namespace (the kernel limit holds)', async () => {
    // C, not Python: a raw clone3 child of a threaded Python process would wait on the GIL.
    const r = await ac.sh('gcc -O2 -pthread -o clone3race clone3race.c && ./clone3race 4');
    expect(r.exitCode, r.stderr).toBe(0);
    const [race] = attempts(r.stdout);
    const stats = Object.fromEntries(
      race!.out.split(' ').map((kv) => [kv.split('=')[0], Number(kv.split('=')[1])]),
    );
    expect(stats.tries, race!.out).toBeGreaterThan(50);
    expect(stats.escaped, race!.out).toBe(0);
    expect(race!.ok).toBe(false);
    // The monitor refused what it saw; whatever it did not see met the limit (ENOSPC).
    expect(stats.eperm! + stats.enospc!, race!.out).toBeGreaterThan(0);
    expect(stats.other, race!.out).toBe(0);
    await ac.deniedRecorded('clone3');
    expect(host.changes()).toEqual([]);
  }, 120_000);

  it('NS-04 the namespace limits are 0 in the cell and the task cannot raise them', async () => {
    const results = await ns('limits');
    expect(results.map((r) => r.t)).toEqual([
      'user',
      'mnt',
      'pid',
      'net',
      'ipc',
      'uts',
      'cgroup',
      'time',
    ]);
    for (const r of results) {
      expect(r.out, r.t).toBe('0');
      expect(r.ok, `${r.t} raised`).toBe(false);
    }
  });

  it('NS-05 unshare of every namespace type, and the unshare(1) tool, are refused and recorded', async () => {
    const results = await ns(
      'unshare',
      'CLONE_NEWUSER',
      'CLONE_NEWNS',
      'CLONE_NEWNET',
      'CLONE_NEWPID',
      'CLONE_NEWTIME',
    );
    for (const r of results) expect([r.t, r.ok, r.errno]).toEqual([r.t, false, EPERM]);
    await ac.deniedRecorded('unshare');
    const tool = await ac.sh('unshare -Urm id -u; unshare -n true; echo rc=$?');
    expect(tool.stdout).not.toMatch(/^0$/m);
    expect(tool.stdout).toContain('rc=1');
    await ac.execRecorded('unshare', '-Urm');
  });

  it('NS-06 clone with each namespace flag is refused and recorded', async () => {
    for (const flag of [0x20000, 0x10000000, 0x20000000, 0x40000000, 0x80]) {
      const [r] = await ac.atk('syscall', 'clone', String(flag | 17), '0', '0', '0', '0');
      expect(r!.ok, flag.toString(16)).toBe(false);
      expect(r!.errno).toBe(EPERM);
    }
    await ac.deniedRecorded('clone');
  });

  it('NS-07 the mount API (fsopen, fspick, open_tree, move_mount, fsmount, mount_setattr, open_tree_attr) is refused and recorded', async () => {
    const results = await ns('mount-api');
    expect(results.length).toBe(10);
    for (const r of results) {
      expect(r.ok, `${r.t} succeeded`).toBe(false);
      expect([EPERM, ENOSYS], `${r.t} errno ${r.errno}`).toContain(r.errno);
      await ac.deniedRecorded(r.t);
    }
    expect(host.changes()).toEqual([]);
  });

  it('NS-09 the allowed calls of newer kernels work in a cell as on the host (fchmodat2, mseal)', async () => {
    const py = [
      'import ctypes, mmap, os',
      'l = ctypes.CDLL(None, use_errno=True)',
      "open('/tmp/f', 'w').close()",
      `r = l.syscall(${X64.fchmodat2}, -100, b'/tmp/f', 0o640, 0)`,
      "print('fchmodat2', r, ctypes.get_errno(), oct(os.stat('/tmp/f').st_mode & 0o777))",
      'm = mmap.mmap(-1, 4096)',
      'a = ctypes.addressof(ctypes.c_char.from_buffer(m))',
      `print('mseal', l.syscall(${X64.mseal}, ctypes.c_void_p(a), 4096, 0), ctypes.get_errno())`,
    ].join('\n');
    const r = await ac.run(['python3', '-c', py]);
    expect(r.stdout).toBe('fchmodat2 0 0 0o640\nmseal 0 0\n');
  });
});

describe('what holds when seccomp does not', () => {
  it('NS-08 a policy that re-allows unshare (unsafe) still gets no namespace: ENOSPC for a user namespace, EPERM for the rest', async () => {
    const weak = await AttackCell.start({
      files: { 'ns.py': NS_PY },
      policy: { syscalls: { allow: ['unshare', 'setns'], unsafeAllowForbidden: true } },
    });
    try {
      const r = await weak.run([
        'python3',
        'ns.py',
        'unshare',
        'CLONE_NEWUSER',
        'CLONE_NEWNS',
        'CLONE_NEWNET',
      ]);
      // The user namespace limit is 0; the others need CAP_SYS_ADMIN, which only a new user
      // namespace would give.
      expect(attempts(r.stdout).map((a) => [a.t, a.ok, a.errno])).toEqual([
        ['CLONE_NEWUSER', false, ENOSPC],
        ['CLONE_NEWNS', false, EPERM],
        ['CLONE_NEWNET', false, EPERM],
      ]);
    } finally {
      await weak.dispose();
    }
  });
});
