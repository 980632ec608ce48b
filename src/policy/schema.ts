// The policy file format. Every object is strict: an unknown key is an error, because a
// misspelt security setting that is silently ignored is worse than no setting.
import { z } from 'zod';
import { MAX_TIMER_MS, parseDuration, parseSize } from '../util/units.js';
import { secretSchema } from './secrets.js';

const size = (what: string) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const n = parseSize(v);
    if (n === undefined || n <= 0) {
      ctx.addIssue({
        code: 'custom',
        message: `${what} must be a positive size such as 512m or 2g (got ${JSON.stringify(v)})`,
      });
      return z.NEVER;
    }
    return n;
  });

const duration = (what: string) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const n = parseDuration(v);
    if (n === undefined || n <= 0) {
      ctx.addIssue({
        code: 'custom',
        message: `${what} must be a positive duration such as 30s, 10m or 1h (got ${JSON.stringify(v)})`,
      });
      return z.NEVER;
    }
    if (n > MAX_TIMER_MS) {
      ctx.addIssue({
        code: 'custom',
        message: `${what} must be at most 24d (timers hold ${MAX_TIMER_MS} ms; got ${JSON.stringify(v)})`,
      });
      return z.NEVER;
    }
    return n;
  });

const envName = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'environment variable names are letters, digits and _');

const limitsSchema = z.strictObject({
  /** Memory limit of the whole cell (cgroup), swap included. */
  memory: size('limits.memory').optional(),
  /** Maximum number of processes and threads in the cell (cgroup pids). */
  pids: z.number().int().min(8).max(1_000_000).optional(),
  /** CPU quota in cores, e.g. 1.5. */
  cpus: z.number().positive().max(1024).optional(),
  /** Wall-clock limit of the task; the whole cell is killed when it fires. */
  timeout: duration('limits.timeout').optional(),
  /** Bytes of stdout plus stderr kept per command; the rest is drained and dropped. */
  output: size('limits.output').optional(),
  /** Cap on what the task may write to the workspace (size of the overlay's upper layer). */
  disk: size('limits.disk').optional(),
  /** Size of the /tmp tmpfs. */
  tmp: size('limits.tmp').optional(),
  /** Size of the HOME tmpfs. */
  home: size('limits.home').optional(),
  /** RLIMIT_NOFILE for every process in the cell. */
  files: z.number().int().min(16).max(1_048_576).optional(),
});

const workspaceSchema = z.strictObject({
  /** Globs, relative to the workspace root, of what the cell may see. Default: everything. */
  include: z.array(z.string().min(1)).optional(),
  /** Globs hidden from the cell, added to the default secret excludes. */
  exclude: z.array(z.string().min(1)).optional(),
  /** Set to false to drop the default secret excludes (not recommended). */
  defaultExcludes: z.boolean().optional(),
  /** Globs visible but read-only in the cell; apply refuses changes to them. */
  protected: z.array(z.string().min(1)).optional(),
  /** Set to false to drop the default protected paths (not recommended). */
  defaultProtected: z.boolean().optional(),
  /** Globs of generated files (node_modules/**, **\/__pycache__/**) left out of the change set. */
  ignore: z.array(z.string().min(1)).optional(),
  /** Set to false to let apply write paths the project's .gitignore ignores. */
  gitignore: z.boolean().optional(),
});

const execSchema = z.strictObject({
  /** Absolute paths or globs of binaries the cell may execute (enforced by Landlock). */
  allow: z.array(z.string().min(1)).optional(),
  /**
   * Exec in /tmp, HOME and /dev/shm: "follow-workspace" (default) allows it when the whole
   * workspace is allowed; "deny" mounts them noexec whatever the workspace's rule.
   */
  scratch: z.enum(['follow-workspace', 'deny']).optional(),
});

const networkSchema = z.strictObject({
  /** Host patterns: example.com, *.example.com, [2001:db8::1], each with an optional :port. */
  allow: z.array(z.string()).optional(),
  /** Host patterns that are refused even when allow matches. */
  deny: z.array(z.string()).optional(),
  /** Explicit IP ranges (CIDR) that may be reached, including private ones. */
  cidrs: z.array(z.string()).optional(),
  /** Static name to address pins, like /etc/hosts, used by the proxy's resolver. */
  hosts: z.record(z.string(), z.string()).optional(),
});

