// Kernel surface: every syscall the profile denies, called from a real program in a real cell.
// Each family must fail with the profile's errno, be recorded as syscall.denied in the task's
// audit trail, and leave the host as it was (clock, hostname, swap, modules, files).
import fs from 'node:fs';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttackCell, EPERM, HostSentinels } from './harness.js';

const ENOSYS = 38;
let ac: AttackCell;
let host: HostSentinels;
const hostState = () => ({
  hostname: os.hostname(),
  swaps: fs.readFileSync('/proc/swaps', 'utf8'),
  domain: fs.readFileSync('/proc/sys/kernel/domainname', 'utf8'),
});
let before: ReturnType<typeof hostState>;

beforeAll(async () => {
  host = new HostSentinels();
  before = hostState();
  ac = await AttackCell.start();
});
afterAll(async () => {
  await ac?.dispose();
  host?.cleanup();
});

// [id, what, calls: [syscall, ...args]], each call expected to fail and be recorded.
const families: [string, string, (string | number)[][]][] = [
  [
    'KS-01',
    'the mount family',
    [
      ['mount', 'none', '/tmp', 'tmpfs', 0, 0],
      ['umount2', '/tmp', 0],
      ['fsopen', 'tmpfs', 0],
      ['fsmount', 3, 0, 0],
      ['fspick', -100, '/', 0],
      ['open_tree', -100, '/', 1],
      ['move_mount', -1, '', -100, '/tmp', 4],
      ['mount_setattr', -100, '/', 0, 0, 0],
      ['pivot_root', '/tmp', '/tmp'],
    ],
  ],
  ['KS-02', 'chroot', [['chroot', '/tmp']]],
  [
    'KS-03',
    'namespaces: unshare and setns',
    [
      ['unshare', 0x10000000],
      ['setns', 0, 0],
    ],
  ],
  [
    'KS-04',
    'cross-process memory and fds',
    [
      ['ptrace', 16, 1, 0, 0],
      ['process_vm_readv', 1, 0, 0, 0, 0, 0],
      ['process_vm_writev', 1, 0, 0, 0, 0, 0],
      ['process_madvise', 0, 0, 0, 0, 0],
      ['kcmp', 1, 1, 0, 0, 0],
      ['pidfd_getfd', 0, 0, 0],
    ],
  ],
  [
    'KS-05',
    'eBPF and perf events',
    [
      ['bpf', 0, 0, 0],
      ['perf_event_open', 0, 0, -1, -1, 0],
    ],
  ],
  [
    'KS-06',
    'userfaultfd and io_uring',
    [
      ['userfaultfd', 0],
      ['io_uring_setup', 8, 0],
      ['io_uring_enter', 0, 0, 0, 0, 0],
      ['io_uring_register', 0, 0, 0, 0],
    ],
  ],
  [
    'KS-07',
    'the kernel keyring',
    [
      ['keyctl', 0, 0, 0, 0, 0],
      ['add_key', 'user', 'x', 0, 0, -2],
      ['request_key', 'user', 'x', 0, 0],
    ],
  ],
  [
    'KS-08',
    'kernel and module loading',
    [
      ['kexec_load', 0, 0, 0, 0],
      ['kexec_file_load', -1, -1, 0, 0, 0],
      ['init_module', 0, 0, ''],
      ['finit_module', 0, '', 0],
      ['delete_module', 'ext4', 0],
    ],
  ],
  [
    'KS-09',
    'reboot, swap, accounting, quotas and the kernel log',
    [
      ['reboot', 0xfee1dead, 672274793, 0x4321fedc, 0],
      ['swapon', '/tmp/x', 0],
      ['swapoff', '/tmp/x'],
      ['acct', '/tmp/x'],
      ['quotactl', 0, '/', 0, 0],
      ['syslog', 3, 0, 0],
    ],
  ],
  [
    'KS-10',
    'file handles (shocker)',
    [
      ['name_to_handle_at', -100, '/etc/passwd', 0, 0, 0],
      ['open_by_handle_at', 3, 0, 0],
    ],
  ],
  [
    'KS-11',
    'setting the clock',
    [
      ['clock_settime', 0, 0],
      ['settimeofday', 0, 0],
      ['adjtimex', 0],
      ['clock_adjtime', 0, 0],
    ],
  ],
  [
    'KS-12',
    'raw I/O ports and LDT',
    [
      ['iopl', 3],
      ['ioperm', 0, 1024, 1],
      ['modify_ldt', 1, 0, 0],
    ],
  ],
  [
    'KS-13',
    'host identity and fs-wide monitoring',
    [
      ['sethostname', 'pwned', 5],
      ['setdomainname', 'pwned', 5],
      ['fanotify_init', 0, 0],
      ['lookup_dcookie', 0, 0, 0],
    ],
  ],
];

describe('kernel surface: denied syscalls are refused, recorded and harmless', () => {
  for (const [id, what, calls] of families) {
    it(`${id} ${what}`, async () => {
      const t0 = Date.now();
      for (const [name, ...args] of calls) {
        const [r] = await ac.atk('syscall', String(name), ...args.map(String));
        expect(r!.ok, `${name} succeeded`).toBe(false);
        expect([EPERM, ENOSYS], `${name} errno ${r!.errno}`).toContain(r!.errno);
        await ac.deniedRecorded(String(name));
      }
      expect(host.changes()).toEqual([]);
      expect(hostState()).toEqual(before);
      expect(Math.abs(Date.now() - t0)).toBeLessThan(60_000); // the host clock was not moved
    });
  }

  it('KS-14 arguments the profile filters: namespace clone flags, raw/packet/netlink/vsock/key sockets, TIOCSTI', async () => {
    // clone(CLONE_NEWUSER|SIGCHLD) with no stack: the filter must refuse before any fork.
    const [clone] = await ac.atk('syscall', 'clone', String(0x10000000 | 17), '0', '0', '0', '0');
    expect(clone!.ok).toBe(false);
    expect(clone!.errno).toBe(EPERM);
    await ac.deniedRecorded('clone');
    const sockets: [string, number, number, number][] = [
      ['AF_PACKET', 17, 3, 0x0300],
      ['AF_INET raw', 2, 3, 1],
      ['AF_NETLINK audit', 16, 3, 9],
      ['AF_VSOCK', 40, 1, 0],
      ['AF_KEY', 15, 3, 2],
    ];
    for (const [what, fam, type, proto] of sockets) {
      const [r] = await ac.atk('socket', String(fam), String(type), String(proto));
      expect(r!.ok, what).toBe(false);
    }
    await ac.deniedRecorded('socket');
    // TIOCSTI on the task's own stdin: injected keystrokes would run on the user's terminal.
    const [ioctl] = await ac.atk('syscall', 'ioctl', '0', String(0x5412), 'x');
    expect(ioctl!.ok).toBe(false);
    await ac.deniedRecorded('ioctl');
    expect(host.changes()).toEqual([]);
  });
});
