// A cell's cgroup: its counters for the report and the live view, and its freezer for a
// checkpoint of the live cell (v1 and v2).
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { NanocellError } from '../util/errors.js';
import type { CgroupFacts } from './facts.js';

const ROOT = '/sys/fs/cgroup';

export interface CgroupSample {
  memoryBytes: number | null;
  pids: number | null;
  cpuNs: number | null;
}

/** The limits the cell's cgroup enforces; null where none is set or it cannot be read. */
export interface CgroupLimits {
  memoryBytes: number | null;
  /** CPU bandwidth in CPUs (quota / period), e.g. 1.5. */
  cpus: number | null;
  pids: number | null;
}

export interface CgroupTotals {
  peakMemoryBytes: number | null;
  peakPids: number | null;
  cpuMs: number | null;
  oomKills: number;
  pidsLimitHits: number;
}

function readNum(file: string): number | null {
  try {
    const v = fs.readFileSync(file, 'utf8').trim();
    const n = Number(v.split(/\s+/)[0]);
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

/** A limit file: a number, or "max" (v2) / a huge or negative value (v1) for none. */
function readLimit(file: string): number | null {
  const n = readNum(file);
  // v1 spells "no memory limit" as the largest page-aligned 64-bit value, "no quota" as -1.
  return n === null || n < 0 || n >= 2 ** 62 ? null : n;
}

function readKeyed(file: string, key: string): number | null {
  try {
    const m = new RegExp(`^${key}\\s+(\\d+)`, 'm').exec(fs.readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

export class CgroupReader {
  private peakMem = 0;
  private peakPids = 0;

  constructor(
    private readonly facts: CgroupFacts,
    private readonly cellId: string,
  ) {}

  private v1(ctrl: string, file: string): string {
    return path.join(ROOT, ctrl, this.facts.parent, this.cellId, file);
  }

  private v2(file: string): string {
    return path.join(ROOT, this.facts.parent, this.cellId, file);
  }

  sample(): CgroupSample {
    const s: CgroupSample =
      this.facts.version === 1
        ? {
            memoryBytes: this.facts.memory
              ? readNum(this.v1('memory', 'memory.usage_in_bytes'))
              : null,
            pids: this.facts.pids ? readNum(this.v1('pids', 'pids.current')) : null,
            cpuNs: readNum(this.v1('cpuacct', 'cpuacct.usage')),
          }
        : this.facts.version === 2
          ? {
              memoryBytes: this.facts.memory ? readNum(this.v2('memory.current')) : null,
              pids: this.facts.pids ? readNum(this.v2('pids.current')) : null,
              cpuNs: (readKeyed(this.v2('cpu.stat'), 'usage_usec') ?? NaN) * 1000 || null,
            }
          : { memoryBytes: null, pids: null, cpuNs: null };
    if (s.memoryBytes !== null) this.peakMem = Math.max(this.peakMem, s.memoryBytes);
    if (s.pids !== null) this.peakPids = Math.max(this.peakPids, s.pids);
    return s;
  }

  limits(): CgroupLimits {
    const f = this.facts;
    if (f.version === 1) {
      const quota = f.cpu ? readLimit(this.v1('cpu', 'cpu.cfs_quota_us')) : null;
      const period = f.cpu ? readNum(this.v1('cpu', 'cpu.cfs_period_us')) : null;
      return {
        memoryBytes: f.memory ? readLimit(this.v1('memory', 'memory.limit_in_bytes')) : null,
        cpus: quota !== null && period ? quota / period : null,
        pids: f.pids ? readLimit(this.v1('pids', 'pids.max')) : null,
      };
    }
    if (f.version === 2) {
      let cpus: number | null = null;
      try {
        // "QUOTA PERIOD", QUOTA "max" when unlimited.
        const [quota, period] = fs.readFileSync(this.v2('cpu.max'), 'utf8').trim().split(/\s+/);
        if (f.cpu && quota !== 'max' && Number(period) > 0) cpus = Number(quota) / Number(period);
      } catch {
        // no cpu controller in the cell's cgroup
      }
      return {
        memoryBytes: f.memory ? readLimit(this.v2('memory.max')) : null,
        cpus,
        pids: f.pids ? readLimit(this.v2('pids.max')) : null,
      };
    }
    return { memoryBytes: null, cpus: null, pids: null };
  }

  /** Call before the runtime deletes the cgroup. */
  totals(): CgroupTotals {
    const last = this.sample();
    if (this.facts.version === 1) {
      const maxUsage = this.facts.memory
        ? readNum(this.v1('memory', 'memory.max_usage_in_bytes'))
        : null;
      return {
        peakMemoryBytes: maxUsage ?? (this.facts.memory ? this.peakMem : null),
        peakPids: this.facts.pids ? (readNum(this.v1('pids', 'pids.peak')) ?? this.peakPids) : null,
        cpuMs: last.cpuNs === null ? null : Math.round(last.cpuNs / 1e6),
        oomKills: readKeyed(this.v1('memory', 'memory.oom_control'), 'oom_kill') ?? 0,
        pidsLimitHits: readKeyed(this.v1('pids', 'pids.events'), 'max') ?? 0,
      };
    }
    if (this.facts.version === 2) {
      return {
        peakMemoryBytes: this.facts.memory
          ? (readNum(this.v2('memory.peak')) ?? this.peakMem)
          : null,
        peakPids: this.facts.pids ? (readNum(this.v2('pids.peak')) ?? this.peakPids) : null,
        cpuMs: last.cpuNs === null ? null : Math.round(last.cpuNs / 1e6),
        oomKills: readKeyed(this.v2('memory.events'), 'oom_kill') ?? 0,
        pidsLimitHits: readKeyed(this.v2('pids.events'), 'max') ?? 0,
      };
    }
    return { peakMemoryBytes: null, peakPids: null, cpuMs: null, oomKills: 0, pidsLimitHits: 0 };
  }
}

/** The file that freezes a cell's cgroup, and what it reads once frozen (v1 freezer, v2 core). */
function freezerFiles(facts: CgroupFacts, cellId: string) {
  if (facts.version === 1) {
    const state = path.join(ROOT, 'freezer', facts.parent, cellId, 'freezer.state');
    return { control: state, on: 'FROZEN', off: 'THAWED', frozen: () => read(state) === 'FROZEN' };
  }
  if (facts.version === 2) {
    const dir = path.join(ROOT, facts.parent, cellId);
    const events = path.join(dir, 'cgroup.events');
    return {
      control: path.join(dir, 'cgroup.freeze'),
      on: '1',
      off: '0',
      frozen: () => /^frozen 1$/m.test(read(events)),
    };
  }
  return undefined;
}

const read = (file: string) => fs.readFileSync(file, 'utf8').trim();

/** How long a freeze may take before the checkpoint gives up (a task stuck in the kernel). */
const FREEZE_TIMEOUT_MS = 5000;

/**
 * Runs `fn` with every process of the cell stopped by the cgroup freezer, so what it reads of
 * the cell's files is one point in time; thaws after, also when `fn` or the freeze fails.
 * Refuses when the cell has no freezer (nothing is run then).
 */
export async function withCellFrozen<T>(
  facts: CgroupFacts,
  cellId: string,
  fn: () => T | Promise<T>,
): Promise<T> {
  const f = freezerFiles(facts, cellId);
  if (!f || !fs.existsSync(f.control)) {
    throw new NanocellError(
      `cannot freeze cell ${cellId}: it has no cgroup freezer${f ? ` (${f.control})` : ''}`,
      'a checkpoint of a live cell needs the cgroup freezer: run as root, or with a delegated cgroup v2',
      'HOST',
    );
  }
  try {
    fs.writeFileSync(f.control, f.on);
    const deadline = Date.now() + FREEZE_TIMEOUT_MS;
    while (!f.frozen()) {
      if (Date.now() > deadline)
        throw new NanocellError(
          `cell ${cellId} did not freeze within ${FREEZE_TIMEOUT_MS} ms`,
          'a process of the cell is stuck in the kernel; try the checkpoint again',
          'HOST',
        );
      await sleep(2);
    }
    return await fn();
  } finally {
    thaw(f.control, f.off);
  }
}

function thaw(control: string, off: string): void {
  try {
    fs.writeFileSync(control, off);
  } catch (e) {
    // Gone with the cell: nothing is left frozen.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
}
