// How soon a denial note reaches the command's stderr after the monitor saw the denial (issue
// 14 §4: within 50 ms): a live cell runs `unshare -U true` ROUNDS times; each round's note
// arrival (host clock, on the exec's stderr) minus the denial's event time.
// Root only (cells mount). Run: node --import ./bench/register.mjs bench/denial-notes.ts
// Env: ROUNDS (default 30). Prints one JSON document.
import { Cell } from '../src/cell/cell.js';
import type { CellEvent } from '../src/cell/types.js';
import { parsePolicy, resolvePolicy } from '../src/policy/load.js';
import { makeSandbox } from '../test/helpers/cells.js';

const ROUNDS = Number(process.env.ROUNDS ?? 30);
const sb = makeSandbox();
const events: CellEvent[] = [];
const cell = await Cell.create({
  policy: resolvePolicy(parsePolicy({})),
  workspace: sb.project,
  stateRoot: sb.stateRoot,
  onEvent: (e) => events.push(e),
});
const lags: number[] = [];
try {
  for (let i = 0; i < ROUNDS; i++) {
    events.length = 0;
    const x = cell.exec(['sh', '-c', 'unshare -U true; sleep 0.2']);
    let at = 0;
    x.stderr.on('data', (d: Buffer) => {
      if (!at && d.toString().includes('nanocell: blocked syscall unshare')) at = Date.now();
    });
    x.stdout.resume();
    x.stdin.end();
    await x.result;
    const denied = events.find((e) => e.type === 'syscall.denied');
    if (at && denied) lags.push(at - Number(denied.time));
  }
} finally {
  await cell.destroy();
  sb.cleanup();
}
const s = [...lags].sort((a, b) => a - b);
const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
console.log(
  JSON.stringify(
    { rounds: ROUNDS, noted: s.length, p50Ms: q(0.5), p95Ms: q(0.95), maxMs: s.at(-1) },
    null,
    2,
  ),
);
