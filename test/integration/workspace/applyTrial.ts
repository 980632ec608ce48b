// The project and change set the apply crash tests work on: a real overlay edited like an agent
// would (1,200 files changed, deleted, chmodded, dirs and symlinks retyped), collected as task
// T1; and `nanocell apply` run as a process that is killed with SIGKILL on cue.
import { chmodSync, mkdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { collectChangeSet } from '../../../src/workspace/changeset.js';
import {
  mountOverlay,
  planScope,
  prepareOverlay,
  teardownOverlay,
  unmountOverlay,
} from '../../../src/workspace/index.js';
import { makeSandbox, snapshot, type Sandbox, type Snapshot } from './helpers.js';
import { CLI, nanocell } from '../../helpers/cells.js';

const FILES = 1200;
const patterns = { include: ['**'], exclude: [], protected: [] };
// A real-shaped task id: every verb resolves ids by the task-id pattern (audit/taskId.ts).
export const T1 = '0000000000000000t1';

/** A small deterministic PRNG (mulberry32) so a seed replays the same kill point. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Trial {
  sb: Sandbox;
  stateRoot: string;
  before: Snapshot;
  after: Snapshot;
}

/** A project, a real overlay edited like an agent would, and its change set as task T1. */
export async function prepare(): Promise<Trial> {
  const sb = makeSandbox();
  for (let d = 0; d < 24; d++) {
    mkdirSync(`${sb.project}/d${d}`);
    for (let f = 0; f < FILES / 24; f++)
      writeFileSync(`${sb.project}/d${d}/f${f}`, `v1 ${d}/${f}\n`);
  }
  mkdirSync(`${sb.project}/becomes-file/sub`, { recursive: true });
  writeFileSync(`${sb.project}/becomes-file/sub/x`, 'x');
  writeFileSync(`${sb.project}/becomes-link`, 'plain');
  symlinkSync('d0/f0', `${sb.project}/link`);
  const before = snapshot(sb.project);
  const plan = await planScope(sb.project, patterns);
  const dirs = await prepareOverlay({ baseDir: `${sb.base}/cell`, plan, sizeBytes: 1 << 26 });
  await mountOverlay({ lowerDir: sb.project, dirs });
  const startedAtMs = Date.now() - 1;
  const m = dirs.mergedDir;
  for (let d = 0; d < 24; d++) {
    for (let f = 0; f < FILES / 24; f++) {
      const p = `${m}/d${d}/f${f}`;
      if (f % 4 === 0) writeFileSync(p, `v2 ${d}/${f}\n`);
      else if (f % 8 === 1) unlinkSync(p);
      else if (f % 8 === 3) chmodSync(p, 0o755);
    }
    if (d % 3 === 0) chmodSync(`${m}/d${d}`, 0o750);
    mkdirSync(`${m}/new${d}`);
    for (let f = 0; f < 20; f++) writeFileSync(`${m}/new${d}/n${f}`, `new ${d}/${f}\n`);
  }
  rmSync(`${m}/becomes-file`, { recursive: true });
  writeFileSync(`${m}/becomes-file`, 'now a file');
  unlinkSync(`${m}/becomes-link`);
  symlinkSync('d1/f0', `${m}/becomes-link`);
  unlinkSync(`${m}/link`);
  symlinkSync('d2/f0', `${m}/link`);
  const after = snapshot(m);
  await unmountOverlay(m);
  const stateRoot = `${sb.base}/state`;
  mkdirSync(`${stateRoot}/changes`, { recursive: true });
  await collectChangeSet({
    upperDir: dirs.upperDir,
    lowerDir: sb.project,
    projectDir: sb.project,
    outDir: `${stateRoot}/changes/${T1}`,
    taskId: T1,
    startedAtMs,
    limits: { maxFiles: 100_000, maxBytes: 1 << 26 },
    scope: plan,
  });
  await teardownOverlay(dirs);
  return { sb, stateRoot, before, after };
}

/** Runs `nanocell apply T1 [extra]`, killed with SIGKILL after `afterSteps` steps or `afterMs`. */
export function applyKilled(
  t: Trial,
  kill: { afterSteps?: number; afterMs?: number },
  extra: string[] = [],
): Promise<number | null> {
  const child = spawn('node', [CLI, '--state-root', t.stateRoot, 'apply', T1, ...extra], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: {
      ...process.env,
      ...(kill.afterSteps !== undefined
        ? { NANOCELL_TEST_APPLY_KILL_AFTER: String(kill.afterSteps) }
        : {}),
    },
  });
  const timer =
    kill.afterMs !== undefined ? setTimeout(() => child.kill('SIGKILL'), kill.afterMs) : undefined;
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve(code);
    }),
  );
}

/** Recovery by an ordinary command; optionally itself killed after K undo steps. */
export function recover(t: Trial, killAfter?: number) {
  return nanocell(['--state-root', t.stateRoot, 'tasks'], {
    env: killAfter === undefined ? {} : { NANOCELL_TEST_RECOVER_KILL_AFTER: String(killAfter) },
  });
}
