// Event barriers with the monitor (native/monitor/sync.c): `read()` writes one byte on the
// monitor's stdin and resolves when the monitor's {"type":"sync"} answer has been read from its
// stdout. Every event the monitor wrote before the answer has then been handled too, since one
// pipe keeps its order. A command's stderr ends only after such a barrier, so a denial's note
// (denialNotes.ts) is never dropped because the command's end happened to be read first: two
// pipes read in one turn of the event loop come in no set order.
import type { Writable } from 'node:stream';

/**
 * A barrier never holds a command's end for longer than this: a monitor that cannot answer
 * (starved, or gone without its pipe closing yet) costs a note at worst, never a hang.
 */
const SYNC_TIMEOUT_MS = 2000;

export class MonitorSync {
  private readonly waiting: (() => void)[] = [];
  private gone = false;

  constructor(private readonly stdin: Writable | null) {
    if (!stdin) this.gone = true;
    stdin?.on('error', () => this.end());
    stdin?.on('close', () => this.end());
  }

  /** Resolves once every event the monitor wrote so far has been handled. */
  read(): Promise<void> {
    if (this.gone) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => done(), SYNC_TIMEOUT_MS);
      const done = () => {
        clearTimeout(timer);
        const i = this.waiting.indexOf(done);
        if (i >= 0) this.waiting.splice(i, 1);
        resolve();
      };
      this.waiting.push(done);
      this.stdin!.write('S');
    });
  }

  /** The monitor's answer to the oldest barrier. */
  answered(): void {
    this.waiting[0]?.();
  }

  /** The monitor is gone: nothing more will come, so no barrier waits. */
  end(): void {
    this.gone = true;
    for (const r of this.waiting.splice(0)) r();
  }
}
