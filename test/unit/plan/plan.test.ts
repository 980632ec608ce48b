// The pure policy → OCI bundle step, without root.
import { describe, expect, it } from 'vitest';
import { checkWorkspacePath } from '../../../src/plan/layout.js';
import { planCell, type PlanInput } from '../../../src/plan/plan.js';
import type { HostFacts } from '../../../src/host/facts.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';

const rootHost: HostFacts = {
  arch: 'x86_64',
  rootless: false,
  uid: 0,
  gid: 0,
  cgroup: { version: 1, memory: true, pids: true, cpu: true, parent: '/nanocell', notes: [] },
  mergedUsr: true,
  usrLinks: ['bin', 'sbin', 'lib', 'lib64'],
  landlockAbi: 7,
};

function input(over: Partial<PlanInput> = {}, doc: object = {}): PlanInput {
  return {
    cellId: 'abc123',
    policy: resolvePolicy(parsePolicy(doc)),
    host: rootHost,
    rootfsDir: '/state/cells/abc123/bundle/rootfs',
    etcDir: '/state/etc/x',
    initBinary: '/opt/nanocell/native/build/nanocell-init',
    hostUidBase: 2 ** 30,
    workspace: {
      path: '/srv/app',
      mode: 'host-overlay',
      mergedDir: '/state/cells/abc123/ws/merged',
      extraMounts: [],
    },
    execAllow: ['/usr'],
    execMounts: { workspace: true, tmp: false, home: false, shm: false },
    ...over,
  };
}

