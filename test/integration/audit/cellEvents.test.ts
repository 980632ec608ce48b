// The audit trail from real cells through the real CLI: every event type is recorded with
// contiguous sequence numbers and an intact chain, and the views (tasks, logs, report, export,
// verify, ps, the live status line) show real tasks.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';

const ADDR = '127.0.0.8';
let server: ChildProcess;
let port: number;
let sb: Sandbox;
let policyFile: string;
let degradedPolicyFile: string;
const ids: { main: string; timeout: string; oom: string } = { main: '', timeout: '', oom: '' };

interface Event {
  type: string;
  seq: number;
  taskId: string;
  [k: string]: unknown;
}

const cli = (args: string[]) => nanocell(args, { stateRoot: sb.stateRoot, cwd: sb.project });
const exportOf = (id: string): Event[] => {
  const r = cli(['export', id]);
  expect(r.status).toBe(0);
  return r.stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Event);
};
const lastTaskId = (): string =>
  (JSON.parse(cli(['tasks', '--json', '--limit', '1']).stdout) as { id: string }[])[0]!.id;

beforeAll(async () => {
  // spawnSync (the CLI helper) blocks this process: the server lives in its own.
  server = spawn(
    process.execPath,
    [
      '-e',
      `require('http').createServer((q, r) => r.end('hello ' + q.url)).listen(0, '${ADDR}', function () {
         console.log(this.address().port);
       });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  port = await new Promise<number>((resolve, reject) => {
    server.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    server.once('exit', () => reject(new Error('the test server exited')));
  });
  sb = makeSandbox({ 'README.md': 'hello\n' });
  const base = path.dirname(sb.project);
  policyFile = path.join(base, 'policy.json');
  fs.writeFileSync(
    policyFile,
    JSON.stringify({
      network: {
        allow: [`web.test:${port}`],
        hosts: { 'web.test': ADDR, 'evil.test': ADDR },
        cidrs: [`${ADDR}/32`],
      },
    }),
  );
  // An honest degradation in root mode: the policy re-allows a syscall the threat model forbids.
  degradedPolicyFile = path.join(base, 'degraded.json');
  fs.writeFileSync(
    degradedPolicyFile,
    JSON.stringify({ syscalls: { allow: ['ptrace'], unsafeAllowForbidden: true } }),
  );

  // 1. Network (allowed and denied), a denied syscall, execs, file changes, the pids limit and
  //    the output cap, in one task.
  const main = cli([
    'run',
    '--quiet',
    '--session',
    'audit-main',
    '--policy',
    policyFile,
    '--pids',
    '24',
    '--output-limit',
    '64k',
    '--',
    'sh',
    '-c',
    [
      `curl -sS http://web.test:${port}/ok; echo`,
      `curl -s -o /dev/null -w '%{http_code}\\n' http://evil.test:${port}/no`,
      'unshare -r true 2>/dev/null || echo unshare-refused',
      'echo edit >> README.md; echo new > added.txt',
      "head -c 200000 /dev/zero | tr '\\0' x",
      // Last: once the pids limit is hit, forks fail until the sleeps end with the cell.
      '(for i in $(seq 40); do sleep 3 >/dev/null 2>&1 & done) 2>/dev/null; exit 0',
    ].join('; '),
  ]);
  expect(main.stdout).toMatch(
    /^hello \/ok\n403\nunshare-refused\nx+\n\[nanocell: output truncated/,
  );
  ids.main = lastTaskId();

  // 2. The wall-clock timeout, under a degraded policy.
  const timeout = cli([
    'run',
    '--quiet',
    '--session',
    'audit-limits',
    '--policy',
    degradedPolicyFile,
    '--timeout',
    '1s',
    '--',
    'sleep',
    '30',
  ]);
  expect(timeout.status).toBe(124);
  ids.timeout = lastTaskId();

  // 3. Out of memory.
  const oom = cli([
    'run',
    '--quiet',
    '--session',
    'audit-limits',
    '--memory',
    '64m',
    '--',
    'python3',
    '-c',
    'b = bytearray(512 * 1024 * 1024)',
  ]);
  expect(oom.status).toBe(137);
  ids.oom = lastTaskId();
}, 120_000);

afterAll(() => {
  server?.kill();
  sb?.cleanup();
});

