// The audit views: `nanocell tasks`, `logs`, `report`, `export` and `verify`. Thin: they read
// the store, summarize with src/audit/summary.ts and format with ./format.ts.
import type { Command } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditEvent } from '../audit/events.js';
import { isOwnerAlive } from '../host/owner.js';
import { type AuditStore, type TaskRow, taskStatuses } from '../audit/store.js';
import {
  COUNTED_EXECS,
  describeEvent,
  errnoName,
  summarizeTask,
  type TaskSummary,
} from '../audit/summary.js';
import { NanocellError } from '../util/errors.js';
import { formatDuration, formatSize, parseDuration } from '../util/units.js';
import {
  colorEnabled,
  formatAge,
  formatClock,
  formatCommand,
  formatTimestamp,
  paint,
  table,
  type OutStream,
  type Paint,
} from './format.js';

export interface AuditCommandContext {
  openStore(): AuditStore;
  /** Defaults to process.stdout. */
  stdout?: OutStream;
  now?: () => number;
  /** How often `logs --follow` polls the store. */
  followIntervalMs?: number;
}

const LOG_PAGE = 1000;

export function registerAuditCommands(program: Command, ctx: AuditCommandContext): void {
  const out = (): OutStream => ctx.stdout ?? process.stdout;
  const now = () => (ctx.now ? ctx.now() : Date.now());

  program
    .command('tasks')
    .description('list recorded tasks, newest first')
    .option('--session <name>', 'only tasks of this session')
    .option('--status <status>', `only tasks with this status (${taskStatuses.join(', ')})`)
    .option('--since <duration>', 'only tasks created within this duration, e.g. 1h or 7d')
    .option('--limit <n>', 'at most this many tasks', '100')
    .option('--json', 'print JSON')
    .action(
      (opts: {
        session?: string;
        status?: string;
        since?: string;
        limit: string;
        json?: boolean;
      }) =>
        withStore(ctx, (store) => {
          if (
            opts.status !== undefined &&
            !(taskStatuses as readonly string[]).includes(opts.status)
          ) {
            throw new NanocellError(
              `unknown status ${JSON.stringify(opts.status)}`,
              `use one of ${taskStatuses.join(', ')}`,
              'USAGE',
            );
          }
          const limit = Number(opts.limit);
          if (!Number.isSafeInteger(limit) || limit < 1) {
            throw new NanocellError(
              `--limit must be a positive integer (got ${opts.limit})`,
              'e.g. --limit 20',
              'USAGE',
            );
          }
          const tasks = store.listTasks({
            ...(opts.session !== undefined ? { session: opts.session } : {}),
            ...(opts.status !== undefined ? { status: opts.status } : {}),
            ...(opts.since !== undefined ? { sinceMs: now() - parseSince(opts.since) } : {}),
            limit,
          });
          const o = out();
          if (opts.json) {
            o.write(`${JSON.stringify(tasks, null, 2)}\n`);
            return;
          }
          if (tasks.length === 0) {
            o.write('no tasks recorded\n');
            return;
          }
          o.write(renderTasks(tasks, o, now()));
        }),
    );

  program
    .command('logs')
    .description("print a task's audit events")
    .argument('<task>', 'task id or unique prefix')
    .option('-f, --follow', 'keep printing new events until the task ends')
    .option('--json', 'print JSON Lines')
    .action((task: string, opts: { follow?: boolean; json?: boolean }) =>
      withStore(ctx, async (store) => {
        const id = store.resolveTaskId(task);
        const o = out();
        const p = paint(colorEnabled(o));
        const print = (e: AuditEvent) =>
          o.write(opts.json ? `${JSON.stringify(e)}\n` : `${formatLogLine(e, p)}\n`);
        let after = -1;
        for (;;) {
          // Read the status before the events: a task seen ended has all its events written.
          const row = store.getTask(id)!;
          for (;;) {
            const page = store.events(id, { afterSeq: after, limit: LOG_PAGE });
            page.forEach(print);
            if (page.length > 0) after = page[page.length - 1]!.seq;
            if (page.length < LOG_PAGE) break;
          }
          if (!opts.follow || row.status !== 'running') {
            if (!opts.json && row.droppedEvents > 0) o.write(`${p.yellow(droppedNote(row))}\n`);
            return;
          }
          if (!isOwnerAlive(row.ownerPid, row.ownerStartTime)) {
            if (!opts.json) {
              o.write(
                `${p.yellow(`the process recording this task (pid ${row.ownerPid}) is gone; \`nanocell gc\` will mark it ended`)}\n`,
              );
            }
            return;
          }
          await sleep(ctx.followIntervalMs ?? 250);
        }
      }),
    );

  program
    .command('report')
    .description('summarize what a task ran, was denied, changed and used, and why it ended')
    .argument('<task>', 'task id or unique prefix')
    .option('--json', 'print JSON')
    .action((task: string, opts: { json?: boolean }) =>
      withStore(ctx, (store) => {
        const id = store.resolveTaskId(task);
        const summary = summarizeTask(store.getTask(id)!, allEvents(store, id));
        const o = out();
        if (opts.json) o.write(`${JSON.stringify(summary, null, 2)}\n`);
        else o.write(renderReport(summary, paint(colorEnabled(o))));
      }),
    );

  program
    .command('export')
    .description("write a task's audit events as JSON Lines")
    .argument('<task>', 'task id or unique prefix')
    .action((task: string) =>
      withStore(ctx, (store) => {
        const id = store.resolveTaskId(task);
        const o = out();
        let after = -1;
        for (;;) {
          const page = store.events(id, { afterSeq: after, limit: LOG_PAGE });
          for (const e of page) o.write(`${JSON.stringify(e)}\n`);
          if (page.length < LOG_PAGE) return;
          after = page[page.length - 1]!.seq;
        }
      }),
    );

  program
    .command('verify')
    .description("check a task's audit hash chain (exit 0 intact, 1 tampered)")
    .argument('<task>', 'task id or unique prefix')
    .option('--json', 'print JSON')
    .action((task: string, opts: { json?: boolean }) =>
      withStore(ctx, (store) => {
        const id = store.resolveTaskId(task);
        const verdict = store.verifyTask(id);
        const o = out();
        const p = paint(colorEnabled(o));
        if (opts.json) {
          o.write(`${JSON.stringify({ taskId: id, ...verdict })}\n`);
        } else if (verdict.ok) {
          o.write(`${p.green('ok')}: task ${id}: hash chain intact (${verdict.checked} events)\n`);
        } else {
          o.write(
            `${p.red('TAMPERED')}: task ${id}: chain broken at event ${verdict.brokenAt}: ${verdict.reason}\n`,
          );
        }
        if (!verdict.ok) process.exitCode = 1;
      }),
    );
}

async function withStore(
  ctx: AuditCommandContext,
  fn: (store: AuditStore) => void | Promise<void>,
): Promise<void> {
  const store = ctx.openStore();
  try {
    await fn(store);
  } finally {
    store.close();
  }
}

function parseSince(text: string): number {
  // Days are common for history; units.ts stops at hours.
  const days = /^\s*(\d+(?:\.\d+)?)\s*d\s*$/.exec(text);
  const ms = days ? Math.round(Number(days[1]) * 86_400_000) : parseDuration(text);
  if (ms === undefined || ms <= 0) {
    throw new NanocellError(
      `--since must be a duration such as 30m, 12h or 7d (got ${JSON.stringify(text)})`,
      'e.g. --since 1h',
      'USAGE',
    );
  }
  return ms;
}

function allEvents(store: AuditStore, id: string): AuditEvent[] {
  // Bounded by the per-task cap, so reading them all at once is fine.
  return store.events(id);
}

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

function renderTasks(tasks: TaskRow[], o: OutStream, now: number): string {
  const p = paint(colorEnabled(o));
  const rows = tasks.map((t) => [
    t.id,
    formatAge(t.createdAt, now),
    t.endedAt !== null
      ? formatDuration(t.endedAt - t.createdAt)
      : formatDuration(now - t.createdAt),
    statusText(t, p),
    t.endReason ?? '-',
    t.exitCode === null ? '-' : String(t.exitCode),
    t.session,
    t.droppedEvents > 0 ? `${t.eventCount}+${t.droppedEvents}` : String(t.eventCount),
    formatCommand(t.command),
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
      'COMMAND',
    ],
    right: [2, 5, 7],
    headerStyle: p.bold,
    ...(o.isTTY && o.columns ? { maxWidth: o.columns } : {}),
  });
}

function formatLogLine(e: AuditEvent, p: Paint): string {
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
  return `${p.dim(formatClock(e.time))} ${p.dim(`#${e.seq}`.padStart(6))}  ${colour(e.type.padEnd(15))} ${describeEvent(e)}`;
}

function droppedNote(t: TaskRow): string {
  const byType = Object.entries(t.droppedCounts)
    .sort((a, b) => b[1] - a[1])
    .map(([type, n]) => `${type} ${n}`)
    .join(', ');
  return `${t.droppedEvents} more events were only counted, past the per-task cap (${byType})`;
}

function renderReport(s: TaskSummary, p: Paint): string {
  const t = s.task;
  const lines: string[] = [];
  const section = (title: string) => lines.push('', p.bold(title));
  const item = (label: string, text: string) => lines.push(`  ${label.padEnd(10)} ${text}`);
  const times = (n: number) => (n > 1 ? `${n}× ` : '');
  const MAX = 20;
  const more = (n: number) => {
    if (n > MAX) lines.push(p.dim(`  ... and ${n - MAX} more`));
  };

  const onlyCounted = (...types: string[]) => {
    const parts = types
      .filter((type) => (t.droppedCounts[type] ?? 0) > 0)
      .map((type) => `${t.droppedCounts[type]} ${type}`);
    if (parts.length) lines.push(p.yellow(`  plus ${parts.join(', ')} past the cap, only counted`));
  };

  lines.push(`${p.bold('Task')} ${t.id}  ${p.dim(`session ${t.session}`)}`);
  item('command', formatCommand(t.command));
  if (t.workspace) item('workspace', t.workspace);
  item('status', statusText(t, p));
  item(
    'time',
    `${formatTimestamp(t.createdAt)}${t.endedAt !== null ? ` → ${formatTimestamp(t.endedAt)}` : ''}${s.durationMs !== null ? ` (${formatDuration(s.durationMs)})` : ''}`,
  );

  section('Ran (exec, as reported by the seccomp agent; unverified)');
  if (s.ran.commands.length === 0) lines.push(p.dim('  no exec events recorded'));
  for (const c of s.ran.commands.slice(0, MAX)) {
    if (c.item.path === '' && c.item.argv.length === 0) {
      lines.push(p.yellow(`  ${c.count} ${COUNTED_EXECS}`));
      continue;
    }
    lines.push(
      `  ${times(c.count)}${formatCommand(c.item.argv.length ? c.item.argv : [c.item.path])}  ${p.dim(c.item.path)}`,
    );
  }
  more(s.ran.commands.length);
  onlyCounted('exec');

  section('Denied');
  onlyCounted('net.denied', 'syscall.denied');
  const denials = [
    ['network', s.denied.network.map((d) => `${times(d.count)}${d.item.host}:${d.item.port} (${d.item.reason}${d.item.rule ? `, rule ${d.item.rule}` : ''})`)],
    ['syscalls', s.denied.syscalls.map((d) => `${times(d.count)}${d.item.name} by ${d.item.exe} -> ${errnoName(d.item.errno)}`)],
    ['exec', s.denied.exec.map((d) => `${times(d.count)}${d.item.name} by ${d.item.exe} -> ${errnoName(d.item.errno)}`)],
    ['files', s.denied.files.map((d) => `${times(d.count)}${d.item.name} by ${d.item.exe} -> ${errnoName(d.item.errno)}`)],
  ] as const; // prettier-ignore
  for (const [label, texts] of denials) {
    if (texts.length === 0) {
      item(label, p.dim('none recorded'));
      continue;
    }
    item(label, p.red(texts[0]!));
    for (const text of texts.slice(1, MAX)) lines.push(`  ${' '.repeat(10)} ${p.red(text)}`);
    more(texts.length);
  }

  section('Network allowed');
  if (s.network.length === 0) lines.push(p.dim('  no connections'));
  for (const n of s.network.slice(0, MAX)) {
    lines.push(
      `  ${n.item.host}:${n.item.port}  ${n.count} connection${n.count > 1 ? 's' : ''}, ${formatSize(n.item.bytesUp)} up, ${formatSize(n.item.bytesDown)} down`,
    );
  }
  more(s.network.length);

  section('Changed');
  onlyCounted('fs.change');
  const c = s.changed.counts;
  const changes = c.added + c.modified + c.deleted + c.mode + c.symlink;
  if (changes === 0) lines.push(p.dim('  no changes recorded'));
  else {
    lines.push(
      `  ${c.added} added, ${c.modified} modified, ${c.deleted} deleted, ${c.mode} mode changes, ${c.symlink} symlinks`,
    );
    const mark = { added: '+', modified: '~', deleted: '-', mode: 'm', symlink: '@' } as const;
    for (const f of s.changed.paths.slice(0, MAX)) {
      lines.push(
        `    ${mark[f.kind]} ${f.path}${f.size !== undefined ? p.dim(` (${formatSize(f.size)})`) : ''}`,
      );
    }
    more(changes);
  }

  section('Resources');
  const r = s.resources;
  const figures = [
    r.peakMemoryBytes !== undefined ? `peak memory ${formatSize(r.peakMemoryBytes)}` : undefined,
    r.peakPids !== undefined ? `peak pids ${r.peakPids}` : undefined,
    r.cpuTimeMs !== undefined ? `cpu ${formatDuration(r.cpuTimeMs)}` : undefined,
    s.durationMs !== null ? `wall ${formatDuration(s.durationMs)}` : undefined,
  ].filter((x): x is string => x !== undefined);
  lines.push(figures.length ? `  ${figures.join(' · ')}` : p.dim('  no resource figures recorded'));
  if (r.limits && Object.keys(r.limits).length > 0) {
    item(
      'limits',
      Object.entries(r.limits)
        .map(([k, v]) => `${k} ${formatLimit(k, v)}`)
        .join(', '),
    );
  }
  for (const l of s.limits) item('hit', p.red(`${l.limit}: ${l.detail}`));
  for (const d of s.degraded)
    item('degraded', p.yellow(`${d.control}${d.reason ? `: ${d.reason}` : ''}`));

  section('Why it ended');
  lines.push(`  ${endExplanation(s)}`);

  section('Audit');
  lines.push(`  ${t.eventCount} events stored, chain head ${t.chainHead.slice(0, 16)}…`);
  if (t.droppedEvents > 0) lines.push(`  ${p.yellow(droppedNote(t))}`);
  return `${lines.join('\n')}\n`;
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
    case 'error':
      return `nanocell failed while running the task${s.exit?.detail ? `: ${s.exit.detail}` : ''}`;
    default:
      return `${t.endReason ?? 'unknown'}${code}`;
  }
}
