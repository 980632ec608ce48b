import fs from 'node:fs';

/** True if something, even a dangling symlink, is at `p`. */
export function lexists(p: string): boolean {
  return fs.lstatSync(p, { throwIfNoEntry: false }) !== undefined;
}
