// `nanocell exec/stop/kill TASK` from a second process, through the control socket of the
// `nanocell run` that supervises the cell; refused for another unprivileged user, by the
// socket's modes and, when those are opened up, by the peer-credential check.
import { spawnSync } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CLI, makeSandbox, nanocell, readReport, type Sandbox } from '../../helpers/cells.js';
import { endLiveTask, startLiveTask, type LiveTask } from '../../helpers/liveTask.js';
import { ROOTLESS_USER } from '../../helpers/rootless.js';

let sb: Sandbox;
let running: LiveTask | undefined;
beforeEach(() => {
  sb = makeSandbox({ 'a.txt': 'a\n' });
});
afterEach(async () => {
  await endLiveTask(running);
  running = undefined;
  sb.cleanup();
});

const cli = (args: string[], input = '') =>
  nanocell(args, { stateRoot: sb.stateRoot, cwd: sb.project, input });

/** Starts `nanocell run` in the background; resolves with the task id once its socket is up. */
async function startTask(script: string, report: string) {
  running = await startLiveTask(sb, script, report);
  return running;
}

/** The CLI as the unprivileged user, against the root-owned state root. */
function asOtherUser(args: string[]) {
  return spawnSync(
    'runuser',
    ['-u', ROOTLESS_USER, '--', 'env', `NANOCELL_STATE_ROOT=${sb.stateRoot}`, 'node', CLI, ...args],
    { cwd: '/', encoding: 'utf8', timeout: 60_000 },
  );
}

describe('live-cell verbs', () => {
  it('exec streams output and status, -i passes stdin, stop ends the task and collects', async () => {
    const report = path.join(sb.project, '..', 'report.json');
    const { id, closed } = await startTask(
      'trap "echo got TERM; exit 7" TERM; sleep 120 & wait',
      report,
    );
    const sock = path.join(sb.stateRoot, 'control', `${id}.sock`);
    expect(fs.statSync(sock).mode & 0o777).toBe(0o600);
    expect(fs.statSync(path.dirname(sock)).mode & 0o777).toBe(0o700);

    // A unique prefix is enough.
    const x = cli([
      'exec',
      id.slice(0, 6),
      '--',
      'sh',
      '-c',
      'echo out; echo err >&2; echo new > b.txt; exit 3',
    ]);
    expect(x).toMatchObject({ status: 3, stdout: 'out\n', stderr: 'err\n' });
    // The command ran in this task's cell: it sees the workspace view, not the project.
    expect(fs.existsSync(path.join(sb.project, 'b.txt'))).toBe(false);
    expect(cli(['exec', id, '--', 'cat', 'b.txt']).stdout).toBe('new\n');
    expect(cli(['exec', '-i', id, '--', 'wc', '-c'], 'x'.repeat(200_000)).stdout.trim()).toBe(
      '200000',
    );
    expect(cli(['exec', id, '--', 'no-such-command']).status).toBe(127);

    const stop = cli(['stop', '--time', '5', id]);
    expect(stop.status, stop.stderr).toBe(0);
    await closed;
    expect(running!.child.exitCode).toBe(7);
    const r = readReport(report);
    expect(r.endReason).toBe('stopped');
    // The change set the exec made was collected, as after a timeout.
    expect(r.changeSetFate).toEqual({ action: 'kept' });
    expect(cli(['diff', id]).stdout).toContain('b.txt');
    const log = cli(['logs', id]).stdout;
    expect(log).toMatch(/control\s+exec by uid 0 pid \d+: sh -c/);
    expect(log).toMatch(/control\s+stop by uid 0/);
    // The socket goes with the task; the verbs then say it is not running.
    expect(fs.existsSync(sock)).toBe(false);
    const after = cli(['exec', id, '--', 'true']);
    expect(after.status).toBe(125);
    expect(after.stderr).toMatch(/no task .* running under this state root/);
  });

  it('kill ends the task at once; another user is refused by modes and by peer credentials', async () => {
    const report = path.join(sb.project, '..', 'report.json');
    const { id, closed } = await startTask('trap "" TERM; sleep 120', report);

    const denied = asOtherUser(['exec', id, '--', 'id']);
    expect(denied.status).toBe(125);
    expect(denied.stderr).toMatch(/not yours to control/);

    // Modes opened up by mistake: the peer check still refuses, and records the attempt.
    fs.chmodSync(path.join(sb.stateRoot, 'control'), 0o755);
    fs.chmodSync(path.join(sb.stateRoot, 'control', `${id}.sock`), 0o777);
    for (const verb of [
      ['exec', id, '--', 'id'],
      ['stop', id],
      ['kill', id],
    ]) {
      const r = asOtherUser(verb);
      expect(r.status, verb.join(' ')).toBe(125);
      expect(r.stderr).toMatch(/uid \d+ did not start task .*; only uid 0 or root may control it/);
    }
    expect(running!.child.exitCode).toBeNull();

    const t0 = Date.now();
    const kill = cli(['kill', id]);
    expect(kill.status, kill.stderr).toBe(0);
    await closed;
    // SIGTERM is ignored by the task; kill does not wait for it.
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(running!.child.exitCode).toBe(137);
    expect(readReport(report).endReason).toBe('killed');
    const log = cli(['logs', id]).stdout;
    expect(log.match(/control\s+refused connect by uid \d+/g)).toHaveLength(3);
    expect(log).toMatch(/control\s+kill by uid 0/);
  });

  it('hostile lines get an error and the socket keeps serving', async () => {
    const { id } = await startTask('sleep 120', path.join(sb.project, '..', 'report.json'));
    const sock = net.connect(path.join(sb.stateRoot, 'control', `${id}.sock`));
    let buf = '';
    sock.setEncoding('utf8').on('data', (d: string) => (buf += d));
    const replies = async (n: number) => {
      for (let i = 0; i < 200 && buf.split('\n').length - 1 < n; i++)
        await new Promise((r) => setTimeout(r, 50));
      return buf
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    };
    await once(sock, 'connect');
    sock.write(`${'x'.repeat(3 * 1024 * 1024)}\n`);
    sock.write('{not json\n');
    sock.write('[1,2]\n');
    sock.write('{"v":2,"verb":"format-disk"}\n');
    sock.write('{"v":1,"verb":"hello"}\n');
    sock.write('{"v":2,"verb":"exec","argv":[]}\n');
    sock.write('{"v":2,"verb":"hello"}\n');
    const r = await replies(7);
    expect(r.slice(0, 6).map((m) => [m.type, m.error])).toEqual([
      ['error', 'a line longer than 1048576 bytes was skipped'],
      ['error', 'the line is not JSON'],
      ['error', 'the line is not a JSON object'],
      ['error', 'unknown verb "format-disk"'],
      ['error', expect.stringMatching(/^protocol version 1 is not spoken here/)],
      ['error', expect.stringMatching(/^bad exec request at argv/)],
    ]);
    expect(r[6]).toMatchObject({ v: 2, type: 'hello', taskId: id, session: 'default' });
    sock.destroy();
    // A fresh connection still works end to end.
    expect(cli(['exec', id, '--', 'echo', 'still here']).stdout).toBe('still here\n');
  });
});
