// One status line on stderr while a task runs: elapsed time, memory, network decisions, denials.
// Only on a TTY; redrawn at most a few times a second so a flood of events costs nothing.
import type { AuditEventInput } from '../audit/events.js';
import { CgroupReader } from '../host/cgroups.js';
import { probeCgroups } from '../host/probe.js';
import { formatDuration, formatSize } from '../util/units.js';

export class LiveStatus {
  private readonly started = Date.now();
  private netAllowed = 0;
  private netDenied = 0;
  private denied = 0;
  private execs = 0;
  private memory: CgroupReader | undefined;
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
    else if (e.type === 'exec') this.execs += e.count ?? 1;
    else if (e.type === 'task.started' && e.cellId) {
      // The cell's cgroup is named after it; the same counters `nanocell ps` reads.
      this.memory = new CgroupReader(probeCgroups(process.geteuid?.() !== 0), e.cellId);
    }
  }

  private draw(): void {
    const mem = this.memory?.sample().memoryBytes;
    const line =
      `nanocell ${formatDuration(Date.now() - this.started)}` +
      ` · mem ${mem === undefined || mem === null ? '-' : formatSize(mem)}` +
      ` · exec ${this.execs} · net ${this.netAllowed} ok ${this.netDenied} denied` +
      ` · syscalls ${this.denied} denied`;
    this.out.write(`\r\x1b[2K\x1b[2m${line.slice(0, (this.out.columns || 80) - 1)}\x1b[0m\r`);
  }

  stop(): void {
    clearInterval(this.timer);
    this.out.write('\r\x1b[2K');
  }
}