describe('planCell', () => {
  it('sets every namespace, no capabilities, no_new_privs and a non-root user', () => {
    const { spec } = planCell(input());
    expect(spec.linux.namespaces.map((n) => n.type).sort()).toEqual([
      'cgroup',
      'ipc',
      'mount',
      'network',
      'pid',
      'user',
      'uts',
    ]);
    expect(Object.values(spec.process.capabilities).every((s) => s.length === 0)).toBe(true);
    expect(spec.process.noNewPrivileges).toBe(true);
    expect(spec.process.user).toEqual({ uid: 1000, gid: 1000 });
    expect(spec.root).toEqual({ path: '/state/cells/abc123/bundle/rootfs', readonly: true });
  });

  it('never maps container root to host root', () => {
    const { spec } = planCell(input());
    expect(spec.linux.uidMappings).toEqual([{ containerID: 0, hostID: 2 ** 30, size: 65536 }]);
    expect(() => planCell(input({ hostUidBase: 0 }))).toThrow(/uid range/);
    const rootless = planCell(
      input(
        { host: { ...rootHost, rootless: true, uid: 1234, gid: 1234 } },
        { allowDegraded: ['disk-cap'] },
      ),
    );
    expect(rootless.spec.linux.uidMappings).toEqual([{ containerID: 0, hostID: 1234, size: 1 }]);
  });

  it('mounts only /usr, a generated /etc, tmpfs HOME and /tmp, and the workspace', () => {
    const { spec, mountpoints } = planCell(input({}, { limits: { tmp: '64m', home: '32m' } }));
    const byDest = Object.fromEntries(spec.mounts.map((m) => [m.destination, m]));
    expect(byDest['/usr']).toMatchObject({
      source: '/usr',
      options: expect.arrayContaining(['ro', 'nosuid', 'nodev']),
    });
    expect(byDest['/etc']).toMatchObject({
      source: '/state/etc/x',
      options: expect.arrayContaining(['ro']),
    });
    expect(byDest['/tmp']!.options).toEqual(
      expect.arrayContaining(['noexec', 'nosuid', 'nodev', `size=${64 * 1024 ** 2}`]),
    );
    expect(byDest['/home/cell']!.options).toEqual(
      expect.arrayContaining(['noexec', `size=${32 * 1024 ** 2}`]),
    );
    expect(byDest['/srv/app']).toMatchObject({
      source: '/state/cells/abc123/ws/merged',
      options: expect.arrayContaining(['nosuid', 'nodev']),
    });
    for (const m of spec.mounts) expect(m.source ?? '').not.toMatch(/^\/(root|home|run|var)\b/);
    expect(mountpoints.symlinks).toContainEqual(['/bin', 'usr/bin']);
    expect(mountpoints.dirs).toEqual(
      expect.arrayContaining(['/srv', '/srv/app', '/usr', '/etc', '/tmp']),
    );
  });

  it('mounts each writable place noexec unless its exec rule allows exec, protected paths too', () => {
    const protectedMount = {
      destination: '/srv/app/.git',
      type: 'bind',
      source: '/srv/app/.git',
      options: ['rbind', 'ro'],
    };
    const ws = { ...input().workspace, extraMounts: [protectedMount] };
    const opts = (execMounts: PlanInput['execMounts']) =>
      Object.fromEntries(
        planCell(input({ execMounts, workspace: ws })).spec.mounts.map((m) => [
          m.destination,
          m.options?.includes('noexec') ?? false,
        ]),
      );
    expect(opts({ workspace: true, tmp: true, home: true, shm: true })).toMatchObject({
      '/srv/app': false,
      '/srv/app/.git': false,
      '/tmp': false,
      '/home/cell': false,
      '/dev/shm': false,
      '/etc': true,
      '/proc': true,
    });
    expect(opts({ workspace: false, tmp: false, home: true, shm: false })).toMatchObject({
      '/srv/app': true,
      '/srv/app/.git': true,
      '/tmp': true,
      '/home/cell': false,
      '/dev/shm': true,
    });
  });

  it('puts every limit in cgroup resources and rlimits', () => {
    const { spec, limits } = planCell(
      input({}, { limits: { memory: '512m', pids: 64, cpus: 1.5, files: 1024 } }),
    );
    expect(spec.linux.resources).toMatchObject({
      memory: { limit: 512 * 1024 ** 2, swap: 512 * 1024 ** 2 },
      pids: { limit: 64 },
      cpu: { quota: 150_000, period: 100_000 },
    });
    expect(spec.linux.cgroupsPath).toBe('/nanocell/abc123');
    expect(spec.process.rlimits).toEqual(
      expect.arrayContaining([
        { type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 },
        { type: 'RLIMIT_CORE', hard: 0, soft: 0 },
        { type: 'RLIMIT_NPROC', hard: 64, soft: 64 },
      ]),
    );
    expect(limits).toMatchObject({ memoryBytes: 512 * 1024 ** 2, pids: 64, cpus: 1.5 });
  });

  it('fails closed when a control is missing, unless the degradation is accepted', () => {
    const noCg: HostFacts = {
      ...rootHost,
      cgroup: { ...rootHost.cgroup, memory: false, notes: ['memory not mounted'] },
    };
    expect(() => planCell(input({ host: noCg }))).toThrow(
      expect.objectContaining({ fix: expect.stringContaining('--allow-degraded cgroups') }),
    );
    const ok = planCell(input({ host: noCg }, { allowDegraded: ['cgroups'] }));
    expect(ok.degradations).toEqual([
      { control: 'cgroups', reason: expect.stringContaining('memory') },
    ]);
    expect(ok.spec.linux.resources?.memory).toBeUndefined();
    expect(ok.limits.memoryBytes).toBeNull();
    const noLandlock = { ...rootHost, landlockAbi: 0 };
    expect(() => planCell(input({ host: noLandlock }))).toThrow(/Landlock is not available/);
    expect(
      planCell(input({ host: noLandlock }, { allowDegraded: ['landlock'] })).spec.process.args,
    ).toContain('off');
  });

  it('starts init with Landlock rules and, only when egress is allowed, the proxy bridge', () => {
    const plain = planCell(input({ execAllow: ['/usr', '/srv/app'] }));
    expect(plain.spec.process.args.slice(0, 3)).toEqual([
      '/.nanocell/init',
      '--landlock',
      'required',
    ]);
    expect(plain.spec.process.args.join(' ')).toContain('--ll-exec /usr --ll-exec /srv/app');
    expect(plain.spec.process.args.join(' ')).toContain('--ll-write /srv/app --ll-write /tmp');
    expect(plain.spec.process.args).not.toContain('--bridge');
    const net = planCell(input({ proxySocket: '/state/cells/abc123/proxy.sock' }));
    expect(net.spec.process.args.join(' ')).toContain(
      '--bridge 127.0.0.1:3128=/.nanocell/proxy.sock',
    );
    expect(net.spec.mounts.find((m) => m.destination === '/.nanocell/proxy.sock')?.source).toBe(
      '/state/cells/abc123/proxy.sock',
    );
  });
});

describe('checkWorkspacePath', () => {
  it.each([
    '/',
    '/usr',
    '/usr/src/x',
    '/etc',
    '/proc/1',
    '/tmp',
    '/home',
    '/home/cell',
    '/lib',
    'relative',
    '/a/../b',
  ])('refuses %s', (p) => expect(() => checkWorkspacePath(p)).toThrow());
  it.each(['/srv/app', '/home/alice/src/app', '/var/tmp/p', '/work/main', '/tmp/tmp.Xy12ab'])(
    'accepts %s',
    (p) => expect(() => checkWorkspacePath(p)).not.toThrow(),
  );
});
