// Policy + host facts → OCI bundle config. Pure: no file system, no processes, so every
// isolation decision can be unit-tested without root. Each step is explicit and in order,
// the way bubblewrap lays out its sandbox.
import path from 'node:path';
import type { Policy } from '../policy/defaults.js';
import type { DegradableControl } from '../policy/schema.js';
import type { HostFacts } from '../host/facts.js';
import { NanocellError } from '../util/errors.js';
import type { ExecMounts } from './execRule.js';
import type { OciMount, OciResources, OciSeccomp, OciSpec } from './oci.js';
import { runtimeTraits } from './runtimeTraits.js';

/** Inside the cell the task runs as this unprivileged user. */
export const CELL_UID = 1000;
export const CELL_GID = 1000;
export const CELL_HOME = '/home/cell';
/** nanocell's own files inside the cell: init and the proxy socket. Read-only. */
export const CELL_RUNTIME_DIR = '/.nanocell';
export const CELL_INIT = `${CELL_RUNTIME_DIR}/init`;
export const CELL_PROXY_SOCKET = `${CELL_RUNTIME_DIR}/proxy.sock`;
/** Loopback port inside the cell where init bridges to the supervisor's proxy. */
export const CELL_PROXY_PORT = 3128;
/** Host uids per cell in root mode: the whole 16-bit range, as container runtimes do. */
export const UID_RANGE_SIZE = 65536;

/** Paths that a workspace may not be, contain or sit under: the cell's own system layout. */
const RESERVED_CELL_PATHS = [
  '/usr',
  '/etc',
  '/proc',
  '/dev',
  '/sys',
  '/tmp',
  CELL_HOME,
  CELL_RUNTIME_DIR,
];
const RESERVED_TOP = ['/bin', '/lib', '/lib32', '/lib64', '/libx32', '/sbin', '/run', '/var/run'];

/** The task's identity inside the cell (see planIdMappings for why rootless differs). */
export function cellUser(host: HostFacts): { uid: number; gid: number } {
  return host.rootless ? { uid: 0, gid: 0 } : { uid: CELL_UID, gid: CELL_GID };
}

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
  /** Which writable places are mounted executable (planExecRule); the rest are noexec. */
  execMounts: ExecMounts;
  seccomp?: OciSeccomp;
  /** Host path of this cell's proxy socket, when the policy allows any egress. */
  proxySocket?: string;
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

/** Rejects a workspace whose cell path would shadow or sit inside the cell's system layout. */
export function checkWorkspacePath(p: string): void {
  if (!path.isAbsolute(p) || path.normalize(p) !== p || p === '/') {
    throw new NanocellError(
      `workspace ${p} must be an absolute, normalised directory other than /`,
      'pass a project directory with --workspace',
      'WORKSPACE',
    );
  }
  for (const r of [...RESERVED_CELL_PATHS, ...RESERVED_TOP]) {
    if (p === r || p.startsWith(`${r}/`) || r.startsWith(`${p}/`)) {
      throw new NanocellError(
        `workspace ${p} overlaps ${r}, which the cell reserves for its own system files`,
        'move the project to a directory such as /srv/project or your home directory',
        'WORKSPACE',
      );
    }
  }
}

