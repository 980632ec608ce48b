// Policy + host facts → OCI bundle config. Pure: no file system, no processes, so every
// isolation decision can be unit-tested without root. Each step is explicit and in order,
// the way bubblewrap lays out its sandbox.
import type { Policy } from '../policy/defaults.js';
import type { DegradableControl } from '../policy/schema.js';
import type { HostFacts } from '../host/facts.js';
import { NanocellError } from '../util/errors.js';
import type { ExecMounts } from './execRule.js';
import type { OciMount, OciResources, OciSeccomp, OciSpec } from './oci.js';
import {
  CELL_HOME,
  CELL_INIT,
  CELL_PROXY_PORT,
  CELL_PROXY_SOCKET,
  cellUser,
  checkWorkspacePath,
} from './layout.js';
import { planMounts, planMountpoints } from './mounts.js';
import type { HostMount } from './hostMounts.js';
import { runtimeTraits } from '../runtime/traits.js';
import { UID_RANGE_SIZE } from '../host/slots.js';

export interface Degradation {
  /**
   * A control the user let degrade, `syscall-audit` (implied by a runtime choice), or a part a
   * benchmark switched off (`bench:<part>`).
   */
  control: DegradableControl | 'syscall-audit' | `bench:${string}`;
  reason: string;
}

export interface WorkspaceMountPlan {
  /** The project's absolute path, on the host and (identically) in the cell. */
  path: string;
  /**
   * root: an overlay already mounted by nanocell on the host at `mergedDir` is bind-mounted in.
   * rootless: the runtime mounts the overlay inside the cell's user namespace.
   */
  mode: 'host-overlay' | 'cell-overlay';
  mergedDir?: string;
  /** Overlay lower layers, topmost first, joined with ':' (rootless: the whiteout layer, then the project). */
  lowerDir?: string;
  upperDir?: string;
  workDir?: string;
  /** Extra mounts inside the workspace (read-only protected paths), in order. */
  extraMounts: OciMount[];
}

export interface PlanInput {
  cellId: string;
  policy: Policy;
  host: HostFacts;
  rootfsDir: string;
  etcDir: string;
  initBinary: string;
  /** First host uid of this cell's range (root mode only). */
  hostUidBase?: number;
  workspace: WorkspaceMountPlan;
  /** Concrete paths (files or dirs) that may be executed; Landlock enforces them. */
  execAllow: string[];
  /** Checked read-only host paths (resolve's hostMounts). */
  hostMounts?: readonly HostMount[];
  /** Rootfs symlinks [cell path, target]: an agent's command linking into its install dir. */
  links?: readonly [string, string][];
  /** Mounts into HOME as acquired: toolchain caches (toolCaches.ts), carried host config. */
  homeMounts?: readonly OciMount[];
  /** Which writable places are mounted executable (planExecRule); the rest are noexec. */
  execMounts: ExecMounts;
  seccomp?: OciSeccomp;
  /** The filter init installs itself (src/seccomp/bpf.ts), hex; then `seccomp` is unset. */
  seccompBpf?: string;
  /** Host path of the proxy socket init bridges to; only when the port is not handed in. */
  proxySocket?: string;
  benchOff?: BenchSwitches;
  /**
   * A warm pool's cell: init applies Landlock on its claim, once the workspace the rules name
   * is attached (a rule on a path opens what is mounted there when it is made).
   */
  warm?: boolean;
}

export interface CellPlan {
  spec: OciSpec;
  /** Mount points to create in the (otherwise empty) rootfs before the runtime starts. */
  mountpoints: { dirs: string[]; files: string[]; symlinks: [string, string][] };
  degradations: Degradation[];
  /** Limits as enforced, for the report. */
  limits: AppliedLimits;
}

export interface AppliedLimits {
  memoryBytes: number | null;
  pids: number | null;
  cpus: number | null;
  timeoutMs: number;
  outputBytes: number;
  diskBytes: number | null;
  tmpBytes: number;
  homeBytes: number;
  openFiles: number;
}

/** Parts of a cell a benchmark switches off, to show what each costs. Not for users. */
export interface BenchSwitches {
  /** The egress controls' start check (src/cell/selfCheck.ts). */
  startCheck?: boolean;
  seccomp?: boolean;
  workspace?: boolean;
  cgroups?: boolean;
}

export interface DegradationInput {
  policy: Policy;
  host: HostFacts;
  workspaceMode: WorkspaceMountPlan['mode'];
  /** A seccomp filter is installed (false only when a benchmark switched it off). */
  seccomp: boolean;
  benchOff?: BenchSwitches;
}

/**
 * Every control this host, runtime and policy cannot apply: refused unless the policy opted
 * into its degradation, otherwise listed. Pure, so the resolve step runs it before anything
 * is acquired and planCell runs it again on the same inputs.
 */
