// A separate writer process for the concurrency and crash tests:
//   node --import ./registerTs.mjs writer.ts <db> <taskId> <events> <end|hang|race>
// "end" records the task and ends it; "hang" records, flushes, says "ready" and waits to be
// killed; "race" opens the store, says "ready", waits for a line on stdin (so that all writers
// start together), then records with a write transaction every 20 events and ends the task.
import { AuditStore } from '../../../../src/audit/store.js';

const [dbPath, taskId, count, mode] = process.argv.slice(2);
const store = AuditStore.open(dbPath!);
if (mode === 'race') {
  process.stdout.write('ready\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  process.stdin.pause();
}
store.createTask({
  id: taskId!,
  session: 'writers',
  command: ['writer', mode!],
  ownerPid: process.pid,
});
for (let i = 0; i < Number(count); i++) {
  store.append(taskId!, {
    type: 'syscall.denied',
    name: 'mount',
    nr: 165,
    arch: 'x86_64',
    pid: i,
    exe: `/bin/w${i}`,
    errno: 1,
  });
  if (mode === 'race' && i % 20 === 19) store.flush();
}
if (mode !== 'hang') {
  store.endTask(taskId!, { status: 'exited', endReason: 'exited', exitCode: 0 });
  store.close();
} else {
  store.flush();
  process.stdout.write('ready\n');
  setInterval(() => {}, 1000);
}
