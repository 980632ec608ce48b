// Cells owned by a real `nanocell serve` process, created by one client process and driven by
// another through Cell.list / Cell.connect; hostile lines; another uid; a server SIGKILLed.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
// Replies and client outputs are checked field by field with matchers.
/* eslint-disable @typescript-eslint/no-explicit-any */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ROOTLESS_USER } from '../../helpers/rootless.js';
import { CLI, leftovers, makeSandbox, REPO, type Sandbox } from '../../helpers/cells.js';

const LIB = path.join(REPO, 'dist', 'index.js');

function runAsync(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { cwd: REPO, env, timeout: 120_000 }, (e, stdout, stderr) =>
      resolve({
        status: child.exitCode ?? (e as { code?: number } | null)?.code ?? 0,
        stdout,
        stderr,
      }),
    );
    child.stdin!.end();
  });
}

/** A client process: an ES module body with `lib` (nanocell), `root` and `project` in scope. */
function client(body: string, extra: Record<string, string> = {}) {
  const script = `const lib = await import(${JSON.stringify(LIB)});
const root = process.env.ROOT, project = process.env.PROJECT;
const out = (o) => process.stdout.write(JSON.stringify(o) + '\\n');
${body}`;
  return runAsync(process.execPath, ['--input-type=module', '-e', script], {
    ...process.env,
    ROOT: sb.stateRoot,
    PROJECT: sb.project,
    ...extra,
  });
}

const lastJson = (s: string) => JSON.parse(s.trim().split('\n').pop()!) as Record<string, any>;

let sb: Sandbox;
let server: ChildProcess | undefined;
let serverLog = '';
const socketOf = () => path.join(sb.stateRoot, 'nanocell.sock');

async function startServer(): Promise<void> {
  serverLog = '';
  const p = spawn(process.execPath, [CLI, '--state-root', sb.stateRoot, 'serve', '--foreground'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  server = p;
  p.stderr!.on('data', (d: Buffer) => (serverLog += d.toString()));
  while (!/listening on/.test(serverLog)) {
    if (p.exitCode !== null) throw new Error(`nanocell serve exited: ${serverLog}`);
    await sleep(20);
  }
}

async function stopServer(signal: NodeJS.Signals): Promise<void> {
  const p = server;
  server = undefined;
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.once('exit', r));
  p.kill(signal);
  await exited;
}

beforeEach(async () => {
  sb = makeSandbox({ 'a.txt': 'from the project\n' });
  await startServer();
});
afterEach(async () => {
  await stopServer('SIGTERM');
  sb.cleanup();
});

/** Raw lines on one connection; the client half-closes, the server answers and closes. */
function exchange(lines: string[]): Promise<Array<Record<string, any>>> {
  return new Promise((resolve, reject) => {
    const c = net.connect(socketOf());
    let buf = '';
    c.on('data', (d: Buffer) => (buf += d.toString()));
    c.on('error', reject);
    c.on('close', () =>
      resolve(
        buf
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, any>),
      ),
    );
    c.on('connect', () => c.end(lines.map((l) => `${l}\n`).join('')));
  });
}

