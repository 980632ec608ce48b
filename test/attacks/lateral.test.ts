// Lateral movement: signals and ptrace to host or other-cell processes, abstract and path unix
// sockets, loopback services, shared memory and the runtime's state dir. A neighbour cell
// (Victim) and host servers prove nothing was reached. ptrace and pidfd_getfd are recorded as
// denials; the rest is refused by namespaces (no event), so the exec naming the target is the
// record.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttackCell, HostSentinels, Victim } from './harness.js';
import { TEST_ROOT } from '../helpers/cells.js';
import { abstractTarget, tcpTarget, unixTarget, type Target } from './servers.js';

let ac: AttackCell;
let victim: Victim;
let host: HostSentinels;
let abs: Target;
let unix: Target;
let lo: Target;
const ABSTRACT = `nanocell-attack-${process.pid}`;

beforeAll(async () => {
  host = new HostSentinels();
  [ac, victim, abs, unix, lo] = await Promise.all([
    AttackCell.start(),
    Victim.start(),
    abstractTarget(ABSTRACT),
    unixTarget(path.join(TEST_ROOT, `host-${process.pid}.sock`)),
    tcpTarget('127.0.0.1'),
  ]);
});
afterAll(async () => {
  await Promise.all([ac?.dispose(), victim?.dispose(), abs?.close(), unix?.close(), lo?.close()]);
  host?.cleanup();
});
const unharmed = async () => {
  expect(host.changes()).toEqual([]);
  expect(await victim.intact()).toBe(true);
  for (const t of [abs, unix, lo]) expect(t.connections(), t.host).toBe(0);
};
// Host pids of the victim's processes (its uid range), as the attacker would guess them.
const victimHostPids = () => {
  const base = victim.ac.cell.hostUidBase!;
  return fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const uid = Number(
          /^Uid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${p}/status`, 'utf8'))?.[1],
        );
        return uid >= base && uid < base + 65536;
      } catch {
        return false;
      }
    });
};

describe('lateral movement', () => {
  it('LAT-01 signals host and other-cell processes by pid, and kill -1', async () => {
    const pids = [String(process.pid), ...victimHostPids()];
    expect(pids.length).toBeGreaterThan(1);
    const rs = await ac.atk('kill', '9', ...pids);
    for (const r of rs) expect(r.ok && Number(r.t) === process.pid, r.t).toBe(false);
    await ac.sh('kill -9 -1 2>/dev/null; true');
    await ac.execRecorded('kill', String(process.pid));
    await unharmed();
  });

  it('LAT-02 ptraces or reads the memory of other processes', async () => {
    const [pt] = await ac.atk('syscall', 'ptrace', '16', '1', '0', '0');
    const [vm] = await ac.atk(
      'syscall',
      'process_vm_readv',
      String(process.pid),
      '0',
      '0',
      '0',
      '0',
      '0',
    );
    const gdb = await ac.sh('sleep 30 & gdb -p $! -batch -ex "info proc" 2>&1 | tail -2; kill %1');
    expect(pt!.ok || vm!.ok).toBe(false);
    expect(gdb.stdout).toMatch(/ptrace|not permitted|Could not attach/i);
    await ac.deniedRecorded('ptrace');
    await ac.deniedRecorded('process_vm_readv');
    await unharmed();
  });

  it("LAT-03 connects to the host's and another cell's abstract unix sockets", async () => {
    const srv = victim.ac.cell.exec([
      'python3',
      '-c',
      'import socket,time; s=socket.socket(socket.AF_UNIX); s.bind("\\0victim-abs"); s.listen(); print("up",flush=True); time.sleep(60)',
    ]);
    await new Promise<void>((r) => srv.stdout.once('data', () => r()));
    const rs = await ac.atk('unix', `@${ABSTRACT}`, '@victim-abs');
    for (const r of rs) expect(r.ok, r.t).toBe(false);
    srv.kill(9);
    await srv.result;
    await ac.execRecorded('unix', `@${ABSTRACT}`);
    await unharmed();
  });

  it("LAT-04 connects to the host's unix sockets and loopback services", async () => {
    const rs = [
      ...(await ac.atk(
        'unix',
        unix.host,
        '/run/docker.sock',
        '/var/run/docker.sock',
        '/run/systemd/private',
      )),
      ...(await ac.atk('tcp', '127.0.0.1', String(lo.port))),
    ];
    for (const r of rs) expect(r.ok, r.t).toBe(false);
    await ac.execRecorded('unix', '/run/docker.sock');
    await unharmed();
  });

  it("LAT-05 attaches to the host's or another cell's shared memory (SysV, POSIX)", async () => {
    const key = 0x4e43 + (process.pid % 1000);
    const id = execFileSync(
      'python3',
      ['-c', `import ctypes; l=ctypes.CDLL(None); print(l.shmget(${key}, 4096, 0o1666))`],
      { encoding: 'utf8' },
    ).trim();
    try {
      await victim.ac.sh('echo VICTIM-SHM > /dev/shm/victim-shm');
      const r = await ac.sh(
        `python3 -c "import ctypes; l=ctypes.CDLL(None); print('shmget', l.shmget(${key}, 4096, 0o666))"; cat /dev/shm/victim-shm 2>&1; ipcs -m | grep -c ${key.toString(16)}`,
      );
      expect(r.stdout).toMatch(/shmget -1/);
      expect(r.stdout).not.toContain('VICTIM-SHM');
      await ac.execRecorded('bash', 'shmget');
      await unharmed();
    } finally {
      execFileSync('ipcrm', ['-m', id]);
    }
  });

  it("LAT-06 reaches the runtime's state dir, another cell's proxy socket or its control socket", async () => {
    const vdir = path.join(victim.stateRoot, 'cells', victim.ac.cell.id);
    const rs = [
      ...(await ac.atk('list', path.join(ac.sb.stateRoot, 'runc'), '/run/runc', vdir)),
      ...(await ac.atk('unix', path.join(vdir, 'proxy.sock'), path.join(vdir, 'seccomp.sock'))),
    ];
    for (const r of rs) expect(r.ok, r.t).toBe(false);
    // The only inherited descriptors are stdio: init's control socket (fd 3) is not there.
    const fds = await ac.sh('ls /proc/self/fd');
    expect(fds.stdout.trim().split('\n').sort()).toEqual(['0', '1', '2', '3']); // 3 = ls's own dir fd
    await ac.execRecorded('list', path.join(ac.sb.stateRoot, 'runc'));
    await unharmed();
  });

  it('LAT-07 steals a descriptor from another process (pidfd_getfd) or compares kernel objects (kcmp)', async () => {
    const [g] = await ac.atk('syscall', 'pidfd_getfd', '3', '3', '0');
    const [k] = await ac.atk('syscall', 'kcmp', '1', '1', '0', '0', '0');
    expect(g!.ok || k!.ok).toBe(false);
    await ac.deniedRecorded('pidfd_getfd');
    await ac.deniedRecorded('kcmp');
    await unharmed();
  });
});
