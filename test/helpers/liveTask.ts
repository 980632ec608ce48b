// A task running in the background under `nanocell run`, for the live-cell verbs' tests (exec,
// stop, kill from a second process): started, its id read from its control socket, killed
// by the caller's afterEach if a test left it running.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import path from 'node:path';
import { spawnNanocell, type Sandbox } from './cells.js';

export interface LiveTask {
  id: string;
  child: ChildProcess;
  closed: Promise<unknown>;
  /** What the supervisor printed on stderr so far (for failure messages). */
  stderr(): string;
}

/** Starts `nanocell run -- sh -c SCRIPT`; resolves once its control socket is up. */
export async function startLiveTask(
  sb: Sandbox,
  script: string,
  report: string,
): Promise<LiveTask> {
  const child = spawnNanocell(['run', '--quiet', '--report', report, '--', 'sh', '-c', script], {
    stateRoot: sb.stateRoot,
    cwd: sb.project,
  });
  child.stdout!.resume();
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const closed = once(child, 'close');
  const control = path.join(sb.stateRoot, 'control');
  for (let i = 0; i < 600; i++) {
    const socks = (fs.existsSync(control) ? fs.readdirSync(control) : []).filter((n) =>
      n.endsWith('.sock'),
    );
    if (socks.length === 1) {
      return { id: socks[0]!.replace(/\.sock$/, ''), child, closed, stderr: () => err };
    }
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`the task never served its control socket: ${err}`);
}

/** Kills a task a failed test left running, and waits for it. */
export async function endLiveTask(t: LiveTask | undefined): Promise<void> {
  if (!t || t.child.exitCode !== null || t.child.signalCode !== null) return;
  t.child.kill('SIGKILL');
  await t.closed;
}
