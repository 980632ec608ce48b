// Shared helpers for tests that start real cells: throwaway projects and state roots under
// /var/tmp, the CLI as a real process, and leftover checks.
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HOST_SLOTS_DIR } from '../../src/host/slots.js';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CLI = path.join(REPO, 'dist', 'cli', 'nanocell.mjs');
export const TEST_ROOT = '/var/tmp/nanocell-tests';

export interface Sandbox {
  project: string;
  stateRoot: string;
  cleanup(): void;
}

let counter = 0;

/** A project dir with a few files, and a private state root. Both removed by cleanup(). */
export function makeSandbox(files: Record<string, string> = { 'README.md': 'hello\n' }): Sandbox {
  fs.mkdirSync(TEST_ROOT, { recursive: true, mode: 0o755 });
  const base = fs.mkdtempSync(path.join(TEST_ROOT, `t${process.pid}-${counter++}-`));
  fs.chmodSync(base, 0o755);
  const project = path.join(base, 'project');
  const stateRoot = path.join(base, 'state');
  fs.mkdirSync(project);
  for (const [rel, body] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(project, rel)), { recursive: true });
    fs.writeFileSync(path.join(project, rel), body);
  }
  return {
    project,
    stateRoot,
    cleanup() {
      // A failed test may leave a cell: kill and unmount before removing the dirs.
      spawnSync('umount', ['-R', '-l', stateRoot], { stdio: 'ignore' });
      for (const mp of mountsUnder(base)) spawnSync('umount', ['-l', mp], { stdio: 'ignore' });
      fs.rmSync(base, { recursive: true, force: true });
    },
  };
}

export function mountsUnder(dir: string): string[] {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp === dir || mp.startsWith(`${dir}/`));
}

export interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

export function nanocell(
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; stateRoot?: string } = {},
): CliResult {
  const r: SpawnSyncReturns<string> = spawnSync('node', [CLI, ...args], {
    cwd: opts.cwd ?? REPO,
    env: {
      ...process.env,
      ...(opts.stateRoot ? { NANOCELL_STATE_ROOT: opts.stateRoot } : {}),
      ...opts.env,
    },
    input: opts.input ?? '',
    encoding: 'utf8',
    timeout: 120_000,
  });
  return { status: r.status ?? 128 + 9, stdout: r.stdout, stderr: r.stderr };
}

export function spawnNanocell(
  args: string[],
  opts: { cwd?: string; stateRoot: string; env?: NodeJS.ProcessEnv },
) {
  return spawn('node', [CLI, ...args], {
    cwd: opts.cwd ?? REPO,
    env: { ...process.env, NANOCELL_STATE_ROOT: opts.stateRoot, ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Host-wide uid-range leases held by cells under this state root. */
export function slotsOf(stateRoot: string): number[] {
  const names = fs.existsSync(HOST_SLOTS_DIR) ? fs.readdirSync(HOST_SLOTS_DIR) : [];
  return names
    .filter((n) => {
      try {
        return fs.readFileSync(path.join(HOST_SLOTS_DIR, n), 'utf8').startsWith(`${stateRoot}/`);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** Everything a cell could leave behind under a state root. Empty lists mean clean. */
export function leftovers(stateRoot: string, uidBases: number[] = []): Record<string, string[]> {
  const ls = (p: string) => (fs.existsSync(p) ? fs.readdirSync(p) : []);
  const cgroups: string[] = [];
  for (const ctrl of ['memory', 'pids', 'cpu', 'cpuacct']) {
    const d = `/sys/fs/cgroup/${ctrl}/nanocell`;
    for (const id of ls(d))
      if (
        fs.statSync(path.join(d, id), { throwIfNoEntry: false })?.isDirectory() &&
        isOurs(stateRoot, id)
      )
        cgroups.push(`${ctrl}/${id}`);
  }
  return {
    cells: ls(path.join(stateRoot, 'cells')),
    // Every runtime keeps its state under <state>/<runtime> (runc: <state>/runc).
    runtime: ['runc', 'crun', 'runsc'].flatMap((rt) => ls(path.join(stateRoot, rt))),
    slots: slotsOf(stateRoot).map(String),
    mounts: mountsUnder(stateRoot),
    cgroups,
    processes: cellProcesses(uidBases),
  };
}

// cgroup names are cell ids; a cell id is ours if the reports or cells dir mentions it.
function isOurs(stateRoot: string, id: string): boolean {
  return fs.existsSync(path.join(stateRoot, 'cells', id)) || seenCellIds.has(id);
}
export const seenCellIds = new Set<string>();

/** Live processes whose uid is in one of the given cell uid ranges. */
export function cellProcesses(uidBases: number[]): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
      const state = /^State:\s+(\S)/m.exec(status)?.[1];
      if (uidBases.some((b) => uid >= b && uid < b + 65536) && state !== 'Z')
        out.push(`${pid}:${/^Name:\s+(.*)$/m.exec(status)?.[1]}`);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

// Reports are checked field by field with matchers; a loose type keeps the tests readable.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function readReport(file: string): Record<string, any> {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

export function sh(cmd: string): string {
  return execFileSync('sh', ['-c', cmd], { encoding: 'utf8' });
}

/**
 * The CLI path an unprivileged user can run: the checkout's own, or, when the checkout is
 * private, a world-readable copy of what the CLI needs under `base`.
 */
export function cliFor(user: string, base: string): string {
  const cli = path.join(REPO, 'dist', 'cli', 'nanocell.mjs');
  if (spawnSync('runuser', ['-u', user, '--', 'test', '-r', cli]).status === 0) return cli;
  const copy = path.join(base, 'nanocell');
  for (const d of ['dist', 'native/build', 'node_modules', 'package.json']) {
    fs.cpSync(path.join(REPO, d), path.join(copy, d), { recursive: true });
  }
  execFileSync('chmod', ['-R', 'a+rX', copy]);
  return path.join(copy, 'dist', 'cli', 'nanocell.mjs');
}

/**
 * The pids whose children are this process's helpers: this process and its fork server
 * (src/util/forkServer.ts), which starts the monitors and attach helpers.
 */
export function helperParents(): Set<number> {
  const parents = new Set([process.pid]);
  for (const d of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (comm === 'nanocell-forkse' && ppid === process.pid) parents.add(Number(d));
    } catch {
      // exited meanwhile
    }
  }
  return parents;
}
