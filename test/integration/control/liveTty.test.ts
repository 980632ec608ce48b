// `nanocell exec -t TASK -- CMD`: a terminal inside a running cell, reached from a second
// process through the task's control socket and driven through a real host pty as a user
// would drive it. The command's terminal is the cell's own (devpts newinstance); the user's
// terminal is raw while it runs and restored after, also when the exec is refused.
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CellServer } from '../../../src/server/server.js';
import {
  makeSandbox,
  nanocell,
  readReport,
  spawnNanocell,
  type Sandbox,
} from '../../helpers/cells.js';
import { endLiveTask, startLiveTask, type LiveTask } from '../../helpers/liveTask.js';
import { drivePty } from '../../helpers/ptyDriver.js';
import { ROOTLESS_USER } from '../../helpers/rootless.js';

let sb: Sandbox;
let task: LiveTask | undefined;
let server: CellServer | undefined;
beforeEach(() => {
  sb = makeSandbox({ 'a.txt': 'a\n' });
});
afterEach(async () => {
  await endLiveTask(task);
  task = undefined;
  await server?.close();
  server = undefined;
  sb.cleanup();
});

const PROMPT = 'cell\\$ ';
const execT = (id: string, cmd: string[]) => ['exec', '-t', id, '--', ...cmd];
const BASH = ['env', 'PS1=cell$ ', 'bash', '--norc', '--noprofile', '-i'];
const report = () => path.join(sb.project, '..', 'report.json');
const logsOf = (id: string) => nanocell(['logs', id], { stateRoot: sb.stateRoot }).stdout;

describe('exec -t: a terminal in a running cell', () => {
  it('line editing, stty size and resize, Ctrl-C to the foreground job, exit status, terminal restored', async () => {
    task = await startLiveTask(sb, 'sleep 300', report());
    const r = await drivePty(
      execT(task.id.slice(0, 8), BASH),
      [
        { expect: PROMPT },
        { raw: true },
        { send: 'tty\r' },
        { expect: '/dev/pts/\\d+' },
        // Backspace erases in the cell's line editor: "echo abX<DEL>c" runs "echo abc".
        { send: 'echo abX\x7fc\r' },
        { expect: '\rabc\r' },
        { send: 'stty size\r' },
        { expect: '30 100' },
        { resize: [132, 43] },
        { sleep: 0.3 },
        { send: 'stty size\r' },
        { expect: '43 132' },
        // ^C is a byte to the cell's terminal, whose line discipline signals its foreground
        // job: sleep dies of SIGINT, the shell survives.
        { send: 'sleep 60\r' },
        { sleep: 0.5 },
        { send: '\x03' },
        { expect: PROMPT },
        { send: 'echo rc=$?\r' },
        { expect: 'rc=130' },
        { send: 'cat a.txt; exit 7\r' },
      ],
      sb.stateRoot,
    );
    expect(r.log).toEqual(['raw=True']);
    expect(r.status).toBe(7);
    expect(r.restored).toBe(true);
    expect(r.screen).toMatch(/a\r\r?\nexit/);
    // The exec's end is not the task's: it still runs, and recorded the exec.
    expect(task.child.exitCode).toBeNull();
    expect(logsOf(task.id)).toMatch(/control\s+exec -t by uid 0 pid \d+: env PS1=/);
  }, 120_000);

  it('the command killed with its terminal when nanocell exec is killed; terminal restored on SIGTERM', async () => {
    task = await startLiveTask(sb, 'sleep 300', report());
    const r = await drivePty(
      execT(task.id, ['sh', '-c', 'echo started; exec sleep 301']),
      [{ expect: 'started' }, { raw: true }, { signal: 15 }],
      sb.stateRoot,
    );
    expect(r.log).toEqual(['raw=True']);
    expect(r.restored).toBe(true);
    // SIGTERM was passed on to the command in the cell, which it ended.
    expect(r.status).toBe(143);
    const ps = nanocell(
      ['exec', task.id, '--', 'sh', '-c', 'cat /proc/[0-9]*/cmdline | tr "\\0" " "'],
      {
        stateRoot: sb.stateRoot,
      },
    );
    expect(ps.stdout).toContain('sleep 300');
    expect(ps.stdout).not.toContain('sleep 301');
  }, 120_000);

  it('another unprivileged user is refused, and their terminal is left as it was', async () => {
    task = await startLiveTask(sb, 'sleep 300', report());
    const asOther = () =>
      drivePty(execT(task!.id, ['id']), [], sb.stateRoot, { asUser: ROOTLESS_USER });
    // The modes keep them out before their terminal is touched.
    const byModes = await asOther();
    expect(byModes.status).toBe(125);
    expect(byModes.screen).toMatch(/not yours to control/);
    expect(byModes.restored).toBe(true);
    // Modes opened up by mistake: the peer check refuses, after raw mode, which is undone.
    fs.chmodSync(path.join(sb.stateRoot, 'control'), 0o755);
    fs.chmodSync(path.join(sb.stateRoot, 'control', `${task.id}.sock`), 0o777);
    const byPeer = await asOther();
    expect(byPeer.status).toBe(125);
    expect(byPeer.screen).toMatch(/uid \d+ did not start task .*; only uid 0 or root may control/);
    expect(byPeer.restored).toBe(true);
    expect(logsOf(task.id)).toMatch(/control\s+refused connect by uid \d+/);
    expect(logsOf(task.id)).not.toMatch(/exec -t by/);
  }, 120_000);

  it('-t without a terminal on stdin is refused with the fix', async () => {
    task = await startLiveTask(sb, 'sleep 300', report());
    const r = nanocell(execT(task.id, ['true']), { stateRoot: sb.stateRoot });
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/-t needs a terminal on stdin.*-i/s);
  }, 120_000);

  it('works through nanocell serve: the served task serves the control socket', async () => {
    const served: string[] = [];
    server = await CellServer.listen({
      stateRoot: sb.stateRoot,
      version: 'test',
      log: (m) => served.push(m),
    });
    task = await startLiveTask(sb, 'sleep 300', report());
    const r = await drivePty(
      execT(task.id, ['sh', '-c', 'stty size; tty; read x; echo "got $x"']),
      [{ expect: '/dev/pts/\\d+' }, { send: 'hi\r' }, { expect: 'got hi' }],
      sb.stateRoot,
    );
    expect(r.status).toBe(0);
    expect(r.restored).toBe(true);
    expect(r.screen).toMatch(/^30 100\r/);
    // The task ran in the server (this process), which served its control socket.
    expect(served).toEqual([expect.stringMatching(/^run for pid \d+: \["sh","-c","sleep 300"\]/)]);
    // The server answers in this process: the kill must not block its event loop.
    const kill = spawnNanocell(['kill', task.id], { stateRoot: sb.stateRoot });
    kill.stdout.resume();
    kill.stderr.resume();
    const [code] = (await once(kill, 'close')) as [number];
    expect(code).toBe(0);
    await task.closed;
    expect(readReport(report()).endReason).toBe('killed');
  }, 120_000);
});

