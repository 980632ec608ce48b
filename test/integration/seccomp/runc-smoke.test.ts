// Loads the default profile (monitor off) into a real container started by raw runc, before the
// cell lifecycle exists: ordinary work must pass, escape attempts must fail. A hand-built
// minimal bundle: read-only /usr bind, user/pid/mount/ipc/uts/net namespaces, uid 1000, no
// capabilities, no_new_privs.
import { execa } from 'execa';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildSeccompProfile, hostSeccompArch } from '../../../src/seccomp/index.js';

const HOST_UID_BASE = 1_000_000;

let dir = '';
let runcRoot = '';
let counter = 0;

function bundleFor(id: string, script: string): string {
  const bundle = join(dir, id);
  const rootfs = join(bundle, 'rootfs');
  for (const d of ['usr', 'proc', 'dev', 'tmp', 'etc', 'work'])
    mkdirSync(join(rootfs, d), { recursive: true });
  // runc gives a tmpfs the mode of the directory it covers.
  for (const d of ['tmp', 'work']) chmodSync(join(rootfs, d), 0o1777);
  for (const l of ['bin', 'lib', 'lib64', 'sbin']) symlinkSync(`usr/${l}`, join(rootfs, l));
  writeFileSync(
    join(rootfs, 'etc/passwd'),
    'root:x:0:0::/root:/bin/sh\ncell:x:1000:1000::/tmp:/bin/sh\n',
  );
  writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\ncell:x:1000:\n');
  const { profile } = buildSeccompProfile({
    arch: hostSeccompArch(),
    monitor: false,
    allow: [],
    deny: [],
    unsafeAllowForbidden: false,
  });
  const config = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 1000, gid: 1000 },
      args: ['/bin/bash', '-c', script],
      env: ['PATH=/usr/bin:/bin', 'HOME=/tmp', 'LANG=C.UTF-8'],
      cwd: '/work',
      noNewPrivileges: true,
      capabilities: { bounding: [], effective: [], inheritable: [], permitted: [], ambient: [] },
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
        options: ['nosuid', 'nodev', 'mode=1777', 'size=64m'],
      },
      {
        destination: '/work',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'nodev', 'mode=1777', 'size=64m'],
      },
    ],
    linux: {
      namespaces: ['user', 'pid', 'mount', 'ipc', 'uts', 'network'].map((type) => ({ type })),
      uidMappings: [{ containerID: 0, hostID: HOST_UID_BASE, size: 65536 }],
      gidMappings: [{ containerID: 0, hostID: HOST_UID_BASE, size: 65536 }],
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/sched_debug'],
      readonlyPaths: ['/proc/sys', '/proc/sysrq-trigger', '/proc/irq', '/proc/bus'],
      seccomp: profile,
    },
  };
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(config));
  return bundle;
}

