// nanocell-init's Kubernetes session mode (native/init/attach.c): `--control-listen PATH` as a
// pod's pid 1, and `--attach PATH` as the command pods/exec runs, which carries the control
// protocol over its own stdin and stdout. Real processes; a pid namespace from unshare(1) where
// the test needs init to be pid 1.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Duplex } from 'node:stream';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InitClient } from '../../../src/cell/initClient.js';
import { TEST_ROOT } from '../../helpers/cells.js';
import { ROOTLESS_USER } from '../../helpers/rootless.js';
import { buildNative, INIT_BIN } from './nativeBuild.js';
import { alive, BASE_ENV, run, waitFor } from './initHarness.js';

const children: ChildProcess[] = [];
const dirs: string[] = [];

beforeAll(() => buildNative());

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function scratch(): string {
  fs.mkdirSync(TEST_ROOT, { recursive: true });
  const d = fs.mkdtempSync(path.join(TEST_ROOT, 'attach-'));
  fs.chmodSync(d, 0o755);
  dirs.push(d);
  return d;
}

/**
 * Each child's exit status once its stdio has closed too ('close', not 'exit'): a one-line
 * error printed just before exiting must be read before the test looks at stderr.
 */
const closed = new WeakMap<ChildProcess, Promise<number | null>>();
function track(c: ChildProcess): void {
  closed.set(c, new Promise((r) => c.once('close', (code) => r(code))));
}
function exited(c: ChildProcess): Promise<number | null> {
  return closed.get(c) ?? Promise.resolve(c.exitCode);
}

