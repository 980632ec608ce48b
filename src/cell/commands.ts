// The commands a cell is running: one owner for the set, so that the cell's status file (what
// `nanocell ps` and the server show), `stop` (which signals them before its grace period) and
// exec (which adds and removes them) cannot disagree about what runs.
import type { ExecContext } from './exec.js';
import { startExec, writeCellStatus } from './exec.js';
import type { CellExec, ExecOptions } from './types.js';

/** What the status file says besides the commands; read at each write (a claim changes it). */
interface StatusOf {
  dir: string;
  taskId: string;
  session: string;
  startedAt: number;
}

export class CellCommands {
  /** Started commands' argv by id, until they end. */
  readonly current = new Map<number, string[]>();
  /** Commands running now, for `stop` to signal. */
  private readonly running = new Set<CellExec>();

  constructor(private readonly status: () => StatusOf) {}

  /** Starts a command (exec.ts); the status file follows its start and end. */
  start(c: Omit<ExecContext, 'started' | 'ended'>, argv: string[], opts: ExecOptions): CellExec {
    const x = startExec(
      {
        ...c,
        started: (id, cmd) => {
          this.current.set(id, cmd);
          this.writeStatus();
        },
        ended: (id) => {
          this.current.delete(id);
          this.writeStatus();
        },
      },
      argv,
      opts,
    );
    this.running.add(x);
    void x.result.finally(() => this.running.delete(x));
    return x;
  }

  /** SIGTERM to every running command; resolves when they exited or after `graceMs`. */
  async terminate(graceMs: number): Promise<void> {
    for (const x of this.running) x.kill(15);
    const exited = Promise.allSettled([...this.running].map((x) => x.result));
    await Promise.race([exited, new Promise((r) => setTimeout(r, graceMs).unref())]);
  }

  private writeStatus(): void {
    const { dir, ...s } = this.status();
    writeCellStatus(dir, { ...s, commands: [...this.current.values()] });
  }
}
