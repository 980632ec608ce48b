// Host read: a cell tries to read the host's secrets, the host's processes, other cells, the
// state database, and excluded project files by every path trick.
//
// On the record: most of these are blocked because the file simply is not in the cell's mount
// namespace (the kernel answers ENOENT and emits no event). For those the task's audit record is
// the exec of the attacking program, whose argv names every path it tried; the tests assert that
// record. Where a syscall is the attack (open_by_handle_at), its syscall.denied is asserted.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AttackCell, ENOENT, HostSentinels, Victim, type Attempt } from './harness.js';

const SECRET = 'PROJECT-DOTENV-SECRET';
let ac: AttackCell;
let victim: Victim;
let host: HostSentinels;

beforeAll(async () => {
  host = new HostSentinels();
  process.env.NANOCELL_ATTACK_HOST_SECRET = 'HOST-ENV-SENTINEL';
  [victim, ac] = await Promise.all([
    Victim.start(),
    AttackCell.start({
      files: { '.env': `${SECRET}\n`, 'keys/deploy.pem': 'PEM-SECRET\n', 'src/app.js': '1\n' },
      prepare: (p) => {
        fs.linkSync(path.join(p, '.env'), path.join(p, 'notes.txt'));
        fs.symlinkSync('.env', path.join(p, 'rel-link'));
        fs.symlinkSync(path.join(p, '.env'), path.join(p, 'abs-link'));
        fs.symlinkSync(host.home, path.join(p, 'home-link'));
      },
    }),
  ]);
});
afterAll(async () => {
  delete process.env.NANOCELL_ATTACK_HOST_SECRET;
  await Promise.all([ac?.dispose(), victim?.dispose()]);
  host?.cleanup();
});

const allBlocked = (rs: Attempt[], ...secrets: string[]) => {
  for (const r of rs) {
    expect(r.ok, `${r.a} ${r.t} → ${r.out}`).toBe(false);
    for (const s of secrets) expect(r.out).not.toContain(s);
  }
};
const unharmed = async () => {
  expect(host.changes()).toEqual([]);
  expect(await victim.intact()).toBe(true);
};

