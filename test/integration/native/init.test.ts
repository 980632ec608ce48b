import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  rmSync,
  writeFileSync,
  readFileSync,
} from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { buildNative, INIT_BIN } from './nativeBuild.js';
import {
  BASE_ENV,
  collect,
  run,
  startInit,
  stopInit,
  waitFor,
  type RunningInit,
} from './initHarness.js';

let init: RunningInit | undefined;
const tmpDirs: string[] = [];

function tmp(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'nc-init-'));
  tmpDirs.push(d);
  return d;
}

beforeAll(() => buildNative());

afterEach(async () => {
  await stopInit(init);
  init = undefined;
  for (const d of tmpDirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function gone(pid: number): boolean {
  return !existsSync(`/proc/${pid}`);
}

describe('nanocell-init without Landlock', () => {
  it('reports ready, runs a command and returns stdout, stderr and the exit code', async () => {
    init = startInit(['--landlock', 'off']);
    const ready = await init.client.ready();
    expect(ready).toMatchObject({ landlock: 'off', landlock_abi: '0' });
    const r = await run(init.client, ['sh', '-c', 'echo out; echo err >&2; pwd; exit 3'], {
      cwd: '/tmp',
    });
    expect(r.stdout).toBe('out\n/tmp\n');
    expect(r.stderr).toBe('err\n');
    expect(r.result).toEqual({ kind: 'exited', code: 3 });
    expect(await r.handle.started).toBeGreaterThan(0);
  });

  it('streams stdin and closes it on end', async () => {
    init = startInit(['--landlock', 'off']);
    await init.client.ready();
    const h = init.client.exec({ argv: ['cat'], env: BASE_ENV, cwd: '/' });
    const out = collect(h.stdout);
    for (let i = 0; i < 100; i++) h.stdin.write(`line ${i}\n`);
    h.stdin.end(Buffer.alloc(300_000, 'x'));
    const text = (await out).toString();
    expect(text.startsWith('line 0\nline 1\n')).toBe(true);
    const lines = Array.from({ length: 100 }, (_, i) => `line ${i}\n`).join('');
    expect(text).toBe(lines + 'x'.repeat(300_000));
    expect(await h.result).toEqual({ kind: 'exited', code: 0 });
  });

  it('reports spawn failures as 127 (not found) and 126 (not executable)', async () => {
    const dir = tmp();
    writeFileSync(path.join(dir, 'noexec'), '#!/bin/sh\necho hi\n', { mode: 0o644 });
    writeFileSync(path.join(dir, 'mytool'), '#!/bin/sh\necho found "$@"\n', { mode: 0o755 });
    init = startInit(['--landlock', 'off']);
    await init.client.ready();
    const missing = await run(init.client, ['/nonexistent/prog']);
    expect(missing.result).toEqual({ kind: 'spawn-failed', errno: 2, code: 127 });
    await expect(missing.handle.started).rejects.toThrow(/errno 2/);
    const noexec = await run(init.client, [path.join(dir, 'noexec')]);
    expect(noexec.result).toEqual({ kind: 'spawn-failed', errno: 13, code: 126 });
    const badCwd = await run(init.client, ['true'], { cwd: '/nonexistent-dir' });
    expect(badCwd.result).toMatchObject({ kind: 'spawn-failed', code: 127 });
    // PATH comes from the request's environment, not init's.
    const viaPath = await run(init.client, ['mytool', 'a'], { env: [`PATH=/nope:${dir}`] });
    expect(viaPath.stdout).toBe('found a\n');
    const notInPath = await run(init.client, ['mytool'], { env: ['PATH=/usr/bin'] });
    expect(notInPath.result).toMatchObject({ kind: 'spawn-failed', code: 127 });
  });

  it('signals the exec process group', async () => {
    init = startInit(['--landlock', 'off']);
    await init.client.ready();
    const h = init.client.exec({
      argv: ['sh', '-c', 'sleep 100 & echo $!; wait'],
      env: BASE_ENV,
      cwd: '/',
    });
    h.stdin.end();
    const pid = await h.started;
    const firstLine = await new Promise<string>((resolve) =>
      h.stdout.once('data', (c) => resolve(String(c))),
    );
    const sleepPid = Number(firstLine.trim());
    h.kill(15);
    expect(await h.result).toEqual({ kind: 'signaled', signal: 15 });
    expect(pid).toBeGreaterThan(0);
    expect(await waitFor(() => gone(sleepPid), 2000)).toBe(true);
  });

  it('keeps memory bounded while the consumer is slow, and loses no output', async () => {
    init = startInit(['--landlock', 'off']);
    await init.client.ready();
    const total = 64 * 1024 * 1024;
    const h = init.client.exec({
      argv: ['head', '-c', String(total), '/dev/zero'],
      env: BASE_ENV,
      cwd: '/',
    });
    h.stdin.end();
    // Do not read for a while: init must stop reading the pipe instead of buffering 64 MiB.
    await new Promise((r) => setTimeout(r, 700));
    const status = readFileSync(`/proc/${init.child.pid}/status`, 'utf8');
    const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]);
    expect(rssKb).toBeLessThan(16 * 1024);
    let got = 0;
    h.stdout.on('data', (c: Buffer) => (got += c.length));
    await new Promise((r) => h.stdout.on('end', r));
    expect(got).toBe(total);
    expect(await h.result).toEqual({ kind: 'exited', code: 0 });
  });

  it('finishes an exec whose background grandchild keeps stdout open', async () => {
    init = startInit(['--landlock', 'off']);
    await init.client.ready();
    const t0 = Date.now();
    const r = await run(init.client, ['sh', '-c', 'sleep 30 & echo bg=$!; echo done']);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.stdout).toMatch(/bg=\d+\ndone\n/);
    expect(r.result).toEqual({ kind: 'exited', code: 0 });
    const bg = Number(/bg=(\d+)/.exec(r.stdout)?.[1]);
    expect(gone(bg)).toBe(false);
    // The orphan still belongs to the cell: shutting down kills it.
    init.client.shutdown();
    expect(await init.exited).toBe(0);
    expect(await waitFor(() => gone(bg), 2000)).toBe(true);
  });

  it('kills every process when the control channel hits EOF', async () => {
    init = startInit(['--landlock', 'off']);
    await init.client.ready();
    const h = init.client.exec({
      argv: [
        'sh',
        '-c',
        "setsid sh -c 'sleep 1000 & echo $!; sleep 1000' & sleep 1000 & echo $!; wait",
      ],
      env: BASE_ENV,
      cwd: '/',
    });
    h.stdin.end();
    const shPid = await h.started;
    let out = '';
    h.stdout.on('data', (c: Buffer) => (out += c.toString()));
    expect(await waitFor(() => out.trim().split('\n').length >= 2, 3000)).toBe(true);
    const pids = [shPid, ...out.trim().split('\n').map(Number)];
    for (const p of pids) expect(gone(p)).toBe(false);
    (init.child.stdio[3] as net.Socket).destroy();
    await expect(h.result).rejects.toThrow(/channel closed/);
    expect(await init.exited).toBe(0);
    for (const p of pids) expect(await waitFor(() => gone(p), 2000)).toBe(true);
  });

  it('is not dumpable: a same-uid process cannot read its memory or environment', async () => {
    init = startInit(['--landlock', 'off'], { uid: 65534, gid: 65534 });
    await init.client.ready();
    const initPid = init.child.pid as number;
    // Contrast: an ordinary process of the same uid is readable, so the check below means something.
    const sleeper = spawn('sleep', ['30'], { uid: 65534, gid: 65534, stdio: 'ignore' });
    try {
      const ok = spawnSync('head', ['-c', '1', `/proc/${sleeper.pid}/environ`], {
        uid: 65534,
        gid: 65534,
      });
      expect(ok.status).toBe(0);
      for (const file of ['mem', 'environ']) {
        const denied = spawnSync('head', ['-c', '1', `/proc/${initPid}/${file}`], {
          uid: 65534,
          gid: 65534,
        });
        expect(denied.status).not.toBe(0);
        expect(denied.stderr.toString()).toMatch(/Permission denied/);
      }
    } finally {
      sleeper.kill('SIGKILL');
    }
  });

  it('--probe prints the Landlock ABI without a control channel', () => {
    const r = spawnSync(INIT_BIN, ['--probe'], { stdio: ['ignore', 'pipe', 'pipe'] });
    expect(r.status).toBe(0);
    expect(r.stdout.toString()).toMatch(/^landlock_abi=[1-9]\d*\n$/);
  });
});