/** Runs `script` as uid 1000 in a fresh container; returns its exit code and output. */
async function inCell(
  script: string,
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const id = `nc-seccomp-${process.pid}-${++counter}`;
  const bundle = bundleFor(id, script);
  try {
    const r = await execa('runc', ['--root', runcRoot, 'run', '--bundle', bundle, id], {
      reject: false,
      stdin: 'ignore',
      timeout: 60_000,
    });
    return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
  } finally {
    await execa('runc', ['--root', runcRoot, 'delete', '--force', id], { reject: false });
  }
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'nc-seccomp-'));
  runcRoot = join(dir, 'runc');
  mkdirSync(runcRoot);
  // The container's mapped root must be able to reach the bundle for runc's own setup.
  chmodSync(dir, 0o755);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('default seccomp profile under raw runc (monitor off)', () => {
  it('runs bash pipelines and coreutils', async () => {
    const r = await inCell(
      'set -eo pipefail; seq 1 1000 | sort -rn | head -3 | tr "\\n" " "; echo; ' +
        'mkdir -p /work/d && echo hi > /work/d/f && cp /work/d/f /work/d/g && cat /work/d/g; ' +
        'ls -la /work/d | wc -l; id -u; sha256sum /work/d/f | cut -c1-8; mkfifo /tmp/p; ' +
        'find /usr/bin -maxdepth 1 -name bash; date +%Y >/dev/null; echo done',
    );
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('1000 999 998');
    expect(r.stdout).toContain('hi');
    expect(r.stdout).toMatch(/^1000$/m);
    expect(r.stdout).toContain('/usr/bin/bash');
    expect(r.stdout).toMatch(/done$/);
  });

  it('runs python3 and a multi-threaded program', async () => {
    const r = await inCell(
      `python3 -c '
import threading, hashlib, socket, os
out = []
def work(i):
    out.append(hashlib.sha256(str(i).encode()).hexdigest()[:4])
ts = [threading.Thread(target=work, args=(i,)) for i in range(16)]
[t.start() for t in ts]; [t.join() for t in ts]
a, b = socket.socketpair(); a.send(b"x"); assert b.recv(1) == b"x"
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.close()
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM); s.close()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.close()
import subprocess; assert subprocess.run(["true"]).returncode == 0
print("threads", len(out))
'`,
    );
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout.trim()).toBe('threads 16');
  });

  it('builds a C program with gcc and make, and runs git and sqlite3', async () => {
    const r = await inCell(
      'set -e; cd /work; printf "#include <stdio.h>\\n#include <pthread.h>\\n' +
        'static void *f(void *a) { return a; }\\n' +
        'int main(void) { pthread_t t; pthread_create(&t, 0, f, 0); pthread_join(t, 0); puts(\\"built\\"); return 0; }\\n" > m.c; ' +
        'printf "m: m.c\\n\\tgcc -O1 -pthread -o m m.c\\n" > Makefile; make -s; ./m; ' +
        'git init -q r && cd r && git config user.email a@b && git config user.name a && ' +
        'echo x > f && git add f && git commit -qm one && echo y >> f && git diff --stat | tail -1 && ' +
        'git commit -qam two && git log --oneline | wc -l; ' +
        'sqlite3 /work/db "create table t(a); insert into t values (41),(1); select sum(a) from t;"',
    );
    expect(r.stderr).toBe('');
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toContain('built');
    expect(r.stdout).toContain('1 file changed, 1 insertion(+)');
    expect(r.stdout).toMatch(/^2$/m);
    expect(r.stdout).toMatch(/^42$/m);
  });

  it('refuses a new user namespace, mounts and packet sockets', async () => {
    const r = await inCell(
      'unshare -U true; echo "unshare=$?"; ' +
        'unshare -r true; echo "unshare_r=$?"; ' +
        'mount -t tmpfs none /tmp; echo "mount=$?"; ' +
        `python3 -c 'import socket; socket.socket(socket.AF_PACKET, socket.SOCK_RAW)'; echo "packet=$?"; ` +
        `python3 -c 'import socket; socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 9)'; echo "netlink=$?"; ` +
        `python3 -c 'import socket; socket.socket(40, socket.SOCK_STREAM)'; echo "vsock=$?"`,
    );
    expect(r.exitCode).toBe(0);
    expect(r.stdout).toMatch(/^unshare=1$/m);
    expect(r.stdout).toMatch(/^unshare_r=1$/m);
    expect(r.stdout).toMatch(/^mount=(1|32)$/m);
    expect(r.stdout).toMatch(/^packet=1$/m);
    expect(r.stdout).toMatch(/^netlink=1$/m);
    expect(r.stdout).toMatch(/^vsock=1$/m);
    expect(r.stderr).toMatch(/unshare failed: Operation not permitted/);
    expect(r.stderr).toMatch(/PermissionError: \[Errno 1\] Operation not permitted/);
  });

  it('applies the argument filters and refuses foreign ABIs', async () => {
    // Each probe prints "name=<errno>" (0 = success) from libc's errno after a raw call.
    const probes = `
import ctypes, mmap, os, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
def probe(name, nr, *args):
    ctypes.set_errno(0)
    r = libc.syscall(ctypes.c_long(nr), *[ctypes.c_ulong(a) for a in args])
    print(f"{name}={ctypes.get_errno() if r == -1 else 0}", flush=True)
    return r
probe("tiocsti", 16, 0, 0x5412, 0)
probe("tiocsti_high_bits", 16, 0, 0x1_0000_5412, 0)
probe("tioclinux", 16, 0, 0x541C, 0)
probe("ioctl_other", 16, 0, 0x5401, 0)
probe("personality_query", 135, 0xffffffff)
probe("personality_no_aslr", 135, 0x0040000)
probe("clone3", 435, 0, 0)
probe("unknown_nr", 1000)
r = probe("clone_newuser", 56, 0x10000000 | 17, 0, 0, 0, 0)
if r == 0: os._exit(0)
probe("socket_high_bits_netlink", 41, 0x1_0000_0010, 3, 0)
probe("ptrace", 101, 16, 1, 0, 0)
probe("bpf", 321, 0, 0, 0)
probe("io_uring_setup", 425, 1, 0)
probe("keyctl", 250, 0, 0)
`;
    const x32 = `
import ctypes
ctypes.CDLL(None).syscall(ctypes.c_long(0x40000000 | 39))  # getpid through the x32 ABI
print("x32 returned", flush=True)
`;
    const int80 = `
import ctypes, mmap
code = bytes([0xb8, 0x14, 0, 0, 0, 0xcd, 0x80, 0xc3])  # mov eax, 20 (i386 getpid); int 0x80; ret
buf = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
buf.write(code)
addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
print("int80 returned", ctypes.CFUNCTYPE(ctypes.c_int)(addr)(), flush=True)
`;
    const r = await inCell(
      `python3 -c '${probes}'; echo "probes_exit=$?"; python3 -c '${int80}'; echo "int80_exit=$?"; ` +
        `python3 -c '${x32}'; echo "x32_exit=$?"`,
    );
    const got = Object.fromEntries(
      r.stdout
        .split('\n')
        .filter((l) => l.includes('='))
        .map((l) => l.split('=') as [string, string]),
    );
    expect(got).toEqual({
      tiocsti: '1',
      tiocsti_high_bits: '1',
      tioclinux: '1',
      ioctl_other: '25', // ENOTTY: the call reached the kernel (stdin is /dev/null)
      personality_query: '0',
      personality_no_aslr: '1',
      clone3: '38',
      unknown_nr: '38',
      clone_newuser: '1',
      socket_high_bits_netlink: '1',
      ptrace: '1',
      bpf: '1',
      io_uring_setup: '1',
      keyctl: '1',
      probes_exit: '0',
      // 128 + SIGSYS: a filter for SCMP_ARCH_X86_64 alone sends i386 (int 0x80) and x32 calls
      // to libseccomp's bad-architecture action, which kills the thread.
      int80_exit: '159',
      x32_exit: '159',
    });
    expect(r.stdout).not.toContain('returned');
  });
});
