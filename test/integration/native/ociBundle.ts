// A minimal hand-written OCI bundle for exercising the monitor with the real runtime: read-only
// rootfs, the host's /usr bind-mounted read-only, the built init at /.nanocell/init, all
// namespaces, a uid map to an unprivileged host range, and a seccomp profile with a listener.
import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface BundleOptions {
  dir: string;
  initBin: string;
  listenerPath: string;
  hostIdBase: number;
  notify: string[];
  defaultAction?: string;
}

export function writeBundle(o: BundleOptions): string {
  const rootfs = path.join(o.dir, 'rootfs');
  mkdirSync(rootfs, { recursive: true });
  chmodSync(o.dir, 0o755);
  for (const d of ['usr', 'proc', 'dev', 'tmp', 'etc', '.nanocell']) {
    mkdirSync(path.join(rootfs, d), { recursive: true });
  }
  writeFileSync(path.join(rootfs, '.nanocell', 'init'), '');
  for (const l of ['bin', 'lib', 'lib64', 'sbin']) symlinkSync(`usr/${l}`, path.join(rootfs, l));
  const config = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 1000, gid: 1000 },
      args: ['/.nanocell/init', '--landlock', 'off'],
      env: ['PATH=/usr/bin:/bin'],
      cwd: '/',
      noNewPrivileges: true,
      capabilities: { bounding: [], effective: [], permitted: [], inheritable: [], ambient: [] },
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
    },
    root: { path: 'rootfs', readonly: true },
    hostname: 'cell',
    mounts: [
      {
        destination: '/proc',
        type: 'proc',
        source: 'proc',
        options: ['nosuid', 'noexec', 'nodev'],
      },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      {
        destination: '/usr',
        type: 'bind',
        source: '/usr',
        options: ['rbind', 'ro', 'nosuid', 'nodev'],
      },
      {
        destination: '/tmp',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'nodev', 'mode=1777'],
      },
      {
        destination: '/.nanocell/init',
        type: 'bind',
        source: o.initBin,
        options: ['bind', 'ro', 'nosuid', 'nodev'],
      },
    ],
    linux: {
      namespaces: ['user', 'pid', 'mount', 'ipc', 'uts', 'network'].map((type) => ({ type })),
      uidMappings: [{ containerID: 0, hostID: o.hostIdBase, size: 65536 }],
      gidMappings: [{ containerID: 0, hostID: o.hostIdBase, size: 65536 }],
      seccomp: {
        defaultAction: o.defaultAction ?? 'SCMP_ACT_ALLOW',
        listenerPath: o.listenerPath,
        architectures: ['SCMP_ARCH_X86_64'],
        syscalls: o.notify.length ? [{ names: o.notify, action: 'SCMP_ACT_NOTIFY' }] : [],
      },
    },
  };
  writeFileSync(path.join(o.dir, 'config.json'), JSON.stringify(config, null, 2));
  return o.dir;
}
