// Runs a helper program to completion (no shell, stdin at end of file) and reports how it ended.
// Why not execa, as elsewhere: a cell's start and end run a few helpers (mount, umount, runc
// delete, nanocell-idmap), and execa's own per-call work cost more than the spawn itself
// (about 9 ms against 3 ms for /bin/true on a loaded 2-core host).
import { execFile } from 'node:child_process';

export interface CommandResult {
  /** undefined when it could not start, or a signal (or the timeout) ended it. */
  exitCode: number | undefined;
  stdout: string;
  stderr: string;
  /** Why it failed, as Node says it; empty on success. */
  message: string;
}

export function runCommand(
  cmd: string,
  args: readonly string[],
  o: { timeout?: number } = {},
): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { encoding: 'utf8', timeout: o.timeout ?? 0, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return resolve({ exitCode: 0, stdout, stderr, message: '' });
        const code = (err as { code?: unknown }).code;
        resolve({
          exitCode: typeof code === 'number' ? code : undefined,
          stdout,
          stderr,
          message: err.message,
        });
      },
    );
    child.stdin?.end();
  });
}
