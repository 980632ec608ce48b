// Host write and persistence: writes outside the workspace, into protected paths, setuid files,
// and change sets built to trick `nanocell apply`. The read-only mounts answer EROFS/EACCES in
// the kernel without an event, so the record asserted for in-cell writes is the exec of the
// attacking program (its argv names the target); for change sets it is the task's fs.change
// events and the change set's own list of refused paths.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadChangeSet } from '../../src/workspace/manifest.js';
import { applyChangeSet } from '../../src/workspace/apply.js';
import { AttackCell, HostSentinels, type Attempt } from './harness.js';

let ac: AttackCell;
let host: HostSentinels;
const PROJECT_FILES = {
  'README.md': 'hello\n',
  '.git/hooks/pre-commit.sample': '#!/bin/sh\n',
  '.git/config': '[core]\n',
  '.bashrc': '# rc\n',
  '.vscode/settings.json': '{}\n',
  '.envrc': 'export A=1\n',
  '.github/workflows/ci.yml': 'on: push\n',
  'lib/a.js': 'a\n',
};
const snapshot = (dir: string) => {
  const out: Record<string, string> = {};
  const walk = (rel: string) => {
    const abs = path.join(dir, rel);
    const st = fs.lstatSync(abs);
    if (st.isDirectory()) for (const e of fs.readdirSync(abs)) walk(path.join(rel, e));
    else
      out[rel] =
        `${st.mode.toString(8)} ${st.isSymbolicLink() ? fs.readlinkSync(abs) : fs.readFileSync(abs, 'latin1')}`;
  };
  walk('');
  return out;
};
let projectBefore: Record<string, string>;

beforeAll(async () => {
  host = new HostSentinels();
  ac = await AttackCell.start({ files: PROJECT_FILES });
  projectBefore = snapshot(ac.project);
});
afterAll(async () => {
  await ac?.dispose();
  host?.cleanup();
});

const blocked = (rs: Attempt[]) => {
  for (const r of rs) expect(r.ok, `${r.t}: ${r.out}`).toBe(false);
};
const unharmed = () => {
  expect(host.changes()).toEqual([]);
  expect(snapshot(ac.project)).toEqual(projectBefore);
};

describe('host write and persistence (in the cell)', () => {
  it('HW-01 writes outside the workspace: /, /etc, /usr, /bin, a host dir, /proc/sys', async () => {
    blocked(
      await ac.atk(
        'write',
        '/pwned',
        '/etc/ld.so.preload',
        '/etc/cron.d/pwn',
        '/usr/bin/pwn',
        '/bin/sh',
        `${host.drop}/pwn`,
        `${host.drop}/canary`,
        '/root/.bashrc',
        '/proc/sys/kernel/core_pattern',
        '/.nanocell/init',
      ),
    );
    await ac.execRecorded('write', '/etc/ld.so.preload');
    unharmed();
  });

  it('HW-02 writes to the project behind the review: the real project is untouched', async () => {
    const r = await ac.sh(
      'echo evil > README.md && echo new > added.txt && rm lib/a.js && cat README.md',
    );
    expect(r.stdout).toBe('evil\n'); // allowed in the cell's own upper layer...
    await ac.execRecorded('bash', 'README.md');
    unharmed(); // ...but the project on the host did not change
  });

  it('HW-03 plants a git hook or edits .git/config (persistence on the next git command)', async () => {
    blocked(
      await ac.atk('write', '.git/hooks/pre-commit', '.git/hooks/pre-commit.sample', '.git/config'),
    );
    const cfg = await ac.sh(
      'git config --file .git/config core.fsmonitor "touch /tmp/x" 2>&1; echo rc=$?',
    );
    expect(cfg.stdout).toMatch(/rc=[1-9]/);
    await ac.execRecorded('write', '.git/hooks/pre-commit');
    unharmed();
  });

  it('HW-04 edits shell rc files and .envrc', async () => {
    blocked(await ac.atk('write', '.bashrc', '.envrc'));
    const mv = await ac.sh('mv .bashrc x 2>&1; rm -f .envrc 2>&1; echo rc=$?');
    expect(fs.readFileSync(path.join(ac.project, '.bashrc'), 'utf8')).toBe('# rc\n');
    void mv;
    await ac.execRecorded('write', '.bashrc');
    unharmed();
  });

  it('HW-05 edits editor and CI config (.vscode tasks, workflows)', async () => {
    blocked(
      await ac.atk(
        'write',
        '.vscode/tasks.json',
        '.vscode/settings.json',
        '.github/workflows/ci.yml',
      ),
    );
    await ac.execRecorded('write', '.vscode/tasks.json');
    unharmed();
  });

  it('HW-06 makes a setuid root file for the host to run later', async () => {
    const r = await ac.sh(
      'cp /usr/bin/id ./suid && chmod 4755 ./suid; chown 0:0 ./suid 2>&1; stat -c "%u %a" ./suid; ./suid -u',
    );
    // chown to root is refused; the setuid bit on a file the cell owns grants nothing (nosuid).
    expect(r.stdout).toMatch(/Operation not permitted/);
    expect(r.stdout.trim().split('\n').at(-1)).toBe('1000');
    await ac.execRecorded('chmod', '4755');
    unharmed();
  });
});

