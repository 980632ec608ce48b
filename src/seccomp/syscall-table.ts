// The one syscall table: for every syscall name of the generated ABI tables, what it is for
// (its category, for reviews and reports), what a cell does with it by default (the policy the
// profile builder starts from), and how the audit summary groups its denials. Two unit tests
// check that every generated name has a row and every policy name is a syscall of x86_64 or
// aarch64, so a new kernel header cannot add a syscall nobody looked at.
//
// The baseline is Docker's default profile for a container without capabilities, made
// stricter: ptrace and process_vm_*, io_uring, name_to_handle_at, adjtimex/clock_adjtime,
// modify_ldt and fanotify_mark are denied; socket, socketpair and ioctl get argument filters.

export type SyscallCategory =
  | 'file'
  | 'fs-metadata'
  | 'process'
  | 'identity'
  | 'scheduling'
  | 'memory'
  | 'signal'
  | 'time'
  | 'network'
  | 'ipc'
  | 'event'
  | 'aio'
  | 'mount'
  | 'namespace'
  | 'debug'
  | 'kernel'
  | 'keyring'
  | 'security'
  | 'arch'
  | 'obsolete';

/** What the task sees when a denied syscall is answered (by the monitor, or by the filter). */
export type DenyErrno = 'EPERM' | 'ENOSYS';

/**
 * A cell's default for one syscall. `forbidden`: denied by the threat model; a policy may
 * re-allow it only with `syscalls.unsafeAllowForbidden` (the report records it). `not-needed`:
 * denied because ordinary programs do not need it; `syscalls.allow` re-allows it. Denials answer
 * EPERM normally, ENOSYS where callers probe and fall back only on ENOSYS, or where the kernel
 * itself no longer implements the call, so the cell looks like an older kernel.
 */
export type SyscallDefault =
  | { kind: 'allow' }
  /** Allowed only for some argument values (profile.ts); the rest is denied and recorded. */
  | { kind: 'filtered'; reason: string }
  /** Audited by the monitor, which lets it continue after recording path and argv. */
  | { kind: 'audited' }
  | { kind: 'forbidden' | 'not-needed'; errno: DenyErrno; reason: string };

/** How the audit summary groups a denial: file access, exec, or (unset) other syscalls. */
type ReportGroup = 'files' | 'exec';

export interface SyscallRow {
  category: SyscallCategory;
  /** Undefined for names that exist only on the foreign ABIs (i386, x32), which are refused whole. */
  default?: SyscallDefault;
  report?: ReportGroup;
}

const row = (category: SyscallCategory, d?: SyscallDefault, report?: ReportGroup): SyscallRow => ({
  category,
  ...(d ? { default: d } : {}),
  ...(report ? { report } : {}),
});
const allow = (c: SyscallCategory, r?: ReportGroup) => row(c, { kind: 'allow' }, r);
const audited = (c: SyscallCategory, r?: ReportGroup) => row(c, { kind: 'audited' }, r);
const otherAbi = (c: SyscallCategory, r?: ReportGroup) => row(c, undefined, r);
const filtered = (c: SyscallCategory, reason: string, r?: ReportGroup) =>
  row(c, { kind: 'filtered', reason }, r);
const forbidden = (c: SyscallCategory, errno: DenyErrno, reason: string, r?: ReportGroup) =>
  row(c, { kind: 'forbidden', errno, reason }, r);
const notNeeded = (c: SyscallCategory, errno: DenyErrno, reason: string, r?: ReportGroup) =>
  row(c, { kind: 'not-needed', errno, reason }, r);