describe('exec -t on the wire: a hostile client', () => {
  /** Opens an exec and sends `lines` once it started; the replies up to the server's close. */
  async function session(id: string, open: object, lines: string[]) {
    const sock = net.connect(path.join(sb.stateRoot, 'control', `${id}.sock`));
    let buf = '';
    sock.setEncoding('utf8').on('data', (d: string) => {
      buf += d;
      if (buf.includes('"started"') && lines.length) for (const l of lines.splice(0)) sock.write(l);
    });
    await once(sock, 'connect');
    sock.write(`${JSON.stringify({ v: 2, verb: 'exec', ...open })}\n`);
    const t0 = Date.now();
    await once(sock, 'close');
    return {
      ms: Date.now() - t0,
      replies: buf
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    };
  }

  it('a bad frame inside a terminal session gets one error, the connection closes, the command dies', async () => {
    task = await startLiveTask(sb, 'sleep 300', report());
    const tty = { argv: ['sleep', '301'], tty: { cols: 80, rows: 24 } };
    const cases: [object, string, RegExp][] = [
      [tty, '{"v":2,"op":"resize","cols":70000,"rows":24}\n', /^bad resize input at cols/],
      [tty, '{"v":2,"op":"ioctl","request":21522}\n', /^unknown exec input "ioctl"/],
      [tty, '{"v":1,"op":"stdin","data":"aGk="}\n', /^protocol version 1 is not spoken here/],
      [tty, `${'x'.repeat(2 * 1024 * 1024)}\n`, /^a line longer than 1048576 bytes/],
      [
        { argv: ['sleep', '301'] },
        '{"v":2,"op":"resize","cols":80,"rows":24}\n',
        /without a terminal/,
      ],
    ];
    for (const [open, bad, error] of cases) {
      expect(task.child.exitCode, task.stderr()).toBeNull();
      const { replies } = await session(task.id, open, [bad]);
      expect(replies.map((m) => m.type)).toEqual(['started', 'error']);
      expect(replies[1]!.error).toMatch(error);
    }
    const ps = nanocell(
      ['exec', task.id, '--', 'sh', '-c', 'cat /proc/[0-9]*/cmdline | tr "\\0" " "'],
      {
        stateRoot: sb.stateRoot,
      },
    );
    expect(ps.stdout).toContain('sleep 300');
    expect(ps.stdout).not.toContain('sleep 301');
    // A bad size on open is refused before anything starts; that connection keeps serving.
    const sock = net.connect(path.join(sb.stateRoot, 'control', `${task.id}.sock`));
    let buf = '';
    sock.setEncoding('utf8').on('data', (d: string) => (buf += d));
    await once(sock, 'connect');
    sock.write('{"v":2,"verb":"exec","argv":["sh"],"tty":{"cols":0,"rows":24}}\n');
    sock.write('{"v":2,"verb":"hello"}\n');
    for (let i = 0; i < 200 && buf.split('\n').length < 3; i++) await sleep(50);
    sock.destroy();
    const [bad, hello] = buf
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(bad).toMatchObject({
      type: 'error',
      error: expect.stringMatching(/^bad exec request at tty.cols/),
    });
    expect(hello).toMatchObject({ type: 'hello', taskId: task.id });
  }, 120_000);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
