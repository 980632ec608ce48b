// One status line on stderr while a task runs: elapsed time, network decisions, denials.
// Only on a TTY; redrawn at most a few times a second so a flood of events costs nothing.
import type { AuditEventInput } from '../audit/events.js';
import { formatDuration } from '../util/units.js';

export class LiveStatus {
  private readonly started = Date.now();
  private netAllowed = 0;
  private netDenied = 0;
  private denied = 0;
  private execs = 0;
  private readonly timer: NodeJS.Timeout;

  private constructor(private readonly out: NodeJS.WriteStream) {
    this.timer = setInterval(() => this.draw(), 250);
    this.timer.unref();
  }

  static forStderr(): LiveStatus | undefined {
    return process.stderr.isTTY ? new LiveStatus(process.stderr) : undefined;
  }

  onEvent(e: AuditEventInput): void {
    if (e.type === 'net.allowed') this.netAllowed++;
    else if (e.type === 'net.denied') this.netDenied++;
    else if (e.type === 'syscall.denied') this.denied += e.count ?? 1;
    else if (e.type === 'exec') this.execs++;
  }

  private draw(): void {
    const line =
      `nanocell ${formatDuration(Date.now() - this.started)}` +
      ` · exec ${this.execs} · net ${this.netAllowed} allowed/${this.netDenied} denied · syscalls denied ${this.denied}`;
    this.out.write(`\r\x1b[2K\x1b[2m${line.slice(0, (this.out.columns || 80) - 1)}\x1b[0m\r`);
  }

  stop(): void {
    clearInterval(this.timer);
    this.out.write('\r\x1b[2K');
  }
}
