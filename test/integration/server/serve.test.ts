// The cell server: its socket, who may use it, its protocol, and `nanocell run` through it.
import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inProcessServer } from '../../helpers/inProcessServer.js';
import { ROOTLESS_USER } from '../../helpers/rootless.js';
import { CLI, leftovers, nanocell, REPO } from '../../helpers/cells.js';

// The server runs in this process, so every client runs asynchronously (a spawnSync would
// block the event loop the server answers on).
function runAsync(
  cmd: string,
  args: string[],
  o: { input?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ status: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { cwd: REPO, env: o.env ?? process.env, timeout: 120_000 },
      (e, stdout, stderr) =>
        resolve({
          status: child.exitCode ?? (e as { code?: number } | null)?.code ?? 0,
          stdout,
          stderr,
        }),
    );
    child.stdin!.end(o.input ?? '');
  });
}

const t = inProcessServer({ 'a.txt': 'from the project\n' });

/** One raw exchange: send lines and half-close; collect the answers until the server closes. */
function exchange(lines: string[]): Promise<Array<Record<string, unknown>>> {
  return new Promise((resolve, reject) => {
    const c = net.connect(t.server!.socketPath);
    let buf = '';
    c.on('data', (d: Buffer) => (buf += d.toString()));
    c.on('error', reject);
    c.on('close', () =>
      resolve(
        buf
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      ),
    );
    c.on('connect', () => c.end(lines.map((l) => `${l}\n`).join('')));
  });
}

const runCli = (args: string[], o: { stateRoot: string; input?: string }) =>
  runAsync(process.execPath, [CLI, ...args], {
    input: o.input,
    env: { ...process.env, NANOCELL_STATE_ROOT: o.stateRoot },
  });

describe('nanocell serve', () => {
  it('listens on a 0600 socket under the state root and answers hello', async () => {
    const st = fs.statSync(path.join(t.sb.stateRoot, 'nanocell.sock'));
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect(await exchange([JSON.stringify({ v: 2, id: 1, type: 'hello' })])).toEqual([
      {
        v: 2,
        id: 1,
        type: 'result',
        result: { server: 'nanocell', version: 'test', pid: process.pid },
      },
    ]);
  });

  it('refuses another protocol version, bad JSON and unknown messages with an error', async () => {
    const [other] = await exchange([JSON.stringify({ v: 1, type: 'hello' })]);
    expect(other).toMatchObject({
      type: 'error',
      error: { message: 'the client speaks protocol v1, this cell server speaks v2' },
    });
    const [bad] = await exchange(['{not json']);
    expect(bad).toMatchObject({
      type: 'error',
      error: { message: expect.stringMatching(/not JSON/) },
    });
    const [odd] = await exchange([JSON.stringify({ v: 2, id: 1, type: 'launch' })]);
    expect(odd).toMatchObject({
      type: 'error',
      id: 1,
      error: { message: expect.stringMatching(/unknown message type "launch"/) },
    });
    // Still serving.
    expect((await exchange([JSON.stringify({ v: 2, id: 2, type: 'hello' })]))[0]).toMatchObject({
      type: 'result',
    });
  });

  it("refuses a peer whose uid is not the server's, even past the file mode (SO_PEERCRED)", async () => {
    execFileSync('id', [ROOTLESS_USER]);
    // Open the way on purpose: only the credential check is left to refuse the peer.
    fs.chmodSync(t.sb.stateRoot, 0o755);
    fs.chmodSync(t.server!.socketPath, 0o666);
    const script = `const c=require('net').connect(${JSON.stringify(t.server!.socketPath)});let b='';c.on('data',d=>b+=d);c.on('close',()=>process.stdout.write(b));c.on('connect',()=>c.write('{"v":2,"id":1,"type":"hello"}\\n'));`;
    const r = await runAsync('runuser', [
      '-u',
      ROOTLESS_USER,
      '--',
      process.execPath,
      '-e',
      script,
    ]);
    const reply = JSON.parse(r.stdout.trim()) as { type: string; error: { message: string } };
    expect(reply.type).toBe('error');
    expect(reply.error.message).toMatch(/uid \d+ may not use this cell server/);
    expect(t.log.some((l) => /^refused pid \d+ uid \d+/.test(l))).toBe(true);
  });

  it('runs `nanocell run` through the server: output, stdin, exit status, change set', async () => {
    const r = await runCli(
      [
        'run',
        '--quiet',
        '--verbose',
        '--workspace',
        t.sb.project,
        '--',
        'sh',
        '-c',
        'cat a.txt; cat; echo err >&2; echo new > b.txt; exit 3',
      ],
      {
        stateRoot: t.sb.stateRoot,
        input: 'through stdin\n',
      },
    );
    expect(r.stdout).toBe('from the project\nthrough stdin\n');
    expect(r.stderr).toContain('err\n');
    expect(r.status).toBe(3);
    expect(r.stderr).toContain(
      `nanocell: running through nanocell serve on ${t.server!.socketPath}\n`,
    );
    expect(t.log.some((l) => l.includes('run for pid') && l.includes('"sh"'))).toBe(true);
    const id = /change set (\S+)/.exec(r.stderr)?.[1];
    expect(id).toBeTruthy();
    const diff = await runCli(['diff', id!], { stateRoot: t.sb.stateRoot });
    expect(diff.stdout).toContain('+new');
    expect(leftovers(t.sb.stateRoot)).toMatchObject({ cells: [], mounts: [], slots: [] });
  });

  it('leaves `nanocell run` in-process when no server listens', async () => {
    await t.stop();
    expect(fs.existsSync(path.join(t.sb.stateRoot, 'nanocell.sock'))).toBe(false);
    const r = nanocell(
      ['run', '--quiet', '--verbose', '--workspace', t.sb.project, '--', 'cat', 'a.txt'],
      { stateRoot: t.sb.stateRoot },
    );
    expect(r).toMatchObject({ status: 0, stdout: 'from the project\n' });
    expect(r.stderr).toMatch(
      /^nanocell: running in this process \(no nanocell serve listens on \S+nanocell\.sock\)$/m,
    );
    expect(t.log.filter((l) => l.includes('run for pid'))).toEqual([]);
  });
});
