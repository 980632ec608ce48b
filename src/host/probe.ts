// Reads the host's facts once per process. Thin and side-effect free apart from reads.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { lexists } from '../util/fs.js';
import path from 'node:path';
import type { CgroupFacts, HostFacts } from './facts.js';
import { nativeBinary } from './native.js';

const CGROUP_ROOT = '/sys/fs/cgroup';
/** Parent of every cell's cgroup, relative to each hierarchy's root. */
export const CGROUP_PARENT = '/nanocell';

let cached: HostFacts | undefined;

export function probeHost(): HostFacts {
  cached ??= {
    arch: process.arch === 'arm64' ? 'aarch64' : 'x86_64',
    rootless: process.geteuid!() !== 0,
    uid: process.geteuid!(),
    gid: process.getegid!(),
    cgroup: probeCgroups(process.geteuid!() !== 0),
    mergedUsr: isMergedUsr(),
    usrLinks: ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'].filter((d) => lexists(`/${d}`)),
    landlockAbi: probeLandlockAbi(),
  };
  return cached;
}

function isMergedUsr(): boolean {
  try {
    return fs.readlinkSync('/bin').replace(/^\//, '') === 'usr/bin';
  } catch {
    return false;
  }
}

export function probeLandlockAbi(): number {
  // Outside the try: a missing helper is its own error (build it), not "no Landlock".
  const init = nativeBinary('nanocell-init');
  try {
    const out = execFileSync(init, ['--probe'], {
      encoding: 'utf8',
      timeout: 5000,
    });
    const m = /landlock_abi=(\d+)/.exec(out);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

function writable(p: string): boolean {
  try {
    fs.accessSync(p, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

function cgroupVersion(): 1 | 2 | 'none' {
  try {
    if (fs.existsSync(path.join(CGROUP_ROOT, 'cgroup.controllers'))) return 2;
    if (fs.existsSync(path.join(CGROUP_ROOT, 'memory'))) return 1;
  } catch {
    // fall through
  }
  return 'none';
}

export function probeCgroups(rootless: boolean): CgroupFacts {
  const version = cgroupVersion();
  const notes: string[] = [];
  if (version === 1) {
    const usable = (ctrl: string) => {
      const dir = path.join(CGROUP_ROOT, ctrl);
      if (!fs.existsSync(dir)) {
        notes.push(`cgroup v1 ${ctrl} controller is not mounted`);
        return false;
      }
      // runc rootless cannot create v1 cgroups: there is no delegation in v1.
      if (rootless || !writable(dir)) {
        notes.push(
          `cgroup v1 ${ctrl} hierarchy is not writable${rootless ? ' by an unprivileged user' : ''}`,
        );
        return false;
      }
      return true;
    };
    return {
      version,
      memory: usable('memory'),
      pids: usable('pids'),
      cpu: usable('cpu'),
      parent: CGROUP_PARENT,
      notes,
    };
  }
  if (version === 2) {
    let parent = CGROUP_PARENT;
    let dir = CGROUP_ROOT;
    if (rootless) {
      // Rootless needs a delegated subtree: the user's own cgroup must be writable.
      const own = /^0::(.*)$/m.exec(fs.readFileSync('/proc/self/cgroup', 'utf8'))?.[1] ?? '/';
      const ownDir = path.join(CGROUP_ROOT, own);
      dir = path.dirname(ownDir);
      parent = path.dirname(own);
      if (!writable(dir)) {
        notes.push(`cgroup v2 ${dir} is not delegated to uid ${process.geteuid!()}`);
        return { version, memory: false, pids: false, cpu: false, parent, notes };
      }
    } else if (!writable(dir)) {
      notes.push(`cgroup v2 root ${dir} is not writable`);
      return { version, memory: false, pids: false, cpu: false, parent, notes };
    }
    let controllers: string[] = [];
    try {
      controllers = fs
        .readFileSync(path.join(dir, 'cgroup.controllers'), 'utf8')
        .trim()
        .split(/\s+/);
    } catch {
      notes.push(`cannot read ${dir}/cgroup.controllers`);
    }
    const has = (c: string) => {
      const ok = controllers.includes(c);
      if (!ok) notes.push(`cgroup v2 controller ${c} is not available in ${dir}`);
      return ok;
    };
    return { version, memory: has('memory'), pids: has('pids'), cpu: has('cpu'), parent, notes };
  }
  notes.push('no cgroup file system is mounted at /sys/fs/cgroup');
  return { version, memory: false, pids: false, cpu: false, parent: CGROUP_PARENT, notes };
}
