// The cell server's warm pools (poolConfig.ts), and which one serves a task: the pool of the
// task's project whose fixed policy parts are the task's (src/plan/poolKey.ts). A task no
// pool fits starts its cell cold, as it would without a server.
import { Cell } from '../cell/cell.js';
import { CellPool, type PoolStats } from '../cell/pool.js';
import type { CellOptions } from '../cell/types.js';
import { claimMismatches } from '../plan/poolKey.js';
import { resolveProjectDir } from '../plan/projectDir.js';
import type { Policy } from '../policy/defaults.js';
import type { PoolConfig } from './poolConfig.js';

export class ServerPools {
  private pools: { pool: CellPool; project: string; policy: Policy }[] = [];

  /**
   * Starts filling the pools. Call once the server listens: listening sets a process-wide
   * umask for a moment, and cells started meanwhile would get unusable dirs.
   */
  start(configs: PoolConfig[], stateRoot: string, log: (m: string) => void): void {
    const opened: ServerPools['pools'] = [];
    try {
      for (const c of configs) {
        const pool = CellPool.open({
          name: c.name,
          policy: c.policy,
          workspace: c.workspace,
          size: c.size,
          stateRoot,
          ...(c.fillConcurrency ? { fillConcurrency: c.fillConcurrency } : {}),
          onLog: log,
        });
        opened.push({ pool, project: resolveProjectDir(c.workspace), policy: c.policy });
      }
    } catch (e) {
      for (const p of opened) void p.pool.close();
      throw e;
    }
    this.pools = opened;
  }

  /** The pool that can serve a task of `policy` on `workspace`, if one can. */
  find(policy: Policy, workspace: string): CellPool | undefined {
    let project: string;
    try {
      project = resolveProjectDir(workspace);
    } catch {
      return undefined; // the cold start reports the bad path with its own words
    }
    return this.pools.find(
      (p) => p.project === project && claimMismatches(p.policy, policy).length === 0,
    )?.pool;
  }

  /** How runTask starts the task's cell: claimed from the fitting pool, else cold. */
  starter(pool: CellPool | undefined): (o: CellOptions) => Promise<Cell> {
    if (!pool) return (o) => Cell.create(o);
    return (o) => pool.claim(o);
  }

  /** Resolves once every pool holds its size of ready cells. */
  async whenFull(): Promise<void> {
    await Promise.all(this.pools.map((p) => p.pool.whenFull()));
  }

  stats(): PoolStats[] {
    return this.pools.map((p) => p.pool.stats());
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.pools.map((p) => p.pool.close()));
  }
}
