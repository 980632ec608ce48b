// Rootless: an unprivileged user runs cells through runc rootless. Limits that need cgroup
// delegation are refused unless the user accepts the degradation, and then reported.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import {
  makeRootlessSandbox,
  ROOTLESS_USER,
  type RootlessSandbox,
} from '../../helpers/rootless.js';

let sb: RootlessSandbox;
let base: string;
let project: string;
let stateRoot: string;
const asUser = (args: string[]) => sb.asUser(args);

beforeAll(() => {
  sb = makeRootlessSandbox('rootless-', {
    'a.txt': 'original\n',
    '.env': 'TOKEN=rootless-secret\n',
    'old.txt': 'to be deleted\n',
  });
  ({ base, project, stateRoot } = sb);
});

afterAll(() => sb?.cleanup());

describe('rootless cells', () => {
  it('refuses to run without cgroup limits unless the degradation is accepted', () => {
    const r = asUser(['run', '--quiet', '--', 'true']);
    expect(r.status).toBe(125);
    expect(r.stderr).toMatch(
      /cgroup controllers .* cannot be configured.*--allow-degraded cgroups/,
    );
  });

  it('runs the task with no capabilities, edits through the overlay and reports the degradations', () => {
    const report = path.join(base, 'report.json');
    const r = asUser([
      'run',
      '--quiet',
      '--allow-degraded',
      'cgroups',
      '--allow-degraded',
      'disk-cap',
      '--report',
      report,
      '--',
      'sh',
      '-c',
      'grep -E "^Cap(Eff|Bnd)|NoNewPrivs" /proc/self/status; echo edit >> a.txt; rm old.txt; cat a.txt; cat .env; unshare -r true || echo no-userns',
    ]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/CapEff:\s+0000000000000000/);
    expect(r.stdout).toMatch(/CapBnd:\s+0000000000000000/);
    expect(r.stdout).toMatch(/NoNewPrivs:\s+1/);
    expect(r.stdout).toContain('original\nedit\n');
    expect(r.stdout).not.toContain('rootless-secret');
    expect(r.stdout).toContain('no-userns');
    // The project is untouched: the edit is in the change set.
    expect(fs.readFileSync(path.join(project, 'a.txt'), 'utf8')).toBe('original\n');
    const rep = JSON.parse(fs.readFileSync(report, 'utf8'));
    expect(rep.degradations.map((d: { control: string }) => d.control).sort()).toEqual([
      'cgroups',
      'disk-cap',
    ]);
    expect(rep.limits).toMatchObject({
      memoryBytes: null,
      pids: null,
      cpus: null,
      diskBytes: null,
    });
    expect(rep.events.deniedBySyscall).toMatchObject({ unshare: 1 });
    // The edit came back as a change set, collected without root.
    expect(rep.changes).toMatchObject({ status: 'ok', counts: { modify: 1, delete: 1 } });
    expect(fs.existsSync(path.join(project, 'old.txt'))).toBe(true);
    expect(rep.changeSetFate).toEqual({ action: 'kept' });
    const diff = asUser(['diff', rep.taskId]);
    expect(diff.status).toBe(0);
    expect(diff.stdout).toContain('+edit');
    expect(fs.readdirSync(path.join(stateRoot, 'cells'))).toEqual([]);
  });

  it("reaches allowed hosts through its proxy on the cell's own loopback", async () => {
    // A server in its own process: spawnSync below blocks this one's event loop.
    const server = spawn('python3', ['-m', 'http.server', '0', '--bind', '127.0.0.9'], {
      cwd: project,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        let out = '';
        server.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /port (\d+)/.exec(out);
          if (m) resolve(Number(m[1]));
        });
        server.once('exit', () => reject(new Error('the test server exited')));
      });
      const policy = path.join(base, 'net-policy.json');
      fs.writeFileSync(
        policy,
        JSON.stringify({
          network: { hosts: { 'web.test': '127.0.0.9' }, cidrs: ['127.0.0.9/32'] },
        }),
      );
      fs.chmodSync(policy, 0o644);
      const r = asUser([
        'run',
        '--quiet',
        '--allow-degraded',
        'cgroups',
        '--allow-degraded',
        'disk-cap',
        '--policy',
        policy,
        '--allow-net',
        `web.test:${port}`,
        '--',
        'sh',
        '-c',
        `curl -sS -o /dev/null -w "%{http_code}\\n" http://web.test:${port}/; ` +
          `curl -sS -o /dev/null -w "%{http_code}\\n" http://other.test:${port}/; ls -A /.nanocell`,
      ]);
      expect(r.status).toBe(0);
      // Allowed, then denied by the proxy; no proxy socket file in the cell.
      expect(r.stdout.split('\n').slice(0, 3)).toEqual(['200', '403', 'init']);
    } finally {
      server.kill();
    }
  });

  // crun's `run --detach` can exit while its child has taken the cell user's ids but not yet
  // executed init; ptrace access (which taking init's seccomp listener needs) is refused in
  // that window, so the monitor must wait for init rather than fail the start. Busy cores and
  // cells started at once make the window common (about 1 start in 15 before the fix).
  it('crun: cells started together on busy cores all start', async () => {
    fs.writeFileSync(path.join(project, 'crun.json'), '{"runtime":{"name":"crun"}}');
    const hogs = [1, 2].map(() => spawn('sh', ['-c', 'while :; do :; done']));
    const start = () =>
      new Promise<{ status: number | null; stderr: string }>((resolve) => {
        const c = spawn(
          'runuser',
          ['-u', ROOTLESS_USER, '--', 'env', `NANOCELL_STATE_ROOT=${stateRoot}`]
            .concat(['node', sb.cli, 'run', '--quiet', '--policy', 'crun.json'])
            .concat(['--allow-degraded', 'cgroups', '--allow-degraded', 'disk-cap', '--', 'true']),
          { cwd: project },
        );
        let stderr = '';
        c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        c.on('close', (status) => resolve({ status, stderr }));
      });
    try {
      for (let round = 0; round < 6; round++) {
        const results = await Promise.all([start(), start(), start()]);
        for (const r of results) expect(r.status, r.stderr).toBe(0);
      }
    } finally {
      for (const h of hogs) h.kill('SIGKILL');
    }
  }, 120_000);

  it('doctor reports the degraded controls and the fix', () => {
    const r = asUser(['doctor', '--json']);
    const checks = JSON.parse(r.stdout) as { name: string; status: string; fix?: string }[];
    const cg = checks.find((c) => c.name === 'cgroups')!;
    expect(cg.status).toBe('degraded');
    expect(cg.fix).toMatch(/delegate/);
    expect(checks.find((c) => c.name === 'mode')!.status).toBe('ok');
  });
});
