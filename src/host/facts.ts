// What the host offers, as plain data, so that planning a cell stays pure and testable.

type CgroupVersion = 1 | 2 | 'none';

export interface CgroupFacts {
  version: CgroupVersion;
  /** Controllers nanocell can actually configure for a cell (mounted and writable). */
  memory: boolean;
  pids: boolean;
  cpu: boolean;
  /** cgroupsPath parent the runtime should create cells under. */
  parent: string;
  /** Why a controller is unusable, for doctor and the report. */
  notes: string[];
}

export interface HostFacts {
  arch: 'x86_64' | 'aarch64';
  /** True when nanocell runs without root: runc rootless, one mapped uid. */
  rootless: boolean;
  uid: number;
  gid: number;
  cgroup: CgroupFacts;
  /** /bin, /lib, /sbin are symlinks into /usr (Debian 12, Ubuntu 22.04+). */
  mergedUsr: boolean;
  /** Top-level system dirs that exist on the host, e.g. lib64, lib32. */
  usrLinks: string[];
  /** Landlock ABI version, 0 when unavailable. */
  landlockAbi: number;
}
