// The text views of the audit commands: the task table, log lines and the task report. All
// text that came from a cell (commands, paths, hosts, reasons, session names) passes through
// util/display.ts first, so it is shown, never obeyed, by the terminal; colour is added after.
import type { AuditEvent } from '../audit/events.js';
import type { TaskRow } from '../audit/store.js';
import { COUNTED_EXECS, describeEvent, errnoName, type TaskSummary } from '../audit/summary.js';
import { escapeDeep, escapeText, formatCommand, quotePath } from '../util/display.js';
import type { ChangeSetState } from './changeSetState.js';
import { formatDuration, formatSize } from '../util/units.js';
import {
  colorEnabled,
  formatAge,
  formatClock,
  formatTimestamp,
  paint,
  table,
  truncate,
  MAX_COMMAND_CHARS,
  type OutStream,
  type Paint,
} from './format.js';

function statusText(t: TaskRow, p: Paint): string {
  switch (t.status) {
    case 'running':
      return p.cyan('running');
    case 'exited':
      return t.exitCode === 0 ? p.green('exited') : p.yellow('exited');
    default:
      return p.red(t.status);
  }
}

export function renderTasks(
  tasks: TaskRow[],
  o: OutStream,
  now: number,
  /** The CHANGES column: what became of each task's change set. */
  changes: (taskId: string) => string = () => '-',
): string {
  const p = paint(colorEnabled(o));
  const rows = tasks.map((t) => [
    t.id,
    formatAge(t.createdAt, now),
    t.endedAt !== null
      ? formatDuration(t.endedAt - t.createdAt)
      : formatDuration(now - t.createdAt),
    statusText(t, p),
    escapeText(t.endReason ?? '-'),
    t.exitCode === null ? '-' : String(t.exitCode),
    escapeText(t.session),
    t.droppedEvents > 0 ? `${t.eventCount}+${t.droppedEvents}` : String(t.eventCount),
    changes(t.id),
    o.isTTY && o.columns
      ? formatCommand(t.command)
      : truncate(formatCommand(t.command), MAX_COMMAND_CHARS),
  ]);
  return table(rows, {
    header: [
      'TASK',
      'CREATED',
      'DURATION',
      'STATUS',
      'REASON',
      'EXIT',
      'SESSION',
      'EVENTS',
      'CHANGES',
      'COMMAND',
    ],
    right: [2, 5, 7],
    headerStyle: p.bold,
    ...(o.isTTY && o.columns ? { maxWidth: o.columns } : {}),
  });
}

export function formatLogLine(e: AuditEvent, p: Paint): string {
  const colour =
    e.type === 'syscall.denied' || e.type === 'net.denied' || e.type === 'limit.hit'
      ? p.red
      : e.type === 'policy.degraded'
        ? p.yellow
        : e.type === 'net.allowed'
          ? p.green
          : e.type.startsWith('task.')
            ? p.bold
            : (s: string) => s;
  const text = escapeText(describeEvent(e));
  return `${p.dim(formatClock(e.time))} ${p.dim(`#${e.seq}`.padStart(6))}  ${colour(escapeText(e.type).padEnd(15))} ${text}`;
}

export function droppedNote(t: TaskRow): string {
  const byType = Object.entries(t.droppedCounts)
    .sort((a, b) => b[1] - a[1])
    .map(([type, n]) => `${escapeText(type)} ${n}`)
    .join(', ');
  return `${t.droppedEvents} more events were only counted, past the per-task cap (${byType})`;
}

/** Lines of the report being built, with its helpers. */
class ReportLines {
  readonly lines: string[] = [];
  static readonly MAX = 20;
  constructor(
    readonly p: Paint,
    private readonly t: TaskRow,
  ) {}
  push(...l: string[]): void {
    this.lines.push(...l);
  }
  section(title: string): void {
    this.lines.push('', this.p.bold(title));
  }
  item(label: string, text: string): void {
    this.lines.push(`  ${label.padEnd(10)} ${text}`);
  }
  more(n: number): void {
    if (n > ReportLines.MAX) this.lines.push(this.p.dim(`  ... and ${n - ReportLines.MAX} more`));
  }
  onlyCounted(...types: string[]): void {
    const parts = types
      .filter((type) => (this.t.droppedCounts[type] ?? 0) > 0)
      .map((type) => `${this.t.droppedCounts[type]} ${type}`);
    if (parts.length)
      this.lines.push(this.p.yellow(`  plus ${parts.join(', ')} past the cap, only counted`));
  }
}

