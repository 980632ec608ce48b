// The package's root directory, for files shipped beside the code (native helpers, presets,
// the dashboard's assets, worker scripts).
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { NanocellError } from './errors.js';

let root: string | undefined;

/**
 * The package's root: the nearest directory above this file whose package.json names
 * nanocell. This file sits at different depths: src/util/, dist/util/, and in the CLI bundle
 * dist/cli/ or dist/cli/chunks/.
 */
export function packageRoot(): string {
  if (root) return root;
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = here; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: unknown;
      };
      if (pkg.name === 'nanocell') return (root = dir);
    } catch {
      // no package.json here (or not JSON): keep walking up
    }
    if (path.dirname(dir) === dir) {
      throw new NanocellError(
        `no nanocell package.json above ${here}`,
        'reinstall nanocell; its files must keep the package layout',
        'HOST',
      );
    }
  }
}

/** Where the native helpers are: built at install time (native/build), or an override dir. */
export function nativeDir(): string {
  return process.env.NANOCELL_NATIVE_DIR ?? path.join(packageRoot(), 'native', 'build');
}
