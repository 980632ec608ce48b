// Audit append throughput and latency (not a test). Run:
//   node --import ./test/integration/audit/helpers/registerTs.mjs bench/audit-events.ts
// Prints appends/s with and without the per-task cap, the per-append latency percentiles, and
// the CPU share of recording a task that emits 1000 events/s (the load requirement).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditStore, newTaskId } from '../src/audit/store.js';

const root = mkdtempSync(join(tmpdir(), 'nanocell-bench-'));
try {
  const store = AuditStore.open(join(root, 'nanocell.db'), { maxEventsPerTask: 1_000_000 });
  const event = (i: number) =>
    ({
      type: 'syscall.denied',
      name: 'ptrace',
      nr: 101,
      arch: 'x86_64',
      pid: i,
      exe: '/usr/bin/node',
      errno: 1,
    }) as const;

  const burst = (n: number, label: string, cap?: number) => {
    const s = cap ? AuditStore.open(join(root, 'nanocell.db'), { maxEventsPerTask: cap }) : store;
    const id = newTaskId();
    s.createTask({ id, session: 'bench', command: ['bench'], ownerPid: process.pid });
    const lat: number[] = [];
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const a = performance.now();
      s.append(id, event(i));
      lat.push(performance.now() - a);
    }
    s.endTask(id, { status: 'exited', endReason: 'exited', exitCode: 0 });
    const ms = performance.now() - t0;
    lat.sort((x, y) => x - y);
    const pct = (q: number) => lat[Math.floor(q * (lat.length - 1))]!.toFixed(3);
    console.log(
      `${label}: ${n} events in ${ms.toFixed(0)} ms = ${Math.round((n / ms) * 1000)} events/s; ` +
        `append p50 ${pct(0.5)} ms, p99 ${pct(0.99)} ms, max ${pct(1)} ms (flushes included)`,
    );
    if (cap) s.close();
  };

  burst(50_000, 'stored');
  burst(200_000, 'past a cap of 1000 (counted only)', 1000);

  // A task emitting 1000 events/s for 3 s: how much of the supervisor's CPU does recording take?
  const id = newTaskId();
  store.createTask({ id, session: 'bench', command: ['steady'], ownerPid: process.pid });
  const cpu0 = process.cpuUsage();
  const wall0 = performance.now();
  await new Promise<void>((resolve) => {
    let i = 0;
    const tick = setInterval(() => {
      for (let k = 0; k < 10; k++) store.append(id, event(i++));
      if (i >= 3000) {
        clearInterval(tick);
        resolve();
      }
    }, 10);
  });
  store.endTask(id, { status: 'exited', endReason: 'exited', exitCode: 0 });
  const cpu = process.cpuUsage(cpu0);
  const wall = performance.now() - wall0;
  console.log(
    `steady 1000 events/s for ${(wall / 1000).toFixed(1)} s: recorder CPU ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms ` +
      `(${(((cpu.user + cpu.system) / 1000 / wall) * 100).toFixed(1)}% of one core)`,
  );
  store.close();
} finally {
  rmSync(root, { recursive: true, force: true });
}
