// Transparent capture under each runtime that has a seccomp listener (runc, crun), as root and
// rootless: the same probe, through the CLI, with every proxy variable unset in the cell. A
// client that never heard of the proxy reaches the allowed host; a denied name gets NXDOMAIN,
// an outside UDP datagram is dropped, and both are in the report.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { proxyEnv } from '../../../src/net/env.js';
import { CLI, cliFor, makeSandbox, readReport, type Sandbox } from '../../helpers/cells.js';
import {
  makeRootlessSandbox,
  ROOTLESS_USER,
  type RootlessSandbox,
} from '../../helpers/rootless.js';
import { startWebServer, type WebServer } from './cellServers.js';
import { Harness } from './harness.js';

const h = new Harness();
let web: WebServer;
const sandboxes: { cleanup(): void }[] = [];

beforeAll(async () => {
  fs.mkdirSync(path.join(h.dir, 'git'));
  web = await startWebServer(h, '127.0.0.2', path.join(h.dir, 'git'));
});

afterAll(async () => {
  for (const s of sandboxes) s.cleanup();
  await h.cleanup();
});

const policy = (runtime: string) =>
  JSON.stringify({
    runtime: { name: runtime },
    network: {
      allow: [`web.test:${web.port}`],
      cidrs: ['127.0.0.2/32'],
      hosts: { 'web.test': '127.0.0.2', 'evil.test': '127.0.0.2' },
    },
  });

const probe = () =>
  `unset ${Object.keys(proxyEnv(3128)).join(' ')}; ` +
  `curl -sS --max-time 10 http://web.test:${web.port}/rt; echo; ` +
  'getent hosts evil.test; echo "getent=$?"; ' +
  `python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("192.0.2.9", 123))'`;

function check(status: number | null, stdout: string, stderr: string, reportFile: string) {
  expect(status, stderr).toBe(0);
  expect(stdout.split('\n').slice(0, 2)).toEqual([
    `hello GET /rt host=web.test:${web.port}`,
    'getent=2',
  ]);
  const net = readReport(reportFile).network as { type: string; [k: string]: unknown }[];
  expect(net).toContainEqual(
    expect.objectContaining({
      type: 'net.allowed',
      host: 'web.test',
      protocol: 'transparent-http',
    }),
  );
  expect(net).toContainEqual(expect.objectContaining({ type: 'dns.denied', name: 'evil.test' }));
  expect(net).toContainEqual(
    expect.objectContaining({ type: 'net.denied', host: '192.0.2.9', port: 123, protocol: 'udp' }),
  );
}

/** The CLI, asynchronously: the upstream lives in this process and must keep answering. */
function run(
  argv: string[],
  cwd: string,
  env: NodeJS.ProcessEnv,
): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const c = spawn(argv[0]!, argv.slice(1), { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe.each(['runc', 'crun'] as const)('%s', (runtime) => {
  it('root: transparent capture, DNS stub and drops', async () => {
    const sb: Sandbox = makeSandbox({ 'policy.json': policy(runtime) });
    sandboxes.push(sb);
    const report = path.join(sb.stateRoot, '..', `report-${runtime}.json`);
    const r = await run(
      [
        'node',
        CLI,
        'run',
        '--policy',
        'policy.json',
        '--report',
        report,
        '--',
        'bash',
        '-c',
        probe(),
      ],
      sb.project,
      { ...process.env, NANOCELL_STATE_ROOT: sb.stateRoot },
    );
    check(r.status, r.stdout, r.stderr, report);
  });

  it('rootless: the same', async () => {
    const sb: RootlessSandbox = makeRootlessSandbox(`transparent-${runtime}-`, {
      'policy.json': policy(runtime),
    });
    sandboxes.push(sb);
    const report = path.join(sb.base, 'report.json');
    fs.writeFileSync(report, '');
    fs.chownSync(report, ...uidGid());
    // This host's cgroup v1 hierarchies are not delegated to the user: the rootless tests accept
    // that and the disk cap, as test/integration/cell/rootless.test.ts does.
    const r = await run(
      ['runuser', '-u', ROOTLESS_USER, '--', 'env', `NANOCELL_STATE_ROOT=${sb.stateRoot}`]
        .concat([
          'node',
          cliFor(ROOTLESS_USER, sb.base),
          'run',
          '--allow-degraded',
          'cgroups',
          '--allow-degraded',
          'disk-cap',
        ])
        .concat(['--policy', 'policy.json', '--report', report, '--', 'bash', '-c', probe()]),
      sb.project,
      process.env,
    );
    check(r.status, r.stdout, r.stderr, report);
  });
});

function uidGid(): [number, number] {
  const line = fs
    .readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('nanocell-ci:'))!;
  const [, , uid, gid] = line.split(':');
  return [Number(uid), Number(gid)];
}

describe('runsc', () => {
  it('has no capture: proxy-aware clients get out, others fail, and the report says so', async () => {
    const sb: Sandbox = makeSandbox({ 'policy.json': policy('runsc') });
    sandboxes.push(sb);
    const report = path.join(sb.stateRoot, '..', 'report-runsc.json');
    const script =
      `curl -sS --max-time 10 http://web.test:${web.port}/proxied; echo; ` +
      `unset ${Object.keys(proxyEnv(3128)).join(' ')}; ` +
      `curl -sS --max-time 10 http://web.test:${web.port}/bare; echo "rc=$?"`;
    const r = await run(
      ['node', CLI, 'run', '--allow-degraded', 'landlock', '--policy', 'policy.json'].concat([
        '--report',
        report,
        '--',
        'bash',
        '-c',
        script,
      ]),
      sb.project,
      { ...process.env, NANOCELL_STATE_ROOT: sb.stateRoot },
    );
    expect(r.stdout.split('\n').slice(0, 2)).toEqual([
      `hello GET /proxied host=web.test:${web.port}`,
      'rc=6', // could not resolve: no DNS stub
    ]);
    const degraded = readReport(report).degradations as { control: string; reason: string }[];
    expect(degraded.map((d) => d.control)).toContain('egress-capture');
  });
});
