// Evasion: kill or starve the cell's init or the monitor, race the end of the task, leave a
// process behind, re-parent to escape the kill. Each attack ends its cell and then checks that
// no process of the cell's uid range is alive and nothing is left under the state root.
import { describe, expect, it } from 'vitest';
import { AttackCell, dirty, HostSentinels, sleep } from './harness.js';
import { cellProcesses } from '../helpers/cells.js';

async function evade(policy: object, fn: (ac: AttackCell) => Promise<void>) {
  const host = new HostSentinels();
  const ac = await AttackCell.start({ policy });
  const base = ac.cell.hostUidBase!;
  try {
    await fn(ac);
    const { left } = await ac.end();
    expect(dirty(left)).toEqual({});
    await sleep(300);
    expect(cellProcesses([base])).toEqual([]);
    expect(host.changes()).toEqual([]);
  } finally {
    await ac.dispose();
    host.cleanup();
  }
}

describe.concurrent('evasion', () => {
  it('EVA-01 kills, stops or terminates the cell init (pid 1)', async () => {
    await evade({}, async (ac) => {
      const r = await ac.sh(
        'for s in KILL STOP TERM INT HUP SEGV USR1 QUIT; do kill -$s 1; done; echo sent',
      );
      expect(r.stdout).toBe('sent\n');
      // init ignores signals from inside its namespace: the cell still serves commands.
      expect((await ac.sh('echo alive')).stdout).toBe('alive\n');
      await ac.execRecorded('bash', 'kill -$s 1');
    });
  });

  it('EVA-02 tampers with init through /proc/1 (mem, fds, ptrace)', async () => {
    await evade({}, async (ac) => {
      const rs = await ac.atk('read', '/proc/1/mem', '/proc/1/fd/3', '/proc/1/environ');
      for (const r of rs) expect(r.ok, r.t).toBe(false);
      const [pt] = await ac.atk('syscall', 'ptrace', '16', '1', '0', '0');
      expect(pt!.ok).toBe(false);
      await ac.deniedRecorded('ptrace');
    });
  });

  it('EVA-03 hunts for the seccomp monitor to kill it', async () => {
    await evade({}, async (ac) => {
      const monitorPids = ac.cell ? (await ac.sh('ps -eo comm --no-headers')).stdout : '';
      expect(monitorPids).not.toMatch(/nanocell-monitor|runc/);
      // The bracket keeps pkill from matching this very shell's command line.
      const r = await ac.sh(
        'pkill -9 -f "[n]anocell-monitor"; pkill -9 -x runc; pkill -9 -f "[n]anocell-init"; echo ok',
      );
      expect(r.stdout).toMatch(/ok/);
      // The filter still answers: a denied call is still refused and recorded.
      const [m] = await ac.atk('syscall', 'unshare', String(0x10000000));
      expect(m!.ok).toBe(false);
      await ac.deniedRecorded('unshare');
    });
  });

  it('EVA-03b reaches for the seccomp listener to answer its own calls (init fd 9, any fd)', async () => {
    await evade({}, async (ac) => {
      // Init holds the listener only until the supervisor's first frame (native/init/seccomp.c);
      // the monitor on the host holds the only copy, and init is not dumpable anyway.
      const py = [
        'import ctypes, os',
        'l = ctypes.CDLL(None, use_errno=True)',
        'out = []',
        'for fd in range(0, 64):',
        '    for pid in (1, os.getppid()):',
        '        try:',
        "            t = os.readlink(f'/proc/{pid}/fd/{fd}')",
        "            if 'seccomp' in t: out.append(f'{pid}:{fd}:{t}')",
        '        except OSError: pass',
        'pfd = l.syscall(434, 1, 0)',
        "out.append(f'getfd={l.syscall(438, pfd, 9, 0)}:{ctypes.get_errno()}' if pfd >= 0 else 'nopidfd')",
        'for fd in range(0, 64):',
        '    try:',
        "        if 'seccomp' in os.readlink(f'/proc/self/fd/{fd}'): out.append(f'self:{fd}')",
        '    except OSError: pass',
        "print(' '.join(out))",
      ].join('\n');
      const r = await ac.run(['python3', '-c', py]);
      expect(r.stdout.trim()).toMatch(/^(nopidfd|getfd=-1:(1|13|38))$/);
      // And the filter still answers through the monitor.
      const [m] = await ac.atk('syscall', 'unshare', String(0x10000000));
      expect(m!.ok).toBe(false);
      await ac.deniedRecorded('unshare');
    });
  });

  it('EVA-04 leaves a process behind (setsid, nohup, double fork, disown)', async () => {
    await evade({}, async (ac) => {
      await ac.sh(
        'setsid sleep 1000 & nohup sleep 1001 >/dev/null 2>&1 & (sleep 1002 &) ; sleep 1003 & disown; ' +
          'python3 -c "import os,time\nif os.fork()==0:\n  os.setsid()\n  if os.fork()==0: time.sleep(1004)" ; echo bye',
      );
      const ps = await ac.sh('ps -eo args --no-headers | grep -c "^sleep 100"');
      expect(Number(ps.stdout.trim())).toBeGreaterThanOrEqual(4); // alive until the cell ends
      await ac.execRecorded('setsid', 'sleep');
    });
  });

  it('EVA-05 re-parents under its own subreaper to escape the kill', async () => {
    await evade({}, async (ac) => {
      const x = ac.cell.exec([
        'python3',
        '-c',
        'import ctypes,os,time\nctypes.CDLL(None).prctl(36,1,0,0,0)\nif os.fork()==0:\n  if os.fork()==0:\n    os.setsid(); time.sleep(1000)\n  os._exit(0)\nprint("ready",flush=True); time.sleep(1000)',
      ]);
      await new Promise<void>((r) => x.stdout.once('data', () => r()));
      await ac.execRecorded('python3', '-c');
    });
  });

  it('EVA-06 races the end of the task by forking continuously', async () => {
    await evade({ limits: { pids: 128 } }, async (ac) => {
      ac.cell.exec(['bash', '-c', 'while :; do (sleep 100 &); done']);
      await sleep(800);
      await ac.execRecorded('bash', 'while');
    });
  });

  it('EVA-07 outlives the wall clock by ignoring every signal it can', async () => {
    await evade({ limits: { timeout: '3s' } }, async (ac) => {
      const r = await ac.sh('trap "" TERM INT HUP QUIT USR1 USR2; setsid sleep 1000 & sleep 1000');
      expect(r.exitCode).toBe(124);
      await ac.recorded((e) => e.type === 'limit.hit' && e.limit === 'timeout');
    });
  });
});
