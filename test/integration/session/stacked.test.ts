// A session of two tasks: the first installs with the network on, the second runs without it
// from the first one's unapplied change set; `diff|apply --session` take the two as one.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leftovers, makeSandbox, nanocell, readReport, type Sandbox } from '../../helpers/cells.js';

let server: ChildProcess;
let port: number;
let sb: Sandbox;
const network = { hosts: { 'registry.test': '127.0.0.7' }, cidrs: ['127.0.0.7/32'] };

beforeAll(async () => {
  // The CLI runs under spawnSync, which blocks this process: the server lives in its own.
  server = spawn(
    process.execPath,
    [
      '-e',
      `require('http').createServer((q, r) => r.end('pkg ' + q.url + '\\n')).listen(0, '127.0.0.7', function () {
         console.log(this.address().port);
       });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  port = await new Promise<number>((resolve, reject) => {
    server.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    server.once('exit', () => reject(new Error('the test server exited')));
  });
  sb = makeSandbox({ 'a.txt': 'one\n', 'b.txt': 'gone soon\n', 'src/main.js': 'main\n' });
});

afterAll(() => {
  server?.kill();
  sb?.cleanup();
});

function run(extra: string[], script: string) {
  const base = path.dirname(sb.project);
  const policyFile = path.join(base, 'policy.json');
  fs.writeFileSync(policyFile, JSON.stringify({ network }));
  const report = path.join(base, `report-${Math.random().toString(36).slice(2)}.json`);
  const r = nanocell(
    [
      'run',
      '--quiet',
      '--policy',
      policyFile,
      '--workspace',
      sb.project,
      '--session',
      'build',
      '--report',
      report,
      ...extra,
      '--',
      'sh',
      '-c',
      script,
    ],
    { stateRoot: sb.stateRoot },
  );
  return { ...r, report: fs.existsSync(report) ? readReport(report) : undefined };
}

describe('a session of stacked tasks', () => {
  it('task 2 sees task 1 unapplied, with its own policy; apply --session writes both at once', () => {
    const install = run(
      ['--allow-net', `registry.test:${port}`],
      `mkdir -p node_modules/pkg && curl -sSf http://registry.test:${port}/pkg -o node_modules/pkg/index.js && echo two >> a.txt && rm b.txt && chmod 600 src/main.js`,
    );
    expect(install.stderr).toMatch(/change set/);
    expect(install.status).toBe(0);
    const t1 = install.report!.taskId as string;
    // The project is untouched until the session is applied.
    expect(fs.existsSync(path.join(sb.project, 'node_modules'))).toBe(false);

    const test = run(
      ['--from', 'last'],
      `cat node_modules/pkg/index.js a.txt; test -e b.txt || echo no-b; ` +
        `curl -sSf http://registry.test:${port}/x >/dev/null 2>&1 || echo offline; ` +
        `echo ok > result.txt; echo three >> a.txt`,
    );
    expect(test.status).toBe(0);
    expect(test.stdout).toBe('pkg /pkg\none\ntwo\nno-b\noffline\n');
    const t2 = test.report!.taskId as string;
    expect(test.report!.events).toMatchObject({ netAllowed: 0 });

    // Task 2 alone is not applicable: it was judged against task 1's result.
    const alone = nanocell(['apply', t2], { stateRoot: sb.stateRoot });
    expect(alone.status).not.toBe(0);
    expect(alone.stderr).toContain(`apply --session build`);
    // Its own diff shows only its own change, the session's shows both.
    const d2 = nanocell(['diff', t2], { stateRoot: sb.stateRoot }).stdout;
    expect(d2).toContain('result.txt');
    expect(d2).not.toContain('node_modules');
    const all = nanocell(['diff', '--session', 'build'], { stateRoot: sb.stateRoot });
    expect(all.status).toBe(0);
    for (const p of ['node_modules/pkg/index.js', 'result.txt', 'a.txt', 'b.txt'])
      expect(all.stdout).toContain(p);

    const applied = nanocell(['apply', '--session', 'build'], { stateRoot: sb.stateRoot });
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toMatch(/of 2 task\(s\) of session build/);
    expect(fs.readFileSync(path.join(sb.project, 'a.txt'), 'utf8')).toBe('one\ntwo\nthree\n');
    expect(fs.existsSync(path.join(sb.project, 'b.txt'))).toBe(false);
    expect(fs.readFileSync(path.join(sb.project, 'node_modules/pkg/index.js'), 'utf8')).toBe(
      'pkg /pkg\n',
    );
    expect(fs.statSync(path.join(sb.project, 'src/main.js')).mode & 0o777).toBe(0o600);
    expect(fs.readFileSync(path.join(sb.project, 'result.txt'), 'utf8')).toBe('ok\n');
    // Both change sets and their layers are gone, and both are recorded as applied.
    for (const t of [t1, t2]) {
      expect(fs.existsSync(path.join(sb.stateRoot, 'changes', t))).toBe(false);
      expect(nanocell(['diff', t], { stateRoot: sb.stateRoot }).stderr).toMatch(/was applied/);
    }
    expect(fs.readdirSync(path.join(sb.stateRoot, 'layers'))).toEqual([]);
    expect(leftovers(sb.stateRoot)).toMatchObject({ cells: [], mounts: [], slots: [] });
  });

  it('refuses --from with no earlier task, and discard --session removes the rest', () => {
    const none = run(['--session', 'empty', '--from', 'last'], 'true');
    expect(none.status).not.toBe(0);
    expect(none.stderr).toMatch(/session empty has no unapplied change set/);
    const first = run(['--session', 'fix'], 'echo x > x.txt');
    expect(first.status).toBe(0);
    const second = run(['--session', 'fix', '--from', first.report!.taskId], 'cat x.txt > y.txt');
    expect(second.status).toBe(0);
    const d = nanocell(['discard', '--session', 'fix'], { stateRoot: sb.stateRoot });
    expect(d.stdout).toBe('discarded 2 change set(s) of session fix\n');
    expect(fs.existsSync(path.join(sb.project, 'x.txt'))).toBe(false);
    expect(fs.readdirSync(path.join(sb.stateRoot, 'layers'))).toEqual([]);
  });
});
