// The exec allowlist and the write layer, both enforced by Landlock in the cell's init (the
// kernel, not a path check in user space), plus the policy errors around them.
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'vitest';
import { Cell } from '../../../src/cell/cell.js';
import { runTask } from '../../../src/task/task.js';
import { PolicyError } from '../../../src/util/errors.js';
import { execa } from 'execa';
import { CLI, leftovers, makeSandbox } from '../../helpers/cells.js';
import { denials, execs, policy, PROBE_PY, probeResults, withCell } from './harness.js';

const EACCES_EXIT = 126;

/** The CLI as a real process, without blocking the other concurrent tests of this file. */
async function cliRun(policyFile: string, workspace: string, stateRoot: string) {
  const r = await execa(
    'node',
    [CLI, 'run', '--policy', policyFile, '--workspace', workspace, '--', 'true'],
    {
      env: { NANOCELL_STATE_ROOT: stateRoot },
      reject: false,
      timeout: 60_000,
    },
  );
  return { status: r.exitCode, stderr: r.stderr };
}

describe.concurrent('exec allowlist (Landlock)', { timeout: 180_000 }, () => {
  it('runs only the allowed binaries; a denied exec fails with EACCES and is recorded', async ({
    expect,
  }) => {
    const strict = policy({ exec: { allow: ['/usr/bin/bash', '/usr/bin/ls'] } });
    const prepare = (project: string) => fs.copyFileSync('/usr/bin/true', `${project}/mytrue`);
    await withCell({ policy: strict, prepare }, async ({ cell, events }) => {
      const ok = await cell.run(['bash', '-c', 'ls']);
      expect(ok).toMatchObject({ exitCode: 0, stdout: 'README.md\nmytrue\n', stderr: '' });

      const viaShell = await cell.run(['bash', '-c', '/usr/bin/id']);
      expect(viaShell.exitCode).toBe(EACCES_EXIT);
      expect(viaShell.stderr).toMatch(/\/usr\/bin\/id: Permission denied/);
      expect(viaShell.stdout).toBe('');

      // Started by init directly: the exec fails the same way.
      const direct = await cell.run(['/usr/bin/python3', '-c', 'print(1)']);
      expect(direct).toMatchObject({ exitCode: EACCES_EXIT, stdout: '' });

      // The workspace is not in this allowlist: an executable file there does not run.
      const local = await cell.run(['bash', '-c', 'test -x mytrue && ./mytrue']);
      expect(local.exitCode).toBe(EACCES_EXIT);

      await cell.destroy();
      // Seccomp sees the exec before Landlock refuses it, so each attempt is on record.
      const paths = execs(events).map((e) => e.path);
      expect(paths).toContain('/usr/bin/ls');
      expect(paths).toContain('/usr/bin/id');
      expect(paths).toContain('/usr/bin/python3');
      expect(denials(events)).toEqual([]);
    });
  });

  it('keeps HOME and /tmp non-executable under the default policy', async ({ expect }) => {
    await withCell({}, async ({ cell }) => {
      const r = await cell.run([
        'bash',
        '-c',
        'cp /usr/bin/true /tmp/t && cp /usr/bin/true ~/t && cp /usr/bin/true ./t; ' +
          '/tmp/t; echo tmp=$?; ~/t; echo home=$?; ./t; echo workspace=$?',
      ]);
      expect(r.stdout).toBe('tmp=126\nhome=126\nworkspace=0\n');
    });
  });

  it('limits writes to the workspace, HOME, /tmp and /dev even where a mount is writable', async ({
    expect,
  }) => {
    await withCell({}, async ({ cell }) => {
      const allowed = await cell.run([
        'bash',
        '-c',
        'echo a > ws.txt && echo b > ~/h && echo c > /tmp/t && echo d > /dev/shm/s && echo e > /dev/null && cat ws.txt ~/h /tmp/t /dev/shm/s',
      ]);
      expect(allowed).toMatchObject({ exitCode: 0, stdout: 'a\nb\nc\nd\n' });

      // /proc is mounted read-write and the cell user owns its own comm and oom_score_adj
      // files (mode 644), so only Landlock stands between the task and these writes.
      const facts = await cell.run([
        'bash',
        '-c',
        'awk \'$5 == "/proc" { print $6 }\' /proc/self/mountinfo; stat -c "%U %a" /proc/self/comm /proc/self/oom_score_adj',
      ]);
      expect(facts.stdout).toBe('rw,nosuid,nodev,noexec,relatime\ncell 644\ncell 644\n');
      const py = [
        'import errno, os',
        'for f, v in [("/proc/self/comm", "renamed"), ("/proc/self/oom_score_adj", "600")]:',
        '    try:',
        '        open(f, "w").write(v)',
        '        print(f, "written")',
        '    except OSError as e:',
        '        print(f, errno.errorcode[e.errno])',
      ].join('\n');
      const blocked = await cell.run(['python3', '-c', py]);
      expect(blocked.stdout).toBe('/proc/self/comm EACCES\n/proc/self/oom_score_adj EACCES\n');
    });
  });
});

