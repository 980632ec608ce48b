// The native front (native/front/), which `nanocell` on the PATH is: `nanocell run` carried to a
// running server as a runCli request, and every other invocation handed to the node CLI. Real
// cells through a real server; the front as a real process with real pipes, terminals
// (script(1)) and signals.
import { execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { inProcessServer } from '../../helpers/inProcessServer.js';
import { cliFor, leftovers, REPO } from '../../helpers/cells.js';
import { ROOTLESS_USER } from '../../helpers/rootless.js';

const FRONT = path.join(REPO, 'native', 'build', 'nanocell');

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The front as a process (asynchronously: the server answers on this process's loop). */
function front(
  args: string[],
  o: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string | Buffer; file?: string } = {},
): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      o.file ?? FRONT,
      args,
      { cwd: o.cwd ?? REPO, env: o.env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (_e, stdout, stderr) =>
        resolve({ status: child.exitCode, signal: child.signalCode, stdout, stderr }),
    );
    child.stdin!.end(o.input ?? '');
  });
}

const t = inProcessServer({ 'a.txt': 'from the project\n' });
let env: NodeJS.ProcessEnv;
beforeEach(() => {
  env = { ...process.env, NANOCELL_STATE_ROOT: t.sb.stateRoot };
  delete env.NANOCELL_NO_SERVER;
});

const served = () => t.log.filter((l) => l.startsWith('run (native front)'));

