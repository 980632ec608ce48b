// Reads the host's package-manager configuration files for `hostConfig:` (the user's own first,
// as each tool looks them up). Reads only; src/plan/hostConfig.ts strips the credentials.
import fs from 'node:fs';
import path from 'node:path';
import { NanocellError } from '../util/errors.js';

/** Configuration files are small; a larger one is refused rather than partly carried. */
const MAX_BYTES = 256 * 1024;

/** Where each tool keeps its configuration, first found wins. */
const PLACES: Record<string, (home: string) => string[]> = {
  npm: (h) => [path.join(h, '.npmrc')],
  pip: (h) => [
    path.join(h, '.config', 'pip', 'pip.conf'),
    path.join(h, '.pip', 'pip.conf'),
    '/etc/pip.conf',
  ],
};

function hostConfigPlaces(tool: string, home: string): string[] {
  return PLACES[tool]?.(home) ?? [];
}

/** A small regular file's text, or undefined when there is none; refused when too large. */
export function readConfigFile(p: string, what: string): string | undefined {
  const st = fs.statSync(p, { throwIfNoEntry: false });
  if (!st) return undefined;
  if (!st.isFile() || st.size > MAX_BYTES) {
    throw new NanocellError(
      `${what} ${p} is not a regular file under 256 KiB`,
      `fix or remove ${p}, or drop it from hostConfig:`,
      'POLICY',
    );
  }
  return fs.readFileSync(p, 'utf8');
}

/** The first configuration file of `tool` for this home, with its text. */
export function findHostConfig(
  tool: string,
  home: string,
): { from: string; text: string } | undefined {
  for (const p of hostConfigPlaces(tool, home)) {
    const text = readConfigFile(p, `${tool} configuration`);
    if (text !== undefined) return { from: p, text };
  }
  return undefined;
}
