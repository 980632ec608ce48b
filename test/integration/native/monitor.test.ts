// One real runc cell: the monitor receives the seccomp listener fd, answers exec and denial
// notifications, inherits the cell's init as subreaper and cleans up after shutdown.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import type { Duplex } from 'node:stream';
import os from 'node:os';
import path from 'node:path';
import { InitClient } from '../../../src/cell/initClient.js';
import { buildNative, INIT_BIN, MONITOR_BIN } from './nativeBuild.js';
import { collect, waitFor } from './initHarness.js';
import { writeBundle } from './ociBundle.js';

type Event = Record<string, unknown> & { type: string };

const HOST_ID_BASE = 2_000_000 + (process.pid % 64) * 65536;
const dir = mkdtempSync(path.join(os.tmpdir(), 'nc-monitor-'));
const runcRoot = path.join(dir, 'runc');
const id = `nc-native-test-${process.pid}`;

function runc(...args: string[]) {
  return spawnSync('runc', ['--root', runcRoot, ...args], { encoding: 'utf8' });
}

/** Host processes whose uid lies in this test's cell range: none may survive the test. */
function cellProcesses(): number[] {
  const found: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const uid = Number(/\nUid:\s+(\d+)/.exec(readFileSync(`/proc/${name}/status`, 'utf8'))?.[1]);
      if (uid >= HOST_ID_BASE && uid < HOST_ID_BASE + 65536) found.push(Number(name));
    } catch {
      // raced with an exit
    }
  }
  return found;
}

