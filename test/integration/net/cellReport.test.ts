// The task report summarises a cell's egress, and `--allow-net` on the CLI opens egress that
// the policy alone does not.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runTask } from '../../../src/task/task.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import { makeSandbox, nanocell, readReport, type Sandbox } from '../../helpers/cells.js';

let server: ChildProcess;
let port: number;
const sandboxes: Sandbox[] = [];
// The policy pins the name and lets its address be reached; only --allow-net allows it.
const network = {
  hosts: { 'web.test': '127.0.0.7', 'evil.test': '127.0.0.7' },
  cidrs: ['127.0.0.7/32'],
};

beforeAll(async () => {
  // The CLI runs under spawnSync, which blocks this process: the server lives in its own.
  server = spawn(
    process.execPath,
    [
      '-e',
      `require('http').createServer((q, r) => r.end('hello ' + q.url)).listen(0, '127.0.0.7', function () {
         console.log(this.address().port);
       });`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  port = await new Promise<number>((resolve, reject) => {
    server.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
    server.once('exit', () => reject(new Error('the test server exited')));
  });
});

afterAll(() => {
  server?.kill();
  for (const sb of sandboxes) sb.cleanup();
});

function sandbox(): Sandbox {
  const sb = makeSandbox();
  sandboxes.push(sb);
  return sb;
}

describe('egress in the task report', () => {
  it('counts allowed and denied attempts and lists them with host, port, rule, bytes and duration', async () => {
    const sb = sandbox();
    const out = new PassThrough();
    const err = new PassThrough();
    let stdout = '';
    out.on('data', (d: Buffer) => (stdout += d.toString()));
    err.resume();
    const report = await runTask({
      policy: resolvePolicy(parsePolicy({ network })),
      workspace: sb.project,
      stateRoot: sb.stateRoot,
      extraAllowNet: [`web.test:${port}`],
      command: [
        'sh',
        '-c',
        `curl -sS http://web.test:${port}/ok; echo; curl -s -o /dev/null -w '%{http_code}\\n' http://evil.test:${port}/no; curl -s -o /dev/null -w '%{http_code}\\n' http://web.test:1/no`,
      ],
      stdout: out,
      stderr: err,
    });
    expect(stdout).toBe('hello /ok\n403\n403\n');
    expect(report.exitCode).toBe(0);
    expect(report.events).toMatchObject({ netAllowed: 1, netDenied: 2 });
    const allowed = report.network.find((e) => e.type === 'net.allowed');
    expect(allowed).toMatchObject({
      host: 'web.test',
      port,
      ip: '127.0.0.7',
      rule: `allow:web.test:${port}`,
      protocol: 'http',
    });
    const a = allowed as { bytesUp: number; bytesDown: number; durationMs: number };
    expect(a.bytesUp).toBeGreaterThan(0);
    expect(a.bytesDown).toBeGreaterThan('hello /ok'.length);
    expect(a.durationMs).toBeGreaterThanOrEqual(0);
    const denied = report.network.filter((e) => e.type === 'net.denied');
    expect(denied).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          host: 'evil.test',
          port,
          rule: 'default-deny',
          reason: 'evil.test is not in network.allow',
        }),
        expect.objectContaining({
          host: 'web.test',
          port: 1,
          rule: 'default-deny',
          reason: 'port 1 is not allowed for web.test by network.allow',
        }),
      ]),
    );
    // The same report is on disk.
    const onDisk = readReport(path.join(sb.stateRoot, 'reports', `${report.taskId}.json`));
    expect(onDisk.events.netAllowed).toBe(1);
  });
});

describe('a policy with only network.cidrs', () => {
  it("gets a proxy that allows IP literals in the range, on the entry's port only", async () => {
    const sb = sandbox();
    const out = new PassThrough();
    let stdout = '';
    out.on('data', (d: Buffer) => (stdout += d.toString()));
    const report = await runTask({
      policy: resolvePolicy(parsePolicy({ network: { cidrs: [`127.0.0.7/32:${port}`] } })),
      workspace: sb.project,
      stateRoot: sb.stateRoot,
      command: [
        'sh',
        '-c',
        `curl -sS --noproxy '' http://127.0.0.7:${port}/lit; echo; curl -s --noproxy '' -o /dev/null -w '%{http_code}\\n' http://web.test:${port}/`,
      ],
      stdout: out,
      stderr: new PassThrough().resume(),
    });
    expect(stdout).toBe('hello /lit\n403\n');
    expect(report.events).toMatchObject({ netAllowed: 1, netDenied: 1 });
    expect(report.network[0]).toMatchObject({
      host: '127.0.0.7',
      rule: `cidr:127.0.0.7/32:${port}`,
    });
  });
});

describe('nanocell run --allow-net', () => {
  it('allows a host the policy does not, for that run only', () => {
    const sb = sandbox();
    const policyFile = path.join(path.dirname(sb.project), 'policy.json');
    fs.writeFileSync(policyFile, JSON.stringify({ network }));
    const reportFile = path.join(path.dirname(sb.project), 'report.json');
    const run = (extra: string[]) =>
      nanocell(
        [
          'run',
          '--quiet',
          '--policy',
          policyFile,
          '--workspace',
          sb.project,
          ...extra,
          '--',
          'curl',
          '-sS',
          `http://web.test:${port}/cli`,
        ],
        { stateRoot: sb.stateRoot },
      );
    const withFlag = run(['--allow-net', `web.test:${port}`, '--report', reportFile]);
    expect(withFlag.stdout).toBe('hello /cli');
    expect(withFlag.status).toBe(0);
    const report = readReport(reportFile);
    expect(report.events).toMatchObject({ netAllowed: 1, netDenied: 0 });
    expect(report.network[0]).toMatchObject({
      host: 'web.test',
      port,
      rule: `allow:web.test:${port}`,
    });
    // Without the flag the proxy (there for the cidrs entry) refuses the name.
    const without = run([]);
    expect(without.stdout).toMatch(
      /nanocell: blocked connect to web\.test:\d+ \(not in network\.allow\)/,
    );
  });

  it('rejects a bad --allow-net entry with an error naming it', () => {
    const sb = sandbox();
    const r = nanocell(
      ['run', '--quiet', '--workspace', sb.project, '--allow-net', '*.com', '--', 'true'],
      {
        stateRoot: sb.stateRoot,
      },
    );
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/--allow-net.*\*\.com/);
  });
});
