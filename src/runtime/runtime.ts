// The OCI runtimes on this host: finding the binary, checking its version, the run command,
// deleting and listing containers, and whether the host can run it. What differs between
// runc, crun and runsc is their driver (drivers.ts, OciRuntime) and traits (traits.ts).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { RuntimeName } from '../policy/defaults.js';
import { runtimeNames as RUNTIMES } from '../policy/schema.js';
import { NanocellError } from '../util/errors.js';
import { runCommand } from '../util/run.js';
import { CGROUP_PARENT } from '../host/probe.js';
import { ociRuntime, type RunArgvInput } from './drivers.js';

const CGROUP_ROOT = '/sys/fs/cgroup';

export interface RuntimeInfo {
  name: RuntimeName;
  path: string;
  /** As the runtime prints it (runsc: a release date such as 0.0~20221219.0). */
  version: string;
}

function findOnPath(bin: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin').split(
    ':',
  )) {
    const p = path.join(dir || '.', bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      // keep looking
    }
  }
  return undefined;
}

function parseRuntimeVersion(output: string): [number, number, number] | undefined {
  const m = /version\s+(?:release-)?v?(\d+)\.(\d+)(?:\.(\d+))?/i.exec(output);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
}

/** The version word of `--version` output: `1.1.5+ds1`, `1.8.1`, `0.0~20221219.0`. */
export function runtimeVersionLabel(output: string): string | undefined {
  return /version\s+(?:release-)?v?(\S+)/i.exec(output)?.[1];
}

const cache = new Map<string, RuntimeInfo>();

