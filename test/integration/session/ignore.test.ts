// Generated files: workspace.ignore leaves them out of the change set, and the project's
// .gitignore keeps apply (and the diff) from writing them, saying so in the diff's header.
import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox | undefined;
afterEach(() => sb?.cleanup());

function run(policy: object, script: string): string {
  const policyFile = path.join(path.dirname(sb!.project), 'policy.json');
  fs.writeFileSync(policyFile, JSON.stringify(policy));
  const r = nanocell(
    [
      'run',
      '--quiet',
      '--policy',
      policyFile,
      '--workspace',
      sb!.project,
      '--',
      'sh',
      '-c',
      script,
    ],
    { stateRoot: sb!.stateRoot },
  );
  expect(r.status).toBe(0);
  return /change set ([0-9a-z]+)/.exec(r.stderr)![1]!;
}

const build =
  'mkdir -p node_modules/p src/__pycache__ && echo m > node_modules/p/i.js && echo c > src/__pycache__/x.pyc && echo s > src/x.py && echo log > out.log';

describe('generated files', () => {
  it('workspace.ignore leaves them out of the change set', () => {
    sb = makeSandbox({ 'README.md': 'r\n' });
    const task = run({ workspace: { ignore: ['node_modules/**', '**/__pycache__/**'] } }, build);
    const m = JSON.parse(nanocell(['diff', '--json', task], { stateRoot: sb.stateRoot }).stdout);
    expect(m.entries.map((e: { path: string }) => e.path).sort()).toEqual([
      'out.log',
      'src',
      'src/x.py',
    ]);
    expect(m.ignored.count).toBe(2);
    const d = nanocell(['diff', task], { stateRoot: sb.stateRoot }).stdout;
    expect(d).toMatch(/^# 2 generated path\(s\) left out by workspace.ignore/);
  });

  it(".gitignore'd paths are shown as left out, and apply does not write them", () => {
    sb = makeSandbox({ '.gitignore': 'node_modules/\n*.pyc\n*.log\n' });
    const task = run({}, build);
    const d = nanocell(['diff', task], { stateRoot: sb.stateRoot }).stdout;
    expect(d).toMatch(
      /# \d+ path\(s\) the project's \.gitignore ignores are left out: apply does not write them/,
    );
    expect(d).not.toContain('i.js');
    const gd = nanocell(['diff', '--format', 'git', task], { stateRoot: sb.stateRoot }).stdout;
    expect(gd).toMatch(/\.gitignore ignores are left out/);
    expect(gd).not.toContain('out.log');
    expect(nanocell(['apply', task], { stateRoot: sb.stateRoot }).status).toBe(0);
    expect(fs.readFileSync(path.join(sb.project, 'src/x.py'), 'utf8')).toBe('s\n');
    for (const p of ['node_modules', 'out.log', 'src/__pycache__/x.pyc'])
      expect(fs.existsSync(path.join(sb.project, p))).toBe(false);
  });

  it('workspace.gitignore: false lets apply write them', () => {
    sb = makeSandbox({ '.gitignore': '*.log\n' });
    const task = run({ workspace: { gitignore: false } }, 'echo log > out.log');
    expect(nanocell(['apply', task], { stateRoot: sb.stateRoot }).status).toBe(0);
    expect(fs.readFileSync(path.join(sb.project, 'out.log'), 'utf8')).toBe('log\n');
  });
});