export const SYSCALL_TABLE: Readonly<Record<string, SyscallRow>> = {
  // ---- file: files and descriptors
  read: allow('file'),
  write: allow('file'),
  open: allow('file', 'files'),
  openat: allow('file', 'files'),
  openat2: allow('file', 'files'),
  creat: allow('file', 'files'),
  close: allow('file'),
  close_range: allow('file'),
  lseek: allow('file'),
  _llseek: otherAbi('file'),
  pread64: allow('file'),
  pwrite64: allow('file'),
  readv: allow('file'),
  writev: allow('file'),
  preadv: allow('file'),
  pwritev: allow('file'),
  preadv2: allow('file'),
  pwritev2: allow('file'),
  dup: allow('file'),
  dup2: allow('file'),
  dup3: allow('file'),
  fcntl: allow('file'),
  fcntl64: otherAbi('file'),
  ioctl: filtered(
    'file',
    'everything except TIOCSTI and TIOCLINUX, which inject input into a terminal',
  ),
  flock: allow('file'),
  fsync: allow('file'),
  fdatasync: allow('file'),
  sync: allow('file'),
  syncfs: allow('file'),
  sync_file_range: allow('file'),
  truncate: allow('file', 'files'),
  truncate64: otherAbi('file'),
  ftruncate: allow('file', 'files'),
  ftruncate64: otherAbi('file'),
  fallocate: allow('file'),
  fadvise64: allow('file'),
  fadvise64_64: otherAbi('file'),
  readahead: allow('file'),
  sendfile: allow('file'),
  sendfile64: otherAbi('file'),
  splice: allow('file'),
  tee: allow('file'),
  vmsplice: allow('file'),
  copy_file_range: allow('file'),
  getdents: allow('file'),
  getdents64: allow('file'),
  readdir: otherAbi('file'),
  getcwd: allow('file'),
  chdir: allow('file'),
  fchdir: allow('file'),
  mkdir: allow('file', 'files'),
  mkdirat: allow('file', 'files'),
  rmdir: allow('file', 'files'),
  rename: allow('file', 'files'),
  renameat: allow('file', 'files'),
  renameat2: allow('file', 'files'),
  link: allow('file', 'files'),
  linkat: allow('file', 'files'),
  unlink: allow('file', 'files'),
  unlinkat: allow('file', 'files'),
  symlink: allow('file', 'files'),
  symlinkat: allow('file', 'files'),
  readlink: allow('file'),
  readlinkat: allow('file'),
  mknod: allow('file', 'files'),
  mknodat: allow('file', 'files'),
  pipe: allow('file'),
  pipe2: allow('file'),
  memfd_create: allow('file'),
  name_to_handle_at: forbidden(
    'file',
    'EPERM',
    'produces the handles open_by_handle_at consumes; leaks inode identities',
    'files',
  ),
  open_by_handle_at: forbidden(
    'file',
    'EPERM',
    'opens files by handle, bypassing paths and mounts (shocker escape)',
    'files',
  ),

  // ---- fs-metadata
  stat: allow('fs-metadata'),
  lstat: allow('fs-metadata'),
  fstat: allow('fs-metadata'),
  stat64: otherAbi('fs-metadata'),
  lstat64: otherAbi('fs-metadata'),
  fstat64: otherAbi('fs-metadata'),
  fstatat64: otherAbi('fs-metadata'),
  newfstatat: allow('fs-metadata'),
  statx: allow('fs-metadata'),
  oldstat: otherAbi('fs-metadata'),
  oldlstat: otherAbi('fs-metadata'),
  oldfstat: otherAbi('fs-metadata'),
  statfs: allow('fs-metadata'),
  fstatfs: allow('fs-metadata'),
  statfs64: otherAbi('fs-metadata'),
  fstatfs64: otherAbi('fs-metadata'),
  ustat: notNeeded('fs-metadata', 'ENOSYS', 'obsolete filesystem statistics'),
  access: allow('fs-metadata'),
  faccessat: allow('fs-metadata'),
  faccessat2: allow('fs-metadata'),
  chmod: allow('fs-metadata', 'files'),
  fchmod: allow('fs-metadata', 'files'),
  fchmodat: allow('fs-metadata', 'files'),
  chown: allow('fs-metadata', 'files'),
  fchown: allow('fs-metadata', 'files'),
  lchown: allow('fs-metadata', 'files'),
  fchownat: allow('fs-metadata', 'files'),
  chown32: otherAbi('fs-metadata'),
  fchown32: otherAbi('fs-metadata'),
  lchown32: otherAbi('fs-metadata'),
  umask: allow('fs-metadata'),
  utime: allow('fs-metadata'),
  utimes: allow('fs-metadata'),
  futimesat: allow('fs-metadata'),
  utimensat: allow('fs-metadata'),
  utimensat_time64: otherAbi('fs-metadata'),
  getxattr: allow('fs-metadata'),
  lgetxattr: allow('fs-metadata'),
  fgetxattr: allow('fs-metadata'),
  setxattr: allow('fs-metadata', 'files'),
  lsetxattr: allow('fs-metadata', 'files'),
  fsetxattr: allow('fs-metadata', 'files'),
  listxattr: allow('fs-metadata'),
  llistxattr: allow('fs-metadata'),
  flistxattr: allow('fs-metadata'),
  removexattr: allow('fs-metadata', 'files'),
  lremovexattr: allow('fs-metadata', 'files'),
  fremovexattr: allow('fs-metadata', 'files'),
  inotify_init: allow('fs-metadata'),
  inotify_init1: allow('fs-metadata'),
  inotify_add_watch: allow('fs-metadata'),
  inotify_rm_watch: allow('fs-metadata'),
  fanotify_init: notNeeded('fs-metadata', 'EPERM', 'filesystem-wide event monitoring'),
  fanotify_mark: notNeeded(
    'fs-metadata',
    'EPERM',
    'only useful with fanotify_init, which is denied',
  ),

  // ---- process: processes and threads (clone is argument-filtered, exec is audited)
  fork: allow('process'),
  vfork: allow('process'),
  clone: filtered(
    'process',
    'allowed without namespace flags (CLONE_NEW*): a new namespace is an escape primitive',
  ),
  clone3: filtered(
    'process',
    'answers ENOSYS so libc falls back to clone, whose flags a filter can see (clone3 passes them in memory)',
  ),
  execve: audited('process', 'exec'),
  execveat: audited('process', 'exec'),
  exit: allow('process'),
  exit_group: allow('process'),
  wait4: allow('process'),
  waitid: allow('process'),
  waitpid: otherAbi('process'),
  getpid: allow('process'),
  getppid: allow('process'),
  gettid: allow('process'),
  getpgid: allow('process'),
  setpgid: allow('process'),
  getpgrp: allow('process'),
  getsid: allow('process'),
  setsid: allow('process'),
  set_tid_address: allow('process'),
  prctl: allow('process'),
  arch_prctl: allow('process'),
  personality: filtered(
    'process',
    'only the values Docker allows (PER_LINUX, PER_LINUX32, UNAME26 and the query 0xffffffff): other flags disable ASLR or change the ABI',
  ),
  getrlimit: allow('process'),
  setrlimit: allow('process'),
  ugetrlimit: otherAbi('process'),
  prlimit64: allow('process'),
  getrusage: allow('process'),
  times: allow('process'),
  uname: allow('process'),
  olduname: otherAbi('process'),
  oldolduname: otherAbi('process'),
  sysinfo: allow('process'),
  set_robust_list: allow('process'),
  get_robust_list: allow('process'),
  futex: allow('process'),
  futex_time64: otherAbi('process'),
  futex_waitv: allow('process'),
  rseq: allow('process'),
  restart_syscall: allow('process'),
  pidfd_open: allow('process'),
  pidfd_send_signal: allow('process'),
  getrandom: allow('process'),
  getcpu: allow('process'),
  membarrier: allow('process'),

  // ---- identity: identity: without capabilities these only move between ids the process already holds
  getuid: allow('identity'),
  geteuid: allow('identity'),
  getgid: allow('identity'),
  getegid: allow('identity'),
  getuid32: otherAbi('identity'),
  geteuid32: otherAbi('identity'),
  getgid32: otherAbi('identity'),
  getegid32: otherAbi('identity'),
  setuid: allow('identity'),
  setgid: allow('identity'),
  setuid32: otherAbi('identity'),
  setgid32: otherAbi('identity'),
  setreuid: allow('identity'),
  setregid: allow('identity'),
  setreuid32: otherAbi('identity'),
  setregid32: otherAbi('identity'),
  setresuid: allow('identity'),
  setresgid: allow('identity'),
  setresuid32: otherAbi('identity'),
  setresgid32: otherAbi('identity'),
  getresuid: allow('identity'),
  getresgid: allow('identity'),
  getresuid32: otherAbi('identity'),
  getresgid32: otherAbi('identity'),
  setfsuid: allow('identity'),
  setfsgid: allow('identity'),
  setfsuid32: otherAbi('identity'),
  setfsgid32: otherAbi('identity'),
  getgroups: allow('identity'),
  setgroups: allow('identity'),
  getgroups32: otherAbi('identity'),
  setgroups32: otherAbi('identity'),
  capget: allow('identity'),
  capset: allow('identity'),

  // ---- scheduling
  sched_yield: allow('scheduling'),
  sched_getaffinity: allow('scheduling'),
  sched_setaffinity: allow('scheduling'),
  sched_getattr: allow('scheduling'),
  sched_setattr: allow('scheduling'),
  sched_getparam: allow('scheduling'),
  sched_setparam: allow('scheduling'),
  sched_getscheduler: allow('scheduling'),
  sched_setscheduler: allow('scheduling'),
  sched_get_priority_max: allow('scheduling'),
  sched_get_priority_min: allow('scheduling'),
  sched_rr_get_interval: allow('scheduling'),
  sched_rr_get_interval_time64: otherAbi('scheduling'),
  getpriority: allow('scheduling'),
  setpriority: allow('scheduling'),
  nice: otherAbi('scheduling'),
  ioprio_get: allow('scheduling'),
  ioprio_set: allow('scheduling'),

  // ---- memory
  brk: allow('memory'),
  mmap: allow('memory'),
  mmap2: otherAbi('memory'),
  munmap: allow('memory'),
  mremap: allow('memory'),
  mprotect: allow('memory'),
  madvise: allow('memory'),
  mincore: allow('memory'),
  msync: allow('memory'),
  mlock: allow('memory'),
  mlock2: allow('memory'),
  mlockall: allow('memory'),
  munlock: allow('memory'),
  munlockall: allow('memory'),
  remap_file_pages: allow('memory'),
  pkey_alloc: allow('memory'),
  pkey_free: allow('memory'),
  pkey_mprotect: allow('memory'),
  memfd_secret: allow('memory'),
  mbind: notNeeded('memory', 'ENOSYS', 'NUMA memory policy; callers treat ENOSYS as "no NUMA"'),
  get_mempolicy: notNeeded(
    'memory',
    'ENOSYS',
    'NUMA memory policy; callers treat ENOSYS as "no NUMA"',
  ),
  set_mempolicy: notNeeded(
    'memory',
    'ENOSYS',
    'NUMA memory policy; callers treat ENOSYS as "no NUMA"',
  ),
  set_mempolicy_home_node: notNeeded('memory', 'ENOSYS', 'NUMA memory policy'),
  migrate_pages: notNeeded(
    'memory',
    'ENOSYS',
    'moves pages of (possibly other) processes between NUMA nodes',
  ),
  move_pages: notNeeded(
    'memory',
    'ENOSYS',
    'moves pages of (possibly other) processes between NUMA nodes',
  ),
  process_madvise: forbidden('memory', 'EPERM', 'acts on another process memory'),
  process_mrelease: allow('memory'),
  userfaultfd: forbidden('memory', 'EPERM', 'userfaultfd: widens kernel race windows for exploits'),

  // ---- signal: signals (the pid namespace bounds who can be signalled)
  kill: allow('signal'),
  tkill: allow('signal'),
  tgkill: allow('signal'),
  rt_sigaction: allow('signal'),
  rt_sigprocmask: allow('signal'),
  rt_sigreturn: allow('signal'),
  rt_sigpending: allow('signal'),
  rt_sigsuspend: allow('signal'),
  rt_sigtimedwait: allow('signal'),
  rt_sigtimedwait_time64: otherAbi('signal'),
  rt_sigqueueinfo: allow('signal'),
  rt_tgsigqueueinfo: allow('signal'),
  sigaltstack: allow('signal'),
  signal: otherAbi('signal'),
  sigaction: otherAbi('signal'),
  sigprocmask: otherAbi('signal'),
  sigreturn: otherAbi('signal'),
  sigpending: otherAbi('signal'),
  sigsuspend: otherAbi('signal'),
  sgetmask: otherAbi('signal'),
  ssetmask: otherAbi('signal'),
  pause: allow('signal'),
  signalfd: allow('signal'),
  signalfd4: allow('signal'),

  // ---- time: time: reading and sleeping are allowed; setting the host clock is not
  time: allow('time'),
  gettimeofday: allow('time'),
  settimeofday: forbidden('time', 'EPERM', 'sets the host clock'),
  stime: otherAbi('time'),
  clock_gettime: allow('time'),
  clock_gettime64: otherAbi('time'),
  clock_getres: allow('time'),
  clock_getres_time64: otherAbi('time'),
  clock_settime: forbidden(
    'time',
    'EPERM',
    'sets the host clock (time is not namespaced for writes)',
  ),
  clock_settime64: otherAbi('time'),
  clock_adjtime: forbidden('time', 'EPERM', 'adjusts the host clock'),
  clock_adjtime64: otherAbi('time'),
  adjtimex: forbidden('time', 'EPERM', 'adjusts the host clock'),
  clock_nanosleep: allow('time'),
  clock_nanosleep_time64: otherAbi('time'),
  nanosleep: allow('time'),
  alarm: allow('time'),
  getitimer: allow('time'),
  setitimer: allow('time'),
  timer_create: allow('time'),
  timer_delete: allow('time'),
  timer_getoverrun: allow('time'),
  timer_gettime: allow('time'),
  timer_gettime64: otherAbi('time'),
  timer_settime: allow('time'),
  timer_settime64: otherAbi('time'),
  timerfd_create: allow('time'),
  timerfd_gettime: allow('time'),
  timerfd_gettime64: otherAbi('time'),
  timerfd_settime: allow('time'),
  timerfd_settime64: otherAbi('time'),
  ftime: otherAbi('time'),

  // ---- network: network (socket and socketpair are argument-filtered)
  socket: filtered(
    'network',
    'only AF_UNIX, AF_INET and AF_INET6 (not raw or packet) and NETLINK_ROUTE (read-only without capabilities; getifaddrs needs it): raw, packet, other netlink, vsock and key sockets reach kernel surface the cell does not need',
  ),
  socketpair: filtered('network', 'only AF_UNIX, the one family socketpair is for'),
  socketcall: otherAbi('network'),
  bind: allow('network'),
  connect: allow('network'),
  listen: allow('network'),
  accept: allow('network'),
  accept4: allow('network'),
  getsockname: allow('network'),
  getpeername: allow('network'),
  getsockopt: allow('network'),
  setsockopt: allow('network'),
  sendto: allow('network'),
  recvfrom: allow('network'),
  sendmsg: allow('network'),
  recvmsg: allow('network'),
  sendmmsg: allow('network'),
  recvmmsg: allow('network'),
  recvmmsg_time64: otherAbi('network'),
  shutdown: allow('network'),
  sethostname: notNeeded('network', 'EPERM', 'the cell has a fixed hostname'),
  setdomainname: notNeeded('network', 'EPERM', 'the cell has a fixed domain name'),

  // ---- ipc: IPC inside the cell's own IPC namespace
  ipc: otherAbi('ipc'),
  msgget: allow('ipc'),
  msgsnd: allow('ipc'),
  msgrcv: allow('ipc'),
  msgctl: allow('ipc'),
  semget: allow('ipc'),
  semop: allow('ipc'),
  semtimedop: allow('ipc'),
  semtimedop_time64: otherAbi('ipc'),
  semctl: allow('ipc'),
  shmget: allow('ipc'),
  shmat: allow('ipc'),
  shmdt: allow('ipc'),
  shmctl: allow('ipc'),
  mq_open: allow('ipc'),
  mq_unlink: allow('ipc'),
  mq_timedsend: allow('ipc'),
  mq_timedsend_time64: otherAbi('ipc'),
  mq_timedreceive: allow('ipc'),
  mq_timedreceive_time64: otherAbi('ipc'),
  mq_notify: allow('ipc'),
  mq_getsetattr: allow('ipc'),
  eventfd: allow('ipc'),
  eventfd2: allow('ipc'),

  // ---- event: event loops
  poll: allow('event'),
  ppoll: allow('event'),
  ppoll_time64: otherAbi('event'),
  select: allow('event'),
  _newselect: otherAbi('event'),
  pselect6: allow('event'),
  pselect6_time64: otherAbi('event'),
  epoll_create: allow('event'),
  epoll_create1: allow('event'),
  epoll_ctl: allow('event'),
  epoll_wait: allow('event'),
  epoll_pwait: allow('event'),
  epoll_pwait2: allow('event'),
  epoll_ctl_old: notNeeded('event', 'ENOSYS', 'never implemented by Linux'),
  epoll_wait_old: notNeeded('event', 'ENOSYS', 'never implemented by Linux'),

  // ---- aio: classic AIO allowed; io_uring bypasses syscall filtering
  io_setup: allow('aio'),
  io_destroy: allow('aio'),
  io_submit: allow('aio'),
  io_cancel: allow('aio'),
  io_getevents: allow('aio'),
  io_pgetevents: allow('aio'),
  io_pgetevents_time64: otherAbi('aio'),
  io_uring_setup: forbidden(
    'aio',
    'EPERM',
    'io_uring: large kernel attack surface, bypasses syscall filtering',
  ),
  io_uring_enter: forbidden(
    'aio',
    'EPERM',
    'io_uring: large kernel attack surface, bypasses syscall filtering',
  ),
  io_uring_register: forbidden(
    'aio',
    'EPERM',
    'io_uring: large kernel attack surface, bypasses syscall filtering',
  ),

  // ---- mount
  mount: forbidden('mount', 'EPERM', 'mounts a filesystem: the runtime fixes the cell mount table'),
  umount: otherAbi('mount'),
  umount2: forbidden('mount', 'EPERM', 'unmounts: could uncover what a mount hides'),
  fsopen: forbidden('mount', 'EPERM', 'new mount API: creates a filesystem context'),
  fsconfig: forbidden('mount', 'EPERM', 'new mount API: configures a filesystem context'),
  fsmount: forbidden('mount', 'EPERM', 'new mount API: creates a mount'),
  fspick: forbidden('mount', 'EPERM', 'new mount API: reconfigures an existing mount'),
  open_tree: forbidden('mount', 'EPERM', 'new mount API: clones a mount tree'),
  move_mount: forbidden('mount', 'EPERM', 'new mount API: attaches or moves a mount'),
  mount_setattr: forbidden('mount', 'EPERM', 'changes mount flags (could drop nosuid/noexec/ro)'),
  pivot_root: forbidden('mount', 'EPERM', 'changes the root mount'),
  chroot: forbidden('mount', 'EPERM', 'changes the root directory; classic escape helper'),

  // ---- namespace
  unshare: forbidden(
    'namespace',
    'EPERM',
    'creates namespaces (user namespaces unlock root-only kernel code)',
  ),
  setns: forbidden('namespace', 'EPERM', 'joins another namespace'),

  // ---- debug
  ptrace: forbidden(
    'debug',
    'EPERM',
    'reads and writes other processes (monitor, init, other tasks)',
  ),
  process_vm_readv: forbidden('debug', 'EPERM', 'reads another process memory'),
  process_vm_writev: forbidden('debug', 'EPERM', 'writes another process memory'),
  kcmp: forbidden(
    'debug',
    'EPERM',
    'compares kernel objects of other processes (information leak)',
  ),
  pidfd_getfd: forbidden('debug', 'EPERM', 'steals a file descriptor from another process'),
  perf_event_open: forbidden(
    'debug',
    'EPERM',
    'perf events: kernel attack surface and side channels',
  ),
  lookup_dcookie: forbidden(
    'debug',
    'EPERM',
    'profiling interface that resolves kernel cookies to host paths',
  ),

  // ---- kernel
  bpf: forbidden('kernel', 'EPERM', 'eBPF: large kernel attack surface'),
  init_module: forbidden('kernel', 'EPERM', 'loads a kernel module'),
  finit_module: forbidden('kernel', 'EPERM', 'loads a kernel module'),
  delete_module: forbidden('kernel', 'EPERM', 'unloads a kernel module'),
  create_module: notNeeded('kernel', 'ENOSYS', 'removed from Linux 2.6'),
  query_module: notNeeded('kernel', 'ENOSYS', 'removed from Linux 2.6'),
  get_kernel_syms: notNeeded('kernel', 'ENOSYS', 'removed from Linux 2.6'),
  kexec_load: forbidden('kernel', 'EPERM', 'loads a new kernel'),
  kexec_file_load: forbidden('kernel', 'EPERM', 'loads a new kernel'),
  reboot: forbidden('kernel', 'EPERM', 'reboots the host or loads a kexec kernel'),
  swapon: forbidden('kernel', 'EPERM', 'changes host swap'),
  swapoff: forbidden('kernel', 'EPERM', 'changes host swap'),
  acct: forbidden('kernel', 'EPERM', 'switches host process accounting'),
  quotactl: forbidden('kernel', 'EPERM', 'changes host disk quotas'),
  quotactl_fd: forbidden('kernel', 'EPERM', 'changes host disk quotas'),
  syslog: forbidden('kernel', 'EPERM', 'reads or clears the host kernel log (address leaks)'),
  _sysctl: notNeeded('kernel', 'ENOSYS', 'removed from Linux 5.5'),
  sysfs: notNeeded('kernel', 'ENOSYS', 'obsolete filesystem-type query'),
  nfsservctl: forbidden('kernel', 'ENOSYS', 'kernel NFS server control (removed from Linux)'),
  vhangup: notNeeded('kernel', 'EPERM', 'hangs up the controlling terminal'),
  bdflush: otherAbi('kernel'),
  uselib: forbidden('kernel', 'ENOSYS', 'legacy a.out library loader: old kernel surface'),

  // ---- keyring
  keyctl: forbidden('keyring', 'EPERM', 'kernel keyring is not namespaced: could reach host keys'),
  add_key: forbidden('keyring', 'EPERM', 'kernel keyring is not namespaced'),
  request_key: forbidden(
    'keyring',
    'EPERM',
    'kernel keyring is not namespaced; may run a host helper',
  ),

  // ---- security: self-restriction: nanocell-init applies Landlock; stacking seccomp filters only narrows
  seccomp: allow('security'),
  landlock_create_ruleset: allow('security'),
  landlock_add_rule: allow('security'),
  landlock_restrict_self: allow('security'),

  // ---- arch
  iopl: forbidden('arch', 'EPERM', 'raw I/O port access'),
  ioperm: forbidden('arch', 'EPERM', 'raw I/O port access'),
  modify_ldt: notNeeded(
    'arch',
    'EPERM',
    'x86 LDT editing, for 16-bit code and Wine; past kernel bugs',
  ),
  set_thread_area: allow('arch'),
  get_thread_area: allow('arch'),
  vm86: otherAbi('arch'),
  vm86old: otherAbi('arch'),

  // ---- obsolete
  afs_syscall: notNeeded('obsolete', 'ENOSYS', 'never implemented by Linux'),
  tuxcall: notNeeded('obsolete', 'ENOSYS', 'never implemented by Linux'),
  security: notNeeded('obsolete', 'ENOSYS', 'never implemented by Linux'),
  getpmsg: notNeeded('obsolete', 'ENOSYS', 'never implemented by Linux'),
  putpmsg: notNeeded('obsolete', 'ENOSYS', 'never implemented by Linux'),
  vserver: notNeeded('obsolete', 'ENOSYS', 'never implemented by Linux'),
  break: otherAbi('obsolete'),
  stty: otherAbi('obsolete'),
  gtty: otherAbi('obsolete'),
  prof: otherAbi('obsolete'),
  profil: otherAbi('obsolete'),
  lock: otherAbi('obsolete'),
  mpx: otherAbi('obsolete'),
  ulimit: otherAbi('obsolete'),
  idle: otherAbi('obsolete'),
};

/** Every name by category, in table order (for reviews and the category test). */
export const SYSCALL_CATEGORY_LISTS: Readonly<Record<SyscallCategory, readonly string[]>> = (() => {
  const lists = {} as Record<SyscallCategory, string[]>;
  for (const [name, r] of Object.entries(SYSCALL_TABLE)) (lists[r.category] ??= []).push(name);
  return lists;
})();

/** The audit summary's group for a denied syscall. */
export function reportGroupOf(name: string): ReportGroup | undefined {
  return Object.hasOwn(SYSCALL_TABLE, name) ? SYSCALL_TABLE[name]!.report : undefined;
}
