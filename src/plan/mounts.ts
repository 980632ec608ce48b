// The cell's file system, as an ordered list of OCI mounts, and the mount points the
// read-only rootfs must already hold. Pure.
import path from 'node:path';
import { NanocellError } from '../util/errors.js';
import { CELL_HOME, CELL_INIT, CELL_PROXY_SOCKET, cellUser } from './layout.js';
import { hostMountSpecs } from './hostMounts.js';
import type { OciMount } from './oci.js';
import type { CellPlan, PlanInput } from './plan.js';

export function planMounts(input: PlanInput): OciMount[] {
  const { workspace } = input;
  const mounts: OciMount[] = [...systemMounts(input), ...scratchMounts(input)];
  if (input.proxySocket) {
    mounts.push({
      destination: CELL_PROXY_SOCKET,
      type: 'bind',
      source: input.proxySocket,
      options: ['bind', 'nosuid', 'nodev', 'noexec'],
    });
  }
  // Host paths the policy named, read-only; checked by resolve, never inside the workspace.
  mounts.push(...hostMountSpecs(input.hostMounts ?? []));
  // Caches and carried host config land in HOME's tmpfs, mounted above, which holds their mount points.
  mounts.push(...(input.homeMounts ?? []));
  mounts.push(workspaceMount(input));
  // A bind mount has its own flags: the workspace's exec rule must hold under it too.
  const wsExec = noexec(input.execMounts.workspace);
  mounts.push(
    ...workspace.extraMounts.map((m) => ({ ...m, options: [...(m.options ?? []), ...wsExec] })),
  );
  return mounts;
}

/** The kernel file systems, /dev, and the host's /usr and /etc, read-only. */
function systemMounts(input: PlanInput): OciMount[] {
  const { policy, host } = input;
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
  return mounts;
}

/** The cell's scratch space (/tmp, HOME) and its init. */
function scratchMounts(input: PlanInput): OciMount[] {
  const { policy, host } = input;
  return [
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
  ];
}

/** The workspace: the host-side overlay bound in, or an overlay the runtime mounts. */
function workspaceMount(input: PlanInput): OciMount {
  const { workspace } = input;
  if (workspace.mode === 'host-overlay') {
    if (!workspace.mergedDir)
      throw new NanocellError('workspace overlay has no merged dir', 'report a bug');
    return {
      destination: workspace.path,
      type: 'bind',
      source: workspace.mergedDir,
      options: ['bind', 'rw', 'nosuid', 'nodev', ...noexec(input.execMounts.workspace)],
    };
  }
  const { lowerDir, upperDir, workDir } = workspace;
  if (!lowerDir || !upperDir || !workDir) {
    throw new NanocellError('workspace overlay layers are missing', 'report a bug');
  }
  return {
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
  };
}

/** Everything a mount lands on must already exist: the rootfs is read-only and host-owned. */
export function planMountpoints(input: PlanInput, mounts: OciMount[]): CellPlan['mountpoints'] {
  const dirs = new Set<string>();
  const files = new Set<string>();
  const symlinks: [string, string][] = [];
  const addParents = (p: string) => {
    for (let d = path.dirname(p); d !== '/'; d = path.dirname(d)) dirs.add(d);
  };
  const underMount = (p: string, m: OciMount) =>
    m.destination !== p && p.startsWith(`${m.destination}/`);
  const hostFiles = new Set(
    (input.hostMounts ?? []).filter((m) => m.kind === 'file').map((m) => m.cell),
  );
  for (const m of mounts) {
    // Mount points inside another mount (e.g. /dev/pts, workspace sub-paths) are the
    // runtime's or the overlay's business, not the rootfs's.
    if (mounts.some((outer) => underMount(m.destination, outer))) continue;
    addParents(m.destination);
    const isFile =
      m.destination === CELL_INIT ||
      m.destination === CELL_PROXY_SOCKET ||
      hostFiles.has(m.destination);
    (isFile ? files : dirs).add(m.destination);
  }
  for (const [link, target] of input.links ?? []) {
    addParents(link);
    symlinks.push([link, target]);
  }
  if (input.host.mergedUsr) {
    for (const d of input.host.usrLinks) symlinks.push([`/${d}`, `usr/${d}`]);
  } else {
    for (const d of input.host.usrLinks) dirs.add(`/${d}`);
  }
  return { dirs: [...dirs].sort(), files: [...files].sort(), symlinks };
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
