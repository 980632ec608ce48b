// Escape and kernel-attack-surface syscalls from inside a real cell: each is blocked (the task
// sees EPERM), and the monitor records it with the syscall name, errno, pid and executable.
// Then the exec audit: every execve/execveat is recorded as an unverified hint.
import { PassThrough } from 'node:stream';
import { describe, it } from 'vitest';
import { runTask } from '../../../src/task/task.js';
import { leftovers, makeSandbox } from '../../helpers/cells.js';
import { denials, execs, policy, PROBE_PY, probeResults, SIGSYS, withCell } from './harness.js';

const EPERM = 1;
const files = { 'probe.py': PROBE_PY };

/** Each probe attempt, in the order the probe makes it, and the syscall the monitor names. */
const ATTEMPTS: [attempt: string, syscall: string][] = [
  ['ptrace', 'ptrace'],
  ['mount', 'mount'],
  ['unshare', 'unshare'],
  ['unshare_user', 'unshare'],
  ['setns', 'setns'],
  ['clone_newuser', 'clone'],
  ['bpf', 'bpf'],
  ['perf_event_open', 'perf_event_open'],
  ['keyctl', 'keyctl'],
  ['io_uring_setup', 'io_uring_setup'],
  ['userfaultfd', 'userfaultfd'],
  ['init_module', 'init_module'],
  ['finit_module', 'finit_module'],
  ['af_packet', 'socket'],
  ['af_inet_raw', 'socket'],
  ['af_inet6_raw', 'socket'],
  ['af_netlink', 'socket'],
  ['af_vsock', 'socket'],
  ['tiocsti', 'ioctl'],
];

describe.concurrent('denials are blocked and recorded', { timeout: 180_000 }, () => {
  it('escape primitives, kernel attack surface and odd sockets fail with EPERM, each recorded', async ({
    expect,
  }) => {
    await withCell({ files }, async ({ cell, events }) => {
      const names = ATTEMPTS.map(([a]) => a);
      const r = await cell.run(['python3', 'probe.py', ...names, 'af_unix', 'af_inet', 'getpid']);
      // Only the denial notes, one per syscall (src/cell/denialNotes.ts).
      const notes = r.stderr.split('\n').filter(Boolean);
      expect(notes.every((l) => l.startsWith('nanocell: blocked syscall '))).toBe(true);
      expect(new Set(notes).size).toBe(notes.length);
      expect(r.exitCode).toBe(0);
      const results = probeResults(r.stdout);
      for (const a of names) expect(results[a], a).toEqual({ ret: -1, errno: EPERM });
      // Controls: what ordinary programs use still works in the same process.
      expect(results.af_unix!.ret).toBeGreaterThanOrEqual(0);
      expect(results.af_inet!.ret).toBeGreaterThanOrEqual(0);
      expect(results.getpid!.ret).toBeGreaterThan(0);

      // One event per attempt, in order, from the probe's own process. Events come through a
      // pipe: destroying the cell drains it.
      await cell.destroy();
      const denied = denials(events);
      expect(denied.map((e) => e.name)).toEqual(ATTEMPTS.map(([, s]) => s));
      const pid = denied[0]!.pid;
      for (const e of denied) {
        expect(e).toMatchObject({ errno: EPERM, arch: 'x86_64', pid, exe: '/usr/bin/python3.11' });
        expect(e.nr).toEqual(expect.any(Number));
        expect(e.time).toEqual(expect.any(Number));
      }
      expect(pid).toEqual(expect.any(Number));
      // The probe really was a separate process from the recorded pid's point of view.
      expect(execs(events).some((e) => e.pid === pid && String(e.path).includes('python3'))).toBe(
        true,
      );
    });
  });

  it('unshare -U cannot create a user namespace and is recorded', async ({ expect }) => {
    await withCell({}, async ({ cell, events }) => {
      const r = await cell.run(['unshare', '-U', '--map-root-user', 'id', '-u']);
      expect(r.exitCode).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/Operation not permitted/);
      await cell.destroy();
      const denied = denials(events);
      expect(denied).toHaveLength(1);
      expect(denied[0]).toMatchObject({ name: 'unshare', errno: EPERM, exe: '/usr/bin/unshare' });
    });
  });

  it('int 0x80 and the x32 ABI kill the process with SIGSYS', async ({ expect }) => {
    await withCell({ files }, async ({ cell, events }) => {
      const [i386, x32] = await Promise.all([
        cell.run(['python3', 'probe.py', 'int80']),
        cell.run(['python3', 'probe.py', 'x32']),
      ]);
      for (const r of [i386, x32]) {
        // The machine code was reached, and the call never returned.
        expect(r.stdout).toBe('{"reached": true}\n');
        expect(r).toMatchObject({ endReason: 'signaled', signal: SIGSYS, exitCode: 128 + SIGSYS });
      }
      // The filter kills foreign ABIs outright: they never reach (or fool) the monitor.
      await cell.destroy();
      expect(denials(events)).toEqual([]);
    });
  });

  it('the task report records a SIGSYS death as a foreign-ABI denial', async ({ expect }) => {
    const sb = makeSandbox(files);
    try {
      const out = new PassThrough().resume();
      const err = new PassThrough().resume();
      const report = await runTask({
        policy: policy(),
        workspace: sb.project,
        command: ['python3', 'probe.py', 'int80'],
        stateRoot: sb.stateRoot,
        stdout: out,
        stderr: err,
      });
      expect(report).toMatchObject({ exitCode: 128 + SIGSYS, endReason: 'signaled' });
      expect(report.events.deniedBySyscall).toEqual({ 'foreign-abi': 1 });
      expect(report.denials).toEqual([
        expect.objectContaining({ type: 'syscall.denied', name: 'foreign-abi', exe: 'python3' }),
      ]);
      expect(leftovers(sb.stateRoot)).toMatchObject({
        cells: [],
        runtime: [],
        slots: [],
        mounts: [],
      });
    } finally {
      sb.cleanup();
    }
  });

  it('a setuid binary gains nothing: euid stays 1000 (no_new_privs, nosuid /usr)', async ({
    expect,
  }) => {
    // su is setuid root on the host. Its credentials are read right after exec, before it can
    // give up: with the bit honoured the effective uid would be 0.
    const py = [
      'import subprocess',
      'p = subprocess.Popen(["/usr/bin/su", "root", "-c", "id -u"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)',
      'status = open("/proc/%d/status" % p.pid).read()',
      'print(status.split("Uid:")[1].split()[:4])',
      'print(status.split("NoNewPrivs:")[1].split()[0])',
      'out, _ = p.communicate(b"not-the-password\\n")',
      'print(p.returncode != 0, b"\\n0\\n" not in b"\\n" + out)',
    ].join('\n');
    await withCell({}, async ({ cell }) => {
      const ls = await cell.run(['stat', '-c', '%A', '/usr/bin/su']);
      expect(ls.stdout).toBe('-rwsr-xr-x\n'); // the bit is there; it just does nothing
      const r = await cell.run(['python3', '-c', py]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe("['1000', '1000', '1000', '1000']\n1\nTrue True\n");
      const mounts = await cell.run(['sh', '-c', 'grep " /usr " /proc/self/mountinfo']);
      expect(mounts.stdout).toMatch(/\bnosuid\b/);
    });
  });
});