describe('host read', () => {
  it("HR-01 reads the host's SSH and cloud keys", async () => {
    const paths = [
      `${host.home}/.ssh/id_ed25519`,
      `${host.home}/.aws/credentials`,
      '/root/.ssh/id_rsa',
      '/root/.ssh/authorized_keys',
      '/root/.aws/credentials',
      '/root/.config/gcloud/credentials.db',
      `${ac.project}/home-link/.ssh/id_ed25519`,
    ];
    const rs = await ac.atk('read', ...paths);
    allBlocked(rs, 'SENTINEL');
    for (const r of rs) expect(r.errno).toBe(ENOENT);
    allBlocked(await ac.atk('list', '/root', host.home));
    // /home holds only the cell's own tmpfs HOME, not the host's homes.
    expect((await ac.atk('list', '/home'))[0]!.out).toBe('cell');
    await ac.execRecorded('read', `${host.home}/.ssh/id_ed25519`);
    await unharmed();
  });

  it('HR-02 reads /etc/shadow and other host system secrets', async () => {
    const rs = await ac.atk(
      'read',
      '/etc/shadow',
      '/etc/gshadow',
      '/etc/sudoers',
      '/etc/ssh/ssh_host_ed25519_key',
      '/etc/machine-id',
      '/var/lib/nanocell/nanocell.db',
    );
    allBlocked(rs);
    // /etc is generated: the host's accounts are not listed.
    const [passwd] = await ac.atk('read', '/etc/passwd');
    expect(passwd!.out).not.toBe(fs.readFileSync('/etc/passwd', 'latin1').slice(0, 200));
    await ac.execRecorded('read', '/etc/shadow');
    await unharmed();
  });

  it("HR-03 reads the supervisor's environment", async () => {
    const r = await ac.sh(
      'env; for f in /proc/[0-9]*/environ /proc/self/environ /proc/1/environ; do tr "\\0" "\\n" < $f; done 2>&1; grep -rs HOST-ENV-SENTINEL /etc /tmp ~ . ; true',
    );
    expect(r.stdout).not.toContain('HOST-ENV-SENTINEL');
    expect(r.stdout).not.toContain('NANOCELL_ATTACK_HOST_SECRET');
    await ac.execRecorded('bash', '/proc/1/environ');
    await unharmed();
  });

  it("HR-04 reads the host's processes and kernel internals through /proc", async () => {
    const hostPid = String(process.pid);
    const ps = await ac.sh('ls /proc | grep -E "^[0-9]+$" | wc -l');
    expect(Number(ps.stdout.trim())).toBeLessThan(20); // only the cell's own processes
    const rs = await ac.atk(
      'read',
      `/proc/${hostPid}/cmdline`,
      `/proc/${hostPid}/environ`,
      '/proc/kcore',
      '/proc/keys',
      '/proc/sched_debug',
      '/proc/timer_list',
      '/proc/sysrq-trigger',
    );
    for (const r of rs) expect(r.out, r.t).not.toMatch(/node|vitest|HOST-ENV|\x7fELF/);
    const syms = await ac.sh('head -3 /proc/kallsyms 2>/dev/null | cut -d" " -f1 | sort -u');
    expect(
      syms.stdout
        .trim()
        .split('\n')
        .filter((a) => a && !/^0+$/.test(a)),
    ).toEqual([]);
    await ac.execRecorded('read', `/proc/${hostPid}/cmdline`);
    await unharmed();
  });

  it("HR-05 reads the host's /sys (cgroups, devices, network)", async () => {
    allBlocked(
      await ac.atk('list', '/sys', '/sys/fs/cgroup', '/sys/class/net', '/sys/kernel/debug'),
    );
    await ac.execRecorded('list', '/sys/fs/cgroup');
    await unharmed();
  });

  it("HR-06 reads another cell's workspace, /tmp, HOME and state", async () => {
    const rs = await ac.atk(
      'read',
      `${victim.project}/victim-secret.txt`,
      `${victim.stateRoot}/nanocell.db`,
      '/tmp/victim-tmp',
      '/home/cell/victim-home',
    );
    allBlocked(rs, 'VICTIM');
    allBlocked(await ac.atk('list', victim.stateRoot, path.join(victim.stateRoot, 'cells')));
    await ac.execRecorded('read', victim.project);
    await unharmed();
  });

  it('HR-07 reads the state database, the runtime state and change sets', async () => {
    const own = ac.sb.stateRoot;
    const rs = await ac.atk(
      'read',
      `${own}/nanocell.db`,
      `${own}/nanocell.db-wal`,
      `${own}/runc/${ac.cell.id}/state.json`,
      `${own}/cells/${ac.cell.id}/owner.json`,
    );
    allBlocked(rs);
    allBlocked(await ac.atk('list', own, `${own}/changes`, `${own}/reports`));
    await ac.execRecorded('read', `${own}/nanocell.db`);
    await unharmed();
  });

  it('HR-08 reads excluded files through symlinks', async () => {
    await ac.sh('ln -s .env my-link; ln -s keys/deploy.pem pem-link; ln -s "$PWD/.env" my-abs');
    const rs = await ac.atk(
      'read',
      '.env',
      'keys/deploy.pem',
      'rel-link',
      'abs-link',
      'my-link',
      'pem-link',
      'my-abs',
    );
    allBlocked(rs, SECRET, 'PEM-SECRET');
    await ac.execRecorded('read', 'rel-link', 'abs-link');
    await unharmed();
  });

  it('HR-09 reads an excluded file through a hardlink made on the host', async () => {
    const rs = await ac.atk('read', 'notes.txt');
    allBlocked(rs, SECRET);
    const ln = await ac.sh('ln .env stolen 2>&1; cat stolen 2>&1; true');
    expect(ln.stdout).not.toContain(SECRET);
    await ac.execRecorded('read', 'notes.txt');
    await unharmed();
  });

  it('HR-10 reads excluded or outside files with ..', async () => {
    const base = path.basename(ac.project);
    const rs = await ac.atk(
      'read',
      'src/../.env',
      `../${base}/.env`,
      '../state/nanocell.db',
      `${ac.project}/../state/nanocell.db`,
      '../../../../../../etc/shadow',
      '/proc/self/cwd/.env',
    );
    allBlocked(rs, SECRET);
    const parent = await ac.atk('list', '..');
    expect(parent[0]!.out).toBe(base); // the state root next to the project is not there
    await ac.execRecorded('read', '../state/nanocell.db');
    await unharmed();
  });

  it('HR-11 reads excluded files through /proc/self/root and /proc/1/root', async () => {
    const rs = await ac.atk(
      'read',
      `/proc/self/root${ac.project}/.env`,
      `/proc/1/root${ac.project}/.env`,
      `/proc/1/cwd/.env`,
      '/proc/1/root/etc/shadow',
      `/proc/self/root${host.home}/.ssh/id_ed25519`,
    );
    allBlocked(rs, SECRET, 'SENTINEL');
    await ac.execRecorded('read', '/proc/1/root/etc/shadow');
    await unharmed();
  });

  it('HR-12 opens an excluded file by handle (open_by_handle_at, shocker)', async () => {
    const [name] = await ac.atk(
      'syscall',
      'name_to_handle_at',
      '-100',
      'src/app.js',
      '0',
      '0',
      '0',
    );
    // A hand-made handle for inode 2 (the root of most file systems), as the shocker exploit does.
    const [open] = await ac.atk('syscall', 'open_by_handle_at', '-100', 'AAAAAAAAAAAAAAAA', '0');
    expect(name!.ok).toBe(false);
    expect(open!.ok).toBe(false);
    await ac.deniedRecorded('name_to_handle_at');
    await ac.deniedRecorded('open_by_handle_at');
    await unharmed();
  });

  it('HR-13 learns the overlay layers from mountinfo and reads them directly', async () => {
    const info = await ac.sh('cat /proc/self/mountinfo');
    const hostPaths = new Set<string>();
    for (const m of info.stdout.matchAll(/(?:lowerdir|upperdir|workdir)=([^,\s]+)/g))
      for (const p of m[1]!.split(':')) hostPaths.add(p);
    const tries = [...hostPaths].slice(0, 6).flatMap((p) => [`${p}/.env`, `${p}/notes.txt`]);
    tries.push(`${ac.sb.stateRoot}/cells/${ac.cell.id}/upper/.env`);
    const rs = await ac.atk('read', ...tries);
    allBlocked(rs, SECRET);
    await ac.execRecorded('read', `${ac.sb.stateRoot}/cells/`);
    await unharmed();
  });
});
