// Denial of service: each attack gets its own small cell (limits are per cell) and they run
// concurrently. Blocked means the cell's limit held and the supervisor stayed responsive;
// recorded means a limit.hit (pids, oom, output, timeout) or the bounded denial/exec records.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { AttackCell, dirty, HostSentinels } from './harness.js';

async function inCell(
  policy: object,
  fn: (ac: AttackCell) => Promise<void>,
  after?: (ac: AttackCell) => Promise<void> | void,
) {
  const host = new HostSentinels();
  const ac = await AttackCell.start({ policy });
  try {
    await fn(ac);
    const { left } = await ac.end();
    expect(dirty(left)).toEqual({});
    await after?.(ac);
    expect(host.changes()).toEqual([]);
  } finally {
    await ac.dispose();
    host.cleanup();
  }
}
const limitHit = (ac: AttackCell, limit: string) =>
  ac.recorded((e) => e.type === 'limit.hit' && e.limit === limit);
const fds = () => fs.readdirSync('/proc/self/fd').length;

describe.concurrent('denial of service', () => {
  it('DOS-01 fork bomb', async () => {
    await inCell(
      { limits: { pids: 64 } },
      async (ac) => {
        const r = await ac.sh(
          'bomb() { bomb | bomb & }; bomb; sleep 2; ps -e --no-headers | wc -l',
        );
        expect(Number(r.stdout.trim())).toBeLessThanOrEqual(64);
      },
      (ac) => limitHit(ac, 'pids').then(() => undefined),
    );
  });

  it('DOS-02 memory bomb', async () => {
    await inCell({ limits: { memory: '64m' } }, async (ac) => {
      const r = await ac.run(['python3', '-c', 'a=[]\nwhile True: a.append(bytearray(8<<20))']);
      expect(r.exitCode).toBe(137);
      expect(r.endReason).toBe('oom');
      await limitHit(ac, 'oom');
    });
  });

  it('DOS-03 disk and inode exhaustion of HOME, /tmp and /dev/shm', async () => {
    await inCell({ limits: { tmp: '4m', home: '4m' } }, async (ac) => {
      const r = await ac.sh(
        'for d in ~ /tmp /dev/shm; do head -c 64m /dev/zero > $d/fill 2>/dev/null; echo "$d $(stat -c %s $d/fill)"; done; ' +
          "python3 -c \"\nimport os\nn=0\ntry:\n  for i in range(300000): os.mkdir('/tmp/i%d' % i); n+=1\nexcept OSError as e: print('stopped', e.errno)\nprint(n)\"",
      );
      for (const line of r.stdout.split('\n').slice(0, 3)) {
        const size = Number(line.split(' ')[1]);
        expect(size, line).toBeLessThanOrEqual(64 * 1024 * 1024);
      }
      expect(Number(r.stdout.split('\n')[0]!.split(' ')[1])).toBeLessThanOrEqual(4 * 1024 * 1024);
      expect(r.stdout).toMatch(/stopped 28/); // ENOSPC: the 4 MiB tmpfs also bounds inodes
      await ac.execRecorded('bash', '/dev/shm');
    });
  });

  it('DOS-04 output flood', async () => {
    await inCell({ limits: { output: '64k' } }, async (ac) => {
      const t0 = Date.now();
      const r = await ac.sh(
        'head -c 200m /dev/zero | tr "\\0" x; head -c 50m /dev/zero >&2; echo done',
      );
      expect(r.outputTruncated).toBe(true);
      expect(r.stdout.length + r.stderr.length).toBeLessThan(70 * 1024);
      expect(Date.now() - t0).toBeLessThan(60_000); // drained, never blocked (2 cores, shared)
      await limitHit(ac, 'output');
    });
  });

  it('DOS-05 CPU spin past the wall clock, ignoring signals', async () => {
    await inCell({ limits: { cpus: 0.5, timeout: '4s' } }, async (ac) => {
      const t0 = Date.now();
      const r = await ac.sh(
        'trap "" TERM INT HUP; for i in 1 2 3 4; do (while :; do :; done) & done; wait',
      );
      expect(r.exitCode).toBe(124);
      expect(Date.now() - t0).toBeLessThan(15_000);
      await limitHit(ac, 'timeout');
    });
  });

  it('DOS-06 event flood of denied syscalls and execs', async () => {
    await inCell({}, async (ac) => {
      const t0 = Date.now();
      const r = await ac.run([
        'python3',
        '-c',
        'import ctypes\nl=ctypes.CDLL(None)\nfor i in range(100000): l.syscall(165, 0, 0, 0, 0, 0)\nprint("done")',
      ]);
      expect(r.stdout).toBe('done\n');
      const ping = await ac.sh('echo alive');
      expect(ping.stdout).toBe('alive\n');
      expect(Date.now() - t0).toBeLessThan(40_000);
      const ev = await ac.recorded((e) => e.type === 'syscall.denied' && e.name === 'mount');
      expect(ev).toBeDefined();
      // Bounded: full events up to the monitor's cap, then per-(syscall, pid) counts.
      await new Promise((r) => setTimeout(r, 1500));
      const denials = ac.events().filter((e) => e.type === 'syscall.denied');
      expect(denials.length).toBeLessThan(1000);
      const total = denials.reduce(
        (n, e) => n + (e.type === 'syscall.denied' ? (e.count ?? 1) : 0),
        0,
      );
      expect(total).toBeGreaterThanOrEqual(100_000);
    });
  });

  it('DOS-07 huge argv and environment at exec', async () => {
    await inCell({}, async (ac) => {
      const r = await ac.sh(
        'big=$(head -c 1000000 /dev/zero | tr "\\0" a); env BIG=$big /usr/bin/true $big $big; echo rc=$?; ' +
          "python3 -c \"import os; os.execv('/usr/bin/echo', ['echo'] + ['y'*100000]*20)\" 2>&1 | tail -1; " +
          'xargs -0 -n 60 /usr/bin/true < <(head -c 2000000 /dev/zero | tr "\\0" "b"); echo still-alive',
      );
      expect(r.stdout).toMatch(/still-alive/);
      // The exec record is capped (argv entries and bytes), not the whole megabyte.
      const ex = await ac.execRecorded('/usr/bin/true');
      expect(JSON.stringify(ex).length).toBeLessThan(32 * 1024);
    });
  });

  it('DOS-08 descriptor leak', async () => {
    const before = fds();
    await inCell({ limits: { files: 256 } }, async (ac) => {
      const r = await ac.run([
        'python3',
        '-c',
        'import os\nfs=[]\ntry:\n  while True: fs.append(os.open("/dev/null", 0))\nexcept OSError as e: print(len(fs), e.errno)',
      ]);
      const [n, errno] = r.stdout.trim().split(' ').map(Number);
      expect(errno).toBe(24); // EMFILE at RLIMIT_NOFILE
      expect(n).toBeLessThan(256);
      await ac.execRecorded('python3', 'os.open');
    });
    expect(fds()).toBeLessThanOrEqual(before + 2); // the supervisor leaked nothing
  });
});
