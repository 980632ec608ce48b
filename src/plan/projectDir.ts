// The project directory, resolved and validated once. Everything after the resolve step takes
// a ProjectDir, so no later step re-resolves the user's path or checks it with other words.
import fs from 'node:fs';
import path from 'node:path';
import { NanocellError } from '../util/errors.js';
import { checkWorkspacePath } from './layout.js';

/** A real (symlink-free), absolute, existing directory that the cell may show as its workspace. */
export type ProjectDir = string & { readonly __brand: 'ProjectDir' };

/** Resolves and checks the project dir; the one-line errors are the user's first contact. */
export function resolveProjectDir(p: string): ProjectDir {
  const abs = path.resolve(p);
  const st = fs.lstatSync(abs, { throwIfNoEntry: false });
  if (!st) {
    throw new NanocellError(
      `workspace ${abs} does not exist`,
      'pass an existing project directory with --workspace',
      'WORKSPACE',
    );
  }
  if (st.isSymbolicLink()) {
    let target = '?';
    try {
      target = fs.realpathSync(abs);
    } catch {
      // dangling
    }
    throw new NanocellError(
      `workspace ${abs} is a symlink (to ${target})`,
      'pass the real directory path with --workspace, after checking it is the project you mean',
      'WORKSPACE',
    );
  }
  if (!st.isDirectory()) {
    throw new NanocellError(
      `workspace ${abs} is not a directory`,
      'pass the project directory with --workspace',
      'WORKSPACE',
    );
  }
  // Parent components may be symlinks (e.g. /var/run): use the real path everywhere.
  const real = fs.realpathSync(abs);
  checkWorkspacePath(real);
  return real as ProjectDir;
}
