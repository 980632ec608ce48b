// Opening the audit database: checks on the state root and the file, pragmas, schema
// migrations (up only), and the translation of SQLite failures into errors a user can act on.
import Database from 'better-sqlite3';
import { closeSync, constants, accessSync, mkdirSync, openSync, readSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { NanocellError } from '../util/errors.js';

export type Db = Database.Database;

/** Each entry migrates from version i to i + 1; the schema version is the number of entries. */
const migrations: string[] = [
  `
  CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    session TEXT NOT NULL,
    command TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('running', 'exited', 'failed', 'abnormal')),
    end_reason TEXT,
    exit_code INTEGER,
    created_at INTEGER NOT NULL,
    ended_at INTEGER,
    owner_pid INTEGER NOT NULL,
    owner_start_time INTEGER,
    workspace TEXT,
    report TEXT,
    event_count INTEGER NOT NULL DEFAULT 0,
    stored_bytes INTEGER NOT NULL DEFAULT 0,
    dropped_events INTEGER NOT NULL DEFAULT 0,
    dropped_counts TEXT NOT NULL DEFAULT '{}',
    chain_head TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS tasks_by_created ON tasks (created_at);
  CREATE INDEX IF NOT EXISTS tasks_by_session ON tasks (session, created_at);
  CREATE INDEX IF NOT EXISTS tasks_by_status ON tasks (status);
  CREATE TABLE IF NOT EXISTS events (
    task_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    time INTEGER NOT NULL,
    type TEXT NOT NULL,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (task_id, seq)
  ) WITHOUT ROWID;
  `,
];

const SCHEMA_VERSION = migrations.length;

const SQLITE_MAGIC = 'SQLite format 3\0';
const BUSY_TIMEOUT_MS = 5000;

function corruptedError(path: string, detail: string): NanocellError {
  // SQLite's integrity report can run to many kilobytes; the first problem is enough to act on.
  const first = detail
    .replace(/\*\*\* in database \w+ \*\*\*\s*/, '')
    .split(/\n| Tree \d+ page \d+/)[0]!
    .trim();
  const short = first.length > 160 ? `${first.slice(0, 160)}…` : first;
  return new NanocellError(
    `the audit database ${path} is corrupted (${short})`,
    `move it aside (mv ${path} ${path}.broken, and its -wal/-shm files) and nanocell will start a new one`,
    'STATE',
  );
}

/** Maps a SQLite failure to a NanocellError when the user can do something about it. */
export function translateSqliteError(err: unknown, path: string): unknown {
  const code = (err as { code?: unknown }).code;
  if (typeof code !== 'string') return err;
  const message = (err as Error).message;
  if (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB') {
    return corruptedError(path, message);
  }
  if (code.startsWith('SQLITE_CANTOPEN') || code.startsWith('SQLITE_PERM')) {
    return new NanocellError(
      `cannot open the audit database ${path} (${message})`,
      `make ${dirname(path)} and the database readable and writable by this user, or pick another --state-root`,
      'STATE',
    );
  }
  if (code.startsWith('SQLITE_READONLY')) {
    return new NanocellError(
      `the audit database ${path} is read-only (${message})`,
      `make ${path} and its directory writable by this user, or pick another --state-root`,
      'STATE',
    );
  }
  if (code === 'SQLITE_FULL') {
    return new NanocellError(
      `the disk holding the audit database ${path} is full`,
      'free space, or remove old tasks with `nanocell gc --older-than 7d`',
      'STATE',
    );
  }
  return err;
}

function isBusy(err: unknown): boolean {
  const code = (err as { code?: unknown }).code;
  return typeof code === 'string' && (code.startsWith('SQLITE_BUSY') || code === 'SQLITE_LOCKED');
}

const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * Runs fn, retrying while another process holds the write lock. busy_timeout already waits
 * inside SQLite; this covers the cases where SQLite returns BUSY without waiting (a WAL
 * snapshot upgrade, a concurrent journal-mode change, or a wait longer than the timeout).
 */
export function withBusyRetry<T>(fn: () => T, totalMs = 60_000): T {
  const deadline = Date.now() + totalMs;
  for (let attempt = 0; ; attempt++) {
    try {
      return fn();
    } catch (err) {
      if (!isBusy(err) || Date.now() > deadline) throw err;
      Atomics.wait(sleeper, 0, 0, Math.min(100, 2 + attempt * 5) * (0.5 + Math.random()));
    }
  }
}

/** Fails early, and clearly, when the state root cannot hold the database. */
function checkStateRoot(path: string, readonly: boolean): void {
  const dir = dirname(path);
  try {
    if (!readonly) mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = statSync(dir);
    if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    accessSync(
      dir,
      readonly ? constants.R_OK | constants.X_OK : constants.R_OK | constants.W_OK | constants.X_OK,
    );
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'error';
    throw new NanocellError(
      `the state root ${dir} is not usable (${code})`,
      `make ${dir} a directory readable and writable by this user, or pick another with --state-root or NANOCELL_STATE_ROOT`,
      'STATE',
    );
  }
}

/** Reads the 16-byte header: a file that exists but is not SQLite must not be overwritten. */
function checkHeader(path: string): 'absent' | 'empty' | 'sqlite' {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'absent';
    throw new NanocellError(
      `cannot read the audit database ${path} (${code ?? String(err)})`,
      `make ${path} readable and writable by this user, or pick another --state-root`,
      'STATE',
    );
  }
  try {
    const buf = Buffer.alloc(16);
    const n = readSync(fd, buf, 0, 16, 0);
    if (n === 0) return 'empty';
    if (n < 16 || buf.toString('latin1') !== SQLITE_MAGIC) {
      throw corruptedError(path, 'not a SQLite file');
    }
    return 'sqlite';
  } finally {
    closeSync(fd);
  }
}