export function planDegradations(o: DegradationInput): {
  degradations: Degradation[];
  landlock: boolean;
  resources: OciResources | undefined;
} {
  const { policy, host } = o;
  const degradations: Degradation[] = [];
  const degrade = (control: DegradableControl, reason: string, fix: string) => {
    if (!policy.allowDegraded.includes(control)) {
      throw new NanocellError(
        `${reason}; refusing to run without it`,
        `${fix}, or accept the degradation with --allow-degraded ${control}`,
        'HOST',
      );
    }
    degradations.push({ control, reason });
  };

  // Resources: cgroups, or an explicit, opted-in degradation (none when a bench turned them off).
  const resources = o.benchOff?.cgroups ? undefined : planResources(policy, host, degrade);

  // Landlock is applied by init; without it the exec allowlist cannot be enforced.
  const traits = runtimeTraits(policy.runtime.name);
  const landlock = host.landlockAbi > 0 && traits.landlock;
  if (!traits.landlock) {
    degrade(
      'landlock',
      `${policy.runtime.name} (${traits.userSpaceKernel ?? 'this runtime'}) does not implement Landlock, so the exec allowlist and the second write layer cannot be enforced (read-only and noexec mounts still are)`,
      'use --runtime runc or crun',
    );
  } else if (!landlock) {
    degrade(
      'landlock',
      'Landlock is not available on this kernel, so the exec allowlist cannot be enforced',
      'use a kernel with CONFIG_SECURITY_LANDLOCK and lsm=landlock',
    );
  }
  if (o.workspaceMode === 'cell-overlay') {
    degrade(
      'disk-cap',
      'rootless cells write the workspace upper layer to the host disk, where no size cap applies',
      'run nanocell as root',
    );
  }
  if (o.seccomp && !traits.seccompNotify) {
    // The filter still denies; only the record of each denial is lost. Choosing the runtime
    // is the opt-in, and the report says so.
    degradations.push({
      control: 'syscall-audit',
      reason: `${policy.runtime.name} does not pass seccomp notifications out, so denied syscalls fail with an errno but are not recorded`,
    });
  }
  // A part switched off for a benchmark is never silent: it is a degradation like any other.
  for (const [part, off] of Object.entries(o.benchOff ?? {})) {
    if (off)
      degradations.push({
        control: `bench:${part}`,
        reason: `${part} switched off for a benchmark`,
      });
  }
  return { degradations, landlock, resources };
}

export function planCell(input: PlanInput): CellPlan {
  const { policy, host, workspace } = input;
  checkWorkspacePath(workspace.path);

  // 1. Identity: which host uids the cell's uids become. Container root is never host root.
  const { uidMappings, gidMappings } = planIdMappings(input);

  // 2. Controls this host cannot apply: refused, or opted-in degradations. 3. Resources.
  const { degradations, landlock, resources } = planDegradations({
    policy,
    host,
    workspaceMode: workspace.mode,
    seccomp: input.seccomp !== undefined || input.seccompBpf !== undefined,
    benchOff: input.benchOff,
  });
  const traits = runtimeTraits(policy.runtime.name);

  // 4. The file system, mounted in this order.
  const mounts = planMounts(input);
  const mountpoints = planMountpoints(input, mounts);

  // 5. pid 1: nanocell-init, which applies Landlock (and, when the monitor could not make the
  // proxy port in the cell's namespace, bridges it to the proxy socket), then serves execs.
  const initArgv = [CELL_INIT, ...planInitArgs(input, landlock)];
  const args =
    traits.controlChannel === 'stdin'
      ? // init expects the control socket on fd 3; move it there from stdin, then exec init.
        ['/bin/sh', '-c', 'exec "$0" "$@" 3<&0 0</dev/null', ...initArgv]
      : initArgv;

  const rlimits = planRlimits(input);

  const spec: OciSpec = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: cellUser(host),
      args,
      env: ['PATH=/usr/local/bin:/usr/bin:/bin', `HOME=${CELL_HOME}`],
      cwd: '/',
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
      rlimits,
      noNewPrivileges: true,
      // The cell, not the supervisor or the user's desktop, is what the OOM killer should pick.
      oomScoreAdj: 500,
    },
    root: { path: input.rootfsDir, readonly: true },
    hostname: `cell-${input.cellId.slice(0, 12)}`,
    mounts,
    linux: {
      uidMappings,
      gidMappings,
      namespaces: ['pid', 'network', 'ipc', 'uts', 'mount', 'user', 'cgroup'].map((type) => ({
        type,
      })),
      ...(resources ? { resources } : {}),
      ...(resources ? { cgroupsPath: `${host.cgroup.parent}/${input.cellId}` } : {}),
      ...(input.seccomp ? { seccomp: input.seccomp } : {}),
      maskedPaths: planMaskedPaths(input),
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys'],
    },
  };

  return {
    spec,
    mountpoints,
    degradations,
    limits: {
      memoryBytes: resources?.memory?.limit ?? null,
      pids:
        resources?.pids?.limit ??
        (host.rootless || input.benchOff?.cgroups ? null : policy.limits.pids),
      cpus: resources?.cpu ? policy.limits.cpus : null,
      timeoutMs: policy.limits.timeout,
      outputBytes: policy.limits.output,
      diskBytes: workspace.mode === 'host-overlay' ? policy.limits.disk : null,
      tmpBytes: policy.limits.tmp,
      homeBytes: policy.limits.home,
      openFiles: policy.limits.files,
    },
  };
}

