// Agent presets (`preset: NAME`, `nanocell agent NAME`): YAML files shipped in the package's
// presets/ directory, one per agent, validated here when loaded. A preset is data: where its
// binary is found, the directory it keeps its state in, the flags that switch its own sandbox
// off, and a policy layer (its API host, its credential bound to that host, its telemetry
// switches) that the user's policy file extends.
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { PolicyError } from '../util/errors.js';
import { packageRoot } from '../util/packageRoot.js';
import { policySchema, presetNameSchema, type PolicyFile } from './schema.js';

const presetDir = () => path.join(packageRoot(), 'presets');

/** A user install dir: `~/...` or absolute. */
const hostDir = z.string().regex(/^(~\/|\/)[^\0]*$/, 'a directory is absolute or starts with ~/');

export const presetSchema = z.strictObject({
  name: presetNameSchema,
  description: z.string().min(1),
  /** The command's name, looked up in each `find` entry's bin dir in order. */
  binary: z.string().regex(/^[A-Za-z0-9._-]+$/, 'a binary is a file name'),
  /** How the user installs it: shown when it is not found. */
  install: z.string().min(1),
  find: z
    .array(
      z.strictObject({
        /** Where the command is. Under /usr the cell already sees it; anywhere else needs roots. */
        bin: hostDir,
        /**
         * The install's own dirs, mounted read-only and executable (secret-looking files
         * masked): absolute, `~/...`, or relative to bin. The command must resolve into one.
         */
        roots: z.array(z.string().min(1)).optional(),
      }),
    )
    .min(1),
  /** The agent's state dir in the cell's HOME, kept per project under the state root. */
  config: z.strictObject({
    /** Relative to HOME, e.g. `.claude`. */
    dir: z.string().regex(/^\.[A-Za-z0-9._-]+$/, 'a config dir is a dot-directory of HOME'),
    /** A variable that names it to the agent (CLAUDE_CONFIG_DIR, CODEX_HOME). */
    env: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/)
      .optional(),
  }),
  /** Arguments put before the user's (the inner sandbox switch). */
  args: z.array(z.string()).optional(),
  /** What happens to the agent's own sandbox: switched off (the cell is the sandbox), or none. */
  innerSandbox: z.strictObject({ mode: z.enum(['off', 'none']), how: z.string().min(1) }),
  /** Secrets of which any one is enough (a multi-provider agent); the others are required. */
  optionalSecrets: z.array(z.string()).optional(),
  /** The policy layer the preset brings; a policy file that names the preset extends it. */
  policy: policySchema.omit({ preset: true }),
});

type PresetFile = z.output<typeof presetSchema>;

/** A loaded preset, without its policy layer (which resolvePolicy merged). */
export type AgentPreset = Omit<PresetFile, 'policy'> & {
  args: string[];
  /** The secrets its layer brings (a policy may have replaced their sources). */
  secretNames: string[];
};

/** The names of the shipped presets, sorted. */
export function presetNames(): string[] {
  let files: string[];
  try {
    files = fs.readdirSync(presetDir());
  } catch {
    return [];
  }
  return files
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => f.slice(0, -'.yaml'.length))
    .sort();
}

/** Reads and validates one preset; an unknown name is one line listing the known ones. */
export function loadPreset(name: string): { preset: AgentPreset; layer: PolicyFile } {
  const names = presetNames();
  if (!names.includes(name)) {
    throw new PolicyError(
      `unknown agent preset ${JSON.stringify(name)}`,
      names.length
        ? `use one of ${names.join(', ')} (nanocell agent --list)`
        : `the package's presets directory ${presetDir()} is missing; reinstall nanocell`,
    );
  }
  const file = path.join(presetDir(), `${name}.yaml`);
  const res = presetSchema.safeParse(YAML.parse(fs.readFileSync(file, 'utf8')));
  if (!res.success) {
    const i = res.error.issues[0]!;
    throw new PolicyError(
      `preset ${file}: ${i.path.join('.') || '(top level)'}: ${i.message}`,
      'the preset shipped with nanocell is broken; reinstall nanocell',
    );
  }
  if (res.data.name !== name) {
    throw new PolicyError(`preset ${file} names itself ${res.data.name}`, 'reinstall nanocell');
  }
  const { policy, ...preset } = res.data;
  const secretNames = (policy.secrets ?? []).map((s) => s.name);
  return { preset: { ...preset, args: preset.args ?? [], secretNames }, layer: policy };
}

/**
 * The layers with the named preset's policy first. A later layer extends it rather than
 * replacing it where replacing would cut the agent off: its network.allow entries are added to
 * the preset's, and its secret of the same name replaces the preset's (a file or a command as
 * the source, say). Everything else merges as layers always do.
 */
export function withPreset(layers: PolicyFile[]): {
  layers: PolicyFile[];
  preset?: AgentPreset;
} {
  const name = layers.findLast((l) => l.preset !== undefined)?.preset;
  if (name === undefined) return { layers };
  const { preset, layer } = loadPreset(name);
  const allow = layer.network?.allow ?? [];
  const overridden = new Set(layers.flatMap((l) => (l.secrets ?? []).map((s) => s.name)));
  const base: PolicyFile = {
    ...layer,
    ...(layer.secrets ? { secrets: layer.secrets.filter((s) => !overridden.has(s.name)) } : {}),
  };
  const rest = layers.map((l) =>
    l.network?.allow
      ? { ...l, network: { ...l.network, allow: [...allow, ...l.network.allow] } }
      : l,
  );
  return { layers: [base, ...rest], preset };
}
