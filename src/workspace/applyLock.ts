// One apply at a time per project: a lock file created with O_EXCL under the state root names
// the holder (pid, its start time, task). A lock whose holder is gone is taken over under a
// short-lived takeover dir, so two processes can never both decide it is stale and both win.
import {
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  rmdirSync,
  statSync,
  unlinkSync,
  writeSync,
  fsyncSync,
} from 'node:fs';
import { NanocellError } from '../util/errors.js';

interface LockHolder {
  pid: number;
  start: string;
  taskId: string;
  since: string;
}

/** The process's start time in clock ticks since boot: tells a live pid from a reused one. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

function holderAlive(h: Pick<LockHolder, 'pid' | 'start'>): boolean {
  return processStart(h.pid) === h.start;
}

function readHolder(file: string): LockHolder | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as LockHolder;
  } catch {
    return undefined;
  }
}

function tryCreate(file: string, taskId: string): boolean {
  let fd: number;
  try {
    fd = openSync(file, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  }
  const me: LockHolder = {
    pid: process.pid,
    start: processStart(process.pid) ?? '',
    taskId,
    since: new Date().toISOString(),
  };
  try {
    writeSync(fd, JSON.stringify(me));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** Removes a lock whose holder is dead; true when it did (or the lock was already gone). */
function removeStale(file: string): boolean {
  const gate = `${file}.takeover`;
  try {
    mkdirSync(gate, { mode: 0o700 });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    // A taker that died inside the gate leaves it behind; the gate only lives milliseconds.
    const st = statSync(gate, { throwIfNoEntry: false });
    if (st && Date.now() - st.mtimeMs > 10_000) rmdirSync(gate);
    return false;
  }
  try {
    const h = readHolder(file);
    if (h && holderAlive(h)) return false;
    // An unreadable lock is one its writer died creating (empty file): also stale.
    unlinkSync(file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return true;
    throw e;
  } finally {
    rmdirSync(gate);
  }
}

/**
 * Takes the project's apply lock or throws a one-line error naming the task holding it.
 * Returns the release function.
 */
export function acquireApplyLock(file: string, taskId: string, projectDir: string): () => void {
  for (let i = 0; i < 5; i++) {
    if (tryCreate(file, taskId)) {
      return () => {
        const h = readHolder(file);
        if (h?.pid === process.pid) unlinkSync(file);
      };
    }
    const h = readHolder(file);
    if (h && holderAlive(h)) {
      throw new NanocellError(
        `task ${h.taskId} is being applied to ${projectDir} (pid ${h.pid}, since ${h.since})`,
        'wait for it to finish, then apply again',
        'WORKSPACE',
      );
    }
    removeStale(file);
  }
  throw new NanocellError(
    `could not take the apply lock ${file}`,
    'another nanocell is taking it over; try again',
    'WORKSPACE',
  );
}

/** Like acquireApplyLock but returns undefined instead of throwing when a live holder has it. */
export function tryApplyLock(file: string, taskId: string): (() => void) | undefined {
  try {
    return acquireApplyLock(file, taskId, '');
  } catch (e) {
    if (e instanceof NanocellError) return undefined;
    throw e;
  }
}