export function resolveRuntime(name: RuntimeName, explicitPath?: string): RuntimeInfo {
  const key = `${name}:${explicitPath ?? ''}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const bin = explicitPath ?? findOnPath(name);
  if (!bin) {
    throw new NanocellError(
      `OCI runtime ${name} was not found on PATH`,
      `install it (apt-get install ${name}) or pass its path with --runtime-path`,
      'RUNTIME',
    );
  }
  let out: string;
  try {
    out = execFileSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  } catch (e) {
    throw new NanocellError(
      `OCI runtime ${bin} does not run: ${(e as Error).message.split('\n')[0]}`,
      'check the runtime path, or reinstall the runtime',
      'RUNTIME',
    );
  }
  const v = parseRuntimeVersion(out);
  const [maj, min] = ociRuntime(name).minVersion;
  if (!v || v[0] < maj || (v[0] === maj && v[1] < min)) {
    throw new NanocellError(
      `OCI runtime ${bin} is too old or unrecognised (${out.split('\n')[0]?.trim()}); nanocell needs ${name} >= ${maj}.${min}`,
      `upgrade ${name}`,
      'RUNTIME',
    );
  }
  const info = { name, path: bin, version: runtimeVersionLabel(out) ?? v.join('.') };
  cache.set(key, info);
  return info;
}

export type { RunArgvInput } from './drivers.js';

/** The command the monitor starts (see OciRuntime.runArgv). */
export function runtimeRunArgv(rt: RuntimeInfo, o: RunArgvInput): string[] {
  return ociRuntime(rt.name).runArgv(rt.path, o);
}

/** Which runtime holds state for container `id` under the state root, if any. */
export function containerOwner(runcRoot: string, id: string): RuntimeName | undefined {
  return RUNTIMES.find((name) => listContainersOf(name, runcRoot).includes(id));
}

function listContainersOf(name: RuntimeName, runcRoot: string): string[] {
  const driver = ociRuntime(name);
  try {
    return driver.containerIds(fs.readdirSync(driver.stateRoot(runcRoot)));
  } catch {
    return [];
  }
}

/**
 * Removes the container's runtime state and cgroups. Idempotent. The container is deleted by
 * the runtime that created it, which for `nanocell gc` may not be the one it was given.
 */
export async function deleteContainer(
  given: RuntimeInfo,
  runcRoot: string,
  id: string,
): Promise<void> {
  const owner = containerOwner(runcRoot, id);
  if (!owner) {
    // A runtime that failed half-way through create (runsc does) can leave cgroups without
    // any state to delete them by.
    removeEmptyCellCgroups(id);
    return;
  }
  const rt = owner === given.name ? given : resolveRuntime(owner);
  const root = ociRuntime(rt.name).stateRoot(runcRoot);
  const res = await runCommand(rt.path, ['--root', root, 'delete', '--force', id], {
    timeout: 30_000,
  });
  if (res.exitCode !== 0 && containerOwner(runcRoot, id)) {
    throw new NanocellError(
      `${rt.name} delete ${id} failed: ${String(res.stderr).trim().split('\n').pop()}`,
      'run `nanocell gc`',
      'RUNTIME',
    );
  }
  removeEmptyCellCgroups(id);
}

/**
 * Removes the cell's cgroup in every hierarchy (v1 controllers, v2, the hybrid v2 side).
 * rmdir only succeeds on a cgroup without processes, so a live cell is never touched.
 */
function removeEmptyCellCgroups(id: string, root = CGROUP_ROOT): void {
  const candidates = [path.join(root, CGROUP_PARENT, id)];
  for (const h of safeReaddir(root)) candidates.push(path.join(root, h, CGROUP_PARENT, id));
  for (const dir of candidates) {
    try {
      fs.rmdirSync(dir);
    } catch {
      // not there, or still in use
    }
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** Every container id with runtime state under the state root, whichever runtime holds it. */
export function listRuntimeContainers(runcRoot: string): string[] {
  return [...new Set(RUNTIMES.flatMap((name) => listContainersOf(name, runcRoot)))];
}

/**
 * Controllers bound to the v2 hierarchy of a v1/v2 hybrid layout (`/sys/fs/cgroup/unified`).
 * Empty on pure v1 or v2 hosts, and on hybrid hosts where every controller is on v1, which is
 * what systemd's hybrid mode intends; a controller no v1 hierarchy claims lands on v2.
 */
export function hybridV2Controllers(root = CGROUP_ROOT): string[] {
  if (fs.existsSync(path.join(root, 'cgroup.controllers'))) return [];
  try {
    return fs
      .readFileSync(path.join(root, 'unified', 'cgroup.controllers'), 'utf8')
      .split(/\s+/)
      .filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * The host-level fix: mount each stray controller as its own v1 hierarchy, which moves it off
 * the v2 side (the kernel allows that while no v2 cgroup has it enabled). Reversible: once no
 * cgroup exists under the new hierarchy, unmounting it returns the controller to v2.
 */
function hybridFix(controllers: string[], root = CGROUP_ROOT) {
  const dir = (c: string) => path.join(root, c);
  return {
    apply: controllers.map((c) => `mkdir -p ${dir(c)} && mount -t cgroup -o ${c} cgroup ${dir(c)}`),
    revert: controllers.map((c) => `rmdir ${dir(c)}/nanocell; umount ${dir(c)} && rmdir ${dir(c)}`),
  };
}

/** Why this runtime cannot start a cell on this host, or undefined when it can. */
export function runtimeHostProblem(
  rt: Pick<RuntimeInfo, 'name'>,
  root = CGROUP_ROOT,
): { problem: string; fix: string } | undefined {
  if (!ociRuntime(rt.name).traits.needsEmptyHybridV2) return undefined;
  const stray = hybridV2Controllers(root);
  if (stray.length === 0) return undefined;
  return {
    problem: `${rt.name} refuses this hybrid cgroup layout: controller ${stray.join(', ')} is bound to the v2 hierarchy (${root}/unified), and ${rt.name} cannot run a container there even without cgroups`,
    fix: `run \`scripts/setup.sh install\`, or bind it to a v1 hierarchy yourself: ${hybridFix(stray, root).apply.join('; ')} (revert: ${hybridFix(stray, root).revert.join('; ')}); or use --runtime runc`,
  };
}

/** Fails before anything is created when the runtime cannot work on this host. */
export function assertRuntimeWorksHere(rt: RuntimeInfo): void {
  const p = runtimeHostProblem(rt);
  if (p) throw new NanocellError(p.problem, p.fix, 'RUNTIME');
}