describe('the native front', () => {
  it('carries `nanocell run` to the server: output, stdin, exit status, notes, change set', async () => {
    const r = await front(
      [
        'run',
        '--verbose',
        '--',
        'sh',
        '-c',
        'cat a.txt; cat; echo err >&2; echo new > b.txt; exit 3',
      ],
      { cwd: t.sb.project, env, input: 'through stdin\n' },
    );
    expect(r.stdout).toBe('from the project\nthrough stdin\n');
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('err\n');
    expect(r.stderr).toContain(
      `nanocell: running through nanocell serve on ${t.server!.socketPath} (native front)\n`,
    );
    expect(r.stderr).toMatch(/nanocell: the task's cell \S+ was started for it/);
    // The CLI's closing note, word for word: the server printed it with the CLI's code.
    const id = /changes kept as change set (\S+); review with `nanocell diff \1`/.exec(
      r.stderr,
    )?.[1];
    expect(id).toBeTruthy();
    // `diff` is the node CLI's: the front hands it over.
    expect((await front(['diff', id!], { env })).stdout).toContain('+new');
    expect(served()).toHaveLength(1);
    expect(leftovers(t.sb.stateRoot)).toMatchObject({ cells: [], mounts: [], slots: [] });
  });

  it("reads flags where they were typed: the client's cwd and environment, not the server's", async () => {
    fs.mkdirSync(path.join(t.sb.project, 'sub'));
    fs.writeFileSync(path.join(t.sb.project, 'sub', 'vars.env'), 'FROM_FILE=file-value\n');
    fs.writeFileSync(
      path.join(t.sb.project, 'sub', 'p.yaml'),
      'env:\n  FROM_POLICY: policy-value\n',
    );
    const r = await front(
      [
        'run',
        '--quiet',
        '--apply',
        '--policy',
        'p.yaml',
        '--env-file',
        'vars.env',
        '--env',
        'ONLY_IN_CLIENT',
        '--workspace',
        '..',
        '--report',
        'report.json',
        '--',
        'sh',
        '-c',
        'echo "$FROM_POLICY $FROM_FILE $ONLY_IN_CLIENT"; echo applied > c.txt',
      ],
      { cwd: path.join(t.sb.project, 'sub'), env: { ...env, ONLY_IN_CLIENT: 'client-value' } },
    );
    expect(r).toMatchObject({ status: 0, stdout: 'policy-value file-value client-value\n' });
    expect(process.env.ONLY_IN_CLIENT).toBeUndefined();
    // --workspace .. is the project, --apply wrote to it, --report landed beside the cwd.
    expect(fs.readFileSync(path.join(t.sb.project, 'c.txt'), 'utf8')).toBe('applied\n');
    const report = JSON.parse(
      fs.readFileSync(path.join(t.sb.project, 'sub', 'report.json'), 'utf8'),
    );
    expect(report).toMatchObject({ exitCode: 0, changeSetFate: { action: 'applied' } });
    expect(served()).toHaveLength(1);
  });

  it('gives the CLI’s errors for bad input, before anything runs', async () => {
    const bad = await front(['run', '--memory', 'lots', '--', 'true'], { cwd: t.sb.project, env });
    expect(bad.status).toBe(125);
    expect(bad.stderr).toMatch(/^nanocell: .*memory.*\(fix: .*\)\n$/);
    const missing = await front(['run', '--policy', 'nope.yaml', '--', 'true'], {
      cwd: t.sb.project,
      env,
    });
    expect(missing).toMatchObject({
      status: 125,
      stderr: `nanocell: policy file ${t.sb.project}/nope.yaml does not exist (fix: pass an existing file to --policy)\n`,
    });
    expect(fs.readdirSync(path.join(t.sb.stateRoot, 'cells'))).toEqual([]);
  });

  it('hands every other invocation to the node CLI, which answers as it always does', async () => {
    // A flag the parser refuses, help, and a verb that is not run.
    const unknown = await front(['run', '--bogus', '--', 'true'], { cwd: t.sb.project, env });
    expect(unknown).toMatchObject({
      status: 125,
      stderr: "nanocell: unknown option '--bogus' (fix: see `nanocell --help`)\n",
    });
    const help = await front(['run', '--help'], { env });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^Usage: nanocell run \[options\] -- CMD/);
    const version = await front(['--version'], { env });
    expect(version).toMatchObject({
      status: 0,
      stdout: `${JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version}\n`,
    });
    // --from is the node CLI's (served runs do not carry it yet): its own error, word for word.
    const from = await front(['run', '--from', 'last', '--', 'true'], { cwd: t.sb.project, env });
    expect(from.stderr).toMatch(/^nanocell: session default has no unapplied change set/);
    expect(served()).toEqual([]);
    // NANOCELL_NO_SERVER, and no server at all: the node CLI runs the task in its process.
    const here = await front(['run', '--quiet', '--verbose', '--', 'cat', 'a.txt'], {
      cwd: t.sb.project,
      env: { ...env, NANOCELL_NO_SERVER: '1' },
    });
    expect(here).toMatchObject({ status: 0, stdout: 'from the project\n' });
    expect(here.stderr).toMatch(
      /^nanocell: running in this process \(NANOCELL_NO_SERVER is set\)$/m,
    );
    await t.stop();
    const none = await front(['run', '--quiet', '--verbose', '--', 'cat', 'a.txt'], {
      cwd: t.sb.project,
      env,
    });
    expect(none).toMatchObject({ status: 0, stdout: 'from the project\n' });
    expect(none.stderr).toMatch(/^nanocell: running in this process \(no nanocell serve listens/m);
  });

  it('leaves a run at a terminal to the node CLI (its status line and raw mode)', async () => {
    // script(1) gives the front a terminal on stdin, stdout and stderr.
    const cmd = `${FRONT} run --quiet --verbose --discard -- cat a.txt`;
    const r = await front(['-qec', cmd, '/dev/null'], { cwd: t.sb.project, env, file: 'script' });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('from the project');
    expect(r.stdout).toContain(
      `nanocell: running through nanocell serve on ${t.server!.socketPath}\r\n`,
    );
    expect(served()).toEqual([]);
    expect(t.log.some((l) => l.startsWith('run for pid'))).toBe(true);
  });

  it('takes the state root from --state-root, then NANOCELL_STATE_ROOT, as the CLI does', async () => {
    const noRoot = { ...env };
    delete noRoot.NANOCELL_STATE_ROOT;
    for (const args of [
      ['--state-root', t.sb.stateRoot, 'run'],
      [`--state-root=${t.sb.stateRoot}`, 'run'],
    ]) {
      const r = await front([...args, '--quiet', '--discard', '--', 'cat', 'a.txt'], {
        cwd: t.sb.project,
        env: { ...noRoot, NANOCELL_STATE_ROOT: '/nonexistent/elsewhere' },
      });
      expect(r).toMatchObject({ status: 0, stdout: 'from the project\n' });
    }
    expect(served()).toHaveLength(2);
  });

  it("looks for a user's server where the CLI does: XDG_STATE_HOME, else HOME (strace)", async () => {
    const base = path.dirname(t.sb.project);
    const front = path.join(
      path.dirname(cliFor(ROOTLESS_USER, base)),
      '..',
      '..',
      'native',
      'build',
      'nanocell',
    );
    const home = path.join(base, 'home');
    fs.mkdirSync(home);
    fs.chownSync(home, Number(execFileSync('id', ['-u', ROOTLESS_USER], { encoding: 'utf8' })), 0);
    for (const [extra, want] of [
      [
        { XDG_STATE_HOME: path.join(home, 'xdg') },
        path.join(home, 'xdg', 'nanocell', 'nanocell.sock'),
      ],
      [{}, path.join(home, '.local', 'state', 'nanocell', 'nanocell.sock')],
    ] as const) {
      const trace = path.join(home, 'trace');
      // No server listens there: the front finds none and runs the node CLI, which looks too
      // (and then fails on the missing workspace, in its own process).
      await new Promise<void>((resolve) =>
        execFile(
          'runuser',
          [
            '-u',
            ROOTLESS_USER,
            '--',
            'env',
            '-i',
            `HOME=${home}`,
            `PATH=${process.env.PATH}`,
            ...Object.entries(extra).map(([k, v]) => `${k}=${v}`),
            'strace',
            '-f',
            '-qq',
            '-e',
            'trace=connect',
            '-o',
            trace,
            front,
            'run',
            '--workspace',
            path.join(base, 'none'),
            '--',
            'true',
          ],
          { timeout: 60_000 },
          () => resolve(),
        ),
      );
      const paths = [
        ...fs.readFileSync(trace, 'utf8').matchAll(/sun_path="([^"]+nanocell\.sock)"/g),
      ].map((m) => m[1]);
      // The front's look, then the CLI's: the same socket.
      expect(paths).toEqual([want, want]);
      fs.rmSync(trace);
    }
  });

  it('stops the task on a signal and when its reader goes away, as the CLI does', async () => {
    const child = spawn(
      FRONT,
      ['run', '--quiet', '--', 'sh', '-c', 'echo kept > k.txt; echo up; sleep 60'],
      {
        cwd: t.sb.project,
        env,
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve) =>
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('up\n')) resolve();
      }),
    );
    const t0 = Date.now();
    child.kill('SIGINT');
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(Date.now() - t0).toBeLessThan(15_000);
    expect(code).not.toBe(0);
    expect(err).toMatch(/^nanocell: change set \S+\n$/m);
    // `yes | head -1`: the task is stopped as SIGPIPE would stop it, and the front ends.
    const piped = await front(['-c', `${FRONT} run --quiet --discard -- yes | head -1`], {
      cwd: t.sb.project,
      env,
      file: 'sh',
    });
    expect(piped).toMatchObject({ status: 0, stdout: 'y\n' });
    expect(leftovers(t.sb.stateRoot)).toMatchObject({ cells: [], mounts: [], slots: [] });
  });

  it('carries a MiB of stdin and of stdout byte for byte', async () => {
    const data = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7919) % 251;
    const r = await new Promise<Buffer>((resolve) => {
      const child = spawn(FRONT, ['run', '--quiet', '--discard', '--', 'cat'], {
        cwd: t.sb.project,
        env,
      });
      const chunks: Buffer[] = [];
      child.stdout.on('data', (d: Buffer) => chunks.push(d));
      child.on('close', () => resolve(Buffer.concat(chunks)));
      child.stdin.end(data);
    });
    expect(r.equals(data)).toBe(true);
  });
});

