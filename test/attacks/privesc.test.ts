// Privilege escalation: setuid binaries, capabilities, user namespaces, writable /proc/sys.
// Recorded either as syscall.denied (namespace and mount calls) or, where the kernel simply
// refuses (nosuid, no capabilities, read-only proc), by the exec of the attacking program.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttackCell, HostSentinels, Victim } from './harness.js';

let ac: AttackCell;
let host: HostSentinels;
let victim: Victim;

beforeAll(async () => {
  host = new HostSentinels();
  [ac, victim] = await Promise.all([AttackCell.start(), Victim.start()]);
});
afterAll(async () => {
  await Promise.all([ac?.dispose(), victim?.dispose()]);
  host?.cleanup();
});
const unharmed = async () => {
  expect(host.changes()).toEqual([]);
  expect(await victim.intact()).toBe(true);
};

describe('privilege escalation', () => {
  it('PE-01 runs the setuid binaries of the host /usr (su, passwd, newgrp, chsh)', async () => {
    const r = await ac.sh(
      'for b in su passwd newgrp chsh gpasswd; do echo x | $b -c id 2>/dev/null </dev/null; done; ' +
        'su root -c "id -u" </dev/null 2>&1; id -u; grep NoNewPrivs /proc/self/status',
    );
    expect(r.stdout).not.toMatch(/^0$/m);
    expect(r.stdout).toMatch(/^1000$/m);
    expect(r.stdout).toMatch(/NoNewPrivs:\s+1/);
    await ac.execRecorded('su', 'root');
    await unharmed();
  });

  it('PE-02 compiles its own setuid helper and tries setuid(0)', async () => {
    const r = await ac.sh(
      [
        "cat > esc.c <<'C'",
        '#include <stdio.h>',
        '#include <unistd.h>',
        'int main(void){ int a=setuid(0), b=setresuid(0,0,0), c=setgid(0); printf("%d %d %d uid=%d\\n",a,b,c,getuid()); return 0; }',
        'C',
        'gcc -o esc esc.c && chmod 4755 esc && ./esc',
      ].join('\n'),
    );
    expect(r.stdout).toMatch(/-1 -1 -1 uid=1000/);
    await ac.execRecorded('./esc');
    await unharmed();
  });

  it('PE-03 raises capabilities (ambient, inheritable, file caps, setpriv)', async () => {
    const r = await ac.sh(
      'grep ^Cap /proc/self/status; setpriv --inh-caps +sys_admin --ambient-caps +sys_admin id -u 2>&1; ' +
        'python3 -c "import ctypes; l=ctypes.CDLL(None,use_errno=True); print(\'ambient\', l.prctl(47,2,21,0,0), ctypes.get_errno())"; ' +
        'cp /usr/bin/true t; setfattr -n security.capability -v 0x0100000200200000 t 2>&1; echo done',
    );
    for (const cap of r.stdout.match(/^Cap\w+:\s+\w+$/gm) ?? [])
      expect(cap).toMatch(/0000000000000000$/);
    expect(r.stdout).toMatch(/ambient -1 1/);
    await ac.execRecorded('setpriv', '--ambient-caps');
    await unharmed();
  });

  it('PE-04 creates a user namespace to become root (unshare, clone)', async () => {
    const r = await ac.sh('unshare -Ur id -u 2>&1; unshare -m true 2>&1; echo rc=$?');
    expect(r.stdout).not.toMatch(/^0$/m);
    expect(r.stdout).toMatch(/rc=[1-9]/);
    await ac.deniedRecorded('unshare');
    const [c] = await ac.atk(
      'syscall',
      'clone',
      String(0x10000000 | 0x20000 | 17),
      '0',
      '0',
      '0',
      '0',
    );
    expect(c!.ok).toBe(false);
    await ac.deniedRecorded('clone');
    await unharmed();
  });

  it('PE-05 writes /proc/sys (core_pattern, modprobe) and /proc/sysrq-trigger', async () => {
    const rs = await ac.atk(
      'write',
      '/proc/sys/kernel/core_pattern',
      '/proc/sys/kernel/modprobe',
      '/proc/sys/vm/drop_caches',
      '/proc/sysrq-trigger',
      '/sys/kernel/uevent_helper',
    );
    for (const r of rs) expect(r.ok, r.t).toBe(false);
    await ac.execRecorded('write', '/proc/sys/kernel/core_pattern');
    await unharmed();
  });

  it('PE-06 remounts to drop nosuid/ro, or joins the host namespaces', async () => {
    const r = await ac.sh(
      'mount -o remount,rw /usr 2>&1; mount -t proc proc /tmp 2>&1; nsenter -t 1 -m -u -n true 2>&1; echo rc=$?',
    );
    expect(r.stdout).toMatch(/rc=[1-9]/);
    // util-linux refuses early for non-root; the raw calls reach the filter and are recorded.
    const [m] = await ac.atk(
      'syscall',
      'mount',
      'none',
      '/usr',
      'none',
      String(0x20 | 0x1000),
      '0',
    );
    const [n] = await ac.atk('syscall', 'setns', '0', '0');
    expect(m!.ok || n!.ok).toBe(false);
    await ac.deniedRecorded('mount');
    await ac.deniedRecorded('setns');
    await unharmed();
  });
});