export function openDatabase(path: string, readonly: boolean): Db {
  checkStateRoot(path, readonly);
  const header = checkHeader(path);
  if (header === 'absent') {
    if (readonly) {
      throw new NanocellError(
        `no audit database at ${path}: no task has run with this state root`,
        'run a task first, or pass the --state-root that your tasks used',
        'STATE',
      );
    }
    // Events hold argv and paths, which may be sensitive: the file (and SQLite's -wal and
    // -shm, which copy its mode) is private to the owner.
    closeSync(openSync(path, 'a', 0o600));
  }
  let db: Db | undefined;
  try {
    db = new Database(path, { readonly, timeout: BUSY_TIMEOUT_MS, fileMustExist: true });
    const d = db;
    if (!readonly) {
      // Only takes effect on a fresh file (before the first table): lets gc return pages.
      if (header !== 'sqlite') d.pragma('auto_vacuum = INCREMENTAL');
      const mode = withBusyRetry(() => d.pragma('journal_mode = WAL', { simple: true }));
      if (String(mode).toLowerCase() !== 'wal') {
        throw new NanocellError(
          `the audit database ${path} cannot use write-ahead logging (journal mode ${String(mode)})`,
          'put the state root on a local filesystem that supports shared memory (not NFS)',
          'STATE',
        );
      }
      d.pragma('synchronous = NORMAL');
    }
    const check = withBusyRetry(() => d.pragma('quick_check', { simple: true }));
    if (check !== 'ok') throw corruptedError(path, `integrity check: ${String(check)}`);
    migrate(d, path, readonly);
    return d;
  } catch (err) {
    db?.close();
    throw translateSqliteError(err, path);
  }
}

function readSchemaVersion(db: Db): number {
  const hasMeta = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'")
    .get();
  if (!hasMeta) return 0;
  const row = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as
    { value: string } | undefined;
  return row ? Number(row.value) : 0;
}

function migrate(db: Db, path: string, readonly: boolean): void {
  const refuseNewer = (found: number) =>
    new NanocellError(
      `the audit database ${path} has schema version ${found}, newer than this nanocell understands (${SCHEMA_VERSION})`,
      'upgrade nanocell, or use another --state-root; the database is never migrated down',
      'STATE',
    );
  if (readonly) {
    const found = readSchemaVersion(db);
    if (found > SCHEMA_VERSION) throw refuseNewer(found);
    if (found < SCHEMA_VERSION) {
      throw new NanocellError(
        `the audit database ${path} has schema version ${found} and needs an upgrade to ${SCHEMA_VERSION}`,
        'run any nanocell command that writes (for example `nanocell gc`) to upgrade it',
        'STATE',
      );
    }
    return;
  }
  // IMMEDIATE: two processes opening a fresh database at once must not both migrate.
  withBusyRetry(() =>
    db
      .transaction(() => {
        db.exec('CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)');
        const found = readSchemaVersion(db);
        if (!Number.isSafeInteger(found) || found < 0) {
          throw corruptedError(path, `meta.schema_version is ${String(found)}`);
        }
        if (found > SCHEMA_VERSION) throw refuseNewer(found);
        for (let v = found; v < SCHEMA_VERSION; v++) db.exec(migrations[v]!);
        if (found !== SCHEMA_VERSION) {
          db.prepare(
            "INSERT INTO meta (key, value) VALUES ('schema_version', ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
          ).run(String(SCHEMA_VERSION));
        }
      })
      .immediate(),
  );
}
