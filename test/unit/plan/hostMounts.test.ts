// The host-mount rules are pure: facts in, mounts or a one-line refusal out.
import { describe, expect, it } from 'vitest';
import type { ProbedPath } from '../../../src/host/hostPaths.js';
import { checkHostMounts, hostMountSpecs } from '../../../src/plan/hostMounts.js';
import { mountRequest } from '../../../src/policy/load.js';

const ctx = {
  home: '/home/alice',
  homes: ['/home/alice', '/home/bob', '/root'],
  stateRoot: '/home/alice/.local/state/nanocell',
  workspace: '/home/alice/src/app',
};
const dir = (real: string, more: Partial<ProbedPath> = {}): ProbedPath => ({
  kind: 'dir',
  real,
  ...more,
});

function check(spec: string | { host: string; cell?: string; exec?: boolean }, f?: ProbedPath) {
  const req = mountRequest(spec);
  const host = req.host.replace(/^~/, ctx.home);
  const facts = new Map([[host, f ?? dir(host)]]);
  return checkHostMounts([req], ctx, facts);
}

describe('host mounts', () => {
  it('binds a toolchain dir read-only at the same path, ~ expanded', () => {
    const m = check('~/.nvm/versions/node/v20.0.0');
    expect(m).toEqual([
      {
        source: '/home/alice/.nvm/versions/node/v20.0.0',
        cell: '/home/alice/.nvm/versions/node/v20.0.0',
        kind: 'dir',
        exec: false,
      },
    ]);
    expect(hostMountSpecs(m)[0]!.options).toEqual(['rbind', 'ro', 'nosuid', 'nodev', 'noexec']);
  });

  it('honours HOST:CELL and exec: true', () => {
    const m = check({ host: '/opt/jdk', cell: '/opt/java', exec: true });
    expect(m[0]).toMatchObject({ source: '/opt/jdk', cell: '/opt/java', exec: true });
    expect(hostMountSpecs(m)[0]!.options).not.toContain('noexec');
    expect(
      check('/etc/ssl/certs/ca.crt:/opt/ca.crt', { kind: 'file', real: '/x/ca.crt' })[0],
    ).toMatchObject({ source: '/x/ca.crt', cell: '/opt/ca.crt', kind: 'file' });
  });

  const refusals: [string, Parameters<typeof check>[0], ProbedPath | undefined, RegExp][] = [
    [
      'missing',
      '/opt/none',
      { kind: 'missing' },
      /mount \/opt\/none refused: \/opt\/none does not exist/,
    ],
    ['relative', 'opt/x', undefined, /not an absolute path/],
    ['socket', '/run/docker.sock', { kind: 'socket', real: '/run/docker.sock' }, /is a socket/],
    ['device', '/dev/sda', { kind: 'device', real: '/dev/sda' }, /is a device/],
    [
      '~/.ssh',
      '~/.ssh',
      undefined,
      /mount ~\/\.ssh refused: is the secret path \/home\/alice\/\.ssh/,
    ],
    ['inside ~/.aws', '~/.aws/cli', undefined, /is inside the secret path \/home\/alice\/\.aws/],
    ['agent creds', '~/.claude', undefined, /credential store \/home\/alice\/\.claude/],
    [
      'history',
      '~/.bash_history',
      { kind: 'file', real: '/home/alice/.bash_history' },
      /credential store/,
    ],
    [
      '~/.config',
      '~/.config',
      undefined,
      /contains the credential store \/home\/alice\/\.config\//,
    ],
    ['a home', '~', undefined, /is the home directory \/home\/alice/],
    ['all homes', '/home', undefined, /contains the home directory \/home\/alice/],
    ['symlink to a home', '/opt/link', dir('/home/bob'), /\/home\/bob is the home directory/],
    [
      'secret inside',
      '/srv/data',
      dir('/srv/data', { secretInside: '/srv/data/.env' }),
      /contains the secret path \/srv\/data\/\.env/,
    ],
    ['too big to scan', '/srv/big', dir('/srv/big', { scanTruncated: true }), /too many files/],
    ['state root', '~/.local/state', undefined, /overlaps the nanocell state root/],
    ['workspace', '~/src/app', undefined, /overlaps the workspace/],
    ['inside workspace', '~/src/app/node_modules', undefined, /overlaps the workspace/],
    [
      'reserved cell path',
      '/opt/x:/usr/lib/x',
      undefined,
      /cell path \/usr\/lib\/x overlaps \/usr/,
    ],
    ['cell home', '/opt/x:/home/cell/x', undefined, /overlaps \/home\/cell/],
    [
      'cell path in workspace',
      '/opt/x:/home/alice/src/app/x',
      undefined,
      /cell path .* overlaps the workspace/,
    ],
  ];
  for (const [name, spec, f, re] of refusals) {
    it(`refuses ${name}`, () => {
      expect(() => check(spec, f)).toThrow(re);
    });
  }

  it('refuses two mounts at overlapping cell paths', () => {
    const facts = new Map([
      ['/opt/a', dir('/opt/a')],
      ['/opt/b', dir('/opt/b')],
    ]);
    expect(() =>
      checkHostMounts([mountRequest('/opt/a:/opt/t'), mountRequest('/opt/b:/opt/t/b')], ctx, facts),
    ).toThrow(/overlaps another mount at \/opt\/t/);
  });
});