describe('nanocell-init with Landlock', () => {
  function landlockArgs(writable: string): string[] {
    return [
      '--landlock',
      'required',
      '--ll-exec',
      '/usr',
      '--ll-read',
      '/etc',
      '--ll-read',
      '/proc',
      '--ll-write',
      '/dev/null',
      '--ll-write',
      writable,
    ];
  }

  it('denies exec outside the exec rules with EACCES (126)', async () => {
    const dir = tmp();
    const copy = path.join(dir, 'mytrue');
    copyFileSync('/usr/bin/true', copy);
    chmodSync(copy, 0o755);
    init = startInit(landlockArgs(dir));
    const ready = await init.client.ready();
    expect(ready.landlock).toBe('on');
    expect(Number(ready.landlock_abi)).toBeGreaterThanOrEqual(1);
    expect((await run(init.client, ['/usr/bin/true'])).result).toEqual({ kind: 'exited', code: 0 });
    expect((await run(init.client, [copy])).result).toEqual({
      kind: 'spawn-failed',
      errno: 13,
      code: 126,
    });
  });

  it('denies writes outside the write rules', async () => {
    const writable = tmp();
    const other = tmp();
    init = startInit(landlockArgs(writable));
    await init.client.ready();
    const ok = await run(init.client, ['sh', '-c', `echo hi > ${writable}/f && cat ${writable}/f`]);
    expect(ok.stdout).toBe('hi\n');
    const denied = await run(init.client, ['sh', '-c', `echo hi > ${other}/f`]);
    expect(denied.result).not.toEqual({ kind: 'exited', code: 0 });
    expect(denied.stderr).toMatch(/Permission denied/);
    expect(existsSync(path.join(other, 'f'))).toBe(false);
  });

  it('fails closed with Z and 125 when a rule path cannot be opened', async () => {
    init = startInit(['--landlock', 'required', '--ll-read', '/nonexistent-nanocell-path']);
    await expect(init.client.ready()).rejects.toThrow(
      /landlock: cannot open \/nonexistent-nanocell-path/,
    );
    expect(await init.exited).toBe(125);
  });
});

describe('nanocell-init bridges', () => {
  async function freePort(): Promise<number> {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise((r) => s.close(r));
    return port;
  }

  it('relays both ways to a unix socket with half-close', async () => {
    const dir = tmp();
    const sock = path.join(dir, 'proxy.sock');
    const server = net.createServer({ allowHalfOpen: true }, (c) => {
      let got = '';
      c.on('data', (d: Buffer) => {
        got += d.toString();
        c.write(d.toString().toUpperCase());
      });
      // The client's half-close must arrive as EOF while our side can still write.
      c.on('end', () => c.end(`BYE after ${got.length}`));
    });
    await new Promise<void>((r) => server.listen(sock, r));
    try {
      const port = await freePort();
      init = startInit(['--landlock', 'off', '--bridge', `127.0.0.1:${port}=${sock}`]);
      expect((await init.client.ready()).bridges).toBe('1');
      const big = 'abc'.repeat(400_000);
      const reply = await new Promise<string>((resolve, reject) => {
        const c = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
        let text = '';
        c.on('data', (d: Buffer) => (text += d.toString()));
        c.on('end', () => resolve(text));
        c.on('error', reject);
        c.end(big);
      });
      expect(reply).toBe(`${big.toUpperCase()}BYE after ${big.length}`);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
