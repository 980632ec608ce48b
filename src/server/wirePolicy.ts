// The resolved policy as a client sends it to the server (`create`, `run`): every default
// filled in by the client's resolvePolicy, checked here field by field before the server
// plans a cell from it. `satisfies` keeps this in step with the Policy type: a field added
// there and not here fails the typecheck.
import { z } from 'zod';
import type { Policy } from '../policy/defaults.js';
import { presetSchema } from '../policy/presets.js';
import { degradableControls, runtimeNames, toolchainNames } from '../policy/schema.js';

const str = z.string().max(64 * 1024);
const strs = z.array(str).max(10_000);
const count = z.number().int().nonnegative();
const positive = z.number().positive();

const secretSchema = z.strictObject({
  name: str,
  from: z.union([
    z.strictObject({ env: str }),
    z.strictObject({ file: str }),
    z.strictObject({ command: strs.min(1) }),
  ]),
  bindings: z.array(z.strictObject({ host: str, pathPrefix: str })).max(1000),
  header: z.strictObject({ name: str, scheme: str.optional() }).optional(),
  allowPlainHttp: z.boolean(),
});

export const wirePolicySchema = z.strictObject({
  limits: z.strictObject({
    memory: positive,
    pids: count,
    cpus: positive,
    timeout: positive,
    output: positive,
    disk: positive,
    tmp: positive,
    home: positive,
    files: count,
  }),
  workspace: z.strictObject({
    include: strs,
    exclude: strs,
    protected: strs,
    defaultExcludes: z.boolean().optional(),
    ignore: strs.optional(),
    gitignore: z.boolean().optional(),
  }),
  exec: z.strictObject({ allow: strs, scratch: z.enum(['follow-workspace', 'deny']) }),
  network: z.strictObject({
    allow: strs,
    deny: strs,
    cidrs: strs,
    hosts: z.record(str, str),
  }),
  syscalls: z.strictObject({ allow: strs, deny: strs, unsafeAllowForbidden: z.boolean() }),
  runtime: z.strictObject({ name: z.enum(runtimeNames), path: str.optional() }),
  mounts: z
    .array(
      z.strictObject({
        host: str,
        cell: str.optional(),
        exec: z.boolean(),
        toolchain: z.boolean().optional(),
      }),
    )
    .max(1000),
  toolchains: z.array(z.enum(toolchainNames)),
  hostConfig: z.array(z.enum(['npm', 'pip'])),
  env: z.record(str, str),
  secrets: z.array(secretSchema).max(1000),
  allowDegraded: z.array(z.enum(degradableControls)),
  agent: presetSchema.omit({ policy: true }).extend({ args: strs, secretNames: strs }).optional(),
  denialNotes: z.boolean().optional(),
}) satisfies z.ZodType<Policy>;
