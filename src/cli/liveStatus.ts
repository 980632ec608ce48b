// One status line on stderr while a task runs: elapsed time, memory, network decisions, denials.
// Only when stderr is a terminal. The line shares the terminal with the task's own output, so
// it is cleared before each chunk of output and redrawn after it, and only drawn when the
// output's cursor stands at the start of a line: a progress bar (`50%\r`) or a prompt
// (`Password: `) is never overwritten. Redrawn at most a few times a second otherwise.
import type { AuditEventInput } from '../audit/events.js';
import { CgroupReader } from '../host/cgroups.js';
import { probeCgroups } from '../host/probe.js';
import { formatDuration, formatSize } from '../util/units.js';
import { writeAllSync } from './output.js';

const CLEAR = '\r\x1b[2K';

export class LiveStatus {
  private readonly started = Date.now();
  private netAllowed = 0;
  private netDenied = 0;
  private denied = 0;
  private execs = 0;
  private memory: CgroupReader | undefined;
  private readonly timer: NodeJS.Timeout;
  /** The status line is on the screen now. */
  private shown = false;
  /** The task's last output ended a line (so the cursor's line holds nothing of it). */
  private atLineStart = true;
  private stopped = false;
  /** The line as last composed; redrawn as it is after output (no cgroup read per chunk). */
  private text = '';

  private constructor(
    private readonly write: (s: string) => void,
    private readonly columns: () => number,
  ) {
    this.timer = setInterval(() => {
      this.text = this.compose();
      this.draw();
    }, 250);
    this.timer.unref();
  }

  static forStderr(): LiveStatus | undefined {
    if (!process.stderr.isTTY) return undefined;
    return new LiveStatus(
      (s) => {
        try {
          writeAllSync(2, s);
        } catch {
          // A status line that cannot be drawn is not worth failing the task over.
        }
      },
      () => process.stderr.columns || 80,
    );
  }

  onEvent(e: AuditEventInput): void {
    if (e.type === 'net.allowed') this.netAllowed++;
    else if (e.type === 'net.denied') this.netDenied++;
    else if (e.type === 'syscall.denied') this.denied += e.count ?? 1;
    else if (e.type === 'exec') this.execs += e.count ?? 1;
    else if (e.type === 'task.started' && e.cellId) {
      // The cell's cgroup is named after it; the same counters `nanocell ps` reads.
      this.memory = new CgroupReader(probeCgroups(process.geteuid?.() !== 0), e.cellId);
    }
  }

  /**
   * Runs `write` (a chunk of the task's output to the terminal) with the status line out of
   * the way. `endsLine` says whether the chunk left the cursor at a line start (undefined: the
   * chunk was empty after filtering).
   */
  around(write: () => void, endsLine: boolean | undefined): void {
    if (endsLine === undefined) return write();
    this.clear();
    write();
    this.atLineStart = endsLine;
    this.draw();
  }

  private clear(): void {
    if (!this.shown) return;
    this.write(CLEAR);
    this.shown = false;
  }

  private compose(): string {
    const mem = this.memory?.sample().memoryBytes;
    const line =
      `nanocell ${formatDuration(Date.now() - this.started)}` +
      ` · mem ${mem === undefined || mem === null ? '-' : formatSize(mem)}` +
      ` · exec ${this.execs} · net ${this.netAllowed} ok ${this.netDenied} denied` +
      ` · syscalls ${this.denied} denied`;
    return line.slice(0, this.columns() - 1);
  }

  private draw(): void {
    if (this.stopped || !this.atLineStart || this.text === '') return;
    this.write(`${CLEAR}\x1b[2m${this.text}\x1b[0m\r`);
    this.shown = true;
  }

  stop(): void {
    clearInterval(this.timer);
    this.clear();
    this.stopped = true;
  }
}
