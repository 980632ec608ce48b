// The default syscall policy of a cell, as the lists the profile builder and the tests read.
// They are views of the one table (syscall-table.ts), where each syscall's category, default
// and reason live together; every syscall of the x86_64 and aarch64 tables is in exactly one.
import { SYSCALL_TABLE, type DenyErrno, type SyscallDefault } from './syscall-table.js';

export type { DenyErrno } from './syscall-table.js';
export const ERRNO_VALUE: Readonly<Record<DenyErrno, number>> = { EPERM: 1, ENOSYS: 38 };

interface Denial {
  /** Why the syscall is denied: shown in reviews and reports. */
  reason: string;
  errno: DenyErrno;
}

const rows = Object.entries(SYSCALL_TABLE);
const named = (kind: SyscallDefault['kind']) =>
  rows.filter(([, r]) => r.default?.kind === kind).map(([n]) => n);
const denials = (kind: 'forbidden' | 'not-needed'): Record<string, Denial> =>
  Object.fromEntries(
    rows.flatMap(([n, r]) =>
      r.default?.kind === kind ? [[n, { reason: r.default.reason, errno: r.default.errno }]] : [],
    ),
  );

/** Allowed without conditions. */
export const ALLOWED: readonly string[] = named('allow');

/** Syscalls allowed only for some argument values; the rest is denied and recorded. */
export const ARG_FILTERED: Readonly<Record<string, string>> = Object.fromEntries(
  rows.flatMap(([n, r]) => (r.default?.kind === 'filtered' ? [[n, r.default.reason]] : [])),
);

/** Audited by the monitor, which lets them continue after recording path and argv. */
export const EXEC_AUDITED: readonly string[] = named('audited');

/**
 * Denied by the threat model (docs/threat-model.md): escape primitives and kernel attack
 * surface. A policy may re-allow one only with `syscalls.unsafeAllowForbidden: true`, and the
 * report records it.
 */
export const FORBIDDEN: Readonly<Record<string, Denial>> = denials('forbidden');

/**
 * Denied by default because ordinary programs do not need them; a policy may re-allow them
 * through `syscalls.allow` without the unsafe flag.
 */
export const NOT_NEEDED: Readonly<Record<string, Denial>> = denials('not-needed');

/** runc refuses SCMP_ACT_NOTIFY for these (see buildSeccompProfile): they are denied by errno. */
export const RUNC_NO_NOTIFY: readonly string[] = ['write'];

/** Docker's default profile denies these to a container without capabilities. */
export const DOCKER_DENIED_BASELINE: readonly string[] = [
  'acct',
  'add_key',
  'bpf',
  'chroot',
  'clock_settime',
  'create_module',
  'delete_module',
  'fanotify_init',
  'finit_module',
  'fsconfig',
  'fsmount',
  'fsopen',
  'fspick',
  'get_kernel_syms',
  'get_mempolicy',
  'init_module',
  'ioperm',
  'iopl',
  'kcmp',
  'kexec_file_load',
  'kexec_load',
  'keyctl',
  'lookup_dcookie',
  'mbind',
  'mount',
  'mount_setattr',
  'move_mount',
  'move_pages',
  'migrate_pages',
  'nfsservctl',
  'open_by_handle_at',
  'open_tree',
  'perf_event_open',
  'pidfd_getfd',
  'pivot_root',
  'process_madvise',
  'query_module',
  'quotactl',
  'quotactl_fd',
  'reboot',
  'request_key',
  'set_mempolicy',
  'set_mempolicy_home_node',
  'setdomainname',
  'sethostname',
  'setns',
  'settimeofday',
  'swapoff',
  'swapon',
  'syslog',
  '_sysctl',
  'sysfs',
  'umount2',
  'unshare',
  'uselib',
  'userfaultfd',
  'ustat',
  'vhangup',
  'clone3',
];