function podInit(sock: string, extra: string[] = ['--landlock', 'off'], wrap: string[] = []) {
  const [bin, ...pre] = [...wrap, INIT_BIN];
  const c = spawn(bin!, [...pre, '--control-listen', sock, ...extra], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  track(c);
  let err = '';
  c.stderr!.on('data', (d: Buffer) => (err += d));
  children.push(c);
  return { child: c, stderr: () => err };
}

/** `init --attach`: its stdin and stdout as the supervisor's end of the control channel. */
function attach(sock: string, wrap: string[] = []) {
  const [bin, ...pre] = [...wrap, INIT_BIN];
  const c = spawn(bin!, [...pre, '--attach', sock], { stdio: ['pipe', 'pipe', 'pipe'] });
  track(c);
  let err = '';
  c.stderr!.on('data', (d: Buffer) => (err += d));
  c.stdin!.on('error', () => undefined);
  children.push(c);
  const client = new InitClient(Duplex.from({ readable: c.stdout!, writable: c.stdin! }));
  return { child: c, client, stderr: () => err };
}

// Generous: the machine is shared, and a loaded one can take seconds to start a process.
const listening = async (sock: string) =>
  expect(await waitFor(() => fs.existsSync(sock), 30_000), `${sock} appears`).toBe(true);

describe('nanocell-init --control-listen / --attach (the pod session)', () => {
  it('serves the protocol over the attach stdio, once: the path goes and a second peer is refused', async () => {
    const sock = path.join(scratch(), 'control.sock');
    const pod = podInit(sock);
    await listening(sock);
    expect(fs.statSync(sock).mode & 0o077).toBe(0); // the owner only
    const a = attach(sock);
    expect(await a.client.ready()).toMatchObject({ landlock: 'off' });
    const r = await run(a.client, ['sh', '-c', 'echo over-attach; cat'], { stdin: 'in\n' });
    expect([r.stdout, r.result]).toEqual(['over-attach\nin\n', { kind: 'exited', code: 0 }]);
    expect(fs.existsSync(sock)).toBe(false);
    const second = attach(sock);
    expect(await exited(second.child)).toBe(125);
    expect(second.stderr()).toMatch(/cannot attach to .*control\.sock: connect/);
    a.client.shutdown();
    expect(await exited(pod.child)).toBe(0);
    expect(await exited(a.child)).toBe(0);
  });

  it('the exec stream ending (stdin EOF) ends the cell: the command is killed, init and attach exit', async () => {
    const sock = path.join(scratch(), 'control.sock');
    const pod = podInit(sock);
    await listening(sock);
    const a = attach(sock);
    await a.client.ready();
    const h = a.client.exec({ argv: ['sleep', '60'], env: BASE_ENV, cwd: '/' });
    const pid = await h.started;
    expect(alive(pid)).toBe(true);
    a.child.stdin!.end();
    expect(await exited(pod.child)).toBe(0);
    expect(await exited(a.child)).toBe(0);
    expect(await waitFor(() => !alive(pid), 2000)).toBe(true);
  });

  it('as pid 1 of a pid namespace: waits idle, and the runtime SIGTERM before any session ends it', async () => {
    const sock = path.join(scratch(), 'control.sock');
    const pod = podInit(sock, ['--landlock', 'off'], ['unshare', '--pid', '--fork']);
    await listening(sock);
    const kids = fs
      .readFileSync(`/proc/${pod.child.pid}/task/${pod.child.pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .map(Number);
    expect(kids).toHaveLength(1);
    expect(fs.readFileSync(`/proc/${kids[0]}/status`, 'utf8')).toMatch(/^NSpid:\s+\d+\s+1$/m);
    process.kill(kids[0]!, 'SIGTERM');
    expect(await exited(pod.child)).toBe(0);
  });

  it('binds before Landlock, so a pod with Landlock required still gets its session', async () => {
    const dir = scratch();
    const sock = path.join(dir, 'control.sock');
    const pod = podInit(sock, [
      '--landlock',
      'required',
      '--ll-read',
      '/',
      '--ll-exec',
      '/usr',
      '--ll-write',
      dir,
    ]);
    await listening(sock);
    const a = attach(sock);
    expect(await a.client.ready()).toMatchObject({ landlock: 'on' });
    const r = await run(a.client, ['sh', '-c', `echo x > ${dir}/ok; echo y > /var/tmp/nope-$$`]);
    expect(r.result).toEqual({ kind: 'exited', code: 2 });
    expect(r.stderr).toMatch(/Permission denied/);
    expect(fs.readFileSync(`${dir}/ok`, 'utf8')).toBe('x\n');
    a.client.shutdown();
    expect(await exited(pod.child)).toBe(0);
  });

  it('another uid cannot take the session; the pod user then can', async () => {
    // scripts/setup.sh creates the rootless tests' user.
    expect(spawnSync('id', [ROOTLESS_USER]).status).toBe(0);
    const sock = path.join(scratch(), 'control.sock');
    const pod = podInit(sock);
    await listening(sock);
    const stranger = attach(sock, ['runuser', '-u', ROOTLESS_USER, '--']);
    expect(await exited(stranger.child)).toBe(125);
    expect(stranger.stderr()).toMatch(/connect: Permission denied/);
    // Past the socket's mode, the peer's uid is checked too: with the mode opened up, a
    // connection from another uid is closed unread, and the listener keeps waiting.
    fs.chmodSync(sock, 0o666);
    const other = attach(sock, ['runuser', '-u', ROOTLESS_USER, '--']);
    expect(await exited(other.child)).toBe(0);
    expect(fs.existsSync(sock)).toBe(true);
    const a = attach(sock);
    expect(await a.client.ready()).toMatchObject({ landlock: 'off' });
    a.client.shutdown();
    expect(await exited(pod.child)).toBe(0);
  });

  it('--attach to no socket, and a bad --control-listen path, are one-line errors', async () => {
    const dir = scratch();
    const a = attach(path.join(dir, 'none.sock'));
    expect(await exited(a.child)).toBe(125);
    expect(a.stderr()).toMatch(
      /^nanocell-init: cannot attach to .*none\.sock: connect: No such file/,
    );
    const bad = podInit('relative.sock');
    expect(await exited(bad.child)).toBe(125);
    expect(bad.stderr()).toMatch(/--control-listen relative\.sock: not an absolute socket path/);
    // The socket is made under a name of its own and linked into place once it listens: a file
    // already at the path is refused as bind would refuse it, never replaced.
    const taken = path.join(dir, 'taken.sock');
    fs.writeFileSync(taken, 'keep\n');
    const busy = podInit(taken);
    expect(await exited(busy.child)).toBe(125);
    expect(busy.stderr()).toMatch(/listening on .*taken\.sock: File exists/);
    expect(fs.readFileSync(taken, 'utf8')).toBe('keep\n');
    expect(fs.readdirSync(dir).sort()).toEqual(['taken.sock']);
  });
});
