// What recording costs a task that execs as fast as it can: a shell loop running /bin/true N
// times inside a real cell, timed inside the cell (date +%s%N around the loop, so cell setup is
// not counted). Three live cells of the same run, used in alternation so drift hits all alike:
//   - audited: the default profile; every exec is a seccomp notification to the monitor, and
//     every event goes through the task's audit sink into a real AuditStore (as runTask does);
//   - monitor only: the same cell, events read from the monitor but dropped (no store);
//   - off: no seccomp filter at all (Cell option benchOff.seccomp), so no monitor events.
// Root only (cells mount). Run from the repo after `make -C native`:
//   npx tsc -p tsconfig.json --outDir .bench-out &&
//     NANOCELL_NATIVE_DIR=$PWD/native/build node .bench-out/bench/audit-cell.js
// Each cell keeps no record of its own (record: false): the audited cell's recording is
// the sink's, as the bench has always measured.
// Env: EXECS (default 2000), RUNS (default 5). Prints one JSON document, then a markdown table.
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { AuditStore } from '../src/audit/store.js';
import { newTaskId } from '../src/audit/taskId.js';
import { DenialSummaries, toAuditEvents } from '../src/audit/sink.js';
import { Cell } from '../src/cell/cell.js';
import type { CellEvent } from '../src/cell/types.js';
import { parsePolicy, resolvePolicy } from '../src/policy/load.js';

const EXECS = Number(process.env.EXECS ?? 2000);
const RUNS = Number(process.env.RUNS ?? 5);
const LOOP = `s=$(date +%s%N); i=0; while [ $i -lt ${EXECS} ]; do /bin/true; i=$((i+1)); done; e=$(date +%s%N); echo $(( (e - s) / 1000 ))`;

type Mode = 'audited' | 'monitorOnly' | 'off';
const modes: Mode[] = ['audited', 'monitorOnly', 'off'];
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number) => Math.round(x * 10) / 10;

async function loopMs(cell: Cell): Promise<number> {
  const r = await cell.run(['sh', '-c', LOOP]);
  if (r.exitCode !== 0) throw new Error(`loop failed (${r.exitCode}): ${r.stderr}`);
  return Number(r.stdout.trim()) / 1000;
}

async function main() {
  mkdirSync('/var/tmp/nanocell-bench', { recursive: true });
  const base = mkdtempSync('/var/tmp/nanocell-bench/audit-cell-');
  chmodSync(base, 0o755);
  const project = `${base}/project`;
  mkdirSync(project);
  const stateRoot = `${base}/state`;
  const policy = resolvePolicy(parsePolicy({}));
  const cells: Partial<Record<Mode, Cell>> = {};
  let store: AuditStore | undefined;
  const taskId = newTaskId();
  let recorded = 0;
  try {
    // The store is opened like runTask opens it; the cell's state root creates the directory.
    cells.off = await Cell.create({
      policy,
      workspace: project,
      stateRoot,
      record: false,
      benchOff: { seccomp: true },
    });
    store = AuditStore.open(`${stateRoot}/nanocell.db`);
    store.createTask({
      id: taskId,
      session: 'bench',
      command: ['sh', '-c', LOOP],
      ownerPid: process.pid,
    });
    const s = store;
    const summaries = new DenialSummaries();
    const onAudited = (e: CellEvent) => {
      for (const a of toAuditEvents(e, summaries)) {
        s.append(taskId, a);
        recorded++;
      }
    };
    cells.audited = await Cell.create({
      policy,
      workspace: project,
      stateRoot,
      record: false,
      onEvent: onAudited,
    });
    cells.monitorOnly = await Cell.create({
      policy,
      workspace: project,
      stateRoot,
      record: false,
      onEvent: () => undefined,
    });
    const times: Record<Mode, number[]> = { audited: [], monitorOnly: [], off: [] };
    process.stderr.write(`cells up; ${RUNS} runs of ${EXECS} execs per mode\n`);
    for (const m of modes) await loopMs(cells[m]!); // warm-up: page cache, monitor's full-event cap
    for (let i = 0; i < RUNS; i++) {
      const order = i % 2 === 0 ? modes : [...modes].reverse();
      for (const m of order) times[m].push(await loopMs(cells[m]!));
    }
    store.endTask(taskId, { status: 'exited', endReason: 'exited', exitCode: 0 });
    const row = store.getTask(taskId)!;
    const med = Object.fromEntries(modes.map((m) => [m, median(times[m])])) as Record<Mode, number>;
    const result = {
      bench: 'audit-cell',
      execs: EXECS,
      runs: RUNS,
      medianLoopMs: Object.fromEntries(modes.map((m) => [m, round(med[m])])),
      execsPerSecond: Object.fromEntries(
        modes.map((m) => [m, Math.round(EXECS / (med[m] / 1000))]),
      ),
      overheadPct: {
        storeOverMonitor: round(((med.audited - med.monitorOnly) / med.monitorOnly) * 100),
        auditedOverOff: round(((med.audited - med.off) / med.off) * 100),
      },
      audit: {
        eventsAppended: recorded,
        stored: row.eventCount,
        countedOnly: row.droppedEvents,
      },
      timesMs: Object.fromEntries(modes.map((m) => [m, times[m].map(round)])),
    };
    console.log(JSON.stringify(result, null, 2));
    console.log(
      '\n| mode | loop of %d execs (ms, median) | execs/s |'.replace('%d', String(EXECS)),
    );
    console.log('| --- | --- | --- |');
    for (const m of modes) {
      console.log(`| ${m} | ${round(med[m])} | ${result.execsPerSecond[m]} |`);
    }
  } finally {
    for (const c of Object.values(cells)) {
      await c?.destroy().catch((e: unknown) => console.error('destroy:', e));
    }
    store?.close();
    rmSync(base, { recursive: true, force: true });
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
