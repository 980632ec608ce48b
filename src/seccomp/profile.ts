// Policy -> OCI seccomp profile (pure). The profile is an allowlist: syscalls the tables know
// but the policy does not allow get an explicit SCMP_ACT_NOTIFY rule, so the monitor records
// each denial and answers EPERM or ENOSYS (the notify table built below); anything the tables do not know
// falls to the default action, ENOSYS, so newer syscalls look unimplemented and libc falls back.
import { NanocellError, PolicyError } from '../util/errors.js';
import { EXEC_GUARDED, execGuardRules } from './execGuard.js';
import {
  anyBitSet,
  argIn,
  argNotIn,
  low32In,
  low32NotIn,
  lowBitsIn,
  lowBitsNotIn,
  noBitSet,
} from './args.js';
import type { OciSeccomp, OciSeccompAction, OciSeccompArg, OciSeccompSyscall } from './oci.js';
import {
  ALLOWED,
  ARG_FILTERED,
  ERRNO_VALUE,
  EXEC_AUDITED,
  FORBIDDEN,
  NOT_NEEDED,
  RUNC_NO_NOTIFY,
  type DenyErrno,
} from './policy-data.js';
import { syscallNumber, validateSyscallNames, type SeccompArch } from './syscalls.js';

export { hostSeccompArch, type SeccompArch } from './syscalls.js';

export interface SeccompOptions {
  arch: SeccompArch;
  /** The monitor's socket; required when `monitor` is true. */
  listenerPath?: string;
  /** false: denials answer by SCMP_ACT_ERRNO, unrecorded (runtimes without notify, benchmarks). */
  monitor: boolean;
  /** policy `syscalls.allow` */
  allow: string[];
  /** policy `syscalls.deny` */
  deny: string[];
  /** policy `syscalls.unsafeAllowForbidden` */
  unsafeAllowForbidden: boolean;
  /**
   * With the monitor: send mmap(PROT_EXEC) of files to the exec guard (default true). The plan
   * leaves it out where the guard could refuse and record nothing the kernel does not
   * (src/plan/execRule.ts, needsMapGuard).
   */
  guardMappings?: boolean;
}

export interface SeccompPlan {
  profile: OciSeccomp;
  /** Threat-model syscalls the policy re-allowed with the unsafe flag; the report shows them. */
  unsafeAllowed: string[];
  /** `ARCH NR NAME ERRNO` lines for the monitor; empty when `monitor` is false. */
  notifyTable: string;
}

/** How one syscall ends up in the profile. */
export type Decision =
  | { kind: 'allow' }
  | { kind: 'filtered' }
  | { kind: 'exec' }
  | { kind: 'deny'; errno: DenyErrno; reason: string };

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;
const NETLINK_ROUTE = 0;
/** The socket type sits in the low 4 bits of socket()'s second argument, under SOCK_* flags. */
const SOCK_TYPE_BITS = 4;
const SOCK_RAW = 3;
const SOCK_PACKET = 10;
const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;
/** Docker's harmless personality values: PER_LINUX, PER_LINUX32, UNAME26, both, and the query. */
const PERSONALITY_ALLOWED = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];
/**
 * CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET | NEWTIME. NEWTIME
 * (0x80) sits in clone's exit-signal byte, where no valid signal has that bit, so denying it
 * costs nothing and closes the flag in case a kernel ever reads it there.
 */
const CLONE_NAMESPACE_FLAGS =
  0x00020000 +
  0x02000000 +
  0x04000000 +
  0x08000000 +
  0x10000000 +
  0x20000000 +
  0x40000000 +
  0x00000080;