// Change-set tricks: each runs in its own cell (a refusal is all-or-nothing), ends the task,
// and then tries `apply`. Apply must refuse or stay inside the project, and never follow a
// symlink out.
interface ChangeSetOutcome {
  c: AttackCell;
  r: { stdout: string; stderr: string };
  manifest: ReturnType<typeof loadChangeSet>['manifest'];
  applyError: string | undefined;
  before: Record<string, string>;
  after: Record<string, string>;
}

async function changeSetAttack(
  o: { script: string; prepare?: (project: string) => void; policy?: object },
  check: (x: ChangeSetOutcome) => Promise<void> | void,
): Promise<void> {
  const c = await AttackCell.start({
    files: { 'README.md': 'hello\n', 'lib/a.js': 'a\n' },
    prepare: o.prepare,
    policy: o.policy,
  });
  try {
    const before = snapshot(c.project);
    const r = await c.sh(o.script);
    const { left } = await c.end();
    expect(Object.values(left).flat()).toEqual([]);
    const dir = path.join(c.sb.stateRoot, 'changes', c.taskId);
    const { manifest } = loadChangeSet(dir);
    let applyError: string | undefined;
    try {
      applyChangeSet(dir, c.project, {});
    } catch (e) {
      applyError = (e as Error).message;
    }
    await check({ c, r, manifest, applyError, before, after: snapshot(c.project) });
    expect(host.changes()).toEqual([]);
  } finally {
    await c.dispose();
  }
}

const execOf = (c: AttackCell, needle: string) =>
  c.events().some((e) => e.type === 'exec' && e.argv.join(' ').includes(needle));

