// Path checks shared by scope, change-set collection and apply. Every path that crosses a trust
// boundary (policy globs, the agent's upper dir, a manifest on disk) goes through here.
import { lstatSync } from 'node:fs';
import { posix } from 'node:path';

const MAX_PATH_BYTES = 4096;
const MAX_NAME_BYTES = 255;

/** Why `rel` is not a clean project-relative path, or undefined when it is. */
export function relPathProblem(rel: unknown): string | undefined {
  if (typeof rel !== 'string') return 'is not a string';
  if (rel.length === 0) return 'is empty';
  if (rel.includes('\0')) return 'contains a NUL byte';
  if (Buffer.byteLength(rel) > MAX_PATH_BYTES) return 'is longer than 4096 bytes';
  if (rel.startsWith('/')) return 'is absolute';
  for (const part of rel.split('/')) {
    if (part === '') return 'has an empty component (// or a trailing /)';
    if (part === '.' || part === '..') return `has a "${part}" component`;
    if (Buffer.byteLength(part) > MAX_NAME_BYTES) return 'has a component longer than 255 bytes';
  }
  return undefined;
}

/** `rel` and every ancestor of it, shortest first: a/b/c → [a, a/b, a/b/c]. */
export function selfAndAncestors(rel: string): string[] {
  const parts = rel.split('/');
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
}

export function parentOf(rel: string): string {
  const i = rel.lastIndexOf('/');
  return i < 0 ? '' : rel.slice(0, i);
}

/** True when `rel` is `base` or lies below it. */
export function isSameOrBelow(rel: string, base: string): boolean {
  return rel === base || rel.startsWith(`${base}/`);
}

/**
 * Where a symlink stored at `linkRel` points, as a project-relative path, judged lexically
 * (relative to the link's directory; absolute targets must lie under `projectDir`).
 * Returns undefined when the target leaves the project. '' means the project root itself.
 */
export function symlinkTargetInProject(
  linkRel: string,
  target: string,
  projectDir: string,
): string | undefined {
  if (target.length === 0 || target.includes('\0')) return undefined;
  let resolved: string;
  if (target.startsWith('/')) {
    const root = posix.normalize(projectDir).replace(/\/+$/, '');
    const norm = posix.normalize(target).replace(/\/+$/, '');
    if (norm === root) return '';
    if (!norm.startsWith(`${root}/`)) return undefined;
    resolved = norm.slice(root.length + 1);
  } else {
    resolved = posix.normalize(posix.join(parentOf(linkRel) || '.', target)).replace(/\/+$/, '');
    if (resolved === '..' || resolved.startsWith('../')) return undefined;
    if (resolved === '.') return '';
  }
  return resolved;
}

/**
 * Throws unless every existing component of `root/rel` below `root` is a real directory (or,
 * for the last one, anything but a symlink). Missing components are fine (they will be created).
 * Returns the lstat result of the full path, or undefined if it does not exist.
 */
export function lstatNoSymlinkComponents(root: string, rel: string) {
  const parts = rel.split('/');
  let cur = root;
  for (let i = 0; i < parts.length; i++) {
    cur = `${cur}/${parts[i]}`;
    const st = lstatSync(cur, { throwIfNoEntry: false });
    if (!st) return undefined;
    const last = i === parts.length - 1;
    if (st.isSymbolicLink() && !last) {
      throw new SymlinkComponentError(parts.slice(0, i + 1).join('/'));
    }
    if (!last && !st.isDirectory()) {
      throw new NotADirectoryComponentError(parts.slice(0, i + 1).join('/'));
    }
    if (last) return st;
  }
  return undefined;
}

export class SymlinkComponentError extends Error {
  constructor(readonly component: string) {
    super(`${component} is a symlink`);
  }
}

export class NotADirectoryComponentError extends Error {
  constructor(readonly component: string) {
    super(`${component} is not a directory`);
  }
}
