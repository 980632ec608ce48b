// The cell server's config file (`nanocell serve --config FILE`): its warm pools. YAML or
// JSON, validated in full before the server listens; schema/serve.schema.json is generated
// from the same zod schema for editors. A pool serves one project with one policy (see
// src/plan/poolKey.ts for which parts of the policy a warm cell fixes at start).
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { z } from 'zod';
import { MAX_POOL_SIZE } from '../cell/pool.js';
import type { Policy } from '../policy/defaults.js';
import { parsePolicy, resolvePolicy } from '../policy/load.js';
import { policySchema } from '../policy/schema.js';
import { PolicyError } from '../util/errors.js';

const MAX_CONFIG_BYTES = 1024 * 1024;
const MAX_POOLS = 64;

const poolSchema = z
  .strictObject({
    name: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'a name of lowercase letters, digits, - and _'),
    workspace: z
      .string()
      .min(1)
      .describe('the project this pool serves (absolute, or relative to the config file)'),
    size: z.number().int().min(0).max(MAX_POOL_SIZE).describe('warm cells kept ready (0: none)'),
    fillConcurrency: z
      .number()
      .int()
      .min(1)
      .max(16)
      .optional()
      .describe('cells started at once while refilling (default 1)'),
    policy: policySchema.optional().describe('the policy every claim of this pool shares'),
  })
  .describe('a warm pool');

const serveConfigSchema = z.strictObject({
  pools: z.array(poolSchema).max(MAX_POOLS).default([]),
});

export interface PoolConfig {
  name: string;
  workspace: string;
  size: number;
  fillConcurrency?: number;
  policy: Policy;
}

export function serveConfigJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(serveConfigSchema, { io: 'input', unrepresentable: 'any' }),
    $id: 'https://nanocell.dev/schema/serve.schema.json',
    title: 'nanocell serve config',
  };
}

const bad = (file: string, what: string) =>
  new PolicyError(
    `server config ${file}: ${what}`,
    'fix the file; schema/serve.schema.json describes it (docs/sdk.md, "Warm pools")',
  );

/** Reads and validates the whole file; the first problem is one line naming the key. */
export function loadServeConfig(file: string): PoolConfig[] {
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (!st?.isFile()) throw bad(file, st ? 'is not a regular file' : 'does not exist');
  if (st.size > MAX_CONFIG_BYTES) throw bad(file, 'is larger than 1 MiB');
  let doc: unknown;
  try {
    doc = YAML.parse(fs.readFileSync(file, 'utf8'), { uniqueKeys: true, maxAliasCount: 100 });
  } catch (e) {
    throw bad(file, `is not valid YAML or JSON: ${String((e as Error).message).split('\n')[0]}`);
  }
  const res = serveConfigSchema.safeParse(doc ?? {});
  if (!res.success) {
    const i = res.error.issues[0]!;
    const where = i.path.length ? i.path.join('.') : '(top level)';
    const msg =
      i.code === 'unrecognized_keys'
        ? `unknown key ${i.keys.map((k) => `"${k}"`).join(', ')}`
        : i.message;
    throw bad(file, `${where}: ${msg}`);
  }
  const seen = new Set<string>();
  return res.data.pools.map((p, i) => {
    if (seen.has(p.name)) throw bad(file, `pools.${i}.name: "${p.name}" is used twice`);
    seen.add(p.name);
    const workspace = path.resolve(path.dirname(file), p.workspace);
    // Unknown syscall names and the like fail here, as for a policy file.
    const policy = resolvePolicy(parsePolicy(p.policy ?? {}, `${file}: pools.${i}.policy`));
    return {
      name: p.name,
      workspace,
      size: p.size,
      ...(p.fillConcurrency ? { fillConcurrency: p.fillConcurrency } : {}),
      policy,
    };
  });
}