describe('exec audit', { timeout: 180_000 }, () => {
  it('records execve and execveat with path, argv, pid, ppid, marked unverified', async ({
    expect,
  }) => {
    await withCell({}, async ({ cell, events }) => {
      const script =
        '/usr/bin/env true "arg one" two; ' +
        'python3 -c \'import os; fd = os.open("/usr/bin/true", os.O_RDONLY); os.execve(fd, ["true", "via-fd"], {})\'; ' +
        `/usr/bin/true ${Array.from({ length: 100 }, (_, i) => `a${i}`).join(' ')}`;
      const r = await cell.run(['bash', '-c', script]);
      expect(r.exitCode).toBe(0);
      // The monitor writes an exec event before the exec proceeds; destroy drains the pipe.
      await cell.destroy();
      const all = execs(events);
      for (const e of all) {
        expect(e).toMatchObject({ unverified: true });
        expect(e.pid).toBeGreaterThan(0);
        expect(e.ppid).toBeGreaterThan(0);
      }
      // Each PATH lookup is an exec attempt of its own; the one that succeeded names /usr/bin.
      const bash = all.find(
        (e) => e.path === '/usr/bin/bash' && (e.argv as string[])[0] === 'bash',
      );
      // Each argument is capped at 255 bytes (the script is longer).
      expect(script.length).toBeGreaterThan(255);
      expect(bash).toMatchObject({ argv: ['bash', '-c', script.slice(0, 255)] });
      const env = all.find((e) => e.path === '/usr/bin/env');
      expect(env).toMatchObject({
        argv: ['/usr/bin/env', 'true', 'arg one', 'two'],
        ppid: bash!.pid,
      });
      // env then execs true in the same process.
      expect(all.find((e) => e.pid === env!.pid && e.path === '/usr/bin/true')).toMatchObject({
        argv: ['true', 'arg one', 'two'],
      });
      // fexecve is execveat(fd, "", AT_EMPTY_PATH): recorded with its argv and an empty path.
      expect(all.find((e) => (e.argv as string[])[1] === 'via-fd')).toMatchObject({
        path: '',
        argv: ['true', 'via-fd'],
      });
      // argv is capped: 64 entries, flagged as truncated.
      const long = all.find((e) => e.path === '/usr/bin/true' && (e.argv as string[]).length > 3);
      expect(long).toMatchObject({ truncated: true });
      expect((long!.argv as string[]).length).toBe(64);
      expect(denials(events)).toEqual([]);
    });
  });
});
