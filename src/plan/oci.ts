// The subset of the OCI runtime spec (config.json, v1.0.2) that nanocell writes.

export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}

interface OciIdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

interface OciRlimit {
  type: string;
  hard: number;
  soft: number;
}

interface OciSeccompArg {
  index: number;
  value: number;
  valueTwo?: number;
  op: string;
}

interface OciSeccompRule {
  names: string[];
  action: string;
  errnoRet?: number;
  args?: OciSeccompArg[];
}

export interface OciSeccomp {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures?: string[];
  flags?: string[];
  listenerPath?: string;
  listenerMetadata?: string;
  syscalls?: OciSeccompRule[];
}

export interface OciResources {
  memory?: { limit?: number; swap?: number; disableOOMKiller?: boolean };
  pids?: { limit: number };
  cpu?: { quota?: number; period?: number; shares?: number };
  devices?: { allow: boolean; type?: string; major?: number; minor?: number; access?: string }[];
}

export interface OciSpec {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: { uid: number; gid: number; additionalGids?: number[] };
    args: string[];
    env: string[];
    cwd: string;
    capabilities: Record<
      'bounding' | 'effective' | 'inheritable' | 'permitted' | 'ambient',
      string[]
    >;
    rlimits: OciRlimit[];
    noNewPrivileges: boolean;
    oomScoreAdj?: number;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  linux: {
    uidMappings: OciIdMapping[];
    gidMappings: OciIdMapping[];
    namespaces: { type: string; path?: string }[];
    resources?: OciResources;
    cgroupsPath?: string;
    seccomp?: OciSeccomp;
    maskedPaths: string[];
    readonlyPaths: string[];
  };
}