function planIdMappings(input: PlanInput): Pick<OciSpec['linux'], 'uidMappings' | 'gidMappings'> {
  const { host } = input;
  if (host.rootless) {
    // runc rootless must map container root to the caller (it chowns its exec fifo to it), and
    // without newuidmap nothing else can be mapped. So the task runs as the caller, which is
    // uid 0 in the cell but holds no capability (empty bounding set, no_new_privs): it can edit
    // the caller's files and nothing more. See docs/threat-model.md.
    return {
      uidMappings: [{ containerID: 0, hostID: host.uid, size: 1 }],
      gidMappings: [{ containerID: 0, hostID: host.gid, size: 1 }],
    };
  }
  const base = input.hostUidBase;
  if (base === undefined || base <= 0) {
    throw new NanocellError(
      'no host uid range was leased for this cell',
      'report a bug',
      'INTERNAL',
    );
  }
  return {
    uidMappings: [{ containerID: 0, hostID: base, size: UID_RANGE_SIZE }],
    gidMappings: [{ containerID: 0, hostID: base, size: UID_RANGE_SIZE }],
  };
}

function planResources(
  policy: Policy,
  host: HostFacts,
  degrade: (c: DegradableControl, reason: string, fix: string) => void,
): OciResources | undefined {
  const cg = host.cgroup;
  const missing = (['memory', 'pids', 'cpu'] as const).filter((c) => !cg[c]);
  if (missing.length) {
    degrade(
      'cgroups',
      `cgroup controllers ${missing.join(', ')} cannot be configured (${cg.notes.join('; ') || `cgroup ${cg.version}`}), so those limits would not be enforced`,
      host.rootless
        ? 'run as root, or delegate cgroup v2 controllers to your user (systemd Delegate=yes)'
        : 'mount the cgroup controllers',
    );
  }
  const resources: OciResources = {
    // Deny every device node except what the runtime itself creates.
    devices: [{ allow: false, access: 'rwm' }],
  };
  if (cg.memory) {
    // swap == limit: no swap on top of memory, so the cap is the cap.
    resources.memory = { limit: policy.limits.memory, swap: policy.limits.memory };
  }
  if (cg.pids) resources.pids = { limit: policy.limits.pids };
  if (cg.cpu) {
    const period = 100_000;
    resources.cpu = { quota: Math.max(1000, Math.round(policy.limits.cpus * period)), period };
  }
  if (!cg.memory && !cg.pids && !cg.cpu) return undefined;
  return resources;
}

function planInitArgs(input: PlanInput, landlock: boolean): string[] {
  const args: string[] = ['--landlock', landlock ? 'required' : 'off'];
  if (landlock) {
    if (input.warm) args.push('--landlock-deferred');
    args.push('--ll-read', '/');
    for (const p of input.execAllow) args.push('--ll-exec', p);
    for (const p of [input.workspace.path, '/tmp', CELL_HOME, '/dev']) args.push('--ll-write', p);
  }
  if (input.seccompBpf) args.push('--seccomp-bpf', input.seccompBpf);
  if (input.proxySocket) {
    args.push('--bridge', `127.0.0.1:${CELL_PROXY_PORT}=${CELL_PROXY_SOCKET}`);
  }
  return args;
}

/** NOFILE and no core dumps; NPROC only where the cell's uids are its own. */
function planRlimits(input: PlanInput): { type: string; hard: number; soft: number }[] {
  const { policy, host } = input;
  const rlimits = [
    { type: 'RLIMIT_NOFILE', hard: policy.limits.files, soft: policy.limits.files },
    { type: 'RLIMIT_CORE', hard: 0, soft: 0 },
  ];
  if (!host.rootless) {
    // The cell's uids are its own on the host, so NPROC is a per-cell process cap that holds
    // even where the pids controller is missing. Rootless shares the user's uid: skip it.
    rlimits.push({ type: 'RLIMIT_NPROC', hard: policy.limits.pids, soft: policy.limits.pids });
  }
  return rlimits;
}

/** What the cell never reads of /proc and /sys (runc's defaults), plus toolchain secrets. */
function planMaskedPaths(input: PlanInput): string[] {
  return [
    '/proc/acpi',
    '/proc/asound',
    '/proc/kcore',
    '/proc/keys',
    '/proc/latency_stats',
    '/proc/timer_list',
    '/proc/timer_stats',
    '/proc/sched_debug',
    '/proc/scsi',
    '/proc/kallsyms',
    '/proc/sysrq-trigger',
    '/sys/firmware',
    // Secret-looking files inside toolchain mounts (hostMounts.ts).
    ...(input.hostMounts ?? []).flatMap((m) => m.masked ?? []),
  ];
}