describe('events from real cells', () => {
  it('records every event type, with contiguous seq and an intact chain', () => {
    const all = new Map<string, Event[]>();
    for (const id of Object.values(ids)) {
      const events = exportOf(id);
      all.set(id, events);
      expect(events.map((e) => e.seq)).toEqual([...events.keys()]);
      expect(events.every((e) => e.taskId === id)).toBe(true);
      const v = cli(['verify', id]);
      expect(v.status).toBe(0);
      expect(v.stdout).toBe(`ok: task ${id}: hash chain intact (${events.length} events)\n`);
    }
    const types = new Set([...all.values()].flat().map((e) => e.type));
    expect([...types].sort()).toEqual(
      [
        'exec',
        'fs.change',
        'limit.hit',
        'net.allowed',
        'net.denied',
        'policy.degraded',
        'syscall.denied',
        'task.created',
        'task.exited',
        'task.started',
      ].sort(),
    );

    const main = all.get(ids.main)!;
    expect(main[0]).toMatchObject({ type: 'task.created', session: 'audit-main' });
    expect(main.find((e) => e.type === 'task.started')).toMatchObject({
      cellId: expect.stringMatching(/^\w+$/),
    });
    expect(main.at(-1)).toMatchObject({ type: 'task.exited', endReason: 'exited', exitCode: 0 });
    const of = (type: string) => main.filter((e) => e.type === type);
    expect(of('exec').map((e) => (e.argv as string[])[0])).toEqual(
      expect.arrayContaining(['curl', 'unshare', 'head']),
    );
    expect(of('net.allowed')).toEqual([
      expect.objectContaining({ host: 'web.test', port, ip: ADDR, rule: `allow:web.test:${port}` }),
    ]);
    expect(of('net.denied')).toEqual([
      expect.objectContaining({ host: 'evil.test', port, rule: 'default-deny' }),
    ]);
    expect(of('syscall.denied')).toEqual([
      expect.objectContaining({ name: 'unshare', exe: '/usr/bin/unshare', errno: 1 }),
    ]);
    expect(of('fs.change')).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ path: 'README.md', kind: 'modified' }),
        expect.objectContaining({ path: 'added.txt', kind: 'added' }),
      ]),
    );
    expect(of('limit.hit').map((e) => e.limit)).toContain('output');

    const timeout = all.get(ids.timeout)!;
    expect(timeout).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ type: 'limit.hit', limit: 'timeout' }),
        expect.objectContaining({
          type: 'policy.degraded',
          control: 'syscalls',
          reason: expect.stringMatching(/re-allowed forbidden syscalls: ptrace/),
        }),
      ]),
    );
    expect(timeout.at(-1)).toMatchObject({ type: 'task.exited', endReason: 'timeout' });
    const oom = all.get(ids.oom)!;
    expect(oom).toEqual(
      expect.arrayContaining([expect.objectContaining({ type: 'limit.hit', limit: 'oom' })]),
    );
    expect(oom.at(-1)).toMatchObject({ type: 'task.exited', endReason: 'oom', exitCode: 137 });
  });
});

describe('limit.hit pids from a real cell', () => {
  // The cell records it whether the cgroup or RLIMIT_NPROC (which refuses first) stopped the fork.
  it('records limit.hit pids when the pids limit refuses forks', () => {
    const events = exportOf(ids.main);
    expect(events.filter((e) => e.type === 'limit.hit').map((e) => e.limit)).toContain('pids');
  });
});