/** Allowed and denied argument conditions of each argument-filtered syscall (clone3 aside). */
function argumentFilters(): Record<string, { allow: OciSeccompArg[][]; deny: OciSeccompArg[][] }> {
  // Each inner list is one OCI rule; a rule whose conditions share an index is a set of
  // alternatives (see args.ts).
  return {
    // The flags are argument 0 on x86_64 and aarch64 (s390 alone swaps them).
    clone: {
      allow: [noBitSet(0, CLONE_NAMESPACE_FLAGS)],
      deny: [anyBitSet(0, CLONE_NAMESPACE_FLAGS)],
    },
    // IP sockets of the raw and packet types would fail anyway without CAP_NET_RAW, but only
    // the filter can record the attempt. NETLINK_ROUTE stays open because getifaddrs() (Node's
    // os.networkInterfaces, npm, Python's if_nameindex) and getaddrinfo(AI_ADDRCONFIG) read the
    // interface list through it; in the cell's own network namespace, without CAP_NET_ADMIN,
    // it can only read the loopback device. Each rule pairs the family (arg 0) with one
    // condition on another argument; conditions on different indexes must all hold.
    socket: {
      allow: [
        argIn(0, [AF_UNIX]),
        ...[AF_INET, AF_INET6].flatMap((af) =>
          lowBitsNotIn(1, SOCK_TYPE_BITS, [SOCK_RAW, SOCK_PACKET]).map((t) => [
            ...argIn(0, [af]),
            t,
          ]),
        ),
        [...argIn(0, [AF_NETLINK]), { index: 2, op: 'SCMP_CMP_EQ', value: NETLINK_ROUTE }],
      ],
      deny: [
        argNotIn(0, [AF_UNIX, AF_INET, AF_INET6, AF_NETLINK]),
        ...[AF_INET, AF_INET6].flatMap((af) =>
          lowBitsIn(1, SOCK_TYPE_BITS, [SOCK_RAW, SOCK_PACKET]).map((t) => [...argIn(0, [af]), t]),
        ),
        [...argIn(0, [AF_NETLINK]), { index: 2, op: 'SCMP_CMP_NE', value: NETLINK_ROUTE }],
      ],
    },
    socketpair: { allow: [argIn(0, [AF_UNIX])], deny: [argNotIn(0, [AF_UNIX])] },
    personality: {
      allow: [argIn(0, PERSONALITY_ALLOWED)],
      deny: [argNotIn(0, PERSONALITY_ALLOWED)],
    },
    // The kernel reads the request as an unsigned int, so only its low 32 bits count.
    ioctl: {
      allow: [low32NotIn(1, [TIOCSTI, TIOCLINUX])],
      deny: [low32In(1, [TIOCSTI, TIOCLINUX])],
    },
  };
}

/** The default decision for each syscall of `arch`, before the policy's additions. */
function defaultDecisions(arch: SeccompArch): Map<string, Decision> {
  const out = new Map<string, Decision>();
  const known = (n: string) => syscallNumber(arch, n) !== undefined;
  for (const n of ALLOWED.filter(known)) out.set(n, { kind: 'allow' });
  for (const n of Object.keys(ARG_FILTERED).filter(known)) out.set(n, { kind: 'filtered' });
  for (const n of EXEC_AUDITED.filter(known)) out.set(n, { kind: 'exec' });
  for (const [n, d] of Object.entries({ ...FORBIDDEN, ...NOT_NEEDED })) {
    if (known(n)) out.set(n, { kind: 'deny', errno: d.errno, reason: d.reason });
  }
  return out;
}

/** Whether re-allowing `name` needs `unsafeAllowForbidden`. */
function isForbidden(name: string): boolean {
  return (
    Object.hasOwn(FORBIDDEN, name) ||
    Object.hasOwn(ARG_FILTERED, name) ||
    EXEC_AUDITED.includes(name)
  );
}

