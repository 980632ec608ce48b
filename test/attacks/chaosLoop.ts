// The chaos loop shared by test/attacks/chaos.test.ts (bounded, in CI) and bench/soak.ts (long):
// many `nanocell run` processes with random abrupt ends, then `nanocell gc`, then an inventory of
// everything a cell could leave behind and a check of the state store.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { AuditStore } from '../../src/audit/store.js';
import { HOST_SLOTS_DIR } from '../../src/host/slots.js';
import { CLI as REPO_CLI, cellProcesses, mountsUnder, nanocell } from '../helpers/cells.js';

/** The CLI to run; bench/soak.ts compiles elsewhere and points this at the repo's dist. */
let CLI = REPO_CLI;
export function useCli(cli: string): void {
  CLI = cli;
}
function cli(
  args: string[],
  stateRoot: string,
): { status: number; stdout: string; stderr: string } {
  if (CLI === REPO_CLI) return nanocell(args, { stateRoot });
  const r = spawnSync('node', [CLI, ...args], {
    env: { ...process.env, NANOCELL_STATE_ROOT: stateRoot },
    encoding: 'utf8',
    maxBuffer: 1 << 30,
  });
  return { status: r.status ?? 137, stdout: r.stdout, stderr: r.stderr };
}

export type Ending = 'exit' | 'task-sigkill' | 'cli-sigkill' | 'timeout' | 'oom';
export const ENDINGS: Ending[] = ['exit', 'task-sigkill', 'cli-sigkill', 'timeout', 'oom'];

/** mulberry32: small, seedable, good enough to pick endings and delays. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ChaosResult {
  seed: number;
  counts: Record<Ending, number>;
  exitCodes: Record<string, number>;
  uidBases: number[];
  cellIds: string[];
  durationMs: number;
}

function argsFor(ending: Ending): string[] {
  switch (ending) {
    case 'exit':
      return ['--', 'sh', '-c', 'echo hi; ls >/dev/null'];
    case 'task-sigkill':
      return ['--', 'sh', '-c', 'sleep 30 & echo ready; kill -9 $$'];
    case 'cli-sigkill':
      return ['--', 'sh', '-c', 'sleep 60 & sleep 60'];
    case 'timeout':
      return ['--timeout', '1s', '--', 'sh', '-c', 'trap "" TERM; sleep 60'];
    case 'oom':
      return [
        '--memory',
        '48m',
        '--',
        'python3',
        '-c',
        'a=[]\nwhile 1: a.append(bytearray(8<<20))',
      ];
  }
}

/** Runs `cells` tasks, `concurrency` at a time, each with a random ending. */
export async function runChaos(o: {
  cells: number;
  concurrency: number;
  seed: number;
  stateRoot: string;
  workspace: string;
  log?: (line: string) => void;
}): Promise<ChaosResult> {
  const random = rng(o.seed);
  const plan = Array.from({ length: o.cells }, () => ({
    ending: ENDINGS[Math.floor(random() * ENDINGS.length)]!,
    killAfterMs: Math.floor(random() * 2500),
  }));
  const counts = Object.fromEntries(ENDINGS.map((e) => [e, 0])) as Record<Ending, number>;
  const exitCodes: Record<string, number> = {};
  const uidBases = new Set<number>();
  const cellIds = new Set<string>();
  const t0 = Date.now();

  // Cells are short-lived: watch the slot leases and cell dirs to learn their ids and uid ranges.
  const cellsDir = path.join(o.stateRoot, 'cells');
  const watch = setInterval(() => {
    for (const id of safeList(cellsDir)) cellIds.add(id);
    for (const slot of safeList(HOST_SLOTS_DIR)) {
      try {
        if (fs.readFileSync(path.join(HOST_SLOTS_DIR, slot), 'utf8').startsWith(o.stateRoot))
          uidBases.add(2 ** 30 + Number(slot) * 65536);
      } catch {
        // released meanwhile
      }
    }
  }, 20);

  let next = 0;
  const worker = async () => {
    while (next < plan.length) {
      const i = next++;
      const { ending, killAfterMs } = plan[i]!;
      counts[ending]++;
      const child = spawn('node', [CLI, 'run', '--workspace', o.workspace, ...argsFor(ending)], {
        env: { ...process.env, NANOCELL_STATE_ROOT: o.stateRoot },
        stdio: ['ignore', 'ignore', 'ignore'],
      });
      let timer: NodeJS.Timeout | undefined;
      if (ending === 'cli-sigkill') timer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
      const code = await new Promise<string>((resolve) =>
        child.once('close', (c, s) => resolve(s ? `sig:${s}` : String(c))),
      );
      clearTimeout(timer);
      const key = `${ending}:${code}`;
      exitCodes[key] = (exitCodes[key] ?? 0) + 1;
      if ((i + 1) % 50 === 0) o.log?.(`${i + 1}/${plan.length} cells in ${Date.now() - t0} ms`);
    }
  };
  try {
    await Promise.all(Array.from({ length: o.concurrency }, worker));
  } finally {
    clearInterval(watch);
  }
  return {
    seed: o.seed,
    counts,
    exitCodes,
    uidBases: [...uidBases],
    cellIds: [...cellIds],
    durationMs: Date.now() - t0,
  };
}