const times = (n: number) => (n > 1 ? `${n}× ` : '');

/** The text report of one task. Every string of the summary is escaped before use. */
export function renderReport(raw: TaskSummary, p: Paint, changes?: ChangeSetState): string {
  const s = escapeDeep(raw);
  const t = s.task;
  const r = new ReportLines(p, t);
  r.push(`${p.bold('Task')} ${t.id}  ${p.dim(`session ${t.session}`)}`);
  r.item('command', formatCommand(t.command));
  if (t.workspace) r.item('workspace', t.workspace);
  r.item('status', statusText(t, p));
  r.item(
    'time',
    `${formatTimestamp(t.createdAt)}${t.endedAt !== null ? ` → ${formatTimestamp(t.endedAt)}` : ''}${s.durationMs !== null ? ` (${formatDuration(s.durationMs)})` : ''}`,
  );
  reportRan(s, r);
  reportDenied(s, r);
  reportNetwork(s, r);
  reportChanged(s, r);
  if (changes) reportChangeSet(changes, r);
  reportResources(s, r);
  r.section('Why it ended');
  r.push(`  ${endExplanation(s)}`);
  r.section('Audit');
  r.push(`  ${t.eventCount} events stored, chain head ${t.chainHead.slice(0, 16)}…`);
  if (t.droppedEvents > 0) r.push(`  ${p.yellow(droppedNote(t))}`);
  return `${r.lines.join('\n')}\n`;
}

function reportRan(s: TaskSummary, r: ReportLines): void {
  const p = r.p;
  r.section('Ran (exec, as reported by the seccomp agent; unverified)');
  if (s.ran.commands.length === 0) r.push(p.dim('  no exec events recorded'));
  for (const c of s.ran.commands.slice(0, ReportLines.MAX)) {
    if (c.item.path === '' && c.item.argv.length === 0) {
      r.push(p.yellow(`  ${c.count} ${COUNTED_EXECS}`));
      continue;
    }
    r.push(
      `  ${times(c.count)}${formatCommand(c.item.argv.length ? c.item.argv : [c.item.path])}  ${p.dim(c.item.path)}`,
    );
  }
  r.more(s.ran.commands.length);
  if (s.ran.lookups > 0)
    r.push(p.dim(`  (${s.ran.lookups} failed PATH lookups not counted as programs)`));
  r.onlyCounted('exec');
}

function reportDenied(s: TaskSummary, r: ReportLines): void {
  const p = r.p;
  r.section('Denied');
  r.onlyCounted('net.denied', 'syscall.denied');
  const denials = [
    ['network', s.denied.network.map((d) => `${times(d.count)}${d.item.host}:${d.item.port} (${d.item.reason}${d.item.rule ? `, rule ${d.item.rule}` : ''})`)],
    ['syscalls', s.denied.syscalls.map((d) => `${times(d.count)}${d.item.name} by ${d.item.exe} -> ${errnoName(d.item.errno)}`)],
    ['exec', s.denied.exec.map((d) => `${times(d.count)}${d.item.name} by ${d.item.exe} -> ${errnoName(d.item.errno)}`)],
    ['files', s.denied.files.map((d) => `${times(d.count)}${d.item.name} by ${d.item.exe} -> ${errnoName(d.item.errno)}`)],
  ] as const; // prettier-ignore
  for (const [label, texts] of denials) {
    if (texts.length === 0) {
      r.item(label, p.dim('none recorded'));
      continue;
    }
    r.item(label, p.red(texts[0]!));
    for (const text of texts.slice(1, ReportLines.MAX))
      r.push(`  ${' '.repeat(10)} ${p.red(text)}`);
    r.more(texts.length);
  }
}

function reportNetwork(s: TaskSummary, r: ReportLines): void {
  r.section('Network allowed');
  if (s.network.length === 0 && s.networkFailed.length === 0) r.push(r.p.dim('  no connections'));
  for (const n of s.network.slice(0, ReportLines.MAX)) {
    r.push(
      `  ${n.item.host}:${n.item.port}  ${n.count} connection${n.count > 1 ? 's' : ''}, ${formatSize(n.item.bytesUp)} up, ${formatSize(n.item.bytesDown)} down`,
    );
  }
  r.more(s.network.length);
  for (const f of s.networkFailed.slice(0, ReportLines.MAX)) {
    r.push(r.p.red(`  ${f.item.host}:${f.item.port}  ${times(f.count)}failed: ${f.item.error}`));
  }
  r.more(s.networkFailed.length);
}

