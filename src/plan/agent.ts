// The cell side of an agent preset (src/policy/presets.ts), planned from what the host probe
// found (src/host/agentBinary.ts). Pure. The binary's install dirs become read-only,
// executable host mounts at their own paths (secret-looking files masked, as for toolchains),
// the command keeps its host path (a link in the rootfs when it sits outside them), its bin
// dir goes first on PATH, and its state dir is a per-project dir under the state root mounted
// into HOME: never the user's real ~/.claude, and never holding a real key (the key is a
// placeholder the proxy swaps). Every refusal is one line with its fix.
import path from 'node:path';
import type { AgentSearch } from '../host/agentBinary.js';
import type { HostMountRequest } from '../policy/defaults.js';
import type { AgentPreset } from '../policy/presets.js';
import type { SecretEntry } from '../policy/secrets.js';
import { PolicyError } from '../util/errors.js';
import { CELL_PATH } from './env.js';
import { CELL_HOME } from './layout.js';
import type { ToolCache } from './toolchains.js';

export interface AgentPlan {
  name: string;
  /** The command on the host, and so in the cell. */
  binary: string;
  mounts: HostMountRequest[];
  /** Rootfs links [cell path, target]: the command, where it links into its install dirs. */
  links: [string, string][];
  /** The agent's kept state dir (ToolCache with agent: true). */
  caches: ToolCache[];
  /** PATH and the config dir's variable, above the toolchains' env. */
  env: Record<string, string>;
  /** The policy's secrets without the optional ones the host has no value for. */
  secrets: SecretEntry[];
}

export interface AgentPlanInput {
  preset: AgentPreset;
  search: AgentSearch;
  /** The invoking user's home, to show paths as the preset writes them. */
  home: string;
  /** The supervisor's environment: where env-sourced secrets are read at cell start. */
  hostEnv: NodeJS.ProcessEnv;
  secrets: readonly SecretEntry[];
  /** PATH as the toolchains set it, if they did. */
  toolchainPath?: string;
}

const inside = (p: string, dir: string) => p === dir || p.startsWith(`${dir}/`);

export function planAgent(i: AgentPlanInput): AgentPlan {
  const { preset } = i;
  const tilde = (p: string) => (inside(p, i.home) ? `~${p.slice(i.home.length)}` : p);
  const found = i.search.found;
  if (!found) {
    const out = i.search.outside;
    if (out) {
      throw new PolicyError(
        `agent ${preset.name}: ${tilde(out.path)} resolves to ${tilde(out.real)}, outside the install dirs the preset shows the cell`,
        `install it with ${preset.install}`,
      );
    }
    throw new PolicyError(
      `agent ${preset.name}: ${preset.binary} not found (looked in ${i.search.looked.map(tilde).join(', ')})`,
      `install it with ${preset.install}`,
    );
  }
  const secrets = checkSecrets(i);
  const linked = found.roots.length > 0 && !found.roots.some((r) => inside(found.path, r));
  return {
    name: preset.name,
    binary: found.path,
    mounts: found.roots.map((r) => ({ host: r, exec: true, toolchain: true })),
    links: linked ? [[found.path, found.real]] : [],
    caches: [
      {
        name: `agent-${preset.name}`,
        cell: path.posix.join(CELL_HOME, preset.config.dir),
        agent: true,
      },
    ],
    env: {
      PATH: `${path.dirname(found.path)}:${i.toolchainPath ?? CELL_PATH}`,
      ...(preset.config.env
        ? { [preset.config.env]: path.posix.join(CELL_HOME, preset.config.dir) }
        : {}),
    },
    secrets,
  };
}

/**
 * The preset's env-sourced secrets must have a value on the host now, not at cell start: the
 * agent would otherwise start and fail on its first request. Optional ones (any one of them is
 * enough) are dropped when absent.
 */
function checkSecrets(i: AgentPlanInput): SecretEntry[] {
  const { preset } = i;
  const optional = new Set(preset.optionalSecrets ?? []);
  const unset = (s: SecretEntry) =>
    preset.secretNames.includes(s.name) && 'env' in s.from && !i.hostEnv[s.from.env];
  const missing = i.secrets.filter(unset);
  const required = missing.find((s) => !optional.has(s.name));
  const fix = (s: SecretEntry) =>
    `export ${'env' in s.from ? s.from.env : s.name} on the host (the cell sees only a placeholder), or give the secret a file or command source in the policy`;
  if (required) {
    throw new PolicyError(
      `agent ${preset.name}: ${'env' in required.from ? required.from.env : required.name} is not set on the host`,
      fix(required),
    );
  }
  const kept = i.secrets.filter((s) => !missing.includes(s));
  const anyOptional = [...optional].filter((n) => i.secrets.some((s) => s.name === n));
  if (anyOptional.length && !kept.some((s) => optional.has(s.name))) {
    throw new PolicyError(
      `agent ${preset.name}: none of ${anyOptional.join(', ')} is set on the host`,
      `export one of them on the host (the cell sees only a placeholder)`,
    );
  }
  return kept;
}
