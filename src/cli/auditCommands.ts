// The audit views: `nanocell tasks`, `logs`, `report`, `export` and `verify`. Thin: they read
// the store, summarize with src/audit/summary.ts and render with ./auditViews.ts.
import type { Command } from 'commander';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AuditEvent } from '../audit/events.js';
import { isOwnerAlive } from '../host/owner.js';
import { type AuditStore, taskStatuses } from '../audit/store.js';
import { summarizeTask } from '../audit/summary.js';
import { toJson } from '../util/display.js';
import { NanocellError } from '../util/errors.js';
import { parseDuration } from '../util/units.js';
import { droppedNote, formatLogLine, renderReport, renderTasks } from './auditViews.js';
import { colorEnabled, paint, type OutStream } from './format.js';
import { stdoutSink } from './output.js';
import { resolveTask } from './taskRef.js';
import { parseLabelFilter } from '../cell/labels.js';
import { changeSetCell, changeSetState, type ChangeSetState } from './changeSetState.js';

export interface AuditCommandContext {
  openStore(): AuditStore;
  /** Where change sets and their fates live; without it `tasks` and `report` leave them out. */
  stateRoot?(): string;
  /** Defaults to process.stdout. */
  stdout?: OutStream;
  now?: () => number;
  /** How often `logs --follow` polls the store. */
  followIntervalMs?: number;
}

const LOG_PAGE = 1000;
const collect = (v: string, prev: string[] = []) => [...prev, v];

/** A task's labels, from its task.created event ({} when it has none). */
function labelsOf(store: AuditStore, taskId: string): Record<string, string> {
  const first = store.events(taskId, { limit: 1 })[0];
  return (first?.type === 'task.created' && first.labels) || {};
}

export function registerAuditCommands(program: Command, ctx: AuditCommandContext): void {
  registerTasksCommand(program, ctx);
  registerLogsCommand(program, ctx);
  registerReportCommand(program, ctx);
  registerExportCommand(program, ctx);
  registerVerifyCommand(program, ctx);
}

const outOf = (ctx: AuditCommandContext): OutStream => ctx.stdout ?? stdoutSink();
const nowOf = (ctx: AuditCommandContext): number => (ctx.now ? ctx.now() : Date.now());
const changesOf = (ctx: AuditCommandContext, id: string): ChangeSetState | undefined =>
  ctx.stateRoot ? changeSetState(ctx.stateRoot(), id) : undefined;

function registerTasksCommand(program: Command, ctx: AuditCommandContext): void {
  program
    .command('tasks')
    .description('list recorded tasks, newest first')
    .option('--session <name>', 'only tasks of this session')
    .option('--status <status>', `only tasks with this status (${taskStatuses.join(', ')})`)
    .option('--since <duration>', 'only tasks created within this duration, e.g. 1h or 7d')
    .option('--limit <n>', 'at most this many tasks', '100')
    .option('--label <k=v>', 'only tasks with this label (repeatable: all must match)', collect, [])
    .option('--json', 'print JSON')
    .action(
      (opts: {
        session?: string;
        status?: string;
        since?: string;
        limit: string;
        label: string[];
        json?: boolean;
      }) =>
        withStore(ctx, (store) => {
          if (
            opts.status !== undefined &&
            !(taskStatuses as readonly string[]).includes(opts.status)
          ) {
            throw new NanocellError(
              `unknown status ${toJson(opts.status)}`,
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
            ...(opts.since !== undefined ? { sinceMs: nowOf(ctx) - parseSince(opts.since) } : {}),
            ...(opts.label.length
              ? { labels: Object.fromEntries(opts.label.map(parseLabelFilter)) }
              : {}),
            limit,
          });
          const o = outOf(ctx);
          if (opts.json) {
            const rows = tasks.map((t) => ({
              ...t,
              labels: labelsOf(store, t.id),
              changeSet: changesOf(ctx, t.id) ?? null,
            }));
            o.write(`${toJson(rows, 2)}\n`);
            return;
          }
          if (tasks.length === 0) {
            o.write('no tasks recorded\n');
            return;
          }
          o.write(renderTasks(tasks, o, nowOf(ctx), (id) => changeSetCell(changesOf(ctx, id))));
        }),
    );
}

function registerLogsCommand(program: Command, ctx: AuditCommandContext): void {
  program
    .command('logs')
    .description("print a task's audit events")
    .argument('<task>', 'task id or unique prefix')
    .option('-f, --follow', 'keep printing new events until the task ends')
    .option('--json', 'print JSON Lines')
    .action((task: string, opts: { follow?: boolean; json?: boolean }) =>
      withStore(ctx, async (store) => {
        const id = resolveTask(store, task);
        const o = outOf(ctx);
        const p = paint(colorEnabled(o));
        const print = (e: AuditEvent) =>
          o.write(opts.json ? `${toJson(e)}\n` : `${formatLogLine(e, p)}\n`);
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
}

function registerReportCommand(program: Command, ctx: AuditCommandContext): void {
  program
    .command('report')
    .description('summarize what a task ran, was denied, changed and used, and why it ended')
    .argument('<task>', 'task id or unique prefix')
    .option('--json', 'print JSON')
    .action((task: string, opts: { json?: boolean }) =>
      withStore(ctx, (store) => {
        const id = resolveTask(store, task);
        const summary = summarizeTask(store.getTask(id)!, allEvents(store, id));
        const changes = changesOf(ctx, id);
        const o = outOf(ctx);
        if (opts.json) o.write(`${toJson({ ...summary, changeSet: changes ?? null }, 2)}\n`);
        else o.write(renderReport(summary, paint(colorEnabled(o)), changes));
      }),
    );
}

function registerExportCommand(program: Command, ctx: AuditCommandContext): void {
  program
    .command('export')
    .description("write a task's audit events as JSON Lines")
    .argument('<task>', 'task id or unique prefix')
    .action((task: string) =>
      withStore(ctx, (store) => {
        const id = resolveTask(store, task);
        const o = outOf(ctx);
        let after = -1;
        for (;;) {
          const page = store.events(id, { afterSeq: after, limit: LOG_PAGE });
          for (const e of page) o.write(`${toJson(e)}\n`);
          if (page.length < LOG_PAGE) return;
          after = page[page.length - 1]!.seq;
        }
      }),
    );
}

function registerVerifyCommand(program: Command, ctx: AuditCommandContext): void {
  program
    .command('verify')
    .description("check a task's audit hash chain (exit 0 intact, 1 tampered)")
    .argument('<task>', 'task id or unique prefix')
    .option('--json', 'print JSON')
    .action((task: string, opts: { json?: boolean }) =>
      withStore(ctx, (store) => {
        const id = resolveTask(store, task);
        const verdict = store.verifyTask(id);
        const o = outOf(ctx);
        const p = paint(colorEnabled(o));
        if (opts.json) {
          o.write(`${toJson({ taskId: id, ...verdict })}\n`);
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
      `--since must be a duration such as 30m, 12h or 7d (got ${toJson(text)})`,
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