const syscallsSchema = z.strictObject({
  /** Syscalls to add to the allowlist. */
  allow: z.array(z.string()).optional(),
  /** Syscalls to deny in addition to the default denials. */
  deny: z.array(z.string()).optional(),
  /**
   * Required to re-allow a syscall the threat model forbids (mount, ptrace, bpf, ...).
   * The report records it.
   */
  unsafeAllowForbidden: z.boolean().optional(),
});

/** The OCI runtimes nanocell drives; the one list every other module reads. */
export const runtimeNames = ['runc', 'crun', 'runsc'] as const;

const runtimeSchema = z.strictObject({
  name: z.enum(runtimeNames).optional(),
  /** Path to the runtime binary; default: found on PATH. */
  path: z.string().min(1).optional(),
});

/** A read-only host path: `HOST[:CELL]`, or the long form with `exec`. */
const mountSchema = z.union([
  z.string().min(1),
  z.strictObject({
    /** Host path; `~` is the invoking user's home. */
    host: z.string().min(1),
    /** Path in the cell; default: the same as on the host. */
    cell: z.string().min(1).optional(),
    /** Let the cell execute files under it (mounted without noexec, added to exec.allow). */
    exec: z.boolean().optional(),
  }),
]);

/** Toolchain presets: the user's own installs, found where their version managers keep them. */
export const toolchainNames = ['node', 'python', 'rust', 'go', 'java'] as const;
export type ToolchainName = (typeof toolchainNames)[number];

/** Package managers whose host configuration `hostConfig:` can carry (src/plan/hostConfig.ts). */
const hostConfigTools = ['npm', 'pip'] as const;
export type HostConfigTool = (typeof hostConfigTools)[number];

/** Controls the user may let degrade instead of failing; each degradation is reported. */
export const degradableControls = ['cgroups', 'disk-cap', 'landlock'] as const;
export type DegradableControl = (typeof degradableControls)[number];

/** A shipped agent preset's name (presets/NAME.yaml; src/policy/presets.ts loads it). */
export const presetNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,31}$/, 'a preset name is lower-case letters, digits and -');

export const policySchema = z.strictObject({
  version: z.literal(1).optional(),
  /** An agent preset this policy extends: its API host, credential, config dir and binary. */
  preset: presetNameSchema.optional(),
  limits: limitsSchema.optional(),
  workspace: workspaceSchema.optional(),
  exec: execSchema.optional(),
  network: networkSchema.optional(),
  syscalls: syscallsSchema.optional(),
  runtime: runtimeSchema.optional(),
  /** Host directories or files bound read-only into the cell (nosuid, nodev, noexec unless exec). */
  mounts: z.array(mountSchema).optional(),
  /**
   * The user's own toolchain installs (nvm, fnm, volta, pyenv, rustup, asdf, mise, SDKMAN,
   * /usr/local/go, /opt), mounted read-only and executable, first on PATH, with per-project
   * caches under the state root.
   */
  toolchains: z.array(z.enum(toolchainNames)).optional(),
  /**
   * The host's package-manager configuration to carry into the cell (registry URLs, scopes,
   * CA bundles), with every token, password and client key stripped and named in the report.
   */
  hostConfig: z.array(z.enum(hostConfigTools)).optional(),
  /** Extra environment variables for every command in the cell. */
  env: z.record(envName, z.string()).optional(),
  /** Credentials brokered by the proxy: the cell holds a placeholder, bound hosts get the value. */
  secrets: z.array(secretSchema).optional(),
  /** Controls allowed to degrade (for example cgroups when running rootless without delegation). */
  allowDegraded: z.array(z.enum(degradableControls)).optional(),
  /** false: refusals are recorded but not told on the command's stderr (default true). */
  denialNotes: z.boolean().optional(),
});

/** What a policy file holds, after unit parsing. */
export type PolicyFile = z.output<typeof policySchema>;