/** Applies the policy's allow and deny lists to the defaults of `arch`. */
export function decideSyscalls(
  opts: Pick<SeccompOptions, 'arch' | 'allow' | 'deny' | 'unsafeAllowForbidden'>,
): { decisions: Map<string, Decision>; unsafeAllowed: string[] } {
  validateSyscallNames(opts.allow, 'syscalls.allow');
  validateSyscallNames(opts.deny, 'syscalls.deny');
  opts.allow.forEach((name, i) => {
    if (opts.deny.includes(name)) {
      throw new PolicyError(
        `syscalls.allow[${i}]: ${name} is also in syscalls.deny`,
        'name each syscall in only one of syscalls.allow and syscalls.deny',
      );
    }
  });
  const decisions = defaultDecisions(opts.arch);
  const unsafeAllowed: string[] = [];
  opts.allow.forEach((name, i) => {
    const current = decisions.get(name);
    if (current === undefined || current.kind === 'allow') return; // not on this arch, or already allowed
    if (isForbidden(name)) {
      if (!opts.unsafeAllowForbidden) {
        throw new PolicyError(
          `syscalls.allow[${i}]: ${name} is forbidden by the threat model (${forbiddenReason(name)})`,
          'remove it, or set syscalls.unsafeAllowForbidden: true to accept the risk (the report records it)',
        );
      }
      if (!unsafeAllowed.includes(name)) unsafeAllowed.push(name);
    }
    decisions.set(name, { kind: 'allow' });
  });
  for (const name of opts.deny) {
    if (decisions.has(name)) {
      const prior = decisions.get(name);
      const errno = prior?.kind === 'deny' ? prior.errno : 'EPERM';
      decisions.set(name, { kind: 'deny', errno, reason: 'denied by the policy (syscalls.deny)' });
    }
  }
  return { decisions, unsafeAllowed };
}

function forbiddenReason(name: string): string {
  return FORBIDDEN[name]?.reason ?? ARG_FILTERED[name] ?? 'exec is audited by the monitor';
}

export function buildSeccompProfile(opts: SeccompOptions): SeccompPlan {
  if (opts.monitor && !opts.listenerPath) {
    throw new NanocellError(
      'the seccomp monitor is on but no listener path was given',
      'pass listenerPath (the monitor socket) or monitor: false',
      'INTERNAL',
    );
  }
  const { decisions, unsafeAllowed } = decideSyscalls(opts);
  const filters = argumentFilters();
  const denyAction: OciSeccompAction = opts.monitor ? 'SCMP_ACT_NOTIFY' : 'SCMP_ACT_ERRNO';
  const rules: OciSeccompSyscall[] = [];
  const named = (kind: Decision['kind']) =>
    [...decisions]
      .filter(([, d]) => d.kind === kind)
      .map(([n]) => n)
      .sort();

  // With the monitor on, the exec guard answers some allowed calls (see execGuard.ts).
  const guarded = opts.monitor ? named('allow').filter((n) => guardedBy(opts, n)) : [];
  rules.push({
    names: named('allow').filter((n) => !guarded.includes(n)),
    action: 'SCMP_ACT_ALLOW',
  });
  rules.push(...execGuardRules(guarded));
  const execs = named('exec');
  if (execs.length)
    rules.push({ names: execs, action: opts.monitor ? 'SCMP_ACT_NOTIFY' : 'SCMP_ACT_ALLOW' });

  for (const name of named('filtered')) {
    if (name === 'clone3') {
      // The monitor judges the flags (native/monitor/clone3.c). Without it, ENOSYS: not a
      // denial of anything the task asked for, only a nudge to clone, whose flags are filtered.
      rules.push(
        opts.monitor
          ? { names: [name], action: 'SCMP_ACT_NOTIFY' }
          : { names: [name], action: 'SCMP_ACT_ERRNO', errnoRet: ERRNO_VALUE.ENOSYS },
      );
      continue;
    }
    const f = filters[name];
    if (!f) throw new Error(`no argument filter for ${name}`);
    for (const args of f.allow) rules.push({ names: [name], action: 'SCMP_ACT_ALLOW', args });
    for (const args of f.deny) {
      rules.push({ names: [name], ...denial(denyAction, 'EPERM'), args });
    }
  }

  // Plain denials: one rule per (action, errno); runc refuses NOTIFY for some names.
  const groups = new Map<string, OciSeccompSyscall>();
  for (const name of named('deny')) {
    const d = decisions.get(name) as Extract<Decision, { kind: 'deny' }>;
    const action = RUNC_NO_NOTIFY.includes(name) ? 'SCMP_ACT_ERRNO' : denyAction;
    const rule = denial(action, d.errno);
    const key = `${rule.action}/${rule.errnoRet ?? ''}`;
    const group = groups.get(key) ?? { names: [], ...rule };
    group.names.push(name);
    groups.set(key, group);
  }
  rules.push(...groups.values());

  const profile: OciSeccomp = {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: ERRNO_VALUE.ENOSYS,
    architectures: [opts.arch === 'x86_64' ? 'SCMP_ARCH_X86_64' : 'SCMP_ARCH_AARCH64'],
    ...(opts.monitor ? { listenerPath: opts.listenerPath } : {}),
    syscalls: rules.filter((r) => r.names.length > 0),
  };
  return {
    profile,
    unsafeAllowed,
    notifyTable: opts.monitor ? notifyTableFor(opts) : '',
  };
}