export function planCell(input: PlanInput): CellPlan {
  const { policy, host, workspace } = input;
  checkWorkspacePath(workspace.path);
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

  // 1. Identity: which host uids the cell's uids become. Container root is never host root.
  const { uidMappings, gidMappings } = planIdMappings(input);

  // 2. Resources: cgroups, or an explicit, opted-in degradation.
  const resources = planResources(policy, host, degrade);

  // 3. Landlock is applied by init; without it the exec allowlist cannot be enforced.
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
  if (workspace.mode === 'cell-overlay') {
    degrade(
      'disk-cap',
      'rootless cells write the workspace upper layer to the host disk, where no size cap applies',
      'run nanocell as root',
    );
  }

  // 4. The file system, mounted in this order.
  const mounts = planMounts(input);
  const mountpoints = planMountpoints(input, mounts);

  if (input.seccomp && !traits.seccompNotify) {
    // The filter still denies; only the record of each denial is lost. Choosing the runtime
    // is the opt-in, and the report says so.
    degradations.push({
      control: 'syscall-audit',
      reason: `${policy.runtime.name} does not pass seccomp notifications out, so denied syscalls fail with an errno but are not recorded`,
    });
  }

  // 5. pid 1: nanocell-init, which applies Landlock and bridges the proxy, then serves execs.
  const initArgv = [CELL_INIT, ...planInitArgs(input, landlock)];
  const args =
    traits.controlChannel === 'stdin'
      ? // init expects the control socket on fd 3; move it there from stdin, then exec init.
        ['/bin/sh', '-c', 'exec "$0" "$@" 3<&0 0</dev/null', ...initArgv]
      : initArgv;

  const rlimits = [
    { type: 'RLIMIT_NOFILE', hard: policy.limits.files, soft: policy.limits.files },
    { type: 'RLIMIT_CORE', hard: 0, soft: 0 },
  ];
  if (!host.rootless) {
    // The cell's uids are its own on the host, so NPROC is a per-cell process cap that holds
    // even where the pids controller is missing. Rootless shares the user's uid: skip it.
    rlimits.push({ type: 'RLIMIT_NPROC', hard: policy.limits.pids, soft: policy.limits.pids });
  }

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
      maskedPaths: [
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
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys'],
    },
  };

  return {
    spec,
    mountpoints,
    degradations,
    limits: {
      memoryBytes: resources?.memory?.limit ?? null,
      pids: resources?.pids?.limit ?? (host.rootless ? null : policy.limits.pids),
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

function planMounts(input: PlanInput): OciMount[] {
  const { policy, host, workspace } = input;
  const ro = ['rbind', 'ro', 'nosuid', 'nodev'];
  const mounts: OciMount[] = [
    { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
    {
      destination: '/dev',
      type: 'tmpfs',
      source: 'tmpfs',
      options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
    },
    {
      destination: '/dev/pts',
      type: 'devpts',
      source: 'devpts',
      options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'],
    },
    {
      destination: '/dev/shm',
      type: 'tmpfs',
      source: 'shm',
      options: [
        'nosuid',
        'nodev',
        ...noexec(input.execMounts.shm),
        'mode=1777',
        `size=${policy.limits.tmp}`,
        `nr_inodes=${inodeCap(policy.limits.tmp)}`,
      ],
    },
    // The host's programs and libraries, read-only. No setuid bit works in here.
    { destination: '/usr', type: 'bind', source: '/usr', options: ro },
    { destination: '/etc', type: 'bind', source: input.etcDir, options: [...ro, 'noexec'] },
  ];
  if (!host.mergedUsr) {
    for (const d of host.usrLinks) {
      mounts.push({ destination: `/${d}`, type: 'bind', source: `/${d}`, options: ro });
    }
  }
  mounts.push(
    {
      destination: '/tmp',
      type: 'tmpfs',
      source: 'tmpfs',
      options: [
        'nosuid',
        'nodev',
        ...noexec(input.execMounts.tmp),
        'mode=1777',
        `size=${policy.limits.tmp}`,
        `nr_inodes=${inodeCap(policy.limits.tmp)}`,
      ],
    },
    {
      destination: CELL_HOME,
      type: 'tmpfs',
      source: 'tmpfs',
      options: [
        'nosuid',
        'nodev',
        ...noexec(input.execMounts.home),
        // One option per entry: runsc parses each entry as a single option.
        'mode=700',
        `uid=${cellUser(host).uid}`,
        `gid=${cellUser(host).gid}`,
        `size=${policy.limits.home}`,
        `nr_inodes=${inodeCap(policy.limits.home)}`,
      ],
    },
    {
      destination: CELL_INIT,
      type: 'bind',
      source: input.initBinary,
      options: ['bind', 'ro', 'nosuid', 'nodev'],
    },
  );
  if (input.proxySocket) {
    mounts.push({
      destination: CELL_PROXY_SOCKET,
      type: 'bind',
      source: input.proxySocket,
      options: ['bind', 'nosuid', 'nodev', 'noexec'],
    });
  }
  if (workspace.mode === 'host-overlay') {
    if (!workspace.mergedDir)
      throw new NanocellError('workspace overlay has no merged dir', 'report a bug');
    mounts.push({
      destination: workspace.path,
      type: 'bind',
      source: workspace.mergedDir,
      options: ['bind', 'rw', 'nosuid', 'nodev', ...noexec(input.execMounts.workspace)],
    });
  } else {
    const { lowerDir, upperDir, workDir } = workspace;
    if (!lowerDir || !upperDir || !workDir) {
      throw new NanocellError('workspace overlay layers are missing', 'report a bug');
    }
    mounts.push({
      destination: workspace.path,
      type: 'overlay',
      source: 'overlay',
      options: [
        `lowerdir=${lowerDir}`,
        `upperdir=${upperDir}`,
        `workdir=${workDir}`,
        'userxattr',
        'nosuid',
        'nodev',
        ...noexec(input.execMounts.workspace),
      ],
    });
  }
  // A bind mount has its own flags: the workspace's exec rule must hold under it too.
  const wsExec = noexec(input.execMounts.workspace);
  mounts.push(
    ...workspace.extraMounts.map((m) => ({ ...m, options: [...(m.options ?? []), ...wsExec] })),
  );
  return mounts;
}

/** Everything a mount lands on must already exist: the rootfs is read-only and host-owned. */
function planMountpoints(input: PlanInput, mounts: OciMount[]): CellPlan['mountpoints'] {
  const dirs = new Set<string>();
  const files = new Set<string>();
  const symlinks: [string, string][] = [];
  const addParents = (p: string) => {
    for (let d = path.dirname(p); d !== '/'; d = path.dirname(d)) dirs.add(d);
  };
  const underMount = (p: string, m: OciMount) =>
    m.destination !== p && p.startsWith(`${m.destination}/`);
  for (const m of mounts) {
    // Mount points inside another mount (e.g. /dev/pts, workspace sub-paths) are the
    // runtime's or the overlay's business, not the rootfs's.
    if (mounts.some((outer) => underMount(m.destination, outer))) continue;
    addParents(m.destination);
    const isFile = m.destination === CELL_INIT || m.destination === CELL_PROXY_SOCKET;
    (isFile ? files : dirs).add(m.destination);
  }
  if (input.host.mergedUsr) {
    for (const d of input.host.usrLinks) symlinks.push([`/${d}`, `usr/${d}`]);
  } else {
    for (const d of input.host.usrLinks) dirs.add(`/${d}`);
  }
  return { dirs: [...dirs].sort(), files: [...files].sort(), symlinks };
}

function planInitArgs(input: PlanInput, landlock: boolean): string[] {
  const args: string[] = ['--landlock', landlock ? 'required' : 'off'];
  if (landlock) {
    args.push('--ll-read', '/');
    for (const p of input.execAllow) args.push('--ll-exec', p);
    for (const p of [input.workspace.path, '/tmp', CELL_HOME, '/dev']) args.push('--ll-write', p);
  }
  if (input.proxySocket) {
    args.push('--bridge', `127.0.0.1:${CELL_PROXY_PORT}=${CELL_PROXY_SOCKET}`);
  }
  return args;
}

/** noexec unless the place's exec rule allows exec (see execRule.ts for why mounts matter). */
const noexec = (exec: boolean): string[] => (exec ? [] : ['noexec']);

/**
 * tmpfs caps bytes with size= but not inodes: empty files and dirs cost no blocks, only kernel
 * memory. One inode per KiB of the size cap (at least 1024) bounds an inode flood.
 */
function inodeCap(sizeBytes: number): number {
  return Math.max(1024, Math.floor(sizeBytes / 1024));
}
