// hostConfig in a real cell: the host's .npmrc and pip.conf reach npm and pip in the cell with
// their registries, and no credential of theirs is anywhere the task can read.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
let home: string;
beforeAll(() => {
  sb = makeSandbox({ 'a.txt': 'a\n' });
  home = path.join(path.dirname(sb.project), 'home');
  fs.mkdirSync(path.join(home, '.config', 'pip'), { recursive: true });
  fs.writeFileSync(
    path.join(home, '.npmrc'),
    '@acme:registry=https://npm.acme.test/\n//npm.acme.test/:_authToken=CANARY7a1\n',
  );
  fs.writeFileSync(
    path.join(home, '.config', 'pip', 'pip.conf'),
    '[global]\nindex-url = https://u:CANARY7a2@pypi.acme.test/simple\n',
  );
});
afterAll(() => sb.cleanup());

describe('host package-manager configuration', () => {
  it('carries registries into npm and pip, never their credentials', () => {
    const policy = path.join(path.dirname(sb.project), 'policy.yaml');
    fs.writeFileSync(policy, 'hostConfig: [npm, pip]\n');
    const r = nanocell(
      [
        'run',
        '--workspace',
        sb.project,
        '--policy',
        policy,
        '--',
        'sh',
        '-c',
        'npm config get @acme:registry; python3 -m pip config list 2>/dev/null; ' +
          'grep -rs CANARY""7a /home /tmp /proc/self/environ "$PWD"; echo grep=$?',
      ],
      { stateRoot: sb.stateRoot, env: { HOME: home } },
    );
    expect(r.stdout).toContain('https://npm.acme.test/');
    expect(r.stdout).toContain("global.index-url='https://pypi.acme.test/simple'");
    expect(r.stdout).toContain('grep=1');
    expect(r.stdout + r.stderr).not.toContain('CANARY7a');
    // The report names what was left out, by key only.
    const dir = path.join(sb.stateRoot, 'reports');
    const [file] = fs.readdirSync(dir);
    const report = fs.readFileSync(path.join(dir, file!), 'utf8');
    expect(report).not.toContain('CANARY7a');
    expect(report).toMatch(
      /npm configuration from [^"]*\.npmrc carried read-only; credentials left out: \/\/npm\.acme\.test\/:_authToken/,
    );
  });
});
