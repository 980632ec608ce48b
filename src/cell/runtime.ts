// The OCI runtime driver: finding the binary, checking its version, and the few runtime
// commands nanocell needs besides `run` (which the monitor starts).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import type { RuntimeName } from '../policy/defaults.js';
import { NanocellError } from '../util/errors.js';

export interface RuntimeInfo {
  name: RuntimeName;
  path: string;
  version: string;
}

/** Oldest versions with what nanocell relies on (runc 1.1: seccomp listenerPath). */
const MIN_VERSION: Record<RuntimeName, [number, number]> = {
  runc: [1, 1],
  crun: [1, 0],
  runsc: [0, 0],
};

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

export function parseRuntimeVersion(output: string): [number, number, number] | undefined {
  const m = /version\s+(?:release-)?v?(\d+)\.(\d+)(?:\.(\d+))?/i.exec(output);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)] : undefined;
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
      `install it (apt-get install ${name === 'runsc' ? 'gvisor' : name}) or pass its path with --runtime-path`,
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
  const [maj, min] = MIN_VERSION[name];
  if (!v || v[0] < maj || (v[0] === maj && v[1] < min)) {
    throw new NanocellError(
      `OCI runtime ${bin} is too old or unrecognised (${out.split('\n')[0]?.trim()}); nanocell needs ${name} >= ${maj}.${min}`,
      `upgrade ${name}`,
      'RUNTIME',
    );
  }
  const info = { name, path: bin, version: v.join('.') };
  cache.set(key, info);
  return info;
}

export function runtimeGlobalArgs(rt: RuntimeInfo, runtimeRoot: string): string[] {
  const args = ['--root', runtimeRoot];
  if (rt.name === 'runsc') args.push('--ignore-cgroups');
  return args;
}

/** Removes the container's runtime state and cgroups. Idempotent. */
export async function deleteContainer(
  rt: RuntimeInfo,
  runtimeRoot: string,
  id: string,
): Promise<void> {
  const res = await execa(
    rt.path,
    [...runtimeGlobalArgs(rt, runtimeRoot), 'delete', '--force', id],
    {
      reject: false,
      timeout: 30_000,
    },
  );
  if (res.exitCode !== 0 && fs.existsSync(path.join(runtimeRoot, id))) {
    throw new NanocellError(
      `${rt.name} delete ${id} failed: ${String(res.stderr).trim().split('\n').pop()}`,
      'run `nanocell gc`',
      'RUNTIME',
    );
  }
}

export async function killContainer(
  rt: RuntimeInfo,
  runtimeRoot: string,
  id: string,
): Promise<void> {
  await execa(rt.path, [...runtimeGlobalArgs(rt, runtimeRoot), 'kill', id, 'KILL'], {
    reject: false,
    timeout: 10_000,
  });
}

export function listRuntimeContainers(runtimeRoot: string): string[] {
  try {
    return fs.readdirSync(runtimeRoot);
  } catch {
    return [];
  }
}