/** A leftover cell dir, for the failure message: its entries, owner record, age, gc's output. */
function describeLeftover(dir: string, gcOut: string): string {
  let owner = 'no owner.json';
  try {
    owner = fs.readFileSync(path.join(dir, 'owner.json'), 'utf8');
  } catch {
    // as said
  }
  const age = Date.now() - (fs.statSync(dir, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
  return `${path.basename(dir)} [entries: ${safeList(dir).join(',')}; owner: ${owner}; mtime ${age} ms ago; gc: ${gcOut.trim().split('\n').pop() ?? ''}]`;
}

function safeList(dir: string): string[] {
  try {
    return fs.readdirSync(dir);
  } catch {
    return [];
  }
}

/** `nanocell gc`, then everything the cells could have left behind. Empty lists mean clean. */
export function gcAndInventory(stateRoot: string, r: ChaosResult): Record<string, string[]> {
  const gc = cli(['gc'], stateRoot);
  const cgroups: string[] = [];
  for (const ctrl of ['memory', 'pids', 'cpu', 'cpuacct', 'cpu,cpuacct', 'unified']) {
    for (const id of r.cellIds)
      if (fs.existsSync(`/sys/fs/cgroup/${ctrl}/nanocell/${id}`)) cgroups.push(`${ctrl}/${id}`);
  }
  const ours = (pid: string) => {
    try {
      const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const cg = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      return cmd.includes(stateRoot) || r.cellIds.some((id) => cg.includes(id));
    } catch {
      return false;
    }
  };
  const procs = fs
    .readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p) && ours(p))
    .map((p) => `${p}:${fs.readFileSync(`/proc/${p}/comm`, 'utf8').trim()}`);
  const list = (p: string) => safeList(path.join(stateRoot, p));
  return {
    gcFailed: gc.status === 0 ? [] : [`status ${gc.status}: ${gc.stderr.trim()}`],
    processes: [...cellProcesses(r.uidBases), ...procs],
    mounts: mountsUnder(stateRoot),
    cgroups,
    runtime: list('runc'),
    // Each with what a failure needs to be understood: what is in it, its owner, its age, gc's word.
    cells: list('cells').map((c) => describeLeftover(path.join(stateRoot, 'cells', c), gc.stdout)),
    overlays: list('cells').filter((c) => fs.existsSync(path.join(stateRoot, 'cells', c, 'upper'))),
    proxySockets: r.cellIds
      .map((id) => path.join(stateRoot, 'cells', id, 'proxy.sock'))
      .filter((p) => fs.existsSync(p)),
    slots: safeList(HOST_SLOTS_DIR).filter((s) => {
      try {
        return fs.readFileSync(path.join(HOST_SLOTS_DIR, s), 'utf8').startsWith(stateRoot);
      } catch {
        return false;
      }
    }),
  };
}

/** Every task ended (exited, failed or abnormal) and every hash chain verifies. */
export function storeProblems(stateRoot: string): { tasks: number; problems: string[] } {
  const store = AuditStore.open(path.join(stateRoot, 'nanocell.db'), { readonly: true });
  const problems: string[] = [];
  let tasks = 0;
  try {
    const rows = listTasks(stateRoot);
    for (const t of rows) {
      tasks++;
      const row = store.getTask(t);
      if (!row) problems.push(`${t}: missing`);
      else if (!['exited', 'failed', 'abnormal'].includes(row.status))
        problems.push(`${t}: status ${row.status}`);
      const v = store.verifyTask(t);
      if (!v.ok) problems.push(`${t}: chain ${JSON.stringify(v)}`);
    }
  } finally {
    store.close();
  }
  return { tasks, problems };
}

function listTasks(stateRoot: string): string[] {
  const r = cli(['tasks', '--json', '--limit', '100000'], stateRoot);
  if (r.status !== 0) throw new Error(`nanocell tasks failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { id: string }[]).map((t) => t.id);
}
