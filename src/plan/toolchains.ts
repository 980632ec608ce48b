// Toolchain presets (policy `toolchains:`): the installs the host probe found become read-only,
// executable host mounts at their own paths (so absolute shebangs and baked-in prefixes hold),
// their bin dirs go first on PATH, and the caches the tools write to are per-project dirs under
// the state root, never the user's real caches. Pure: the probe's answer is an input.
import path from 'node:path';
import type { FoundToolchain } from '../host/toolchains.js';
import type { HostMountRequest } from '../policy/defaults.js';
import type { RuntimeName } from '../policy/defaults.js';
import type { ToolchainName } from '../policy/schema.js';
import { PolicyError } from '../util/errors.js';
import { CELL_PATH } from './env.js';
import { CELL_HOME } from './layout.js';

/** A cache a toolchain's tools write to: a name (its dir under the state root) and its env. */
interface CacheSpec {
  name: string;
  /** Variables pointing the tool at the cache's cell path. */
  env: (dir: string) => Record<string, string>;
}

/** The one table of what each toolchain writes and how its tools are told where. */
const CACHES: Record<ToolchainName, CacheSpec[]> = {
  node: [{ name: 'npm', env: (d) => ({ npm_config_cache: d }) }],
  python: [{ name: 'pip', env: (d) => ({ PIP_CACHE_DIR: d }) }],
  rust: [{ name: 'cargo', env: (d) => ({ CARGO_HOME: d }) }],
  go: [
    { name: 'go-mod', env: (d) => ({ GOMODCACHE: d }) },
    { name: 'go-build', env: (d) => ({ GOCACHE: d }) },
  ],
  java: [
    { name: 'maven', env: (d) => ({ MAVEN_OPTS: `-Dmaven.repo.local=${d}` }) },
    { name: 'gradle', env: (d) => ({ GRADLE_USER_HOME: d }) },
  ],
};

/** A per-project cache: `name` is its dir under the project's cache dir; `cell` where it shows. */
export interface ToolCache {
  name: string;
  cell: string;
  /** An agent preset's state dir (StateLayout.agentConfig), not a cache (src/plan/agent.ts). */
  agent?: boolean;
}

export interface ToolchainPlan {
  found: readonly FoundToolchain[];
  /** Host mounts to check like any other (read-only, exec, secrets masked). */
  mounts: HostMountRequest[];
  caches: ToolCache[];
  /** PATH and the cache variables, below the policy's own env. */
  env: Record<string, string>;
}

/** Where caches appear in the cell: in HOME's tmpfs, so nothing else of HOME persists. */
const cacheCellDir = (name: string) => path.posix.join(CELL_HOME, '.cache', 'nanocell', name);

export function planToolchains(
  found: readonly FoundToolchain[],
  missing: readonly ToolchainName[],
  places: (name: ToolchainName) => string[],
  runtime: RuntimeName = 'runc',
): ToolchainPlan {
  // Secret-looking files inside a toolchain tree are hidden with linux.maskedPaths; that is
  // verified under runc and crun only, so gVisor is refused rather than trusted.
  if (found.length && runtime === 'runsc') {
    throw new PolicyError(
      'toolchains: cannot be used with runsc: hiding secret-looking files inside the toolchain mounts is not verified under gVisor',
      'use runc or crun, or mount the toolchain directory with mounts: instead',
    );
  }
  const [absent] = missing;
  if (absent) {
    throw new PolicyError(
      `toolchain ${absent} not found (looked in ${places(absent).join(', ')})`,
      `install it with one of those managers, mount its directory with mounts:, or remove ${absent} from toolchains`,
    );
  }
  const caches: ToolCache[] = [];
  const env: Record<string, string> = {};
  for (const t of found) {
    for (const c of CACHES[t.name]) {
      const cell = cacheCellDir(c.name);
      caches.push({ name: c.name, cell });
      Object.assign(env, c.env(cell));
    }
  }
  if (found.length) env.PATH = [...found.flatMap((t) => t.bin), CELL_PATH].join(':');
  return {
    found,
    mounts: found.map((t) => ({ host: t.root, exec: true, toolchain: true })),
    caches,
    env,
  };
}
