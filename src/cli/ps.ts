// `nanocell ps`: the live cells under this state root.
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { CgroupReader, type CgroupLimits } from '../host/cgroups.js';
import { ownerAlive, type OwnerRecord } from '../host/owner.js';
import { ensureStateRoot } from '../cell/state.js';
import { probeCgroups } from '../host/probe.js';
import { formatSize } from '../util/units.js';
import type { CliContext } from './context.js';
import { escapeText, formatCommand, toJson } from '../util/display.js';
import { colorEnabled, formatAge, paint, table, truncate, MAX_COMMAND_CHARS } from './format.js';
import { stdoutSink } from './output.js';

export interface LiveCell {
  cellId: string;
  taskId: string;
  session: string;
  ageMs: number;
  memoryBytes: number | null;
  pids: number | null;
  /** CPU time used so far, in ns (the dashboard turns two samples into a rate). */
  cpuNs: number | null;
  /** What the cell's cgroup enforces (null: no limit, or unreadable). */
  limits: CgroupLimits;
  commands: string[][];
}

export function listLiveCells(stateRoot: string): LiveCell[] {
  const layout = ensureStateRoot(stateRoot);
  const facts = probeCgroups(process.geteuid!() !== 0);
  const out: LiveCell[] = [];
  for (const id of fs.readdirSync(layout.cells)) {
    const dir = path.join(layout.cells, id);
    let owner: OwnerRecord;
    try {
      owner = JSON.parse(fs.readFileSync(path.join(dir, 'owner.json'), 'utf8')) as OwnerRecord;
    } catch {
      continue;
    }
    if (!ownerAlive(owner)) continue;
    let status: { session?: string; commands?: string[][] } = {};
    try {
      status = JSON.parse(fs.readFileSync(path.join(dir, 'status.json'), 'utf8'));
    } catch {
      // starting up
    }
    const reader = new CgroupReader(facts, id);
    const sample = reader.sample();
    out.push({
      cellId: id,
      taskId: owner.taskId,
      session: status.session ?? '',
      ageMs: Date.now() - owner.createdAt,
      memoryBytes: sample.memoryBytes,
      pids: sample.pids,
      cpuNs: sample.cpuNs,
      limits: reader.limits(),
      commands: status.commands ?? [],
    });
  }
  return out;
}

export function registerPsCommand(program: Command, ctx: CliContext): void {
  program
    .command('ps')
    .description('list running cells')
    .option('--json', 'machine-readable output')
    .action((opts: { json?: boolean }) => {
      const cells = listLiveCells(ctx.stateRoot());
      const out = stdoutSink();
      if (opts.json) {
        out.write(`${toJson(cells, 2)}\n`);
        return;
      }
      const p = paint(colorEnabled(process.stdout));
      const rows = cells.map((c) => [
        c.taskId,
        escapeText(c.session),
        formatAge(Date.now() - c.ageMs).replace(/ ago$/, ''),
        c.memoryBytes === null ? '-' : formatSize(c.memoryBytes),
        c.pids === null ? '-' : String(c.pids),
        truncate(c.commands.map((a) => formatCommand(a)).join('; ') || '-', MAX_COMMAND_CHARS),
      ]);
      out.write(
        table(rows, {
          header: ['TASK', 'SESSION', 'AGE', 'MEMORY', 'PIDS', 'COMMAND'],
          right: [3, 4],
          maxWidth: process.stdout.columns,
          headerStyle: p.bold,
        }),
      );
    });
}
