// Defaults are chosen for an agent task on a developer laptop: enough to build and test a
// project, small enough that a runaway task cannot starve the machine.
import type { DegradableControl } from './schema.js';

export const DEFAULT_LIMITS = {
  memory: 1024 ** 3,
  pids: 512,
  cpus: 1,
  timeout: 10 * 60_000,
  output: 16 * 1024 ** 2,
  disk: 1024 ** 3,
  tmp: 256 * 1024 ** 2,
  home: 256 * 1024 ** 2,
  files: 4096,
} as const;

/** Secrets that are never shown to a cell unless the policy turns the defaults off. */
export const DEFAULT_EXCLUDES: readonly string[] = [
  '**/.env',
  '**/.env.*',
  '**/*.pem',
  '**/*.key',
  '**/*.p12',
  '**/*.pfx',
  '**/id_rsa*',
  '**/id_dsa*',
  '**/id_ecdsa*',
  '**/id_ed25519*',
  '**/.npmrc',
  '**/.yarnrc.yml',
  '**/.netrc',
  '**/.pypirc',
  '**/.pgpass',
  '**/.aws',
  '**/.ssh',
  '**/.gnupg',
  '**/.docker/config.json',
  '**/.kube/config',
  '**/.git-credentials',
  '**/credentials.json',
  '**/*.keystore',
  '**/*.jks',
  '**/.config/gcloud',
  '**/.azure',
  '**/.terraform.d/credentials.tfrc.json',
  '**/.vault-token',
  '**/.htpasswd',
];

/** Paths that run code on the host later (persistence): visible, read-only, never applied. */
export const DEFAULT_PROTECTED: readonly string[] = [
  '.git/hooks',
  '.git/config',
  '.git/info',
  '.git/modules/**/hooks',
  '.git/modules/**/config',
  '.husky',
  '.pre-commit-config.yaml',
  'lefthook.yml',
  '.lefthook.yml',
  '.gitmodules',
  '.envrc',
  '.vscode',
  '.idea',
  '.devcontainer',
  '.github/workflows',
  '.bashrc',
  '.bash_profile',
  '.profile',
  '.zshrc',
  '.zprofile',
  '.zshenv',
  '.config/fish',
  '.gitconfig',
  '.claude',
  '.cursor',
  '.codex',
  '.mcp.json',
];

/**
 * System binaries, and what the task builds in its workspace; /tmp, HOME and /dev/shm follow the
 * workspace (exec.scratch).
 */
export const DEFAULT_EXEC_ALLOW: readonly string[] = ['/usr/**', '$WORKSPACE/**'];

export type RuntimeName = 'runc' | 'crun' | 'runsc';

/** A policy with every default filled in: what planning works from. */
export interface Policy {
  limits: {
    memory: number;
    pids: number;
    cpus: number;
    timeout: number;
    output: number;
    disk: number;
    tmp: number;
    home: number;
    files: number;
  };
  workspace: { include: string[]; exclude: string[]; protected: string[] };
  /** Landlock exec allowlist: paths or globs; `$WORKSPACE` stands for the workspace path. */
  exec: { allow: string[]; scratch: 'follow-workspace' | 'deny' };
  network: {
    allow: string[];
    deny: string[];
    cidrs: string[];
    hosts: Record<string, string>;
  };
  syscalls: { allow: string[]; deny: string[]; unsafeAllowForbidden: boolean };
  runtime: { name: RuntimeName; path?: string };
  env: Record<string, string>;
  allowDegraded: DegradableControl[];
}
