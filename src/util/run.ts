// Runs a helper program to completion (no shell; stdin gets `input`, then its end) and reports
// how it ended. Why not execa: a cell's start and end run a few helpers (mount, umount, runc
// delete, nanocell-idmap), and execa's own per-call work cost more than the spawn itself
// (about 9 ms against 3 ms for /bin/true on a loaded 2-core host); its 250 KB also loaded with
// every CLI command. The children start from the fork server (forkServer.ts says why); Node's
// own execFile only where this install has none.
import { execFile, spawnSync } from 'node:child_process';
import type { Socket } from 'node:net';
import { forkServerSpawn, SpawnError, type Forked } from './forkServer.js';

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
  if (o.signal?.aborted) return Promise.resolve(abortedResult());
  const forked = forkServerSpawn(cmd, args, o);
  if (forked) return forked.then((f) => collect(f, cmd, args, o), startFailed);
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

/** Node's words for an aborted child, kept so that callers read the same either way. */
const ABORTED = 'The operation was aborted';

const abortedResult = (): RunResult => ({
  exitCode: undefined,
  stdout: '',
  stderr: '',
  message: ABORTED,
  aborted: true,
  notFound: false,
});

function startFailed(e: unknown): RunResult {
  const code = e instanceof SpawnError ? e.code : undefined;
  return {
    exitCode: undefined,
    stdout: '',
    stderr: '',
    message: e instanceof Error ? e.message : String(e),
    aborted: false,
    notFound: code === 'ENOENT',
  };
}

/** Reads a forked child's output and waits for its end, with execFile's options and results. */
async function collect(
  f: Forked,
  cmd: string,
  args: readonly string[],
  o: RunOptions,
): Promise<RunResult> {
  const max = o.maxBuffer ?? MAX_BUFFER;
  let stopped: 'timeout' | 'abort' | 'maxBuffer' | undefined;
  const stop = (why: NonNullable<typeof stopped>) => {
    stopped ??= why;
    f.kill('SIGTERM');
  };
  const read = (s: Socket, closed: Promise<void>) =>
    new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      s.on('data', (d: Buffer) => {
        if (size + d.length > max) {
          chunks.push(d.subarray(0, max - size));
          size = max;
          stop('maxBuffer');
          return;
        }
        chunks.push(d);
        size += d.length;
      });
      void closed.then(() => resolve(Buffer.concat(chunks).toString('utf8')));
    });
  const timer = o.timeout ? setTimeout(() => stop('timeout'), o.timeout) : undefined;
  const onAbort = () => stop('abort');
  o.signal?.addEventListener('abort', onAbort, { once: true });
  // A program that exits without reading its stdin makes this write fail (EPIPE): not a failure.
  const [stdin, out, err] = f.stdio as [Socket, Socket, Socket];
  stdin.on('error', () => undefined);
  if (o.input !== undefined) stdin.end(o.input);
  else stdin.end();
  try {
    const [stdout, stderr, exit] = await Promise.all([
      read(out, f.closed[1]!),
      read(err, f.closed[2]!),
      f.exited,
    ]);
    stdin.destroy();
    if (exit.code === 0 && !stopped) {
      return { exitCode: 0, stdout, stderr, message: '', aborted: false, notFound: false };
    }
    const message =
      stopped === 'abort'
        ? ABORTED
        : stopped === 'maxBuffer'
          ? 'stdout or stderr maxBuffer length exceeded'
          : `Command failed: ${[cmd, ...args].join(' ')}\n${stderr}`;
    return {
      exitCode: stopped ? undefined : (exit.code ?? undefined),
      stdout,
      stderr,
      message,
      aborted: stopped === 'abort',
      notFound: false,
    };
  } finally {
    clearTimeout(timer);
    o.signal?.removeEventListener('abort', onAbort);
  }
}
