// Denial notes: when the cell refuses something a command did (a syscall or exec the monitor
// denied, an egress request the proxy or transparent capture refused), that command's stderr
// gets one short line saying what and why, written by the supervisor into the stream it hands
// the user (never into the cell). The words are src/policy/denialText.ts's.
//
// Attribution: init starts every command in a session of its own, so a syscall denial's
// session id in the cell (the monitor reads it while the task waits) names its command. An
// egress refusal carries no process, so it goes to the one command running, or to none when
// several are (the audit trail still has it). Each command keeps a bounded set of the lines it
// was given: a flood of one denial costs one line, and memory stays bounded however many come.
import type { CellEvent } from '../audit/cellEvents.js';
import {
  dnsDenialLine,
  egressDenialLine,
  syscallDenialLine,
  syscallDenialNoted,
} from '../policy/denialText.js';

/** Distinct notes one command gets; past it, one line says the rest are in the audit trail. */
export const MAX_NOTES_PER_COMMAND = 64;
/** Denials whose command has not been seen starting yet (its start frame may come later). */
const MAX_PENDING = 64;
const PENDING_MS = 1000;

interface Target {
  write(line: string): void;
  readonly seen: Set<string>;
  full: boolean;
}

interface Note {
  line: string;
  /** The session id in the cell (= the command's pid there); undefined: no process known. */
  sid: number | undefined;
}

export class DenialNotes {
  private readonly bySid = new Map<number, Target>();
  private pending: (Note & { at: number })[] = [];

  constructor(private readonly enabled: boolean) {}

  /**
   * A command started as `cellPid` (its session id in the cell); its notes go to `write`.
   * Returns the detach to call before its stderr ends.
   */
  attach(cellPid: number, write: (line: string) => void): () => void {
    if (!this.enabled) return () => undefined;
    const t: Target = { write, seen: new Set(), full: false };
    this.bySid.set(cellPid, t);
    const now = Date.now();
    const early = this.pending.filter((p) => p.sid === cellPid && now - p.at < PENDING_MS);
    this.pending = this.pending.filter((p) => p.sid !== cellPid && now - p.at < PENDING_MS);
    for (const p of early) note(t, p.line);
    return () => {
      if (this.bySid.get(cellPid) === t) this.bySid.delete(cellPid);
    };
  }

  /** Every cell event passes here; refusals become notes. */
  observe(e: CellEvent): void {
    if (!this.enabled) return;
    const n = noteOf(e);
    if (!n) return;
    if (n.sid !== undefined) {
      const t = this.bySid.get(n.sid);
      if (t) return note(t, n.line);
      // Denied before its start frame was read: kept briefly for attach (bounded).
      if (this.pending.length < MAX_PENDING) this.pending.push({ ...n, at: Date.now() });
      return;
    }
    if (this.bySid.size === 1) note(this.bySid.values().next().value as Target, n.line);
  }
}

function note(t: Target, line: string): void {
  if (t.full || t.seen.has(line)) return;
  if (t.seen.size >= MAX_NOTES_PER_COMMAND) {
    t.full = true;
    t.write('nanocell: further denials are not shown here (the audit trail has them all)\n');
    return;
  }
  t.seen.add(line);
  t.write(`${line}\n`);
}

/** The note an event gives, if it is a refusal nanocell tells the command about. */
function noteOf(e: CellEvent): Note | undefined {
  switch (e.type) {
    case 'syscall.denied': {
      if (!syscallDenialNoted(String(e.name))) return undefined;
      const sid = Number(e.cellSid);
      const detail = typeof e.detail === 'string' ? e.detail : undefined;
      return {
        line: syscallDenialLine({
          name: String(e.name ?? 'unknown'),
          ...(detail ? { detail } : {}),
        }),
        sid: Number.isInteger(sid) && sid > 0 ? sid : undefined,
      };
    }
    case 'net.denied':
      return { line: egressDenialLine(e), sid: undefined };
    case 'dns.denied':
      // A single-label name is a local lookup (the cell's own hostname, which git and others
      // look up): never egress, and noise to the agent. The audit trail still has it.
      if (!e.name.replace(/\.$/, '').includes('.')) return undefined;
      return { line: dnsDenialLine(e), sid: undefined };
    default:
      return undefined;
  }
}