describe('the native front against a server that misbehaves', () => {
  /** A listener on its own state root that answers the runCli with `reply`, then closes. */
  async function fakeServer(reply: Buffer): Promise<{ root: string; close(): void }> {
    const root = path.join(path.dirname(t.sb.project), 'fake');
    fs.mkdirSync(root);
    const srv = net.createServer((c) => {
      c.on('error', () => undefined);
      c.once('data', () => c.end(reply));
    });
    await new Promise<void>((resolve) => srv.listen(path.join(root, 'nanocell.sock'), resolve));
    return { root, close: () => srv.close() };
  }
  const frame = (kind: string, payload = Buffer.alloc(0)) => {
    const h = Buffer.alloc(5);
    h[0] = kind.charCodeAt(0);
    h.writeUInt32BE(payload.length, 1);
    return Buffer.concat([h, payload]);
  };

  it('a server gone before the exit frame: one clear error, exit 125, no hang', async () => {
    const fake = await fakeServer(Buffer.concat([frame('s'), frame('o', Buffer.from('part'))]));
    try {
      const r = await front(['--state-root', fake.root, 'run', '--', 'true'], { env });
      expect(r).toMatchObject({ status: 125, stdout: 'part' });
      expect(r.stderr).toBe(
        `nanocell: the cell server on ${fake.root}/nanocell.sock went away; its cells are gone with it (fix: start it again with nanocell serve, and create new cells)\n`,
      );
    } finally {
      fake.close();
    }
  });

  it('a frame of unknown kind after the start: a protocol error, exit 125', async () => {
    const fake = await fakeServer(
      Buffer.concat([frame('s'), frame('?'), frame('x', Buffer.from([0]))]),
    );
    try {
      const r = await front(['--state-root', fake.root, 'run', '--', 'true'], { env });
      expect(r.status).toBe(125);
      expect(r.stderr).toMatch(
        /^nanocell: cell server protocol: a frame of unknown kind 63 \(fix: /,
      );
    } finally {
      fake.close();
    }
  });
});

describe('runCli on the wire', () => {
  /** Sends lines; returns the raw bytes until the server closes. */
  const raw = (lines: object[]): Promise<Buffer> =>
    new Promise((resolve, reject) => {
      const c = net.connect(t.server!.socketPath);
      const got: Buffer[] = [];
      c.on('data', (d: Buffer) => got.push(d));
      c.on('error', reject);
      c.on('close', () => resolve(Buffer.concat(got)));
      c.on('connect', () => c.write(lines.map((l) => `${JSON.stringify(l)}\n`).join('')));
    });
  const frames = (b: Buffer) => {
    const out: Array<[string, string]> = [];
    for (let o = 0; o < b.length;) {
      const len = b.readUInt32BE(o + 1);
      out.push([String.fromCharCode(b[o]!), b.subarray(o + 5, o + 5 + len).toString('latin1')]);
      o += 5 + len;
    }
    return out;
  };
  const runCli = (args: string[]) => ({
    v: 2,
    id: 1,
    type: 'runCli',
    args,
    cwd: t.sb.project,
    env: { PATH: '/usr/bin:/bin' },
  });

  it('answers in frames (started, output, exit) and answers no request after it', async () => {
    const b = await raw([
      runCli(['--quiet', '--discard', '--', 'sh', '-c', 'printf out; printf err >&2; exit 7']),
      { v: 2, id: 2, type: 'hello' },
      { v: 2, id: 1, type: 'stdin', end: true },
    ]);
    const f = frames(b);
    expect(f[0]).toEqual(['s', '']);
    expect(f.at(-1)).toEqual(['x', '\x07']);
    expect(
      f
        .filter(([k]) => k === 'o')
        .map(([, d]) => d)
        .join(''),
    ).toBe('out');
    expect(
      f
        .filter(([k]) => k === 'e')
        .map(([, d]) => d)
        .join(''),
    ).toBe('err');
    expect(b.includes('"type"')).toBe(false);
    expect(t.log.some((l) => l.startsWith('dropped a hello request on a runCli connection'))).toBe(
      true,
    );
  });

  it('hands back what it does not carry, and refuses runCli after another request', async () => {
    expect(frames(await raw([runCli(['--tty', '--', 'true'])]))).toEqual([['f', '']]);
    expect(frames(await raw([runCli(['--verbose', '--from', 'last', '--', 'true'])]))).toEqual([
      ['f', 'nanocell: --from runs from the node CLI\n'],
    ]);
    const later = await new Promise<string>((resolve) => {
      const c = net.connect(t.server!.socketPath);
      let got = '';
      c.on('data', (d: Buffer) => {
        got += d.toString();
        if (got.split('\n').length > 2) c.end();
      });
      c.on('close', () => resolve(got));
      c.on('connect', () =>
        c.write(
          `${JSON.stringify({ v: 2, id: 1, type: 'hello' })}\n${JSON.stringify({ ...runCli(['--', 'true']), id: 2 })}\n`,
        ),
      );
    });
    expect(later).toMatch(/"id":2,"type":"error".*runCli must be a connection's first request/);
  });
});
