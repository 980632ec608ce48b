// The CLI as users run it: exit codes, bad input, the report.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { leftovers, makeSandbox, nanocell, readReport, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
beforeAll(() => {
  sb = makeSandbox({ 'a.txt': 'a\n' });
});
afterAll(() => sb.cleanup());

const run = (args: string[], opts: { input?: string } = {}) =>
  nanocell(['run', '--workspace', sb.project, '--quiet', ...args], {
    stateRoot: sb.stateRoot,
    ...opts,
  });

describe('nanocell run', () => {
  it('follows Docker exit-code conventions', () => {
    expect(run(['--', 'sh', '-c', 'exit 42']).status).toBe(42);
    expect(run(['--', 'true']).status).toBe(0);
    expect(run(['--', 'no-such-binary-here']).status).toBe(127);
    expect(run(['--', '/etc/passwd']).status).toBe(126);
    expect(run(['--timeout', '1s', '--', 'sleep', '20']).status).toBe(124);
    expect(run(['--memory', '48m', '--', 'python3', '-c', 'x = bytearray(400 << 20)']).status).toBe(
      137,
    );
    expect(run(['--', 'sh', '-c', 'kill -TERM $$']).status).toBe(143);
  });

  it('streams stdin and stdout, applies --env, and writes the report', () => {
    const report = path.join(sb.stateRoot, '..', 'report.json');
    const r = run(
      [
        '--env',
        'GREETING=hi',
        '--session',
        'cli-test',
        '--report',
        report,
        '--',
        'sh',
        '-c',
        'echo $GREETING; cat; echo oops >&2',
      ],
      {
        input: 'from stdin\n',
      },
    );
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('hi\nfrom stdin\n');
    expect(r.stderr).toContain('oops');
    const rep = readReport(report);
    expect(rep).toMatchObject({
      session: 'cli-test',
      command: ['sh', '-c', 'echo $GREETING; cat; echo oops >&2'],
      exitCode: 0,
      endReason: 'exited',
      runtime: { name: 'runc' },
      limits: { memoryBytes: 1024 ** 3, pids: 512, cpus: 1 },
      degradations: [],
    });
    expect(rep.taskId).toMatch(/^[0-9a-z]+$/);
    expect(rep.durationMs).toBeGreaterThan(0);
    expect(rep.resources.peakMemoryBytes).toBeGreaterThan(0);
    expect(rep.resources.peakPids).toBeGreaterThan(0);
    expect(rep.resources.cpuTimeMs).toBeGreaterThanOrEqual(0);
    // The report is also stored with the task.
    expect(fs.existsSync(path.join(sb.stateRoot, 'reports', `${rep.taskId}.json`))).toBe(true);
  });

  it('lets CLI flags override the policy file', () => {
    const pol = path.join(sb.stateRoot, '..', 'p.yaml');
    fs.writeFileSync(pol, 'limits:\n  memory: 256m\n  pids: 100\n');
    const report = path.join(sb.stateRoot, '..', 'r2.json');
    expect(run(['--policy', pol, '--pids', '64', '--report', report, '--', 'true']).status).toBe(0);
    expect(readReport(report).limits).toMatchObject({ memoryBytes: 256 * 1024 ** 2, pids: 64 });
  });

  it.each([
    ['an unknown option', ['--bogus', '--', 'true'], /unknown option '--bogus'/],
    [
      'an invalid memory size',
      ['--memory', 'lots', '--', 'true'],
      /limits\.memory: limits\.memory must be a positive size/,
    ],
    ['a missing command', [], /missing required argument/],
    [
      'an unknown degradation',
      ['--allow-degraded', 'seccomp', '--', 'true'],
      /allowDegraded\.0: .*"cgroups"\|"disk-cap"\|"landlock"/,
    ],
    ['a missing runtime', ['--runtime-path', '/nonexistent/runc', '--', 'true'], /does not run/],
    [
      'a runtime that is too old',
      ['--runtime-path', '/bin/echo', '--', 'true'],
      /too old or unrecognised/,
    ],
  ])('refuses %s with exit 125 and a one-line reason', (_what, args, msg) => {
    const r = run(args);
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(msg);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^nanocell: .*\(fix: .+\)$/m);
  });

  it('refuses bad policy files with the field named', () => {
    const dir = path.join(sb.stateRoot, '..');
    const cases: [string, RegExp][] = [
      ['limits:\n  memroy: 1g\n', /limits: unknown key "memroy"/],
      ['limits:\n  pids: -1\n', /limits\.pids/],
      ['network: [1, 2]\n', /network/],
      ['{ not yaml', /not valid YAML or JSON/],
      ['- a list\n', /mapping of settings/],
      ['syscalls:\n  allow: [opne]\n', /syscalls\.allow/],
    ];
    for (const [body, msg] of cases) {
      const f = path.join(dir, 'bad.yaml');
      fs.writeFileSync(f, body);
      const r = run(['--policy', f, '--', 'true']);
      expect(r.status, body).toBe(125);
      expect(r.stderr, body).toMatch(msg);
      expect(r.stderr.trim().split('\n'), body).toHaveLength(1);
    }
    const missing = run(['--policy', path.join(dir, 'nope.yaml'), '--', 'true']);
    expect(missing.status).toBe(125);
    expect(missing.stderr).toMatch(/does not exist/);
  });

  it('refuses bad workspaces and leaves nothing behind', () => {
    const base = path.join(sb.stateRoot, '..');
    fs.writeFileSync(path.join(base, 'file'), 'x');
    fs.symlinkSync('/etc', path.join(base, 'link'));
    const cases: [string, RegExp][] = [
      [path.join(base, 'missing'), /does not exist/],
      [path.join(base, 'file'), /is not a directory/],
      [path.join(base, 'link'), /is a symlink \(to \/etc\)/],
      ['/', /other than \/|overlaps/],
      ['/usr', /overlaps \/usr/],
    ];
    for (const [ws, msg] of cases) {
      const r = nanocell(['run', '--workspace', ws, '--quiet', '--', 'true'], {
        stateRoot: sb.stateRoot,
      });
      expect(r.status, ws).toBe(125);
      expect(r.stderr, ws).toMatch(msg);
    }
    expect(leftovers(sb.stateRoot)).toMatchObject({
      cells: [],
      runtime: [],
      slots: [],
      mounts: [],
    });
  });
});

describe('nanocell doctor', () => {
  it('reports each check with what works and what to fix', () => {
    const r = nanocell(['doctor', '--json']);
    expect(r.status).toBe(0);
    const checks = JSON.parse(r.stdout) as { name: string; status: string }[];
    const byName = Object.fromEntries(checks.map((c) => [c.name, c.status]));
    expect(byName).toMatchObject({
      runtime: 'ok',
      'user namespaces': 'ok',
      seccomp: 'ok',
      overlayfs: 'ok',
      landlock: 'ok',
      cgroups: 'ok',
      'idmapped mounts': 'ok',
      'egress capture': 'ok',
    });
    const text = nanocell(['doctor']);
    expect(text.stdout).toMatch(/landlock\s+ABI \d+/);
    expect(text.stdout).toMatch(/cgroups\s+v[12], controllers memory, pids, cpu writable/);
  });
});
