// Code outside the exec allowlist: through the loader, memory files, dlopen, fexecve, scratch
// places and #! lines. Each is refused by the kernel (Landlock, noexec mounts, the memfd seal)
// and recorded by the monitor's exec guard with what was refused and why.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_ROOT } from '../helpers/cells.js';
import type { AuditEvent } from '../../src/audit/events.js';
import { AttackCell, HostSentinels } from './harness.js';

const HELLO_C = '#include <stdio.h>\nint main(void){puts("RAN");return 0;}\n';
const LIB_C = 'int f(void){return 42;}\n';
/** Builds ./hello and ./lib.so with the host's gcc (in /usr, so allowed everywhere). */
const BUILD = 'gcc -o hello hello.c && gcc -shared -fPIC -o lib.so lib.c';
const LOADER = '/lib64/ld-linux-x86-64.so.2';

let noWs: AttackCell; // exec.allow: /usr only: the workspace and scratch places are noexec
let noScratch: AttackCell; // the default allowlist with exec.scratch: deny
let partial: AttackCell; // only $WORKSPACE/bin/** of the workspace
let open: AttackCell; // the default policy: workspace and scratch places wholly executable
let host: HostSentinels;

beforeAll(async () => {
  host = new HostSentinels();
  const files = { 'hello.c': HELLO_C, 'lib.c': LIB_C, 'bin/.keep': '' };
  [noWs, noScratch, partial, open] = await Promise.all([
    AttackCell.start({ files, policy: { exec: { allow: ['/usr/**'] } } }),
    AttackCell.start({ files, policy: { exec: { scratch: 'deny' } } }),
    AttackCell.start({ files, policy: { exec: { allow: ['/usr/**', '$WORKSPACE/bin/**'] } } }),
    AttackCell.start({ files, policy: {} }),
  ]);
  await Promise.all([noWs.sh(BUILD), noScratch.sh(BUILD), partial.sh(BUILD), open.sh(BUILD)]);
}, 120_000);
afterAll(async () => {
  await Promise.all([noWs?.dispose(), noScratch?.dispose(), partial?.dispose(), open?.dispose()]);
  host?.cleanup();
});

const refused = (ac: AttackCell, detail: RegExp) =>
  ac.recorded(
    (e: AuditEvent) =>
      e.type === 'syscall.denied' && e.errno > 0 && detail.test(String(e.detail ?? '')),
  );

