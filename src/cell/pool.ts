// A warm pool: cells started ahead of their tasks, for one project and one set of fixed
// policy parts (src/plan/poolKey.ts). A claim takes a started cell and attaches what is the
// task's own (claim.ts); the claimed cell serves that one task and is destroyed like any
// other, so nothing of one task can reach the next: each task gets a cell no task has used.
// The pool refills in the background, one cell at a time by default, so that refilling on a
// small host does not take the CPU from the cells that are running tasks.
import { NanocellError } from '../util/errors.js';
import { resolveProjectDir } from '../plan/projectDir.js';
import { checkPoolPlan } from '../plan/poolKey.js';
import { compileNetRules, hasEgress } from '../net/rules.js';
import { probeHost } from '../host/probe.js';
import { Cell } from './cell.js';
import { checkClaim, type ClaimTarget } from './claim.js';
import type { CellOptions, ClaimRequest } from './types.js';

/** More warm cells than this per pool is a typo, not a plan. */
export const MAX_POOL_SIZE = 1000;
/** After a failed start, the pool waits this long before trying again (doubling, capped). */
const RETRY_MS = 500;
const RETRY_MAX_MS = 30_000;
/**
 * A claim's refill waits this long after the claim: a task's first commands follow its claim
 * at once, and a start (plan, bundle, runtime) would take the CPU from them on a small host.
 */
const REFILL_GRACE_MS = 50;

export interface PoolOptions {
  /** For errors and stats; default "default". */
  name?: string;
  /** The fixed parts every claim shares, and the defaults of the rest. */
  policy: CellOptions['policy'];
  /** The one project this pool serves (Landlock's rules name its path). */
  workspace: string;
  /** Warm cells kept ready; 0: every claim starts its cell then (no pool, same API). */
  size: number;
  stateRoot?: string;
  /** How many cells start at once while refilling (default 1). */
  fillConcurrency?: number;
  /** The pool's own troubles (a failed refill), one line each. */
  onLog?: (line: string) => void;
}

export interface PoolStats {
  name: string;
  size: number;
  ready: number;
  starting: number;
  claimed: number;
  /** Claims that found no ready cell and started one then. */
  coldStarts: number;
  failedStarts: number;
  lastError?: string;
}

export class CellPool {
  readonly name: string;
  private readonly ready: Cell[] = [];
  private starting = 0;
  private claimed = 0;
  private coldStarts = 0;
  private failedStarts = 0;
  private lastError?: string;
  private retryMs = RETRY_MS;
  private retryTimer?: NodeJS.Timeout;
  private closed = false;
  private size: number;
  /** Resolved when a start ends (for whenFull). */
  private settled: (() => void)[] = [];

  private constructor(private readonly o: PoolOptions) {
    this.name = o.name ?? 'default';
    this.size = checkSize(o.size, this.name);
    this.project = resolveProjectDir(o.workspace);
    this.target = {
      name: this.name,
      policy: o.policy,
      project: this.project,
      // As the warm cells start: the pool's policy, no extra destinations.
      egress: hasEgress(compileNetRules(o.policy.network, [])),
    };
  }

  private readonly project: string;
  /** What claims are checked against (claim.ts, checkClaim). */
  private readonly target: ClaimTarget;

  /** Validates the options and starts filling; cells start in the background. */
  static open(o: PoolOptions): CellPool {
    const pool = new CellPool(o);
    if (pool.size > 0)
      checkPoolPlan({ project: o.workspace, execAllow: [], rootless: probeHost().rootless });
    pool.fill();
    return pool;
  }

  stats(): PoolStats {
    return {
      name: this.name,
      size: this.size,
      ready: this.ready.length,
      starting: this.starting,
      claimed: this.claimed,
      coldStarts: this.coldStarts,
      failedStarts: this.failedStarts,
      ...(this.lastError ? { lastError: this.lastError } : {}),
    };
  }

  /** Changes how many warm cells are kept; extra ready cells are destroyed. */
  async resize(size: number): Promise<void> {
    this.size = checkSize(size, this.name);
    const extra = this.ready.splice(this.size);
    await Promise.allSettled(extra.map((c) => c.destroy()));
    this.fill();
  }

