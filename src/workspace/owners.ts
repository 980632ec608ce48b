// Files a rootless cell can see but never change: its user namespace maps only the caller's
// own uid and gid, and overlayfs cannot copy up an inode whose owner has no mapping (EOVERFLOW).
// Nothing can map them (newgidmap grants subgid ranges and the caller's own gid only), so the
// user is told up front which files the task will fail to edit.
import { spawn } from 'node:child_process';
import { isSameOrBelow } from './paths.js';
import type { ScopePlan } from './scope.js';

export interface ForeignOwners {
  /** In-scope, writable (not protected) files and directories owned by someone else. */
  count: number;
  /** True when `count` is a lower bound (the listing was cut short). */
  atLeast: boolean;
  /** One of them, relative to the project root. */
  example: string;
}

/** Paths kept from the listing: enough for any real project, bounded for a hostile one. */
const MAX_LISTED = 200_000;

/**
 * Lists project files and directories not owned by `uid` and `gid`, relative to `projectDir`.
 * find(1) does the stat of every inode in its own process, so it runs alongside the scope walk
 * (which only reads directories) instead of adding to it.
 */
export function listForeignOwned(
  projectDir: string,
  owner: { uid: number; gid: number },
): Promise<{ paths: string[]; truncated: boolean }> {
  return new Promise((resolve) => {
    const child = spawn(
      'find',
      [
        '-P',
        projectDir,
        '-mindepth',
        '1',
        '(',
        '-type',
        'f',
        '-o',
        '-type',
        'd',
        ')',
        '(',
        '!',
        '-uid',
        String(owner.uid),
        '-o',
        '!',
        '-gid',
        String(owner.gid),
        ')',
        '-print0',
      ],
      { stdio: ['ignore', 'pipe', 'ignore'] },
    );
    const paths: string[] = [];
    let truncated = false;
    let rest = '';
    const prefix = `${projectDir.replace(/\/+$/, '')}/`;
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      const parts = (rest + chunk).split('\0');
      rest = parts.pop() ?? '';
      for (const p of parts) {
        if (paths.length >= MAX_LISTED) {
          truncated = true;
          child.kill();
          return;
        }
        if (p.startsWith(prefix)) paths.push(p.slice(prefix.length));
      }
    });
    // A warning only: an unreadable directory or a missing find(1) must not stop the cell.
    child.on('error', () => resolve({ paths, truncated }));
    child.on('close', () => resolve({ paths, truncated }));
  });
}

/** The listed paths the cell sees and may try to change: not hidden, not read-only. */
export function foreignOwnersInScope(
  listed: { paths: string[]; truncated: boolean },
  plan: Pick<ScopePlan, 'hidden' | 'hardlinkHidden' | 'protected' | 'protectedSymlinks'>,
): ForeignOwners | undefined {
  const skip = [
    ...plan.hidden,
    ...plan.hardlinkHidden,
    ...plan.protected,
    ...plan.protectedSymlinks,
  ];
  const inScope = listed.paths.filter((p) => !skip.some((s) => isSameOrBelow(p, s)));
  if (!inScope.length) return undefined;
  return {
    count: inScope.length,
    atLeast: listed.truncated,
    example: inScope.reduce((a, b) => (b < a ? b : a)),
  };
}
