// A project under the host's /tmp (what agent harnesses make with mkdtemp): the cell shows it at
// its own path, while the cell's /tmp stays its own tmpfs that neither sees nor reaches the
// host's /tmp.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { leftovers, mountsUnder, nanocell, readReport, TEST_ROOT } from '../../helpers/cells.js';
import { ROOTLESS_USER } from '../../helpers/rootless.js';

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) {
    for (const mp of mountsUnder(d).reverse()) execFileSync('umount', ['-l', mp]);
    fs.rmSync(d, { recursive: true, force: true });
  }
  dirs = [];
});

function tmpProject(): { project: string; stateRoot: string; sentinel: string } {
  const project = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-proj-'));
  fs.mkdirSync(TEST_ROOT, { recursive: true, mode: 0o755 });
  // The cells' mapped uids must traverse the state root's parent.
  const stateBase = fs.mkdtempSync(path.join(TEST_ROOT, 'tmpws-'));
  fs.chmodSync(stateBase, 0o755);
  const stateRoot = path.join(stateBase, 'state');
  fs.mkdirSync(stateRoot);
  const sentinel = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-sentinel-'));
  dirs.push(project, stateBase, sentinel);
  fs.writeFileSync(path.join(project, 'a.txt'), 'from the project\n');
  fs.writeFileSync(path.join(sentinel, 'secret'), 'host tmp\n');
  return { project, stateRoot, sentinel };
}

// The task writes to its /tmp and its project, and looks for the host's /tmp.
const script = (sentinel: string) =>
  [
    'cat a.txt',
    'echo scratch > /tmp/scratch.txt',
    'echo made > b.txt',
    `test -e ${sentinel}/secret && echo SEEN-HOST-TMP`,
    'ls /tmp | wc -l',
    'pwd',
  ].join('; ');

describe('a project under /tmp', () => {
  it('runs in root mode with a private /tmp, and its change set holds only the project', () => {
    const { project, stateRoot, sentinel } = tmpProject();
    const report = path.join(stateRoot, 'r.json');
    const r = nanocell(
      [
        'run',
        '--workspace',
        project,
        '--quiet',
        '--report',
        report,
        '--',
        'sh',
        '-c',
        script(sentinel),
      ],
      { stateRoot },
    );
    expect(r.stderr).toMatch(/^nanocell: change set [0-9a-z]+\n$/);
    expect(r.status).toBe(0);
    // /tmp in the cell holds the scratch file and the mount point of the project: 2 entries.
    expect(r.stdout).toBe(`from the project\n2\n${project}\n`);
    expect(fs.existsSync(path.join(os.tmpdir(), 'scratch.txt'))).toBe(false);
    const { taskId } = readReport(report);
    const diff = nanocell(['diff', taskId], { stateRoot });
    expect(diff.stdout).toContain('b.txt');
    expect(diff.stdout).not.toContain('scratch');
    expect(nanocell(['apply', taskId], { stateRoot }).status).toBe(0);
    expect(fs.readFileSync(path.join(project, 'b.txt'), 'utf8')).toBe('made\n');
    expect(fs.readdirSync(project).sort()).toEqual(['a.txt', 'b.txt']);
    expect(leftovers(stateRoot)).toMatchObject({ cells: [], mounts: [], slots: [] });
  });

  it('runs rootless with a private /tmp', () => {
    const { project, stateRoot, sentinel } = tmpProject();
    execFileSync('chown', ['-R', `${ROOTLESS_USER}:${ROOTLESS_USER}`, project, stateRoot]);
    fs.chmodSync(sentinel, 0o755);
    const cli = path.join(process.cwd(), 'dist', 'cli', 'nanocell.mjs');
    const out = execFileSync(
      'runuser',
      [
        '-u',
        ROOTLESS_USER,
        '--',
        'env',
        `NANOCELL_STATE_ROOT=${stateRoot}`,
        'node',
        cli,
        'run',
        '--workspace',
        project,
        '--quiet',
        ...['--allow-degraded', 'cgroups', '--allow-degraded', 'disk-cap'],
        '--',
        'sh',
        '-c',
        script(sentinel),
      ],
      { encoding: 'utf8', cwd: project },
    );
    expect(out).toBe(`from the project\n2\n${project}\n`);
    expect(fs.existsSync(path.join(os.tmpdir(), 'scratch.txt'))).toBe(false);
  });
});