// Concurrent on purpose: collection runs on a worker thread, so a hostile change set (HW-11's
// hundred thousand files) must not starve the timers of the cells running beside it.
describe.concurrent('host write: change sets built to trick apply', () => {
  it('HW-07 swaps a directory for a symlink out of the project', async () => {
    await changeSetAttack(
      { script: `rm -rf lib && ln -s ${host.drop} lib && ln -s /etc/cron.d cron && echo ok` },
      (x) => {
        expect(x.applyError).toMatch(/symlink|outside/i);
        expect(x.after).toEqual(x.before); // all or nothing: nothing was applied
        expect(fs.readdirSync(host.drop)).toEqual(['canary']);
        expect(execOf(x.c, host.drop)).toBe(true);
      },
    );
  });

  it('HW-08 writes through a parent that is a symlink out of the project', async () => {
    await changeSetAttack(
      {
        script: 'rm out && mkdir out && echo pwn > out/pwn && echo pwn > out/canary; ls out',
        prepare: (p) => fs.symlinkSync(host.drop, path.join(p, 'out')),
      },
      (x) => {
        expect(fs.readdirSync(host.drop)).toEqual(['canary']);
        expect(fs.readFileSync(path.join(host.drop, 'canary'), 'utf8')).toBe('unchanged\n');
        // If applied, the symlink was replaced by a real directory inside the project.
        if (!x.applyError)
          expect(fs.lstatSync(path.join(x.c.project, 'out')).isDirectory()).toBe(true);
        expect(execOf(x.c, 'out/pwn')).toBe(true);
      },
    );
  });

  it('HW-09 smuggles special files (fifo, socket, device) into the change set', async () => {
    await changeSetAttack(
      {
        script:
          'mkfifo fifo; python3 -c "import socket; socket.socket(socket.AF_UNIX).bind(\'sock\')"; mknod dev c 1 3 2>&1; ls -l',
      },
      (x) => {
        expect(x.r.stdout).toMatch(/Operation not permitted/); // mknod of a device needs CAP_MKNOD
        expect(x.manifest.refused.map((r) => r.path).sort()).toEqual(['fifo', 'sock']);
        expect(x.applyError).toMatch(/never applied|refused/);
        expect(x.after).toEqual(x.before);
        expect(execOf(x.c, 'fifo')).toBe(true);
      },
    );
  });

  it('HW-10 writes a huge file to fill the host disk', async () => {
    await changeSetAttack(
      {
        script: 'head -c 64m /dev/zero > big; echo rc=$?; stat -c %s big',
        policy: { limits: { disk: '8m' } },
      },
      (x) => {
        expect(x.r.stdout).toMatch(/rc=1/); // ENOSPC at the disk cap
        expect(Number(x.r.stdout.trim().split('\n').at(-1))).toBeLessThanOrEqual(8 * 1024 * 1024);
        expect(x.manifest.totalBytes).toBeLessThanOrEqual(8 * 1024 * 1024);
        expect(x.c.events().some((e) => e.type === 'fs.change' && e.path === 'big')).toBe(true);
      },
    );
  });

  it('HW-11 creates a huge number of files', { timeout: 180_000 }, async () => {
    await changeSetAttack(
      {
        script:
          "python3 -c \"\nimport os\nos.mkdir('many')\nn=0\ntry:\n  for i in range(100500):\n    open('many/%d' % i, 'w').close(); n+=1\nexcept OSError as e: print(e)\nprint(n)\"",
        policy: { limits: { disk: '64m' } },
      },
      (x) => {
        const made = Number(x.r.stdout.trim().split('\n').at(-1));
        // Either the tmpfs ran out of room or the collector refused the change set as too big.
        if (made > 100_000) {
          expect(x.manifest.status).toBe('refused');
          expect(x.applyError).toMatch(/refused/);
        }
        expect(x.after).toEqual(x.before);
        expect(execOf(x.c, 'range(100500)')).toBe(true);
      },
    );
  });

  it('HW-12 gets a setuid/setgid file applied to the project', async () => {
    await changeSetAttack(
      { script: 'cp /usr/bin/id tool && chmod 6755 tool && stat -c %a tool' },
      (x) => {
        expect(x.r.stdout.trim()).toBe('6755');
        expect(x.applyError).toBeUndefined();
        const st = fs.statSync(path.join(x.c.project, 'tool'));
        expect(st.mode & 0o7000).toBe(0); // masked on apply
        expect(x.c.events().some((e) => e.type === 'fs.change' && e.path === 'tool')).toBe(true);
      },
    );
  });

  it('HW-13 plants persistence through the change set (hooks, rc, .vscode created anew)', async () => {
    await changeSetAttack(
      {
        script:
          'mkdir -p .vscode .git/hooks; echo x > .vscode/tasks.json; echo x > .git/hooks/post-checkout; echo x > .zshrc; ls -a',
      },
      (x) => {
        expect(x.applyError).toMatch(/protected|never applied/);
        expect(x.manifest.refused.map((r) => r.reason).join()).toMatch(/protected/);
        expect(x.after).toEqual(x.before);
        expect(execOf(x.c, '.git/hooks/post-checkout')).toBe(true);
      },
    );
  });
});
