// What the egress controls' start check (src/cell/selfCheck.ts) adds to a cell's cold start:
// library starts of a cell with a proxy, with the check and without it (benchOff.startCheck),
// alternating in one run so both meet the same host load. Reports p50 and the p50 difference.
//
// Run (root): node --import ./bench/register.mjs bench/start-check.ts   (env: ROUNDS=20)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Cell } from '../src/cell/cell.js';
import { parsePolicy, resolvePolicy } from '../src/policy/load.js';

const ROUNDS = Number(process.env.ROUNDS ?? 20);
const dir = fs.mkdtempSync(path.join('/var/tmp', 'nc-start-check-'));
// The cell's uids must reach the project and state dirs (mkdtemp makes them 0700).
fs.chmodSync(dir, 0o755);
const workspace = path.join(dir, 'project');
fs.mkdirSync(workspace);
const policy = resolvePolicy(parsePolicy({ network: { allow: ['example.com'] } }));

async function startOnce(check: boolean): Promise<number> {
  const t = performance.now();
  const cell = await Cell.create({
    policy,
    workspace,
    stateRoot: path.join(dir, 'state'),
    ...(check ? {} : { benchOff: { startCheck: true } }),
  });
  const ms = performance.now() - t;
  await cell.destroy();
  return ms;
}

const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  await startOnce(true);
  await startOnce(false);
  const withCheck: number[] = [];
  const without: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    // Alternate which goes first, so neither always follows the other's teardown.
    if (i % 2 === 0) {
      withCheck.push(await startOnce(true));
      without.push(await startOnce(false));
    } else {
      without.push(await startOnce(false));
      withCheck.push(await startOnce(true));
    }
  }
  const a = p50(withCheck);
  const b = p50(without);
  console.log(`cold start (library, proxy on), ${ROUNDS} rounds on ${os.cpus().length} cores`);
  console.log(`  with start check     p50 ${a.toFixed(1)} ms`);
  console.log(`  without start check  p50 ${b.toFixed(1)} ms`);
  console.log(`  difference           ${(a - b).toFixed(1)} ms`);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