describe.concurrent('policy errors and the unsafe flag', { timeout: 180_000 }, () => {
  it('an exec.allow glob that matches nothing is a policy error naming the entry', async ({
    expect,
  }) => {
    const sb = makeSandbox();
    try {
      for (const entry of ['/usr/bin/no-such-tool-*', '$WORKSPACE/bin/*', '/opt/nothing/here']) {
        const p = policy({ exec: { allow: ['/usr/bin/bash', entry] } });
        const err = await Cell.create({
          policy: p,
          workspace: sb.project,
          stateRoot: sb.stateRoot,
        }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(PolicyError);
        expect((err as Error).message).toContain(`"${entry}"`);
      }
      expect(leftovers(sb.stateRoot)).toMatchObject({
        cells: [],
        runtime: [],
        slots: [],
        mounts: [],
      });

      // Through the CLI: exit status 125 and one line that names the entry.
      const file = path.join(path.dirname(sb.project), 'policy.yaml');
      fs.writeFileSync(file, 'exec:\n  allow: ["/usr/bin/no-such-tool-*"]\n');
      const r = await cliRun(file, sb.project, sb.stateRoot);
      expect(r.status).toBe(125);
      expect(r.stderr).toMatch(/exec\.allow: "\/usr\/bin\/no-such-tool-\*" matches no file/);
    } finally {
      sb.cleanup();
    }
  });

  it('an unknown syscall name is a policy error (125) naming the entry', async ({ expect }) => {
    expect(() => policy({ syscalls: { allow: ['read', 'ptracee'] } })).toThrow(PolicyError);
    expect(() => policy({ syscalls: { allow: ['read', 'ptracee'] } })).toThrow(
      /syscalls\.allow\[1\]: unknown syscall "ptracee"/,
    );
    expect(() => policy({ syscalls: { deny: ['no_such_call'] } })).toThrow(
      /syscalls\.deny\[0\]: unknown syscall "no_such_call"/,
    );
    const sb = makeSandbox();
    try {
      const file = path.join(path.dirname(sb.project), 'policy.yaml');
      fs.writeFileSync(file, 'syscalls:\n  allow: ["mkdir", "sys_mkdirr"]\n');
      const r = await cliRun(file, sb.project, sb.stateRoot);
      expect(r.status).toBe(125);
      expect(r.stderr).toMatch(/syscalls\.allow\[1\]: unknown syscall "sys_mkdirr"/);
    } finally {
      sb.cleanup();
    }
  });

  it('re-allowing ptrace needs unsafeAllowForbidden, and then the report records it', async ({
    expect,
  }) => {
    const sb = makeSandbox({ 'probe.py': PROBE_PY });
    try {
      const err = await Cell.create({
        policy: policy({ syscalls: { allow: ['ptrace'] } }),
        workspace: sb.project,
        stateRoot: sb.stateRoot,
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(PolicyError);
      expect((err as Error).message).toMatch(/syscalls\.allow\[0\]: ptrace is forbidden/);

      const out = new PassThrough();
      let stdout = '';
      out.on('data', (d: Buffer) => (stdout += d.toString()));
      const report = await runTask({
        policy: policy({ syscalls: { allow: ['ptrace'], unsafeAllowForbidden: true } }),
        workspace: sb.project,
        command: ['python3', 'probe.py', 'ptrace'],
        stateRoot: sb.stateRoot,
        stdout: out,
        stderr: new PassThrough().resume(),
      });
      expect(report.exitCode).toBe(0);
      // The attach now succeeds (the child is the prober's own) and nothing is denied.
      expect(probeResults(stdout).ptrace).toEqual({ ret: 0, errno: 0 });
      expect(report.events.syscallDenied).toBe(0);
      expect(report.degradations).toContainEqual({
        control: 'syscalls',
        reason: expect.stringMatching(/re-allowed forbidden syscalls: ptrace/),
      });
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
});