describe('CLI views of real tasks', () => {
  it('tasks: aligned columns, filters and JSON, no colour when piped', () => {
    const r = cli(['tasks']);
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain('\u001b[');
    const lines = r.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TASK\s+CREATED\s+DURATION\s+STATUS\s+REASON\s+EXIT\s+SESSION/);
    expect(lines).toHaveLength(4);
    const at = lines[0]!.indexOf('SESSION');
    for (const l of lines.slice(1)) expect(l.slice(at)).toMatch(/^audit-(main|limits)\s/);
    expect(lines[1]).toContain(ids.oom);
    expect(lines[3]).toMatch(/exited\s+exited\s+0\s+audit-main/);

    const json = (args: string[]) =>
      (JSON.parse(cli(['tasks', '--json', ...args]).stdout) as { id: string }[]).map((t) => t.id);
    expect(json(['--session', 'audit-limits'])).toEqual([ids.oom, ids.timeout]);
    expect(json(['--session', 'audit-main'])).toEqual([ids.main]);
    expect(json(['--status', 'exited', '--session', 'audit-main'])).toEqual([ids.main]);
    expect(json(['--status', 'abnormal'])).toEqual([]);
    expect(json(['--since', '10m'])).toHaveLength(3);
    const rows = JSON.parse(cli(['tasks', '--json']).stdout) as Record<string, unknown>[];
    expect(rows.find((t) => t.id === ids.timeout)).toMatchObject({
      status: 'exited',
      endReason: 'timeout',
      exitCode: 124,
    });
  });

  it('colour only on a TTY', () => {
    const r = spawnSync('script', ['-qec', `node ${CLI} tasks --session audit-main`, '/dev/null'], {
      env: { ...process.env, NANOCELL_STATE_ROOT: sb.stateRoot, NO_COLOR: '' },
      encoding: 'utf8',
    });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('\u001b[');
    expect(r.stdout).toContain(ids.main);
  });

  it('report: what ran, what was denied, what changed, resources and why it ended', () => {
    const r = cli(['report', ids.main]);
    expect(r.status).toBe(0);
    const t = r.stdout;
    expect(t).toContain(`Task ${ids.main}`);
    expect(t).toMatch(/command\s+sh -c /);
    expect(t).toMatch(/Ran \(exec[^\n]*\n(.*\n)*\s+curl -sS http:\/\/web\.test/);
    expect(t).toMatch(
      /network\s+evil\.test:\d+ \(evil\.test is not in network\.allow, rule default-deny\)/,
    );
    expect(t).toMatch(/syscalls\s+unshare by \/usr\/bin\/unshare -> EPERM/);
    expect(t).toMatch(/exec\s+none recorded/);
    expect(t).toMatch(/files\s+none recorded/);
    expect(t).toMatch(/Network allowed\n\s+web\.test:\d+\s+1 connection/);
    expect(t).toMatch(/1 added, 1 modified, 0 deleted/);
    expect(t).toMatch(/\+ added\.txt/);
    expect(t).toMatch(/peak memory [\d.]+ [KM]iB · peak pids \d+ · cpu /);
    expect(t).toMatch(/hit\s+output: output cap of 65536 bytes reached/);
    expect(t).toMatch(/Why it ended\n\s+the command exited with status 0/);
    expect(t).not.toContain('\u001b[');

    const timeout = cli(['report', ids.timeout]).stdout;
    expect(timeout).toMatch(/degraded\s+syscalls: policy re-allowed forbidden syscalls: ptrace/);
    expect(timeout).toMatch(/Why it ended\n\s+the wall-clock timeout fired/);
    expect(cli(['report', ids.oom]).stdout).toMatch(/Why it ended\n\s+the cell ran out of memory/);

    const json = JSON.parse(cli(['report', ids.main, '--json']).stdout);
    expect(json.task.id).toBe(ids.main);
    expect(json.denied.network[0].item.host).toBe('evil.test');
    expect(json.denied.syscalls[0].item.name).toBe('unshare');
    expect(json.changed.counts).toMatchObject({ added: 1, modified: 1 });
  });

  it('logs and export agree; logs lines are one per event', () => {
    const events = exportOf(ids.main);
    const json = cli(['logs', ids.main, '--json']).stdout.trimEnd().split('\n');
    expect(json.map((l) => JSON.parse(l))).toEqual(events);
    const human = cli(['logs', ids.main.slice(0, 14)])
      .stdout.trimEnd()
      .split('\n');
    expect(human).toHaveLength(events.length);
    expect(human[0]).toMatch(/#0\s+task\.created\s+created: sh -c/);
    expect(human.find((l) => l.includes('net.denied'))).toMatch(
      /evil\.test:\d+: evil\.test is not/,
    );
  });

  it('an unknown task id is one line and exit 125; the store still answers', () => {
    for (const cmd of ['logs', 'report', 'export', 'verify']) {
      const r = cli([cmd, '0000000000zzzz']);
      expect(r.status).toBe(125);
      expect(r.stderr).toBe(
        'nanocell: no task "0000000000zzzz" in the audit trail (fix: list recorded tasks with `nanocell tasks`)\n',
      );
    }
    expect(cli(['verify', ids.main]).status).toBe(0);
  });

  it('ps shows the running cell; logs --follow ends when the task ends', async () => {
    // The task waits on its stdin, so the test decides when it ends, however slow the host.
    const child = spawn(
      'node',
      [CLI, 'run', '--quiet', '--session', 'audit-live', '--', 'sh', '-c', 'read x; echo "got $x"'],
      {
        cwd: sb.project,
        env: { ...process.env, NANOCELL_STATE_ROOT: sb.stateRoot },
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.resume();
    const exited = new Promise<number | null>((r) => child.once('close', r));
    let follow: ChildProcess | undefined;
    try {
      let ps: Record<string, unknown>[] = [];
      for (let i = 0; i < 300 && !(ps[0]?.commands as unknown[] | undefined)?.length; i++) {
        await new Promise((r) => setTimeout(r, 100));
        ps = JSON.parse(cli(['ps', '--json']).stdout) as Record<string, unknown>[];
      }
      const id = String(ps[0]?.taskId);
      expect(ps).toEqual([
        expect.objectContaining({
          taskId: id,
          session: 'audit-live',
          ageMs: expect.any(Number),
          memoryBytes: expect.any(Number),
          commands: [['sh', '-c', 'read x; echo "got $x"']],
        }),
      ]);
      expect(ps[0]!.memoryBytes as number).toBeGreaterThan(0);
      const human = cli(['ps']).stdout.trimEnd().split('\n');
      expect(human[0]).toMatch(/^TASK\s+SESSION\s+AGE\s+MEMORY\s+PIDS\s+COMMAND$/);
      expect(human[1]).toMatch(
        new RegExp(
          `^${id}\\s+audit-live\\s+\\d+[smh]\\s+[\\d.]+ [KM]iB\\s+\\d+\\s+sh -c "read x; echo`,
        ),
      );
      expect(human[1]!.indexOf('audit-live')).toBe(human[0]!.indexOf('SESSION'));
      expect(JSON.parse(cli(['tasks', '--json', '--status', 'running']).stdout)).toHaveLength(1);

      // --follow prints what is there, keeps going while the task runs, and ends with it.
      const f = spawn('node', [CLI, 'logs', '--follow', id], {
        env: { ...process.env, NANOCELL_STATE_ROOT: sb.stateRoot },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      follow = f;
      let followed = '';
      f.stdout!.on('data', (d: Buffer) => (followed += d.toString()));
      const followExit = new Promise<number | null>((r) => f.once('close', r));
      for (let i = 0; i < 300 && !followed.includes('task.started'); i++) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(followed).toMatch(/task\.started/);
      expect(followed).not.toMatch(/task\.exited/);
      expect(f.exitCode).toBeNull();
      child.stdin.end('hi\n');
      expect(await exited).toBe(0);
      expect(out).toBe('got hi\n');
      expect(await followExit).toBe(0);
      const lines = followed.trimEnd().split('\n');
      expect(lines[0]).toMatch(/task\.created/);
      expect(lines.at(-1)).toMatch(/task\.exited\s+ended: exited, exit 0/);
      expect(JSON.parse(cli(['ps', '--json']).stdout)).toEqual([]);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      if (follow && follow.exitCode === null) follow.kill('SIGKILL');
    }
  });

  it('verify: a payload changed with the sqlite3 CLI is detected (exit 1)', () => {
    const db = path.join(sb.stateRoot, 'nanocell.db');
    const sql = `UPDATE events SET payload = replace(payload, '"limit":"oom"', '"limit":"pids"') WHERE task_id = '${ids.oom}' AND type = 'limit.hit';`;
    const r = spawnSync('sqlite3', [db, sql], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    const v = cli(['verify', ids.oom]);
    expect(v.status).toBe(1);
    expect(v.stdout).toMatch(
      new RegExp(
        `^TAMPERED: task ${ids.oom}: chain broken at event \\d+: hash does not match the event\\n$`,
      ),
    );
    // The other tasks' chains are untouched.
    expect(cli(['verify', ids.main]).status).toBe(0);
  });
});

describe('live status line', () => {
  const live = (extra: string[]) =>
    spawnSync(
      'script',
      [
        '-qefc',
        [
          'node',
          CLI,
          'run',
          ...extra,
          '--policy',
          policyFile,
          '--',
          'sh',
          '-c',
          `'curl -s -o /dev/null http://evil.test:${port}/; unshare -r true 2>/dev/null; sleep 1.5'`,
        ].join(' '),
        '/dev/null',
      ],
      {
        cwd: sb.project,
        env: { ...process.env, NANOCELL_STATE_ROOT: sb.stateRoot },
        encoding: 'utf8',
        timeout: 60_000,
      },
    );

  it('on a TTY shows elapsed time, memory, network decisions and denials', () => {
    const r = live([]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(
      /nanocell [\d.]+m?s · mem [\d.]+ [KM]iB · exec \d+ · net 0 ok 1 denied · syscalls 1 denied/,
    );
  });

  it('is off with --quiet or when stderr is not a TTY', () => {
    const quiet = live(['--quiet']);
    expect(quiet.status).toBe(0);
    expect(quiet.stdout).not.toMatch(/nanocell [\d.]+m?s ·/);
    const piped = cli(['run', '--', 'sh', '-c', 'sleep 0.6']);
    expect(piped.status).toBe(0);
    expect(piped.stderr).toBe('');
  });
});