/** Whether the exec guard answers this allowed call (EXEC_GUARDED, less mmap when not wanted). */
function guardedBy(opts: Pick<SeccompOptions, 'guardMappings'>, name: string): boolean {
  return EXEC_GUARDED.includes(name) && !(name === 'mmap' && opts.guardMappings === false);
}

/** The action fields of a denial; the monitor picks the errno of a NOTIFY rule from its table. */
function denial(
  action: OciSeccompAction,
  errno: DenyErrno,
): Pick<OciSeccompSyscall, 'action' | 'errnoRet'> {
  return action === 'SCMP_ACT_ERRNO' ? { action, errnoRet: ERRNO_VALUE[errno] } : { action };
}

/**
 * The monitor's table: every syscall a NOTIFY rule can report, for x86_64, i386 and aarch64.
 * ERRNO is what the task gets (1 EPERM, 38 ENOSYS), or 0 for "let it continue" (exec audit, and
 * the calls the exec guard answers). clone3 is EPERM: the monitor refuses it only for namespace
 * flags and lets the rest continue.
 * i386 rows use the x86_64 decisions: the profile refuses that ABI as a whole, so they only
 * name a call the monitor should never see.
 */
function notifyTableFor(
  opts: Pick<SeccompOptions, 'allow' | 'deny' | 'unsafeAllowForbidden' | 'guardMappings'>,
): string {
  const lines: string[] = [];
  const perArch: [SeccompArch, 'x86_64' | 'i386' | 'aarch64'][] = [
    ['x86_64', 'x86_64'],
    ['x86_64', 'i386'],
    ['aarch64', 'aarch64'],
  ];
  for (const [arch, abi] of perArch) {
    const { decisions } = decideSyscalls({ ...opts, arch });
    const rows: [number, string, number][] = [];
    for (const [name, d] of decisions) {
      const nr = syscallNumber(abi, name);
      if (nr === undefined) continue;
      const guarded = d.kind === 'allow' && guardedBy(opts, name);
      if (d.kind === 'allow' && !guarded) continue;
      if (d.kind === 'deny' && RUNC_NO_NOTIFY.includes(name)) continue;
      const errno =
        d.kind === 'exec' || guarded
          ? 0
          : d.kind === 'deny'
            ? ERRNO_VALUE[d.errno]
            : ERRNO_VALUE.EPERM;
      rows.push([nr, name, errno]);
    }
    rows.sort((a, b) => a[0] - b[0]);
    for (const [nr, name, errno] of rows) lines.push(`${abi} ${nr} ${name} ${errno}`);
  }
  return lines.join('\n') + '\n';
}