describe('exec allowlist bypasses', () => {
  it('EX-01 runs a workspace binary through the dynamic loader (ld.so ./hello)', async () => {
    const r = await noWs.sh(`${LOADER} ./hello; echo rc=$?`);
    expect(r.stdout).not.toMatch(/RAN/);
    expect(r.stderr).toMatch(/failed to map segment/);
    await refused(noWs, /^mmap\(PROT_EXEC\) \S+\/hello: its mount is noexec/);
    expect(host.changes()).toEqual([]);
  });

  it('EX-02 writes a binary into a memfd and runs it (fexecve, /proc/self/fd, MFD_EXEC, chmod)', async () => {
    const py = [
      'import os',
      'fd = os.memfd_create("payload", 0)',
      'os.write(fd, open("/usr/bin/true", "rb").read())',
      'for how in ("fexecve", "procfd", "chmod", "mfd_exec"):',
      '    try:',
      '        if how == "fexecve": os.execve(fd, ["x"], {})',
      '        if how == "procfd": os.execv(f"/proc/self/fd/{fd}", ["x"])',
      '        if how == "chmod": os.fchmod(fd, 0o755)',
      '        if how == "mfd_exec": os.memfd_create("x", 0x10)',
      '        print(how, "ok")',
      '    except OSError as e: print(how, e.errno)',
    ].join('\n');
    // Even with the whole workspace and /tmp executable (the default), a memfd never runs.
    const r = await noScratch.cell.run(['python3', '-c', py]);
    expect(r.stdout).toBe('fexecve 13\nprocfd 13\nchmod 1\nmfd_exec 13\n');
    await refused(noScratch, /^execveat\(AT_EMPTY_PATH\) \/memfd:payload .*never runs in a cell/);
    await refused(noScratch, /^exec \/memfd:payload .*never runs in a cell/);
    await refused(noScratch, /^memfd_create\(MFD_EXEC\)/);
  });

  it('EX-03 dlopens a workspace library where the workspace may not exec, and from a memfd', async () => {
    const py = [
      'import ctypes, os',
      'for p in ("./lib.so", "memfd"):',
      '    if p == "memfd":',
      '        fd = os.memfd_create("lib", 0); os.write(fd, open("lib.so", "rb").read())',
      '        p = f"/proc/self/fd/{fd}"',
      '    try: print(ctypes.CDLL(p).f())',
      '    except OSError as e: print("refused")',
    ].join('\n');
    const r = await noWs.cell.run(['python3', '-c', py]);
    expect(r.stdout).toBe('refused\nrefused\n');
    await refused(noWs, /^mmap\(PROT_EXEC\) \S+\/lib\.so: its mount is noexec/);
    await refused(noWs, /^mmap\(PROT_EXEC\) \/memfd:lib .*never runs in a cell/);
  });

  it('EX-08 default policy: a memfd library loads as one in /tmp would, a memfd program still never runs', async () => {
    // With every writable place wholly executable the guard does not see mappings (needsMapGuard):
    // mapping a memfd as code gains nothing over a file in /tmp or anonymous executable memory.
    const py = [
      'import ctypes, os',
      'fd = os.memfd_create("lib", 0); os.write(fd, open("lib.so", "rb").read())',
      'print(ctypes.CDLL(f"/proc/self/fd/{fd}").f())',
      'try: os.execve(fd, ["x"], {})',
      'except OSError as e: print("fexecve", e.errno)',
    ].join('\n');
    const r = await open.cell.run(['python3', '-c', py]);
    expect(r.stdout).toBe('42\nfexecve 13\n');
    await refused(open, /^execveat\(AT_EMPTY_PATH\) \/memfd:lib .*never runs in a cell/);
  });

  it('EX-09 default policy with a host file mounted without exec: dlopen of it is refused and recorded', async () => {
    // A noexec host path keeps the guard on mappings even where every writable place is
    // executable (needsMapGuard): the kernel refuses, and only the guard says why.
    fs.mkdirSync(TEST_ROOT, { recursive: true });
    const dir = fs.mkdtempSync(path.join(TEST_ROOT, 'ex09-'));
    fs.chmodSync(dir, 0o755);
    let ac: AttackCell | undefined;
    try {
      fs.writeFileSync(path.join(dir, 'lib.c'), LIB_C);
      execFileSync('gcc', [
        '-shared',
        '-fPIC',
        '-o',
        path.join(dir, 'hostlib.so'),
        path.join(dir, 'lib.c'),
      ]);
      fs.chmodSync(path.join(dir, 'hostlib.so'), 0o644);
      ac = await AttackCell.start({
        policy: { mounts: [{ host: path.join(dir, 'hostlib.so'), cell: '/opt/hostlib.so' }] },
      });
      const py = [
        'import ctypes',
        'try: print(ctypes.CDLL("/opt/hostlib.so").f())',
        'except OSError: print("refused")',
      ].join('\n');
      const r = await ac.cell.run(['python3', '-c', py]);
      expect(r.stdout).toBe('refused\n');
      await refused(ac, /^mmap\(PROT_EXEC\) \/opt\/hostlib\.so: its mount is noexec/);
    } finally {
      await ac?.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('EX-04 execveat(fd, "", AT_EMPTY_PATH) of a file outside exec.allow, and of an allowed one', async () => {
    const py = [
      'import os',
      'for p in ("./bin/../hello", "/usr/bin/true"):',
      '    fd = os.open(p, os.O_PATH)',
      '    pid = os.fork()',
      '    if pid == 0:',
      '        try: os.execve(fd, ["x"], {})',
      '        except OSError as e: os._exit(e.errno)',
      '    print(p, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))',
    ].join('\n');
    const r = await partial.cell.run(['python3', '-c', py]);
    // fexecve of a system program is ordinary; of a workspace file outside bin/ it is not.
    expect(r.stdout).toBe('./bin/../hello 13\n/usr/bin/true 0\n');
    await refused(partial, /^execveat\(AT_EMPTY_PATH\) \S+\/hello: not in exec.allow/);
  });

  it('EX-05 copies a binary into /tmp, HOME and /dev/shm where exec.scratch is deny', async () => {
    const r = await noScratch.sh(
      'for d in /tmp ~ /dev/shm; do cp hello $d/h; $d/h; echo "$d $?"; ' +
        `${LOADER} $d/h 2>/dev/null; echo "$d loader $?"; done; ./hello`,
    );
    expect(r.stdout).toMatch(/^\/tmp 126$/m);
    expect(r.stdout).toMatch(/^\/home\/cell 126$/m);
    expect(r.stdout).toMatch(/^\/dev\/shm 126$/m);
    expect(r.stdout).not.toMatch(/loader 0/);
    // The workspace itself may still exec under this policy.
    expect(r.stdout).toMatch(/^RAN$/m);
    for (const place of ['/tmp', '/home/cell', '/dev/shm']) {
      await refused(noScratch, new RegExp(`^exec ${place}/h: its mount is noexec`));
      await refused(noScratch, new RegExp(`^mmap\\(PROT_EXEC\\) ${place}/h: its mount is noexec`));
    }
  });

  it('EX-06 #! tricks: a script whose interpreter sits where exec is refused', async () => {
    const r = await noScratch.sh(
      [
        'cp hello /tmp/interp && printf "#!/tmp/interp\\n" > ok.sh && chmod +x ok.sh',
        './ok.sh; echo "direct $?"',
        'printf "#! /usr/bin/env /tmp/interp\\n" > env.sh && chmod +x env.sh; ./env.sh; echo "env $?"',
        // The interpreter itself is allowed: a script is data to it, not an exec (threat model).
        'printf "print(1)\\n" > /tmp/s.py; python3 /tmp/s.py',
      ].join('\n'),
    );
    expect(r.stdout).toMatch(/^direct 126$/m);
    expect(r.stdout).toMatch(/^env 126$/m);
    expect(r.stdout).toMatch(/^1$/m);
    expect(r.stdout).not.toMatch(/RAN/);
    await refused(
      noScratch,
      /^exec \(a script's #! interpreter\) \/tmp\/interp: its mount is noexec/,
    );
  });

  it('EX-07 an allowlist finer than the mount: the loader may map only bin/**', async () => {
    const r = await partial.sh(
      `cp hello bin/tool; bin/tool; ./hello; echo "direct $?"; ${LOADER} ./hello; echo "loader $?"; ` +
        'python3 -c "import ctypes; ctypes.CDLL(\'./lib.so\')" 2>/dev/null; echo "dlopen $?"',
    );
    expect(r.stdout).toMatch(/^RAN\ndirect 126\n/);
    expect(r.stdout).toMatch(/^loader 127$/m);
    expect(r.stdout).toMatch(/^dlopen 1$/m);
    await refused(partial, /^exec \S+\/hello: not in exec.allow/);
    await refused(partial, /^mmap\(PROT_EXEC\) \S+\/hello: not in exec.allow/);
    await refused(partial, /^mmap\(PROT_EXEC\) \S+\/lib\.so: not in exec.allow/);
  });
});
