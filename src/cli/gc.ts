// `nanocell gc`: remove leftovers of dead supervisors, and old history with --older-than.
import type { Command } from 'commander';
import { gcStaleCells } from '../cell/gc.js';
import { resolveRuntime } from '../runtime/runtime.js';
import { ensureStateRoot } from '../cell/state.js';
import { parseDuration, parseSize } from '../util/units.js';
import { gcSessionState } from '../cell/retention.js';
import { NanocellError } from '../util/errors.js';
import type { CliContext } from './context.js';
import { removeStaleChangeSets } from './staleChanges.js';
import { recoverApplies } from '../workspace/applyRecover.js';
import { describeRecovery } from './workspaceCommands.js';

interface GcOpts {
  olderThan?: string;
  json?: boolean;
  includePending?: boolean;
  maxSize?: string;
}

function parseMaxSize(s: string): number {
  const n = parseSize(s);
  if (n === undefined)
    throw new NanocellError(
      `--max-size ${JSON.stringify(s)} is not a size`,
      'write e.g. 20g',
      'USAGE',
    );
  return n;
}

export function registerGcCommand(program: Command, ctx: CliContext): void {
  program
    .command('gc')
    .description(
      'remove leftovers of crashed runs; with --older-than, also old tasks and change sets',
    )
    .option(
      '--older-than <duration>',
      'also delete ended tasks, events and change sets older than this, e.g. 12h or 7d',
    )
    .option(
      '--include-pending',
      'with --older-than, also delete change sets never applied or discarded',
    )
    .option(
      '--max-size <size>',
      'remove the oldest session layers and checkpoints no cell uses until the rest fit, e.g. 20g',
    )
    .option('--json', 'machine-readable output')
    .action(async (opts: GcOpts) => {
      const layout = ensureStateRoot(ctx.stateRoot());
      // Interrupted applies first: their staging dirs are in projects, their locks here.
      const applies = recoverApplies(layout.root);
      if (!opts.json)
        for (const r of applies) process.stderr.write(`nanocell: ${describeRecovery(r)}\n`);
      const rt = resolveRuntime('runc');
      const res = await gcStaleCells(layout, rt);
      let history = { tasks: 0, events: 0, changeSets: 0, pendingKept: 0 };
      const recovered = (() => {
        const store = ctx.openStore();
        try {
          return store.recoverAbandoned();
        } finally {
          store.close();
        }
      })();
      if (opts.olderThan !== undefined) {
        const ms = parseDuration(opts.olderThan);
        if (ms === undefined) {
          throw new NanocellError(
            `--older-than ${JSON.stringify(opts.olderThan)} is not a duration`,
            'write e.g. 12h or 7d',
            'USAGE',
          );
        }
        const store = ctx.openStore();
        try {
          const r = store.gc({ olderThanMs: ms });
          history = { ...r, ...removeStaleChangeSets(layout, ms, !!opts.includePending) };
        } finally {
          store.close();
        }
      }
      const sessions = gcSessionState(layout, {
        ...(opts.olderThan !== undefined ? { olderThanMs: parseDuration(opts.olderThan)! } : {}),
        ...(opts.maxSize !== undefined ? { maxBytes: parseMaxSize(opts.maxSize) } : {}),
      });
      if (opts.json) {
        process.stdout.write(
          `${JSON.stringify({ ...res, recovered, history, applies, sessions })}\n`,
        );
      } else {
        process.stdout.write(
          `removed ${res.cells.length} stale cells (${recovered.length} tasks marked abnormal), ${res.containers.length} runtime containers, ${res.slots} uid slots` +
            (opts.olderThan
              ? `; ${history.tasks} tasks, ${history.events} events, ${history.changeSets} change sets` +
                (history.pendingKept
                  ? ` (kept ${history.pendingKept} pending change sets; --include-pending deletes them)`
                  : '')
              : '') +
            `; ${sessions.removed.length} session layers and checkpoints\n`,
        );
        for (const e of res.errors) process.stderr.write(`nanocell: gc: ${e}\n`);
      }
      if (res.errors.length) process.exitCode = 125;
    });
}