describe('server-owned cells', () => {
  it('a cell created by one process is driven and destroyed by another', async () => {
    const made = await client(`
const c = await lib.RemoteCell.create({ policy: lib.resolvePolicy(), workspace: project, stateRoot: root });
out({ id: c.id, taskId: c.taskId });`);
    expect(made.stderr).toBe('');
    expect(made.status).toBe(0);
    const { id, taskId } = lastJson(made.stdout);
    // The creating process has exited: the cell lives on in the server.
    const driven = await client(
      `
const { Cell } = lib;
const listed = (await Cell.list({ stateRoot: root })).map((c) => c.id);
const c = await Cell.connect(process.env.ID, { stateRoot: root });
const r = await c.run(['sh', '-c', 'cat "$W/a.txt"; cat; echo "$FOO"; pwd; echo err >&2; exit 3'],
  { input: 'typed\\n', env: { FOO: 'bar', W: project }, cwd: '/tmp' });
const slow = await c.run(['sleep', '30'], { timeoutMs: 300 });
const x = c.exec(['cat']);
const chunks = [];
x.stdout.on('data', (d) => chunks.push(d));
x.stdin.write('streamed ');
x.stdin.end('in');
const streamed = await x.result;
const bytes = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
await c.files.write('bin/data', bytes, { parents: true });
const back = await c.files.read('bin/data');
const stat = await c.files.stat('bin/data');
await c.files.mkdir('empty');
const list = await c.files.list('');
await c.files.remove('empty');
let outside;
try { await c.files.read('../../etc/passwd'); } catch (e) { outside = { kind: e.kind, message: e.message }; }
await c.files.write('b.txt', 'new\\n');
const diff = await c.diff();
const summary = await c.destroy();
const after = (await Cell.list({ stateRoot: root })).map((c) => c.id);
let gone;
try { await Cell.connect(process.env.ID, { stateRoot: root }); } catch (e) { gone = e.message; }
out({ listed, r, slow, streamed, catOut: Buffer.concat(chunks).toString(),
  same: Buffer.compare(back.content, bytes) === 0, size: back.size, stat, names: list.entries.map((e) => e.name),
  outside, diff, summary, after, gone });`,
      { ID: id },
    );
    expect(driven.stderr).toBe('');
    const o = lastJson(driven.stdout);
    expect(o.listed).toContain(id);
    expect(o.r).toMatchObject({
      exitCode: 3,
      endReason: 'exited',
      stdout: 'from the project\ntyped\nbar\n/tmp\n',
      stderr: 'err\n',
    });
    expect(o.slow).toMatchObject({ exitCode: 124, endReason: 'timeout' });
    expect(o.streamed).toMatchObject({ exitCode: 0 });
    expect(o.catOut).toBe('streamed in');
    expect(o.same).toBe(true);
    expect(o.size).toBe(256);
    expect(o.stat).toMatchObject({ path: 'bin/data', type: 'file', size: 256 });
    expect(o.names).toEqual(expect.arrayContaining(['a.txt', 'bin', 'empty']));
    expect(o.outside).toMatchObject({
      kind: 'WORKSPACE',
      message: expect.stringMatching(/outside/),
    });
    expect(o.diff).toMatchObject({ changed: true, truncated: false });
    expect(o.diff.diff).toContain('+new');
    expect(o.summary).toMatchObject({ taskId, cellId: id, endReason: 'exited' });
    expect(o.summary.changeSet.dir).toBeTruthy();
    expect(o.after).not.toContain(id);
    expect(o.gone).toMatch(/no cell .* on this cell server/);
    expect(leftovers(sb.stateRoot)).toMatchObject({ cells: [], mounts: [], slots: [] });
    // The project is untouched until the change set is applied.
    expect(fs.existsSync(path.join(sb.project, 'b.txt'))).toBe(false);
  });

  it('a client that goes away takes its streamed command with it, not the cell', async () => {
    const a = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const lib = await import(${JSON.stringify(LIB)});
const c = await lib.RemoteCell.create({ policy: lib.resolvePolicy(), workspace: process.env.PROJECT, stateRoot: process.env.ROOT });
const x = c.exec(['sh', '-c', 'echo started; exec sleep 600']);
x.stdout.once('data', () => process.stdout.write(c.id + '\\n'));
await x.result;`,
      ],
      { env: { ...process.env, ROOT: sb.stateRoot, PROJECT: sb.project }, stdio: 'pipe' },
    );
    let out = '';
    a.stdout.on('data', (d: Buffer) => (out += d.toString()));
    while (!out.includes('\n')) {
      if (a.exitCode !== null) throw new Error(`client exited early: ${out}`);
      await sleep(20);
    }
    const id = out.trim();
    a.kill('SIGKILL');
    const b = await client(
      `
const { Cell } = lib;
let c = await Cell.connect(process.env.ID, { stateRoot: root });
const before = c.commands;
// The server learns of the close from the kernel: wait for it to have killed the command.
for (let i = 0; i < 600 && c.commands.length > 0; i++) {
  await new Promise((r) => setTimeout(r, 50));
  c = await Cell.connect(process.env.ID, { stateRoot: root });
}
const r = await c.run(['sh', '-c', 'echo still here; ps -eo comm']);
await c.destroy();
out({ before, after: c.commands, r });`,
      { ID: id },
    );
    const o = lastJson(b.stdout);
    expect(o.after).toEqual([]);
    expect(o.r.stdout).toMatch(/^still here\n/);
    expect(o.r.stdout).not.toMatch(/sleep/);
  });

  it('destroys its cells when it stops, keeping their change sets', async () => {
    const made = await client(`
const c = await lib.RemoteCell.create({ policy: lib.resolvePolicy(), workspace: project, stateRoot: root });
await c.files.write('made.txt', 'before the stop\\n');
out({ taskId: c.taskId });`);
    expect(made.status).toBe(0);
    const { taskId } = lastJson(made.stdout);
    await stopServer('SIGTERM');
    expect(serverLog).toMatch(/stopping/);
    expect(leftovers(sb.stateRoot)).toMatchObject({ cells: [], mounts: [], slots: [] });
    const diff = await runAsync(process.execPath, [
      CLI,
      '--state-root',
      sb.stateRoot,
      'diff',
      taskId,
    ]);
    expect(diff.stdout).toContain('+before the stop');
  });

  it('answers hostile lines with errors and keeps serving on the same connection', async () => {
    const huge = `{"v":2,"id":9,"type":"hello","pad":"${'x'.repeat(9 * 1024 * 1024)}"}`;
    const replies = await exchange([
      '{not json',
      huge,
      JSON.stringify({ v: 2, id: 1, type: 'exec', cell: 'abc', argv: 'ls' }),
      JSON.stringify({ v: 2, id: 2, type: 'info', cell: 'nosuchcell' }),
      JSON.stringify({ v: 2, id: 3, type: 'launch' }),
      JSON.stringify({ v: 2, id: 4, type: 'files.read', cell: 'abc', path: 7 }),
      JSON.stringify({ v: 2, id: 5, type: 'hello' }),
    ]);
    const err = (m: Record<string, any>) => `${m.id}: ${m.error?.message}`;
    // Answers come as each request is done, not in the order sent: matched by id.
    const got = replies.map((m) => (m.type === 'error' ? err(m) : m.type));
    expect(got).toHaveLength(7);
    expect(got).toEqual(
      expect.arrayContaining([
        'null: cell server protocol: a line is not JSON',
        `null: cell server protocol: a line is longer than ${8 * 1024 * 1024} bytes`,
        expect.stringMatching(/^1: cell server protocol: bad exec request at argv/),
        expect.stringMatching(/^2: no cell "nosuchcell" on this cell server/),
        expect.stringMatching(/^3: cell server protocol: unknown message type "launch"/),
        expect.stringMatching(/^4: cell server protocol: bad files.read request at path/),
        'result',
      ]),
    );
    expect(replies.find((m) => m.type === 'result')).toMatchObject({
      id: 5,
      result: { server: 'nanocell' },
    });
    // Another protocol version is refused in one line, and that connection is closed.
    const [old] = await exchange([JSON.stringify({ v: 1, type: 'hello' })]);
    expect(old!.error.message).toBe('the client speaks protocol v1, this cell server speaks v2');
    // The server is still up for everyone.
    const ok = await client(`out({ n: (await lib.Cell.list({ stateRoot: root })).length });`);
    expect(lastJson(ok.stdout)).toEqual({ n: 0 });
  });

  it('keeps serving others while a client does not read its output', async () => {
    const { resolvePolicy } = await import('../../../src/policy/load.js');
    // A run whose output fills the socket: this client never reads a byte of it.
    const hog = net.connect(socketOf());
    hog.pause();
    await new Promise<void>((resolve) => hog.once('connect', () => resolve()));
    const task = {
      policy: JSON.parse(JSON.stringify(resolvePolicy())),
      workspace: sb.project,
      command: ['head', '-c', '200000000', '/dev/zero'],
      changes: 'discard',
      stdin: false,
    };
    hog.write(`${JSON.stringify({ v: 2, id: 1, type: 'run', task })}\n`);
    await sleep(3000);
    // The server's writes to it wait for the socket; they never block its loop (a socket
    // left blocking by the credential check once did: every other client then hung).
    const hello = await new Promise<string>((resolve) => {
      const c = net.connect(socketOf());
      let got = '';
      const done = () => {
        clearTimeout(timer);
        c.destroy();
        resolve(got);
      };
      const timer = setTimeout(done, 5000);
      c.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.endsWith('\n')) done();
      });
      c.on('connect', () => c.write('{"v":2,"id":1,"type":"hello"}\n'));
    });
    expect(hello).toMatch(/"type":"result"/);
    hog.destroy();
  });

  it('refuses a peer of another uid, even past the file mode (SO_PEERCRED)', async () => {
    fs.chmodSync(sb.stateRoot, 0o755);
    fs.chmodSync(socketOf(), 0o666);
    const script = `const c=require('net').connect(${JSON.stringify(socketOf())});let b='';c.on('data',d=>b+=d);c.on('close',()=>process.stdout.write(b));c.on('connect',()=>c.write('{"v":2,"id":1,"type":"list"}\\n'));`;
    const r = await runAsync('runuser', [
      '-u',
      ROOTLESS_USER,
      '--',
      process.execPath,
      '-e',
      script,
    ]);
    const reply = JSON.parse(r.stdout.trim()) as Record<string, any>;
    expect(reply).toMatchObject({ type: 'error', id: null });
    expect(reply.error.message).toMatch(/^uid \d+ may not use this cell server/);
    expect(serverLog).toMatch(/refused pid \d+ uid \d+/);
  });

  it('a server killed with SIGKILL fails its clients with a clear error, never a hang', async () => {
    const c = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `const lib = await import(${JSON.stringify(LIB)});
const c = await lib.RemoteCell.create({ policy: lib.resolvePolicy(), workspace: process.env.PROJECT, stateRoot: process.env.ROOT });
const x = c.exec(['sleep', '600']);
x.stdout.resume();
process.stdout.write('ready\\n');
const errs = [];
await x.result.catch((e) => errs.push(e.message));
process.stdout.write('failed\\n');
// Asked again once the server's process is gone (not while the kernel is still closing it).
await new Promise((r) => process.stdin.once('data', r));
await lib.Cell.list({ stateRoot: process.env.ROOT }).catch((e) => errs.push(e.message + ' (fix: ' + e.fix + ')'));
process.stdout.write(JSON.stringify(errs) + '\\n');`,
      ],
      { env: { ...process.env, ROOT: sb.stateRoot, PROJECT: sb.project }, stdio: 'pipe' },
    );
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((r) => c.once('exit', r));
    while (!out.includes('ready\n')) {
      if (c.exitCode !== null) throw new Error(`client exited early: ${out}`);
      await sleep(20);
    }
    await stopServer('SIGKILL');
    while (!out.includes('failed\n')) {
      if (c.exitCode !== null) throw new Error(`client exited early: ${out}`);
      await sleep(20);
    }
    c.stdin.end('go\n');
    expect(await exited).toBe(0);
    const errs = JSON.parse(out.trim().split('\n').pop()!) as string[];
    expect(errs[0]).toMatch(/^the cell server on \S+ went away.*its cells are gone with it/);
    expect(errs[1]).toMatch(
      /^no cell server is running on \S+ \(fix: start it with nanocell serve/,
    );
    // The next start cleans up what the killed server left (its cell died with it).
    await startServer();
    await runAsync(process.execPath, [CLI, '--state-root', sb.stateRoot, 'gc']);
    expect(leftovers(sb.stateRoot)).toMatchObject({ cells: [], mounts: [] });
  });
});
