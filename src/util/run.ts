// Runs a helper program to completion (no shell; stdin gets `input`, then its end) and reports
// how it ended. Why not execa: a cell's start and end run a few helpers (mount, umount, runc
// delete, nanocell-idmap), and execa's own per-call work cost more than the spawn itself
// (about 9 ms against 3 ms for /bin/true on a loaded 2-core host); its 250 KB also loaded with
// every CLI command.
import { execFile, spawnSync } from 'node:child_process';

interface CommandResult {
  /** undefined when it could not start, or a signal (or the timeout) ended it. */
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  /** Why it failed, as Node says it; empty on success. */
  message: string;
}

export interface RunOptions {
  timeout?: number;
  cwd?: string;
  /** The whole environment (nothing of this process's is added); this process's without it. */
  env?: NodeJS.ProcessEnv;
  /** Written to its stdin, which then ends. */
  input?: string | Buffer;
  /** Upper bound on stdout and on stderr (bytes); the program is stopped past it. */
  maxBuffer?: number;
  /** Aborting it stops the program (SIGTERM); the result's `aborted` says so. */
  signal?: AbortSignal;
}

export interface RunResult extends CommandResult {
  /** Ended by `signal`. */
  aborted: boolean;
  /** It could not be started because the program does not exist. */
  notFound: boolean;
}

const MAX_BUFFER = 16 * 1024 * 1024;

function options(o: RunOptions, withSignal = true) {
  return {
    encoding: 'utf8' as const,
    timeout: o.timeout ?? 0,
    maxBuffer: o.maxBuffer ?? MAX_BUFFER,
    ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
    ...(o.env ? { env: o.env } : {}),
    ...(o.signal && withSignal ? { signal: o.signal } : {}),
  };
}

export function runCommand(
  cmd: string,
  args: readonly string[],
  o: RunOptions = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, options(o), (err, stdout, stderr) => {
      if (!err)
        return resolve({
          exitCode: 0,
          stdout,
          stderr,
          message: '',
          aborted: false,
          notFound: false,
        });
      const code = (err as { code?: unknown }).code;
      resolve({
        exitCode: typeof code === 'number' ? code : undefined,
        stdout,
        stderr,
        message: err.message,
        aborted: err.name === 'AbortError',
        notFound: code === 'ENOENT',
      });
    });
    // A program that exits without reading its stdin makes this write fail (EPIPE): not a failure.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(o.input);
  });
}

/** The same, synchronously (the CLI's diff). */
export function runCommandSync(
  cmd: string,
  args: readonly string[],
  o: RunOptions = {},
): RunResult {
  const r = spawnSync(cmd, args, { ...options(o, false), input: o.input ?? '' });
  const code = (r.error as { code?: unknown } | undefined)?.code;
  return {
    exitCode: r.error ? undefined : (r.status ?? undefined),
    stdout: r.stdout ?? '',
    stderr: r.stderr ?? '',
    message: r.error?.message ?? (r.status === 0 ? '' : `exited with ${r.status ?? r.signal}`),
    aborted: false,
    notFound: code === 'ENOENT',
  };
}
