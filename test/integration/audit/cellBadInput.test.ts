// Bad input against the real CLI: an unknown task id, a corrupted database, an unusable state
// root (or one the cells cannot reach) and a database from a newer schema each get one line and exit 125; the real store next
// to them stays usable.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, makeSandbox, nanocell, type Sandbox } from '../../helpers/cells.js';

let sb: Sandbox;
let base: string;
let taskId: string;
beforeAll(() => {
  sb = makeSandbox();
  base = path.dirname(sb.project);
  const r = nanocell(['run', '--quiet', '--', 'true'], {
    stateRoot: sb.stateRoot,
    cwd: sb.project,
  });
  expect(r.status).toBe(0);
  taskId = (
    JSON.parse(nanocell(['tasks', '--json'], { stateRoot: sb.stateRoot }).stdout) as {
      id: string;
    }[]
  )[0]!.id;
});
afterAll(() => sb?.cleanup());

/** A copy of the real database in its own state root. */
function copyOfStore(name: string): string {
  const root = path.join(base, name);
  fs.mkdirSync(root, { mode: 0o700 });
  execFileSync('sqlite3', [path.join(sb.stateRoot, 'nanocell.db'), `.backup ${root}/nanocell.db`]);
  return root;
}

function expectOneLineError(r: { status: number; stdout: string; stderr: string }, re: RegExp) {
  expect(r.status).toBe(125);
  expect(r.stdout).toBe('');
  expect(r.stderr).toMatch(/^nanocell: [^\n]+ \(fix: [^\n]+\)\n$/);
  expect(r.stderr).toMatch(re);
  expect(r.stderr.length).toBeLessThan(400);
}

function expectStoreUsable(): void {
  const r = nanocell(['verify', taskId], { stateRoot: sb.stateRoot });
  expect(r.status).toBe(0);
  expect(nanocell(['tasks'], { stateRoot: sb.stateRoot }).stdout).toContain(taskId);
}

describe('bad input', () => {
  it('an unknown task id', () => {
    for (const cmd of ['logs', 'report', 'export', 'verify']) {
      expectOneLineError(
        nanocell([cmd, 'nosuchtask'], { stateRoot: sb.stateRoot }),
        /no task "nosuchtask"/,
      );
    }
    expectStoreUsable();
  });

  it('a corrupted database', () => {
    const root = copyOfStore('corrupt');
    const db = path.join(root, 'nanocell.db');
    // Garbage over the pages after the header: the file still looks like SQLite.
    const fd = fs.openSync(db, 'r+');
    fs.writeSync(fd, Buffer.alloc(8192, 0xa5), 0, 8192, 1024);
    fs.closeSync(fd);
    for (const args of [['tasks'], ['report', taskId], ['gc']]) {
      expectOneLineError(nanocell(args, { stateRoot: root }), /audit database .* is corrupted/);
    }
    // Garbage from the first byte: not a SQLite file at all, and never overwritten.
    fs.writeFileSync(db, 'not a database\n'.repeat(100));
    expectOneLineError(
      nanocell(['tasks'], { stateRoot: root }),
      /is corrupted \(not a SQLite file\)/,
    );
    expect(fs.readFileSync(db, 'utf8')).toBe('not a database\n'.repeat(100));
    expectStoreUsable();
  });

  it('a state root that is a file, or that the user cannot read', () => {
    const file = path.join(base, 'a-file');
    fs.writeFileSync(file, 'x');
    expectOneLineError(nanocell(['tasks'], { stateRoot: file }), /state root .* unusable/);

    // As a non-root user (root ignores mode bits): a state root with mode 000.
    const user = 'nanocell-ci';
    const locked = path.join(base, 'locked');
    fs.mkdirSync(locked);
    execFileSync('chown', [`${user}:${user}`, locked]);
    fs.chmodSync(locked, 0o000);
    const r = spawnSync(
      'runuser',
      ['-u', user, '--', 'env', `NANOCELL_STATE_ROOT=${locked}`, 'node', CLI, 'tasks'],
      { encoding: 'utf8', cwd: '/' },
    );
    expectOneLineError(
      { status: r.status ?? 128, stdout: r.stdout, stderr: r.stderr },
      /state root .*locked.* (unusable|not usable).*EACCES/,
    );
    expectStoreUsable();
  });

  it('a state root under a dir others cannot search (cells map root to other uids)', () => {
    const closed = path.join(base, 'closed');
    fs.mkdirSync(closed, { mode: 0o700 });
    const root = path.join(closed, 'state');
    expectOneLineError(
      nanocell(['run', '--quiet', '--', 'true'], { stateRoot: root, cwd: sb.project }),
      /cannot reach the state root: .*closed has mode 0700.*chmod o\+x .*closed/,
    );
    // Refused before a cell dir exists: nothing to clean up, nothing mounted.
    expect(fs.readdirSync(path.join(root, 'cells'))).toEqual([]);
    expect(fs.readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(closed);
    fs.chmodSync(closed, 0o711);
    expect(
      nanocell(['run', '--quiet', '--', 'true'], { stateRoot: root, cwd: sb.project }).status,
    ).toBe(0);
  });

  it('a database from a newer schema version is refused, not migrated down', () => {
    const root = copyOfStore('newer');
    const db = path.join(root, 'nanocell.db');
    execFileSync('sqlite3', [db, "UPDATE meta SET value = '99' WHERE key = 'schema_version'"]);
    for (const args of [['tasks'], ['gc'], ['run', '--quiet', '--', 'true']]) {
      expectOneLineError(
        nanocell(args, { stateRoot: root, cwd: sb.project }),
        /schema version 99, newer than this nanocell understands .*never migrated down/,
      );
    }
    expect(
      execFileSync('sqlite3', [db, "SELECT value FROM meta WHERE key = 'schema_version'"], {
        encoding: 'utf8',
      }),
    ).toBe('99\n');
    expectStoreUsable();
  });
});
