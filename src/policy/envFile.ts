// Environment variables given by name or in a file, as Docker reads them (`docker run --env`,
// `--env-file`): the value comes from the host's environment or the file, never from the command
// line, so it does not show in `ps`. Values are kept in memory only; the report and the audit
// trail record the names.
import { readFileSync, statSync } from 'node:fs';
import { NanocellError } from '../util/errors.js';

const MAX_ENV_FILE_BYTES = 1024 * 1024;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Docker's env-file syntax: leading whitespace is dropped; blank lines and lines starting with
 * `#` are skipped; `NAME=VALUE` takes VALUE verbatim (quotes and trailing spaces included);
 * `NAME` alone takes the host's value, and is skipped when the host has none.
 */
export function parseEnvFile(
  text: string,
  source: string,
  hostEnv: NodeJS.ProcessEnv,
): Record<string, string> {
  const env: Record<string, string> = {};
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    const name = eq < 0 ? line : line.slice(0, eq);
    if (!NAME.test(name)) {
      throw new NanocellError(
        `${source}:${i + 1}: ${JSON.stringify(name.slice(0, 64))} is not a variable name`,
        'write NAME=value or NAME (letters, digits and _), one per line',
        'USAGE',
      );
    }
    if (eq >= 0) env[name] = line.slice(eq + 1);
    else if (hostEnv[name] !== undefined) env[name] = hostEnv[name];
  });
  return env;
}

export function readEnvFile(file: string, hostEnv: NodeJS.ProcessEnv): Record<string, string> {
  const st = statSync(file, { throwIfNoEntry: false });
  if (!st?.isFile()) {
    throw new NanocellError(`--env-file ${file} is not a file`, 'pass an existing file', 'USAGE');
  }
  if (st.size > MAX_ENV_FILE_BYTES) {
    throw new NanocellError(
      `--env-file ${file} is larger than 1 MiB`,
      'pass a short file',
      'USAGE',
    );
  }
  return parseEnvFile(readFileSync(file, 'utf8'), file, hostEnv);
}

/** `--env NAME=value`, or `--env NAME` for the host's value (an error when the host has none). */
export function parseEnvFlags(
  entries: readonly string[],
  hostEnv: NodeJS.ProcessEnv,
): Record<string, string> {
  const env: Record<string, string> = {};
  for (const p of entries) {
    const eq = p.indexOf('=');
    const name = eq < 0 ? p : p.slice(0, eq);
    if (!NAME.test(name)) {
      throw new NanocellError(
        `--env ${JSON.stringify(name.slice(0, 64))} is not a variable name`,
        'write --env NAME (the host value) or --env NAME=value',
        'USAGE',
      );
    }
    if (eq >= 0) {
      env[name] = p.slice(eq + 1);
      continue;
    }
    const v = hostEnv[name];
    if (v === undefined) {
      throw new NanocellError(
        `--env ${name}: ${name} is not set in this environment`,
        `export ${name} before running nanocell, or drop --env ${name}`,
        'USAGE',
      );
    }
    env[name] = v;
  }
  return env;
}
