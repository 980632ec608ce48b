// The fork server (native/forkserver/, src/util/forkServer.ts): every helper the supervisor
// runs through runCommand starts there. Real children, the real binary; what each test checks
// is what execFile gave the callers before.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { ForkedProcess, forkServerSpawn } from '../../../src/util/forkServer.js';
import { runCommand } from '../../../src/util/run.js';
import { BUILD_DIR, buildNative } from './nativeBuild.js';

const repo = fileURLToPath(new URL('../../..', import.meta.url));

beforeAll(() => {
  buildNative();
  process.env.NANOCELL_NATIVE_DIR = BUILD_DIR;
});

/** This process's fork server, by its name in /proc (comm keeps 15 characters). */
function forkServerPids(): number[] {
  const out = spawnSync('pgrep', ['-P', String(process.pid), '-x', 'nanocell-forkse'], {
    encoding: 'utf8',
  });
  return out.stdout.split('\n').filter(Boolean).map(Number);
}

describe('fork server', () => {
  it('runs helpers from the fork server, not from this process', async () => {
    const r = await runCommand('/bin/sh', ['-c', 'echo $PPID']);
    expect(r.exitCode).toBe(0);
    const servers = forkServerPids();
    expect(servers).toHaveLength(1);
    expect(Number(r.stdout.trim())).toBe(servers[0]);
  });

  it('passes stdin, stdout, stderr, the exit status, cwd, env and PATH search', async () => {
    const r = await runCommand('sh', ['-c', 'cat; pwd; echo "$GREETING" >&2; exit 3'], {
      input: 'from stdin\n',
      cwd: '/usr',
      env: { PATH: '/usr/bin:/bin', GREETING: 'hello' },
    });
    expect(r).toMatchObject({
      exitCode: 3,
      stdout: 'from stdin\n/usr\n',
      stderr: 'hello\n',
      aborted: false,
      notFound: false,
    });
    expect(r.message).toContain('Command failed: sh -c');
  });

  it("gives each child this process's umask at the time of the call", async () => {
    const before = process.umask(0o077);
    try {
      expect((await runCommand('sh', ['-c', 'umask'])).stdout.trim()).toBe('0077');
    } finally {
      process.umask(before);
    }
    const again = await runCommand('sh', ['-c', 'umask']);
    expect(Number.parseInt(again.stdout.trim(), 8)).toBe(before);
  });

  it('refuses a request too long for exec (E2BIG), and keeps serving', async () => {
    const r = await runCommand('/bin/echo', ['x'.repeat(8 * 1024 * 1024)]);
    expect(r.exitCode).toBeUndefined();
    expect(r.message).toContain('E2BIG');
    expect((await runCommand('/bin/echo', ['ok'])).stdout).toBe('ok\n');
  });

  it('reports a missing program as notFound and a bad cwd as a start failure', async () => {
    const missing = await runCommand('nanocell-no-such-program', []);
    expect(missing).toMatchObject({ exitCode: undefined, notFound: true });
    expect(missing.message).toBe('spawn nanocell-no-such-program ENOENT');
    const badCwd = await runCommand('/bin/true', [], { cwd: '/nonexistent-nanocell-dir' });
    expect(badCwd.exitCode).toBeUndefined();
    expect(badCwd.message).toContain('ENOENT');
  });

  it('finishes children that exit before writing anything, many at once', async () => {
    // Their sockets close before the caller can listen; each must still resolve.
    const rs = await Promise.all(Array.from({ length: 40 }, () => runCommand('/bin/true', [])));
    expect(rs.every((r) => r.exitCode === 0)).toBe(true);
  });

  it('stops a child at its timeout, on abort and past maxBuffer', async () => {
    const t0 = performance.now();
    const timedOut = await runCommand('sleep', ['30'], { timeout: 200 });
    expect(timedOut.exitCode).toBeUndefined();
    expect(performance.now() - t0).toBeLessThan(10_000);

    const ac = new AbortController();
    const pending = runCommand('sleep', ['30'], { signal: ac.signal });
    setTimeout(() => ac.abort(), 100);
    expect(await pending).toMatchObject({ aborted: true, exitCode: undefined });

    const big = await runCommand('head', ['-c', '1000000', '/dev/zero'], { maxBuffer: 1000 });
    expect(big.exitCode).toBeUndefined();
    expect(big.stdout.length).toBeLessThanOrEqual(1000);
  });

  it('reports a signal death as no exit code', async () => {
    const r = await runCommand('sh', ['-c', 'kill -KILL $$']);
    expect(r.exitCode).toBeUndefined();
    expect(r.message).toContain('Command failed');
  });

  it('refuses NUL in an argument instead of cutting it there', async () => {
    const r = await runCommand('/bin/echo', ['a\0b']);
    expect(r.exitCode).toBeUndefined();
    expect(r.message).toContain('NUL');
  });

  it('survives its own death: what it ran ends with no status, the next spawn starts anew', async () => {
    await runCommand('/bin/true', []);
    const [server] = forkServerPids();
    const running = runCommand('sleep', ['2']);
    await new Promise((r) => setTimeout(r, 100));
    process.kill(server!, 'SIGKILL');
    const r = await running;
    expect(r.exitCode).toBeUndefined();
    const again = await runCommand('/bin/echo', ['back']);
    expect(again).toMatchObject({ exitCode: 0, stdout: 'back\n' });
    expect(forkServerPids()).not.toContain(server);
  });

  it("relays a child's IPC handles, and keeps them and its exit for a caller that listens late", async () => {
    // The child sends one NODE_HANDLE message with a socket on its fd 4, as the monitor does.
    const script = [
      'import socket',
      'ch = socket.socket(fileno=4)',
      'a, b = socket.socketpair()',
      'b.sendall(b"through the handle")',
      `msg = b'{"cmd":"NODE_HANDLE","type":"net.Socket","msg":{"tag":"t1"}}\\n'`,
      'socket.send_fds(ch, [msg], [a.fileno()])',
    ].join('\n');
    const started = forkServerSpawn('python3', ['-c', script], {
      env: { PATH: process.env.PATH, NODE_CHANNEL_FD: '4' },
      stdio: 'ppppi',
    })!;
    // A supervisor busy elsewhere: the reply, the handle and the exit arrive in one read.
    const until = Date.now() + 1500;
    while (Date.now() < until);
    const child = new ForkedProcess(await started);
    const exit = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const [msg, handle] = await new Promise<[unknown, unknown]>((resolve, reject) => {
      setTimeout(() => reject(new Error('no message within 10 s')), 10_000).unref();
      child.once('message', (m, h) => resolve([m, h]));
    });
    expect(msg).toEqual({ tag: 't1' });
    expect(handle).toBeInstanceOf(net.Socket);
    const text = await new Promise<string>((resolve) =>
      (handle as net.Socket).once('data', (d: Buffer) => resolve(d.toString())),
    );
    expect(text).toBe('through the handle');
    (handle as net.Socket).destroy();
    expect(await exit).toBe(0);
  });

  it('does not keep a process alive once its helpers are done', () => {
    // The built library, in a process of its own: it must exit by itself after the helper.
    const script = `import(${JSON.stringify(path.join(repo, 'dist', 'util', 'run.js'))})
      .then((m) => m.runCommand('/bin/echo', ['done']))
      .then((r) => process.stdout.write(r.stdout))`;
    const r = spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      timeout: 20_000,
      env: { ...process.env, NANOCELL_NATIVE_DIR: BUILD_DIR },
    });
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('done\n');
    expect(fs.existsSync(path.join(repo, 'dist', 'util', 'forkServer.js'))).toBe(true);
  });
});
