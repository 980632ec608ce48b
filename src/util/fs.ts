// Small filesystem helpers with no nanocell knowledge, for the few cases node:fs gets wrong
// for us (a dangling symlink counts as present; trees an overlay left unreadable).
import fs from 'node:fs';

/** True if something, even a dangling symlink, is at `p`. */
export function lexists(p: string): boolean {
  return fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined;
}

/**
 * rm -rf that also removes dirs the overlay left unreadable (its work dir is mode 000 after a
 * rootless cell deleted a file): on EACCES it makes the owner's dirs traversable and retries.
 */
export function removeTree(dir: string): void {
  try {
    fs.rmSync(dir, { recursive: true, force: true });
    return;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EACCES') throw e;
  }
  const open = (d: string) => {
    const st = fs.lstatSync(d, { throwIfNoEntry: false });
    if (!st?.isDirectory()) return;
    fs.chmodSync(d, 0o700);
    for (const name of fs.readdirSync(d)) open(`${d}/${name}`);
  };
  open(dir);
  fs.rmSync(dir, { recursive: true, force: true });
}

/** The canonical path of `p` on the host, or `p` itself when it cannot be resolved. */
export function realpathOrSelf(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return p;
  }
}
