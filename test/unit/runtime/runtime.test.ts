// Pure parts of the runtime driver: the crun hybrid-cgroup check (against a fake cgroup root),
// the run command per runtime, and which runtime owns a container's state.
import { afterEach, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  containerOwner,
  hybridV2Controllers,
  runtimeHostProblem,
  runtimeRunArgv,
  runtimeVersionLabel,
  type RuntimeInfo,
} from '../../../src/runtime/runtime.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});
function tmp(): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-rt-'));
  dirs.push(d);
  return d;
}
function hybridRoot(v2Controllers: string): string {
  const root = tmp();
  fs.mkdirSync(path.join(root, 'memory'));
  fs.mkdirSync(path.join(root, 'unified'));
  fs.writeFileSync(path.join(root, 'unified', 'cgroup.controllers'), v2Controllers);
  return root;
}

describe('crun on hybrid cgroups', () => {
  it('names the stray v2 controller and gives a reversible fix', () => {
    const root = hybridRoot('hugetlb\n');
    expect(hybridV2Controllers(root)).toEqual(['hugetlb']);
    const p = runtimeHostProblem({ name: 'crun' }, root)!;
    expect(p.problem).toMatch(/hugetlb is bound to the v2 hierarchy/);
    expect(p.fix).toContain(`mount -t cgroup -o hugetlb cgroup ${root}/hugetlb`);
    expect(p.fix).toContain(`umount ${root}/hugetlb`);
  });

  it('accepts an empty v2 side, a pure v2 host, and never blocks runc or runsc', () => {
    expect(runtimeHostProblem({ name: 'crun' }, hybridRoot(''))).toBeUndefined();
    const v2 = tmp();
    fs.writeFileSync(path.join(v2, 'cgroup.controllers'), 'memory pids cpu');
    expect(runtimeHostProblem({ name: 'crun' }, v2)).toBeUndefined();
    const root = hybridRoot('hugetlb');
    expect(runtimeHostProblem({ name: 'runc' }, root)).toBeUndefined();
    expect(runtimeHostProblem({ name: 'runsc' }, root)).toBeUndefined();
  });
});

describe('run command', () => {
  const input = { runcRoot: '/s/runc', id: 'c1', bundle: '/b', pidFile: '/p', hostSocket: false };
  it('preserves fd 3 for runc and crun, each with its own state root', () => {
    const runc: RuntimeInfo = { name: 'runc', path: '/usr/sbin/runc', version: '1.1.5' };
    expect(runtimeRunArgv(runc, input)).toEqual([
      '/usr/sbin/runc', '--root', '/s/runc', 'run', '--preserve-fds', '1',
      '--detach', '--pid-file', '/p', '--bundle', '/b', 'c1',
    ]); // prettier-ignore
    const crun: RuntimeInfo = { name: 'crun', path: '/usr/bin/crun', version: '1.8.1' };
    expect(runtimeRunArgv(crun, input).slice(0, 3)).toEqual(['/usr/bin/crun', '--root', '/s/crun']);
  });

  it('gives runsc the control socket as stdin, the OCI seccomp profile, and host sockets only for the proxy', () => {
    const runsc: RuntimeInfo = { name: 'runsc', path: '/usr/bin/runsc', version: '0.0~2022' };
    const argv = runtimeRunArgv(runsc, input);
    expect(argv.slice(0, 3)).toEqual(['/bin/sh', '-c', 'exec "$0" "$@" 0<&3 3<&-']);
    expect(argv).toContain('--oci-seccomp');
    expect(argv).toContain('--host-uds=none');
    expect(argv).not.toContain('--ignore-cgroups');
    expect(argv).not.toContain('--preserve-fds');
    expect(runtimeRunArgv(runsc, { ...input, hostSocket: true })).toContain('--host-uds=open');
  });
});

describe('state', () => {
  it('finds which runtime holds a container', () => {
    const state = tmp();
    fs.mkdirSync(path.join(state, 'runc', 'a'), { recursive: true });
    fs.mkdirSync(path.join(state, 'crun', 'b'), { recursive: true });
    fs.mkdirSync(path.join(state, 'runsc'));
    fs.writeFileSync(path.join(state, 'runsc', 'c_sandbox:c.state'), '{}');
    const runcRoot = path.join(state, 'runc');
    expect(['a', 'b', 'c', 'd'].map((id) => containerOwner(runcRoot, id))).toEqual([
      'runc',
      'crun',
      'runsc',
      undefined,
    ]);
  });

  it('keeps the version as the runtime prints it', () => {
    expect(runtimeVersionLabel('runsc version 0.0~20221219.0\nspec: 1.0.2')).toBe('0.0~20221219.0');
    expect(runtimeVersionLabel('runc version 1.1.5+ds1\ncommit: x')).toBe('1.1.5+ds1');
  });
});
