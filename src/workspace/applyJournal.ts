// The apply journal: the whole plan of an apply, written and fsynced (file and directory)
// before the first rename in the project. Every step's effect can be read back from the file
// system (is the backup there? is the staged file still there? same inode?), so the journal
// is written three times only (staging, committing, committed), not once per step, and undoing
// a step twice is the same as undoing it once: recovery may itself be interrupted and rerun.
import {
  closeSync,
  fsyncSync,
  lstatSync,
  openSync,
  readFileSync,
  renameSync,
  rmdirSync,
  rmSync,
  unlinkSync,
  writeSync,
  fchmodSync,
  constants,
} from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

const { O_RDONLY, O_NOFOLLOW, O_DIRECTORY } = constants;

const Op = z.discriminatedUnion('op', [
  /** Move the project's path into the staging dir's old/SLOT. */
  z.object({ op: z.literal('aside'), path: z.string(), slot: z.number() }),
  /** Create a dir or symlink; `replaces` is the aside slot of what stood there before. */
  z.object({ op: z.literal('mkdir'), path: z.string(), replaces: z.number().optional() }),
  z.object({
    op: z.literal('symlink'),
    path: z.string(),
    target: z.string(),
    replaces: z.number().optional(),
  }),
  /** Link staged new/SLOT at the path (link never replaces), then unlink the staged name. */
  z.object({
    op: z.literal('place'),
    path: z.string(),
    slot: z.number(),
    replaces: z.number().optional(),
  }),
  /** `old` is the mode before, absent for a path this apply created. */
  z.object({
    op: z.literal('chmod'),
    path: z.string(),
    mode: z.number(),
    old: z.number().optional(),
    dir: z.boolean(),
  }),
]);
export type JournalOp = z.infer<typeof Op>;

const Journal = z.object({
  version: z.literal(1),
  state: z.enum(['staging', 'committing', 'committed']),
  taskId: z.string(),
  changeDir: z.string(),
  projectDir: z.string(),
  /** Absolute path of the staging dir in the project (old/ and new/ below it). */
  staging: z.string(),
  by: z.object({ uid: z.number(), user: z.string() }),
  /** How many change set entries this applies (for the record of what became of it). */
  changes: z.number(),
  /**
   * Set when the change set is applied in parts (`apply --only`, or the rest after one):
   * every path written once this apply commits, and how many entries are left after it.
   */
  partial: z.object({ applied: z.array(z.string()), left: z.number() }).optional(),
  ops: z.array(Op),
});
export type Journal = z.infer<typeof Journal>;

export function fsyncDir(dir: string): void {
  const fd = openSync(dir, O_RDONLY | O_DIRECTORY);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Replaces the journal atomically and durably: temp file, fsync, rename, fsync the dir. */
export function writeJournal(file: string, j: Journal): void {
  const tmp = `${file}.tmp`;
  rmSync(tmp, { force: true });
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeSync(fd, JSON.stringify(j));
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, file);
  fsyncDir(path.dirname(file));
}

export function readJournal(file: string): Journal | undefined {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  return Journal.parse(JSON.parse(text));
}

export function removeJournal(file: string): void {
  rmSync(file, { force: true });
  rmSync(`${file}.tmp`, { force: true });
  fsyncDir(path.dirname(file));
}

export const oldSlot = (j: Pick<Journal, 'staging'>, slot: number) => `${j.staging}/old/${slot}`;
export const newSlot = (j: Pick<Journal, 'staging'>, slot: number) => `${j.staging}/new/${slot}`;

const exists = (p: string) => lstatSync(p, { throwIfNoEntry: false });

/** Test-only: die with SIGKILL after N steps, to check every interruption point. */
export function killPoint(envName: string): (() => void) | undefined {
  const n = Number(process.env[envName]);
  if (!Number.isInteger(n) || n < 0) return undefined;
  let left = n;
  return () => {
    if (left-- <= 0) process.kill(process.pid, 'SIGKILL');
  };
}

/** Undoes one step if it took effect; a no-op for a step that did not (or was undone). */
function undo(j: Journal, o: JournalOp): void {
  const dest = `${j.projectDir}/${o.path}`;
  // A created path stands where an original stood only once the original is aside.
  const originalStillThere =
    'replaces' in o && o.replaces !== undefined && !exists(oldSlot(j, o.replaces));
  switch (o.op) {
    case 'chmod': {
      if (o.old === undefined) return;
      const st = exists(dest);
      if (!st || st.isSymbolicLink() || st.isDirectory() !== o.dir) return;
      // Not applied (the step itself failed, say on a read-only mount): nothing to undo, and a
      // chmod there would fail the same way and leave the rollback unfinished.
      if ((st.mode & 0o7777) === o.old) return;
      const fd = openSync(dest, O_RDONLY | O_NOFOLLOW | (o.dir ? O_DIRECTORY : 0));
      try {
        fchmodSync(fd, o.old);
      } finally {
        closeSync(fd);
      }
      return;
    }
    case 'place': {
      if (originalStillThere) return;
      const st = exists(dest);
      if (!st) return;
      const staged = exists(newSlot(j, o.slot));
      if (!staged || (staged.ino === st.ino && staged.dev === st.dev)) unlinkSync(dest);
      return;
    }
    case 'symlink': {
      if (originalStillThere) return;
      if (exists(dest)?.isSymbolicLink()) unlinkSync(dest);
      return;
    }
    case 'mkdir': {
      if (originalStillThere) return;
      if (exists(dest)?.isDirectory()) rmdirSync(dest);
      return;
    }
    case 'aside': {
      if (exists(oldSlot(j, o.slot))) renameSync(oldSlot(j, o.slot), dest);
      return;
    }
  }
}

/** Puts the project back exactly as it was before the journal's apply; safe to rerun. */
export function rollBack(j: Journal, step?: () => void): void {
  for (let i = j.ops.length - 1; i >= 0; i--) {
    step?.();
    undo(j, j.ops[i]!);
  }
  fsyncDir(j.projectDir);
  markRolledBack(j);
}

/**
 * Undoing a rename or chmod bumps the ctime of the restored path, which conflict detection
 * would take for a change by the user. The change set remembers when it was last rolled back
 * so a path whose ctime is no later, and whose mtime, mode and content are as recorded, is not
 * a conflict. "When" is the marker's own ctime, written after every restore by the same kernel
 * clock: Date.now() is truncated to the ms and may read earlier than a restore's ctime.
 */
const ROLLED_BACK_AT = 'rolled-back-at';

function markRolledBack(j: Pick<Journal, 'changeDir'>): void {
  if (!lstatSync(j.changeDir, { throwIfNoEntry: false })?.isDirectory()) return;
  const file = `${j.changeDir}/${ROLLED_BACK_AT}`;
  rmSync(file, { force: true });
  const fd = openSync(file, 'wx', 0o600);
  try {
    writeSync(fd, String(Date.now()));
  } finally {
    closeSync(fd);
  }
}

export function rolledBackAt(changeDir: string): number | undefined {
  return lstatSync(`${changeDir}/${ROLLED_BACK_AT}`, { throwIfNoEntry: false })?.ctimeMs;
}

/** Removes the staging dir, which holds only nanocell's own copies by now. */
export function removeStaging(j: Pick<Journal, 'staging'>): void {
  rmSync(j.staging, { recursive: true, force: true });
}
