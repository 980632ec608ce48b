// CLI flags become one more policy layer, validated by the same schema as files, so a bad
// flag gets the same one-line error as a bad policy entry.
import path from 'node:path';
import type { PolicyFile } from '../../policy/schema.js';
import { parsePolicy } from '../../policy/load.js';
import { NanocellError } from '../../util/errors.js';
import { parseEnvFlags, readEnvFile } from '../../policy/envFile.js';
import { parseSecretFlag } from '../../policy/secrets.js';

export interface RunFlags {
  memory?: string;
  pids?: string;
  cpus?: string;
  timeout?: string;
  outputLimit?: string;
  disk?: string;
  env?: string[];
  envFile?: string[];
  runtime?: string;
  runtimePath?: string;
  allowDegraded?: string[];
  mount?: string[];
  secret?: string[];
  /** commander's `--no-denial-notes`: false when given. */
  denialNotes?: boolean;
}

function num(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) {
    throw new NanocellError(
      `${flag} ${JSON.stringify(v)} is not a number`,
      `pass a number to ${flag}`,
      'USAGE',
    );
  }
  return n;
}

/**
 * `at` is where the command line was typed: its environment gives `--env NAME` and the env
 * files their values, and a relative `--env-file` is its cwd's (a served client's, not the
 * server's).
 */
export function policyFromFlags(
  f: RunFlags,
  at: { cwd: string; env: NodeJS.ProcessEnv } = { cwd: process.cwd(), env: process.env },
): PolicyFile {
  const limits: Record<string, unknown> = {};
  if (f.memory !== undefined) limits.memory = f.memory;
  if (f.pids !== undefined) limits.pids = num('--pids', f.pids);
  if (f.cpus !== undefined) limits.cpus = num('--cpus', f.cpus);
  if (f.timeout !== undefined) limits.timeout = f.timeout;
  if (f.outputLimit !== undefined) limits.output = f.outputLimit;
  if (f.disk !== undefined) limits.disk = f.disk;
  const doc: Record<string, unknown> = {};
  if (Object.keys(limits).length) doc.limits = limits;
  // The env file first, then --env on top, as in Docker. Values never come from argv alone:
  // `--env NAME` and the file keep secrets off the host's command lines.
  const env = {
    ...Object.assign(
      {},
      ...(f.envFile ?? []).map((file) => readEnvFile(path.resolve(at.cwd, file), at.env)),
    ),
    ...parseEnvFlags(f.env ?? [], at.env),
  } as Record<string, string>;
  if (Object.keys(env).length) doc.env = env;
  if (f.runtime || f.runtimePath) {
    doc.runtime = {
      ...(f.runtime ? { name: f.runtime } : {}),
      ...(f.runtimePath ? { path: f.runtimePath } : {}),
    };
  }
  if (f.mount?.length) doc.mounts = f.mount;
  if (f.secret?.length) doc.secrets = f.secret.map(parseSecretFlag);
  if (f.allowDegraded?.length) doc.allowDegraded = f.allowDegraded;
  if (f.denialNotes === false) doc.denialNotes = false;
  return parsePolicy(doc, 'command line');
}
