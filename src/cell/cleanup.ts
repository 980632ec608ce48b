// Releasing what a cell acquired: each acquire step registers its release before the next step
// runs, and unwinding runs them in reverse, past failures, so any failure, timeout or signal
// undoes exactly what was done.
import fs from 'node:fs';
import { NanocellError } from '../util/errors.js';

interface Cleanup {
  what: string;
  run: () => Promise<void> | void;
}

export class Cleanups {
  private readonly stack: Cleanup[] = [];

  push(what: string, run: () => Promise<void> | void): void {
    this.stack.push({ what, run });
  }

  /** Runs every registered cleanup in reverse; keeps going past failures, then reports them. */
  async unwind(cellId: string): Promise<void> {
    const failures: string[] = [];
    while (this.stack.length) {
      const c = this.stack.pop()!;
      const t = performance.now();
      try {
        await c.run();
        trace(`unwind ${c.what}`, t);
      } catch (e) {
        failures.push(`${c.what}: ${(e as Error).message}`);
      }
    }
    if (failures.length) {
      throw new NanocellError(
        `cleanup of cell ${cellId} was incomplete (${failures.join('; ')})`,
        'run `nanocell gc`',
        'STATE',
      );
    }
  }
}

/** NANOCELL_TRACE=1 prints how long each step of a cell's life takes (for benchmarks). */
export const trace: (step: string, since: number) => void = process.env.NANOCELL_TRACE
  ? (step, since) =>
      process.stderr.write(`nanocell trace: ${step} ${(performance.now() - since).toFixed(1)}ms\n`)
  : () => undefined;

export function readPid(file: string): number | undefined {
  try {
    const n = Number(fs.readFileSync(file, 'utf8').trim());
    return Number.isInteger(n) && n > 0 ? n : undefined;
  } catch {
    return undefined;
  }
}

export function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}
