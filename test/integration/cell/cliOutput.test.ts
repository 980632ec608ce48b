/* eslint-disable no-control-regex -- these tests assert on raw terminal bytes */
// The CLI's output as users see it: into a closed pipe, on a terminal with the live status
// line, ids typed short, scripts that use --quiet, and a command that does not exist.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditStore } from '../../../src/audit/store.js';
import { CLI, makeSandbox, nanocell, REPO, type Sandbox } from '../../helpers/cells.js';
import { nanocellOnPty } from '../../helpers/pty.js';

let sb: Sandbox;
beforeAll(() => {
  sb = makeSandbox({ 'a.txt': 'a\n' });
});
afterAll(() => sb.cleanup());

const cli = (args: string[]) => nanocell(args, { stateRoot: sb.stateRoot });
const run = (args: string[]) => cli(['run', '--workspace', sb.project, '--quiet', ...args]);

/** `nanocell ARGS | head -1` in a shell; the pipeline's statuses of both sides. */
function intoHead(args: string[]): { status: number; stderr: string; first: string } {
  const q = (a: string) => `'${a.replace(/'/g, `'\\''`)}'`;
  const script = `node ${q(CLI)} ${args.map(q).join(' ')} 2>"$ERR" | head -c 3 >/dev/null; echo "\${PIPESTATUS[0]}"`;
  const err = path.join(sb.stateRoot, '..', 'pipe.err');
  const r = spawnSync('bash', ['-c', script], {
    cwd: REPO,
    env: { ...process.env, NANOCELL_STATE_ROOT: sb.stateRoot, ERR: err },
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: Number(r.stdout.trim()), stderr: fs.readFileSync(err, 'utf8'), first: r.stdout };
}

function tasks(): { id: string; status: string; endReason: string | null }[] {
  return JSON.parse(cli(['tasks', '--json']).stdout) as never;
}

describe('into a closed pipe', () => {
  it('run | head stops the task quietly, and the task is recorded as ended', () => {
    const r = intoHead(['run', '--workspace', sb.project, '--quiet', '--discard', '--', 'yes']);
    expect(r.stderr).not.toMatch(/Error|at .*\.js|EPIPE/);
    expect(r.status).toBe(137);
    const [last] = tasks();
    expect(last).toMatchObject({ status: 'exited', endReason: 'killed' });
  });

  it('logs, export, tasks and diff end quietly with their status', () => {
    const out = run(['--', 'sh', '-c', 'for i in $(seq 1 300); do echo $i > f$i.txt; done']);
    expect(out.status).toBe(0);
    const id = tasks()[0]!.id;
    for (const args of [['logs', id], ['export', id], ['tasks'], ['diff', id]]) {
      const r = intoHead(args);
      expect(r.stderr, args.join(' ')).toBe('');
      expect(r.status, args.join(' ')).toBe(0);
    }
    expect(cli(['discard', id.slice(0, 12)]).status).toBe(0);
  });
});

describe('ids, --quiet and failures to start', () => {
  it('diff, apply and discard take unique prefixes; ambiguity lists the candidates', () => {
    const a = run(['--', 'sh', '-c', 'echo 1 > one.txt']);
    const b = run(['--', 'sh', '-c', 'echo 2 > two.txt']);
    // --quiet still names the change set: scripts need it.
    const idA = /change set ([0-9a-z]{18})/.exec(a.stderr)![1]!;
    const idB = /change set ([0-9a-z]{18})/.exec(b.stderr)![1]!;
    expect(a.stderr.trim().split('\n')).toHaveLength(1);
    let common = 0;
    while (idA[common] === idB[common]) common++;
    const amb = cli(['diff', idA.slice(0, common)]);
    expect(amb.status).toBe(125);
    expect(amb.stderr).toMatch(/ambiguous/);
    expect(amb.stderr).toContain(idA);
    expect(amb.stderr).toContain(idB);
    const diff = cli(['diff', idA.slice(0, common + 1)]);
    expect(diff.stdout).toContain('+++ b/one.txt');
    expect(cli(['apply', idA.slice(0, common + 1)]).status).toBe(0);
    expect(fs.readFileSync(path.join(sb.project, 'one.txt'), 'utf8')).toBe('1\n');
    expect(cli(['discard', idB.slice(0, common + 1)]).status).toBe(0);
    const none = cli(['diff', idB]);
    expect(none.status).toBe(125);
    // Its recorded fate is named instead of "no change set".
    expect(none.stderr).toMatch(/^nanocell: the change set of task \S+ was discarded \S+ by /);
    expect(cli(['report', idB.slice(0, common + 1), '--json']).status).toBe(0);
  });

  it('a missing or non-executable command gets one line naming it', () => {
    const missing = run(['--', 'no-such-binary-here']);
    expect(missing.status).toBe(127);
    expect(missing.stderr).toMatch(/^nanocell: no-such-binary-here: not found/m);
    const notExec = run(['--', '/etc/passwd']);
    expect(notExec.status).toBe(126);
    expect(notExec.stderr).toMatch(/^nanocell: \/etc\/passwd: cannot execute/m);
  });

  it('refuses a --timeout that no timer can hold, and unknown runtimes', () => {
    const r = run(['--timeout', '25d', '--', 'true']);
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(/limits\.timeout must be at most 24d/);
    expect(run(['--timeout', '24d', '--', 'true']).status).toBe(0);
    const d = cli(['doctor', '--runtime', 'bogus']);
    expect(d.status).toBe(125);
    expect(d.stderr).toMatch(/unknown runtime "bogus"; known runtimes are runc, crun, runsc/);
  });
});

describe('the live status line on a terminal', () => {
  it('is cleared around output and never overwrites a partial line', () => {
    const script =
      'echo line1; sleep 0.7; printf "Password: "; sleep 0.7; printf "50%%\\r"; sleep 0.7; echo; echo done';
    const r = nanocellOnPty(
      ['run', '--workspace', sb.project, '--discard', '--', 'sh', '-c', script],
      sb.stateRoot,
    );
    expect(r.status).toBe(0);
    const s = r.screen;
    // The status line was drawn while the task ran (after a whole line).
    expect(s).toMatch(/line1\r\n(\r\x1b\[2K)+\x1b\[2mnanocell /);
    // Nothing was drawn (or cleared) between the prompt and the task's next output.
    const prompt = s.indexOf('Password: ');
    expect(s.slice(prompt, s.indexOf('50%', prompt))).toBe('Password: ');
    // The progress line stays until the task itself ends it.
    expect(s.slice(s.indexOf('50%'), s.indexOf('50%') + 6)).toBe('50%\r\r\n');
    // Every clear sits at a line start, so no task text is ever erased.
    for (const m of s.matchAll(/\r\x1b\[2K/g)) {
      const before = s.slice(0, m.index);
      expect(before === '' || /[\n\r]$/.test(before)).toBe(true);
    }
  });

  it('is not drawn when stderr is not a terminal', () => {
    const r = cli(['run', '--workspace', sb.project, '--discard', '--', 'sh', '-c', 'sleep 0.6']);
    expect(r.stderr).not.toContain('\x1b');
  });
});

describe('audit store prefix resolution', () => {
  it('is the same resolver for every verb', () => {
    const store = AuditStore.open(path.join(sb.stateRoot, 'nanocell.db'));
    try {
      const id = store.listTasks({ limit: 1 })[0]!.id;
      expect(store.resolveTaskId(id.slice(0, 14).toUpperCase())).toBe(id);
    } finally {
      store.close();
    }
  });
});