function reportChanged(s: TaskSummary, r: ReportLines): void {
  const p = r.p;
  r.section('Changed');
  r.onlyCounted('fs.change');
  const c = s.changed.counts;
  const changes = c.added + c.modified + c.deleted + c.mode + c.symlink;
  const notKept = s.limits.find((l) => l.limit === 'changes');
  if (notKept) r.push(p.red(`  change set not kept: ${notKept.detail}`));
  if (changes === 0) return notKept ? undefined : r.push(p.dim('  no changes recorded'));
  r.push(
    `  ${c.added} added, ${c.modified} modified, ${c.deleted} deleted, ${c.mode} mode changes, ${c.symlink} symlinks`,
  );
  const mark = { added: '+', modified: '~', deleted: '-', mode: 'm', symlink: '@' } as const;
  for (const f of s.changed.paths.slice(0, ReportLines.MAX)) {
    r.push(
      `    ${mark[f.kind]} ${f.path}${f.size !== undefined ? p.dim(` (${formatSize(f.size)})`) : ''}`,
    );
  }
  r.more(changes);
}

/** What became of the change set; a partly applied one lists the paths written. */
function reportChangeSet(c: ChangeSetState, r: ReportLines): void {
  r.item('change set', escapeText(c.text));
  for (const f of (c.paths ?? []).slice(0, ReportLines.MAX))
    r.push(`    ${r.p.green('applied')} ${quotePath(f)}`);
  r.more(c.paths?.length ?? 0);
}

function reportResources(s: TaskSummary, r: ReportLines): void {
  const p = r.p;
  r.section('Resources');
  const res = s.resources;
  const figures = [
    res.peakMemoryBytes !== undefined
      ? `peak memory ${formatSize(res.peakMemoryBytes)}`
      : undefined,
    res.peakPids !== undefined ? `peak pids ${res.peakPids}` : undefined,
    res.cpuTimeMs !== undefined ? `cpu ${formatDuration(res.cpuTimeMs)}` : undefined,
    s.durationMs !== null ? `wall ${formatDuration(s.durationMs)}` : undefined,
  ].filter((x): x is string => x !== undefined);
  r.push(figures.length ? `  ${figures.join(' · ')}` : p.dim('  no resource figures recorded'));
  if (res.limits && Object.keys(res.limits).length > 0) {
    r.item(
      'limits',
      Object.entries(res.limits)
        .map(([k, v]) => `${k} ${formatLimit(k, v)}`)
        .join(', '),
    );
  }
  for (const l of s.limits) r.item('hit', p.red(`${l.limit}: ${l.detail}`));
  for (const d of s.degraded)
    r.item('degraded', p.yellow(`${d.control}${d.reason ? `: ${d.reason}` : ''}`));
}

function formatLimit(key: string, value: unknown): string {
  if (typeof value !== 'number') return typeof value === 'string' ? value : JSON.stringify(value);
  if (/memory|disk|output|tmp|home|bytes/i.test(key)) return formatSize(value);
  if (/timeout|ms$/i.test(key)) return formatDuration(value);
  return String(value);
}

function endExplanation(s: TaskSummary): string {
  const t = s.task;
  if (t.status === 'running')
    return 'still running (or its recorder died; `nanocell gc` will tell)';
  const code = t.exitCode !== null ? ` with status ${t.exitCode}` : '';
  const hit = (limit: string) => s.limits.find((l) => l.limit === limit)?.detail;
  switch (t.endReason) {
    case 'exited':
      return `the command exited${code}`;
    case 'signaled':
      return `the command was killed by a signal${code}`;
    case 'timeout':
      return `the wall-clock timeout fired and the cell was killed${hit('timeout') ? ` (${hit('timeout')})` : ''}`;
    case 'oom':
      return `the cell ran out of memory and was killed${hit('oom') ? ` (${hit('oom')})` : ''}`;
    case 'killed':
      return `the cell was killed${s.exit?.detail ? `: ${s.exit.detail}` : ''}`;
    case 'stopped':
      return `the cell was stopped (\`nanocell stop\`)${code}`;
    case 'error':
      return `nanocell failed while running the task${s.exit?.detail ? `: ${s.exit.detail}` : ''}`;
    default:
      return `${t.endReason ?? 'unknown'}${code}`;
  }
}
