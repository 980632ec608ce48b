// Real cells for the seccomp, exec-audit and Landlock tests: a throwaway project and state
// root, every event the cell emits, and a check that nothing is left once the cell is gone.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Cell } from '../../../src/cell/cell.js';
import type { CellEvent } from '../../../src/cell/types.js';
import { parsePolicy, resolvePolicy } from '../../../src/policy/load.js';
import type { Policy } from '../../../src/policy/defaults.js';
import { leftovers, makeSandbox, type Sandbox } from '../../helpers/cells.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The syscall probe (fixtures/probe.py), placed in a project as `probe.py`. */
export const PROBE_PY = fs.readFileSync(path.join(HERE, 'fixtures', 'probe.py'), 'utf8');

export const SIGSYS = 31;

export interface TestCell {
  cell: Cell;
  sb: Sandbox;
  /** Every event the cell emitted so far (monitor, lifecycle, workspace). */
  events: CellEvent[];
}

export function policy(doc: object = {}): Policy {
  return resolvePolicy(parsePolicy(doc));
}

/**
 * Starts a cell on a fresh project holding `files`, runs `fn`, then destroys the cell and
 * throws if anything of it is left (dirs, mounts, cgroups, processes). Cleans up on failure.
 */
export async function withCell<T>(
  o: { files?: Record<string, string>; policy?: Policy; prepare?: (project: string) => void },
  fn: (c: TestCell) => Promise<T>,
): Promise<T> {
  const sb = makeSandbox(o.files ?? { 'README.md': 'hello\n' });
  const events: CellEvent[] = [];
  let cell: Cell | undefined;
  try {
    o.prepare?.(sb.project);
    cell = await Cell.create({
      policy: o.policy ?? policy(),
      workspace: sb.project,
      stateRoot: sb.stateRoot,
      onEvent: (e) => events.push(e),
    });
    let out: T;
    try {
      out = await fn({ cell, sb, events });
    } finally {
      await cell.destroy();
    }
    // Processes are matched by the cell's cgroup, not its uid range: concurrent cells under
    // other state roots (other tests) lease the same slots, so their uids coincide.
    const left = { ...leftovers(sb.stateRoot), processes: processesOfCell(cell.id) };
    const dirty = Object.entries(left).filter(([, v]) => v.length > 0);
    if (dirty.length) throw new Error(`the cell left ${JSON.stringify(Object.fromEntries(dirty))}`);
    return out;
  } finally {
    if (cell) await cell.destroy().catch(() => undefined);
    sb.cleanup();
  }
}

/** Live (non-zombie) processes whose cgroup path names `cellId`. */
export function processesOfCell(cellId: string): string[] {
  const out: string[] = [];
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (!fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(cellId)) continue;
      const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
      if (/^State:\s+Z/m.test(status)) continue;
      out.push(`${pid}:${/^Name:\s+(.*)$/m.exec(status)?.[1]}`);
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

export const denials = (events: CellEvent[]) => events.filter((e) => e.type === 'syscall.denied');
export const execs = (events: CellEvent[]) => events.filter((e) => e.type === 'exec');

/** Parses the probe's JSON lines into { attempt: { ret, errno } }. */
export function probeResults(stdout: string): Record<string, { ret: number; errno: number }> {
  const out: Record<string, { ret: number; errno: number }> = {};
  for (const line of stdout.split('\n').filter(Boolean)) {
    const r = JSON.parse(line) as { attempt?: string; ret: number; errno: number };
    if (r.attempt) out[r.attempt] = { ret: r.ret, errno: r.errno };
  }
  return out;
}

/** Monitor events arrive on a pipe: wait until `pred` holds or `ms` pass. */
export async function eventually(pred: () => boolean, ms = 3000): Promise<boolean> {
  const until = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}
