// What the report records about the machine, and the memory probes the concurrency figure uses.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

const MiB = 1024 * 1024;

function firstLine(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
      .trim()
      .split('\n')[0]!;
  } catch {
    return 'not installed';
  }
}

export function loadAvg(): string {
  return os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
}

export function machine(): Record<string, string> {
  const cpu = /model name\s*:\s*(.*)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '?';
  let distro = '?';
  try {
    distro = /PRETTY_NAME="(.*)"/.exec(fs.readFileSync('/etc/os-release', 'utf8'))?.[1] ?? '?';
  } catch {
    // keep '?'
  }
  return {
    CPU: cpu,
    cores: String(os.cpus().length),
    memory: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    kernel: os.release(),
    OS: distro,
    'cgroup layout': fs.existsSync('/sys/fs/cgroup/memory') ? 'v1 (hybrid)' : 'v2',
  };
}

export function versions(repo: string): Record<string, string> {
  let commit = '?';
  try {
    commit = execFileSync('git', ['-C', repo, 'rev-parse', '--short', 'HEAD'], {
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync(
      'git',
      ['-C', repo, 'status', '--porcelain', '--', 'src', 'native'],
      {
        encoding: 'utf8',
      },
    ).trim();
    if (dirty) commit += ' (with uncommitted changes in src/ or native/)';
  } catch {
    // not a git checkout
  }
  return {
    nanocell: commit,
    node: process.version,
    runc: firstLine('runc', ['--version']),
    bwrap: firstLine('bwrap', ['--version']),
  };
}

/** MemTotal − MemAvailable, in bytes: what the whole host uses. */
export function hostUsedBytes(): number {
  const m = fs.readFileSync('/proc/meminfo', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(m)?.[1] ?? 0) * 1024;
  return kb('MemTotal') - kb('MemAvailable');
}

/** Proportional set size of a process (shared pages split among their users), in bytes. */
export function pssBytes(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Children of `ppid` by /proc scan: [pid, comm]. */
function childrenOf(ppid: number): [number, string][] {
  const out: [number, string][] = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const parent = Number(stat.slice(close + 2).split(' ')[1]);
      if (parent === ppid) out.push([Number(name), comm]);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

/**
 * The helpers a supervisor started: its children and those of its fork server
 * (src/util/forkServer.ts), which starts the monitors; the fork server itself is included.
 */
export function helpersOf(ppid: number): [number, string][] {
  const direct = childrenOf(ppid);
  const servers = direct.filter(([, c]) => c === 'nanocell-forkse');
  return [...direct, ...servers.flatMap(([pid]) => childrenOf(pid))];
}

export function readNumber(file: string): number | null {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

export const toMiB = (b: number): number => b / MiB;