function startMonitor(
  bundleName: string,
  extra: string[] = [],
  notify = ['execve', 'execveat', 'mkdir', 'mkdirat'],
) {
  const bundle = writeBundle({
    dir: path.join(dir, bundleName),
    initBin: INIT_BIN,
    listenerPath: path.join(dir, `${bundleName}.sock`),
    hostIdBase: HOST_ID_BASE,
    notify,
  });
  const table = path.join(dir, 'syscalls.table');
  writeFileSync(table, '# arch nr name errno\nx86_64 83 mkdir 1\nx86_64 258 mkdirat 1\n');
  const pidFile = path.join(dir, `${bundleName}.pid`);
  const child = spawn(
    MONITOR_BIN,
    [
      '--listener',
      path.join(dir, `${bundleName}.sock`),
      '--pid-file',
      pidFile,
      '--syscall-table',
      table,
      ...extra,
      '--',
      'runc',
      '--root',
      runcRoot,
      'run',
      '--detach',
      '--preserve-fds',
      '1',
      '--pid-file',
      pidFile,
      '--bundle',
      bundle,
      `${id}-${bundleName}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] },
  );
  const events: Event[] = [];
  let partial = '';
  child.stdout?.on('data', (c: Buffer) => {
    partial += c.toString();
    const lines = partial.split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) events.push(JSON.parse(l) as Event);
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  const client = new InitClient(child.stdio[3] as Duplex);
  return {
    child,
    client,
    events,
    exited,
    stderr: () => stderr,
    listener: path.join(dir, `${bundleName}.sock`),
  };
}

async function exec(client: InitClient, argv: string[]) {
  const h = client.exec({ argv, env: ['PATH=/usr/bin:/bin'], cwd: '/' });
  h.stdin.end();
  const [out, err, result] = await Promise.all([collect(h.stdout), collect(h.stderr), h.result]);
  return { stdout: out.toString(), stderr: err.toString(), result };
}

const monitors: ChildProcess[] = [];

beforeAll(() => {
  buildNative();
  mkdirSync(runcRoot, { recursive: true });
  // The cell's root (an unprivileged host uid) must be able to reach the bundle.
  chmodSync(dir, 0o755);
});

function cleanupCells(): void {
  for (const m of monitors.splice(0)) if (m.exitCode === null) m.kill('SIGKILL');
  for (const c of runc('list', '-q').stdout.split('\n').filter(Boolean)) {
    runc('delete', '--force', c);
  }
}

afterEach(cleanupCells);

afterAll(() => {
  cleanupCells();
  rmSync(dir, { recursive: true, force: true });
});

describe('nanocell-monitor with runc', () => {
  it('receives the listener fd, reports execs and denials, and cleans up after Q', async () => {
    const m = startMonitor('main', ['--max-events', '3']);
    monitors.push(m.child);
    const ready = await m.client.ready().catch((e: Error) => {
      throw new Error(
        `${e.message}\nmonitor stderr: ${m.stderr()}\nevents: ${JSON.stringify(m.events)}`,
      );
    });
    expect(ready.landlock).toBe('off');
    // Monitor events and init frames travel on different pipes: wait, do not assume an order.
    const has = (type: string) => m.events.some((e) => e.type === type);
    expect(await waitFor(() => has('listener') && has('runtime.exited'), 3000)).toBe(true);
    const listener = m.events.find((e) => e.type === 'listener');
    expect(listener?.initPid).toBeGreaterThan(1);
    expect(m.events.find((e) => e.type === 'runtime.exited')).toEqual({
      type: 'runtime.exited',
      status: 0,
    });
    expect(existsSync(m.listener)).toBe(false);

    const r = await exec(m.client, ['/usr/bin/mkdir', '/tmp/x']);
    expect(r.result).toEqual({ kind: 'exited', code: 1 });
    expect(r.stderr).toMatch(/Operation not permitted/);
    // Events come on the monitor's stdout, independently of init's frames.
    expect(
      await waitFor(
        () =>
          m.events.some((e) => e.type === 'exec' && e.path === '/usr/bin/mkdir') &&
          m.events.some((e) => e.type === 'syscall.denied'),
        3000,
      ),
    ).toBe(true);
    const denied = m.events.find((e) => e.type === 'syscall.denied');
    expect(denied).toMatchObject({ arch: 'x86_64', errno: 1, exe: '/usr/bin/mkdir' });
    expect(['mkdir', 'mkdirat']).toContain(denied?.name);
    const execs = m.events.filter((e) => e.type === 'exec');
    expect(execs.map((e) => e.path)).toContain('/.nanocell/init');
    expect(execs.find((e) => e.path === '/usr/bin/mkdir')).toMatchObject({
      argv: ['/usr/bin/mkdir', '/tmp/x'],
      unverified: true,
    });

    // A loop of denials is aggregated past --max-events.
    const flood = await exec(m.client, [
      '/usr/bin/perl',
      '-e',
      'mkdir "/tmp/y" for 1..300; print "ok"',
    ]);
    expect(flood.stdout).toBe('ok');
    expect(
      await waitFor(() => m.events.some((e) => e.type === 'syscall.denied.summary'), 3000),
    ).toBe(true);
    expect(m.events.filter((e) => e.type === 'syscall.denied')).toHaveLength(3);

    m.client.shutdown();
    expect(await m.exited).toBe(0);
    const types = m.events.map((e) => e.type);
    expect(types).toContain('init.exited');
    const summaries = m.events.filter((e) => e.type === 'syscall.denied.summary');
    const last = summaries.at(-1) as unknown as { counts: { count: number }[] };
    expect(last.counts.reduce((n, c) => n + c.count, 0)).toBe(301 - 3);
    expect(runc('delete', '--force', `${id}-main`).status).toBe(0);
    expect(cellProcesses()).toEqual([]);
  });

  it('kills the cell when the supervisor dies (PDEATHSIG), leaving nothing behind', async () => {
    // A shell stands in for the supervisor: the monitor is its child, and fd 3 passes through.
    const bundleName = 'orphan';
    const m = startMonitor(bundleName, [], ['execve']);
    monitors.push(m.child);
    await m.client.ready();
    m.client.exec({ argv: ['sleep', '1000'], env: ['PATH=/usr/bin'], cwd: '/' }).stdin.end();
    expect(await waitFor(() => cellProcesses().length >= 2, 3000)).toBe(true);
    m.child.kill('SIGTERM');
    expect(await m.exited).toBe(0);
    expect(m.events.map((e) => e.type)).toContain('init.exited');
    await m.client.closed;
    expect(await waitFor(() => cellProcesses().length === 0, 3000)).toBe(true);
    expect(existsSync(m.listener)).toBe(false);
    expect(runc('delete', '--force', `${id}-${bundleName}`).status).toBe(0);
  });

  it('arms PDEATHSIG: SIGKILL of its parent takes the cell down', async () => {
    const bundleName = 'pdeath';
    const bundle = writeBundle({
      dir: path.join(dir, bundleName),
      initBin: INIT_BIN,
      listenerPath: path.join(dir, `${bundleName}.sock`),
      hostIdBase: HOST_ID_BASE,
      notify: ['execve'],
    });
    const pidFile = path.join(dir, `${bundleName}.pid`);
    const argv = [
      MONITOR_BIN,
      '--listener',
      path.join(dir, `${bundleName}.sock`),
      '--pid-file',
      pidFile,
      '--',
      'runc',
      '--root',
      runcRoot,
      'run',
      '--detach',
      '--preserve-fds',
      '1',
      '--pid-file',
      pidFile,
      '--bundle',
      bundle,
      `${id}-${bundleName}`,
    ];
    const parent = spawn('sh', ['-c', `"$@" & echo $! >&2; wait`, 'sh', ...argv], {
      stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
    });
    monitors.push(parent);
    let err = '';
    parent.stderr?.on('data', (c: Buffer) => (err += c.toString()));
    const client = new InitClient(parent.stdio[3] as Duplex);
    await client.ready();
    const monitorPid = Number(err.trim().split('\n')[0]);
    expect(monitorPid).toBeGreaterThan(0);
    expect(cellProcesses().length).toBeGreaterThanOrEqual(1);
    parent.kill('SIGKILL');
    await client.closed;
    expect(await waitFor(() => !existsSync(`/proc/${monitorPid}`), 3000)).toBe(true);
    expect(await waitFor(() => cellProcesses().length === 0, 3000)).toBe(true);
    expect(runc('delete', '--force', `${id}-${bundleName}`).status).toBe(0);
  });
});