  /**
   * A cell for one task: a warm one when ready, else one started now. The claim's fixed
   * policy parts are checked before a cell is taken, so a refused claim costs no cell.
   */
  async claim(c: ClaimRequest = {}): Promise<Cell> {
    if (this.closed)
      throw new NanocellError(`pool "${this.name}" is closed`, 'open a new pool', 'STATE');
    const rules = checkClaim(this.target, {
      policy: c.policy ?? this.o.policy,
      workspace: c.workspace === undefined ? this.project : resolveProjectDir(c.workspace),
      ...(c.extraAllowNet ? { extraAllowNet: c.extraAllowNet } : {}),
    });
    const cell = this.takeReady();
    // No warm cell (a pool of size 0, or drained): the task's cell starts now, as a cold one.
    if (!cell) {
      this.coldStarts++;
      this.fill();
      return Cell.create(this.coldOptions(c));
    }
    try {
      await cell.bindClaim(c, { name: this.name, policy: this.o.policy }, rules);
    } catch (e) {
      await cell.destroy().catch(() => undefined);
      throw e;
    } finally {
      this.refillSoon();
    }
    this.claimed++;
    return cell;
  }

  private refillTimer?: NodeJS.Timeout;

  private refillSoon(): void {
    if (this.refillTimer) return;
    this.refillTimer = setTimeout(() => {
      this.refillTimer = undefined;
      this.fill();
    }, REFILL_GRACE_MS);
  }

  /** Resolves when the pool holds `size` ready cells (or it is closed). For benches and tests. */
  async whenFull(): Promise<void> {
    while (!this.closed && this.ready.length < this.size) {
      if (this.starting === 0 && !this.retryTimer && !this.refillTimer) this.fill();
      await new Promise<void>((r) => this.settled.push(r));
    }
  }

  /** Destroys the ready cells; claimed cells are their tasks' to destroy. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.refillTimer);
    const cells = this.ready.splice(0);
    await Promise.allSettled(cells.map((c) => c.destroy()));
    for (const r of this.settled.splice(0)) r();
  }

  private takeReady(): Cell | undefined {
    while (this.ready.length) {
      const cell = this.ready.shift()!;
      if (cell.isLive) return cell;
      void cell.destroy().catch(() => undefined);
    }
    return undefined;
  }

  private coldOptions(c: ClaimRequest): CellOptions {
    return {
      ...c,
      policy: c.policy ?? this.o.policy,
      workspace: this.o.workspace,
      ...(this.o.stateRoot !== undefined ? { stateRoot: this.o.stateRoot } : {}),
    };
  }

  private startOne(): Promise<Cell> {
    return Cell.warm({
      policy: this.o.policy,
      workspace: this.o.workspace,
      ...(this.o.stateRoot !== undefined ? { stateRoot: this.o.stateRoot } : {}),
    });
  }

  private fill(): void {
    const limit = this.o.fillConcurrency ?? 1;
    while (
      !this.closed &&
      !this.retryTimer &&
      this.starting < limit &&
      this.ready.length + this.starting < this.size
    ) {
      this.starting++;
      void this.startOne().then(
        (cell) => {
          this.starting--;
          this.retryMs = RETRY_MS;
          if (this.closed || this.ready.length >= this.size)
            void cell.destroy().catch(() => undefined);
          else this.ready.push(cell);
          this.afterStart();
        },
        (e: Error) => {
          this.starting--;
          this.failedStarts++;
          this.lastError = e.message;
          this.o.onLog?.(`nanocell: pool "${this.name}": a warm cell did not start: ${e.message}`);
          // Back off: a start that fails (a full disk, a broken runtime) must not spin.
          this.retryTimer = setTimeout(() => {
            this.retryTimer = undefined;
            this.fill();
          }, this.retryMs);
          this.retryTimer.unref();
          this.retryMs = Math.min(this.retryMs * 2, RETRY_MAX_MS);
          this.afterStart();
        },
      );
    }
  }

  private afterStart(): void {
    for (const r of this.settled.splice(0)) r();
    this.fill();
  }
}

function checkSize(size: number, name: string): number {
  if (!Number.isInteger(size) || size < 0 || size > MAX_POOL_SIZE) {
    throw new NanocellError(
      `pool "${name}": size ${size} is not a whole number from 0 to ${MAX_POOL_SIZE}`,
      'give the pool a size such as 4 (0 keeps no warm cell)',
      'USAGE',
    );
  }
  return size;
}
