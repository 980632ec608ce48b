// `secrets:` in a policy: credentials the cell may use but never hold. Each names the variable
// the agent reads, where the supervisor reads the real value, the hosts (and path prefixes) it
// may be sent to, and the header it travels in. The cell sees a placeholder; the proxy puts
// the real value in on requests to the bound hosts only (src/net/secrets.ts).
import { z } from 'zod';
import { PolicyError } from '../util/errors.js';

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'secret names are environment variable names');

/** `host` or `host/path/prefix`; a host is a DNS name or an IP, no port, no scheme. */
const binding = z
  .string()
  .regex(
    /^[A-Za-z0-9.-]+(\/[\x21-\x7e]*)?$/,
    'a secret host is a name such as api.anthropic.com, optionally with a path prefix (api.example.com/v1/)',
  );

export const secretSchema = z.strictObject({
  /** The variable the program in the cell reads; it holds the placeholder. */
  name: envName,
  /** Where the supervisor reads the real value; exactly one. */
  from: z.union([
    z.strictObject({ env: envName }),
    z.strictObject({ file: z.string().min(1) }),
    z.strictObject({ command: z.array(z.string()).min(1) }),
  ]),
  hosts: z.array(binding).min(1),
  /**
   * The header it is sent in: `x-api-key`, or `Authorization: Bearer` (name, then the value's
   * scheme). Without it, the placeholder is replaced in any request header.
   */
  header: z
    .string()
    .regex(/^[A-Za-z0-9-]+(:\s*\S+)?$/, 'a header is NAME or NAME: SCHEME')
    .optional(),
  /** Also send it over plain http:// to its hosts (off: only over verified TLS). */
  allowPlainHttp: z.boolean().optional(),
});

export type SecretFile = z.output<typeof secretSchema>;

/** A secret entry after loading: hosts split into host and path prefix. */
export interface SecretEntry {
  name: string;
  from: { env: string } | { file: string } | { command: string[] };
  bindings: { host: string; pathPrefix: string }[];
  header?: { name: string; scheme?: string };
  allowPlainHttp: boolean;
}

export function secretEntry(s: SecretFile): SecretEntry {
  const [hname, scheme] = s.header ? s.header.split(/:\s*/) : [];
  return {
    name: s.name,
    from: s.from,
    bindings: s.hosts.map((h) => {
      const slash = h.indexOf('/');
      return slash < 0
        ? { host: h.toLowerCase(), pathPrefix: '/' }
        : { host: h.slice(0, slash).toLowerCase(), pathPrefix: h.slice(slash) };
    }),
    ...(hname ? { header: { name: hname.toLowerCase(), ...(scheme ? { scheme } : {}) } } : {}),
    allowPlainHttp: s.allowPlainHttp ?? false,
  };
}

/** `--secret NAME=ENV_VAR@host[,host...]`: the value from the host's ENV_VAR. */
export function parseSecretFlag(flag: string): SecretFile {
  const m = /^([A-Za-z_][A-Za-z0-9_]*)=([A-Za-z_][A-Za-z0-9_]*)@(.+)$/.exec(flag);
  if (!m) {
    throw new PolicyError(
      `--secret ${JSON.stringify(flag)} is not NAME=ENV_VAR@host`,
      'write it as --secret ANTHROPIC_API_KEY=ANTHROPIC_API_KEY@api.anthropic.com',
    );
  }
  return { name: m[1]!, from: { env: m[2]! }, hosts: m[3]!.split(',') };
}

/** Two entries for one variable would make the placeholder ambiguous. */
export function checkSecretNames(entries: readonly SecretEntry[]): void {
  const seen = new Set<string>();
  for (const e of entries) {
    if (seen.has(e.name)) {
      throw new PolicyError(
        `secrets: ${e.name} is listed twice`,
        'keep one entry per variable (a --secret flag replaces nothing; remove one of them)',
      );
    }
    seen.add(e.name);
  }
}
