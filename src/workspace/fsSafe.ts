// File reads and writes that never follow a symlink: the upper dir is written by a hostile
// agent and the project may change under us.
import { createHash } from 'node:crypto';
import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from 'node:fs';

const CHUNK = 1024 * 1024;
const { O_RDONLY, O_NOFOLLOW, O_NONBLOCK } = constants;
// One read buffer per thread: hashFile is synchronous, and a fresh 1 MiB buffer per file was a
// large share of collecting a change set of many small files.
const readBuf = Buffer.allocUnsafe(CHUNK);

class NotRegularFileError extends Error {}
export class BudgetExceededError extends Error {}

/** Opens a regular file for reading without following a final symlink or blocking on a fifo. */
export function openRegularNoFollow(abs: string): number {
  const fd = openSync(abs, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    throw new NotRegularFileError(`${abs} is not a regular file`);
  }
  return fd;
}

/**
 * Streams a regular file through sha256, optionally into `outFd`, stopping with
 * BudgetExceededError once more than `budget` bytes were read.
 */
export function hashFile(
  abs: string,
  opts: { outFd?: number; budget?: number } = {},
): { sha256: string; size: number } {
  const fd = openRegularNoFollow(abs);
  try {
    const h = createHash('sha256');
    const buf = readBuf;
    let size = 0;
    for (;;) {
      const n = readSync(fd, buf, 0, CHUNK, null);
      if (n === 0) break;
      size += n;
      if (opts.budget !== undefined && size > opts.budget) throw new BudgetExceededError();
      const chunk = buf.subarray(0, n);
      h.update(chunk);
      if (opts.outFd !== undefined) {
        let off = 0;
        while (off < n) off += writeSync(opts.outFd, chunk, off, n - off);
      }
    }
    return { sha256: h.digest('hex'), size };
  } finally {
    closeSync(fd);
  }
}
