// What a cell can see and touch: namespaces, identity, file system, environment.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import { Cell } from '../../../src/cell/cell.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { makeSandbox, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
let cell: Cell;
const run = (script: string) => cell.run(['bash', '-c', script]);

beforeAll(async () => {
  sb = makeSandbox({ 'app.js': 'console.log(1)\n' });
  process.env.NANOCELL_TEST_SECRET = 'hunter2-secret';
  cell = await Cell.create({
    policy: resolvePolicy(
      parsePolicy({ env: { FROM_POLICY: 'yes' }, limits: { tmp: '8m', home: '4m' } }),
    ),
    workspace: sb.project,
    stateRoot: sb.stateRoot,
  });
});
afterAll(async () => {
  delete process.env.NANOCELL_TEST_SECRET;
  await cell?.destroy();
  sb?.cleanup();
});

describe('cell isolation', () => {
  it('has its own user, mount, pid, net, ipc, uts and cgroup namespaces', async () => {
    const types = ['user', 'mnt', 'pid', 'net', 'ipc', 'uts', 'cgroup'];
    const r = await run(types.map((t) => `readlink /proc/self/ns/${t}`).join(';'));
    const inside = r.stdout.trim().split('\n');
    types.forEach((t, i) => expect(inside[i]).not.toBe(fs.readlinkSync(`/proc/self/ns/${t}`)));
    const pid1 = await run(
      'cat /proc/1/cmdline | tr "\\0" " "; echo; ls /proc | grep -E "^[0-9]+$" | wc -l',
    );
    expect(pid1.stdout).toMatch(/^\/\.nanocell\/init /);
  });

  it('runs as an unprivileged user with no capabilities and no_new_privs', async () => {
    const r = await run(
      'id -u; id -g; grep -E "^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)" /proc/self/status; cat /proc/self/uid_map',
    );
    const lines = r.stdout.trim().split('\n');
    expect(lines.slice(0, 2)).toEqual(['1000', '1000']);
    for (const cap of lines.filter((l) => l.startsWith('Cap')))
      expect(cap).toMatch(/:\s+0000000000000000$/);
    expect(lines).toContain('NoNewPrivs:\t1');
    // Container root maps to an unprivileged host uid, never to host root.
    const [inside, host, size] = lines.at(-1)!.trim().split(/\s+/).map(Number);
    expect(inside).toBe(0);
    expect(host).toBeGreaterThanOrEqual(2 ** 30);
    expect(size).toBe(65536);
  });

  it('hides host secrets, homes, sockets and state', async () => {
    const paths = [
      '/etc/shadow',
      '/root',
      '/home/cloudsdk',
      '/run',
      '/var/lib',
      '/var/log',
      '/var/cache',
      '/var/run/docker.sock',
      '/run/docker.sock',
      sb.stateRoot,
      '/etc/ssh',
      '/etc/ssl/private',
      '/etc/machine-id',
      '/sys',
    ];
    const r = await run(
      paths.map((p) => `test -e ${p} && echo "VISIBLE ${p}"`).join('; ') + '; true',
    );
    expect(r.stdout).toBe('');
    const etc = await run('ls /etc');
    expect(etc.stdout).toMatch(/passwd/);
    expect(etc.stdout).not.toMatch(/shadow|sudoers|ssh/);
  });

  it('has a read-only root and system dirs; only the workspace, HOME and /tmp are writable', async () => {
    for (const p of [
      '/usr/x',
      '/etc/x',
      '/x',
      '/.nanocell/x',
      '/bin/x',
      '/proc/sys/kernel/hostname',
    ]) {
      const r = await run(`echo x > ${p}`);
      expect(r.exitCode, p).not.toBe(0);
    }
    const ok = await run('echo a > /tmp/a && echo b > ~/b && echo c > ./c && cat /tmp/a ~/b ./c');
    expect(ok.stdout).toBe('a\nb\nc\n');
  });

  it('caps HOME and /tmp with tmpfs sizes; they exec like the workspace (default policy)', async () => {
    const r = await run('df -k --output=size,target /tmp ~ | tail -2');
    const sizes = Object.fromEntries(
      r.stdout
        .trim()
        .split('\n')
        .map((l) => l.trim().split(/\s+/).reverse()),
    );
    expect(Number(sizes['/tmp'])).toBe(8 * 1024);
    expect(Number(sizes['/home/cell'])).toBe(4 * 1024);
    const full = await run('head -c 6m /dev/zero > ~/big');
    expect(full.exitCode).not.toBe(0);
    // exec.scratch: deny, which keeps them noexec, is tested in seccomp/landlock.
    const exec = await run('cp /usr/bin/true /tmp/t && /tmp/t');
    expect(exec.exitCode).toBe(0);
  });

  it('starts every command with a clean environment', async () => {
    const r = await run(
      'env; cat /proc/1/environ 2>&1; cat /proc/$PPID/environ 2>/dev/null | tr "\\0" "\\n"',
    );
    expect(r.stdout).not.toContain('hunter2-secret');
    expect(r.stdout).not.toContain('NANOCELL_TEST_SECRET');
    expect(r.stdout).toMatch(/^FROM_POLICY=yes$/m);
    expect(r.stdout).toMatch(/^HOME=\/home\/cell$/m);
    const files = await run('grep -rl hunter2-secret /etc /home/cell /tmp . 2>/dev/null; true');
    expect(files.stdout).toBe('');
  });

  it('has only loopback networking', async () => {
    const r = await run('cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d " "');
    expect(r.stdout.trim()).toBe('lo');
    const t0 = Date.now();
    const c = await cell.run([
      'python3',
      '-c',
      'import socket; socket.create_connection(("192.0.2.1", 80), timeout=5)',
    ]);
    expect(c.exitCode).not.toBe(0);
    expect(Date.now() - t0).toBeLessThan(3000);
    const dns = await cell.run([
      'python3',
      '-c',
      'import socket; socket.getaddrinfo("example.com", 443)',
    ]);
    expect(dns.exitCode).not.toBe(0);
  });
});
