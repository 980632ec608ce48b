// The environment of a command in a cell is built from scratch: a short allowlist of harmless
// host variables, fixed identity variables, the policy's env, then the command's own. Nothing
// else from the host reaches the cell, so secrets in the supervisor's environment cannot leak.
import { CELL_HOME } from './layout.js';

/** Host variables that describe the terminal and locale, never credentials. */
const HOST_ENV_ALLOWLIST = [
  'LANG',
  'LANGUAGE',
  'LC_ALL',
  'LC_CTYPE',
  'TERM',
  'TZ',
  'COLORTERM',
  'NO_COLOR',
];

export const CELL_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export function cellEnv(opts: {
  hostEnv: NodeJS.ProcessEnv;
  policyEnv: Record<string, string>;
  proxyEnv?: Record<string, string>;
  /** Toolchain presets: PATH and cache variables, below the policy's env. */
  toolchainEnv?: Record<string, string>;
  execEnv?: Record<string, string>;
}): string[] {
  const env: Record<string, string> = {};
  for (const k of HOST_ENV_ALLOWLIST) {
    const v = opts.hostEnv[k];
    if (v !== undefined) env[k] = v;
  }
  Object.assign(env, {
    PATH: CELL_PATH,
    HOME: CELL_HOME,
    USER: 'cell',
    LOGNAME: 'cell',
    SHELL: '/bin/bash',
    TMPDIR: '/tmp',
    NANOCELL: '1',
  });
  Object.assign(
    env,
    opts.proxyEnv ?? {},
    opts.toolchainEnv ?? {},
    opts.policyEnv,
    opts.execEnv ?? {},
  );
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}
