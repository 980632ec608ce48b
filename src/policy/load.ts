// Reading, validating and merging policies. Errors are one line that names the field.
import { readFileSync, statSync } from 'node:fs';
import YAML from 'yaml';
import type { z } from 'zod';
import { PolicyError } from '../util/errors.js';
import {
  DEFAULT_EXCLUDES,
  DEFAULT_EXEC_ALLOW,
  DEFAULT_LIMITS,
  DEFAULT_PROTECTED,
  type HostMountRequest,
  type Policy,
} from './defaults.js';
import { policySchema, type PolicyFile } from './schema.js';
import { checkSecretNames, secretEntry, type SecretEntry } from './secrets.js';
import { withPreset } from './presets.js';
// The tables alone: validating names must not load the profile compiler.
import { validateSyscallNames } from '../seccomp/syscalls.js';

const MAX_POLICY_BYTES = 1024 * 1024;

function formatIssue(issue: z.core.$ZodIssue, source: string): string {
  const path = issue.path.length ? issue.path.join('.') : '(top level)';
  let msg = issue.message;
  if (issue.code === 'unrecognized_keys') {
    msg = `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  }
  return `${source}: ${path}: ${msg}`;
}

/** Validates an already-parsed policy document. */
export function parsePolicy(doc: unknown, source = 'policy'): PolicyFile {
  const res = policySchema.safeParse(doc ?? {});
  if (!res.success) {
    const first = res.error.issues[0]!;
    const more = res.error.issues.length > 1 ? ` (and ${res.error.issues.length - 1} more)` : '';
    throw new PolicyError(`invalid policy: ${formatIssue(first, source)}${more}`);
  }
  // Unknown syscall names fail here, with the policy's exit status, not at cell start.
  validateSyscallNames(res.data.syscalls?.allow ?? [], `invalid policy: ${source}: syscalls.allow`);
  validateSyscallNames(res.data.syscalls?.deny ?? [], `invalid policy: ${source}: syscalls.deny`);
  return res.data;
}

/** Reads a YAML or JSON policy file (JSON is YAML, so one parser serves both). */
export function loadPolicyFile(path: string): PolicyFile {
  let st;
  try {
    st = statSync(path);
  } catch {
    throw new PolicyError(
      `policy file ${path} does not exist`,
      'pass an existing file to --policy',
    );
  }
  if (!st.isFile()) {
    throw new PolicyError(`policy file ${path} is not a regular file`, 'pass a file to --policy');
  }
  if (st.size > MAX_POLICY_BYTES) {
    throw new PolicyError(`policy file ${path} is larger than 1 MiB`, 'a policy is a short file');
  }
  const text = readFileSync(path, 'utf8');
  let doc: unknown;
  try {
    doc = YAML.parse(text, { uniqueKeys: true, maxAliasCount: 100 });
  } catch (e) {
    const first = String((e as Error).message).split('\n')[0];
    throw new PolicyError(`policy file ${path} is not valid YAML or JSON: ${first}`);
  }
  if (doc !== null && doc !== undefined && (typeof doc !== 'object' || Array.isArray(doc))) {
    throw new PolicyError(`policy file ${path} must hold a mapping of settings at the top level`);
  }
  return parsePolicy(doc, path);
}

/** Fills in defaults. Later layers win key by key; lists from later layers replace earlier ones. */
export function resolvePolicy(...given: PolicyFile[]): Policy {
  // A named preset is the first layer; the rest extend it (presets.ts).
  const { layers, preset } = withPreset(given);
  const m = mergeLayers(layers);
  const ws = m.workspace ?? {};
  return {
    limits: { ...DEFAULT_LIMITS, ...stripUndefined(m.limits ?? {}) },
    workspace: {
      include: ws.include ?? ['**'],
      exclude: [...(ws.defaultExcludes === false ? [] : DEFAULT_EXCLUDES), ...(ws.exclude ?? [])],
      protected: [
        ...(ws.defaultProtected === false ? [] : DEFAULT_PROTECTED),
        ...(ws.protected ?? []),
      ],
      ...(ws.defaultExcludes === false ? { defaultExcludes: false } : {}),
      ...(ws.ignore?.length ? { ignore: ws.ignore } : {}),
      ...(ws.gitignore === false ? { gitignore: false } : {}),
    },
    exec: {
      allow: m.exec?.allow ?? [...DEFAULT_EXEC_ALLOW],
      scratch: m.exec?.scratch ?? 'follow-workspace',
    },
    network: {
      allow: m.network?.allow ?? [],
      deny: m.network?.deny ?? [],
      cidrs: m.network?.cidrs ?? [],
      hosts: m.network?.hosts ?? {},
    },
    syscalls: {
      allow: m.syscalls?.allow ?? [],
      deny: m.syscalls?.deny ?? [],
      unsafeAllowForbidden: m.syscalls?.unsafeAllowForbidden ?? false,
    },
    runtime: {
      name: m.runtime?.name ?? 'runc',
      ...(m.runtime?.path ? { path: m.runtime.path } : {}),
    },
    mounts: (m.mounts ?? []).map(mountRequest),
    toolchains: [...new Set(m.toolchains ?? [])],
    hostConfig: [...new Set(m.hostConfig ?? [])],
    env: m.env ?? {},
    secrets: checkedSecrets(m.secrets ?? []),
    allowDegraded: [...new Set(m.allowDegraded ?? [])],
    ...(preset ? { agent: preset } : {}),
    ...(m.denialNotes === false ? { denialNotes: false } : {}),
  };
}

function checkedSecrets(files: NonNullable<PolicyFile['secrets']>): SecretEntry[] {
  const entries = files.map(secretEntry);
  checkSecretNames(entries);
  return entries;
}

/** `HOST[:CELL]` (the first ':' splits, as in Docker's -v) or the long form. */
export function mountRequest(m: NonNullable<PolicyFile['mounts']>[number]): HostMountRequest {
  if (typeof m !== 'string') {
    return { host: m.host, ...(m.cell ? { cell: m.cell } : {}), exec: m.exec ?? false };
  }
  const colon = m.indexOf(':');
  if (colon < 0) return { host: m, exec: false };
  const cell = m.slice(colon + 1);
  return { host: m.slice(0, colon), ...(cell ? { cell } : {}), exec: false };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function mergeLayers(layers: PolicyFile[]): PolicyFile {
  const out: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const [k, v] of Object.entries(layer)) {
      if (v === undefined) continue;
      const prev = out[k];
      if (isPlainObject(v) && isPlainObject(prev) && k !== 'env' && k !== 'hosts') {
        out[k] = { ...prev, ...stripUndefined(v) };
      } else if ((k === 'mounts' || k === 'secrets') && Array.isArray(v) && Array.isArray(prev)) {
        // --mount adds to the policy's mounts; each is checked the same way.
        out[k] = [...(prev as unknown[]), ...v];
      } else if (k === 'env' && isPlainObject(v) && isPlainObject(prev)) {
        out[k] = { ...prev, ...v };
      } else {
        out[k] = v;
      }
    }
  }
  return out as PolicyFile;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
