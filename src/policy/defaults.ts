// Defaults are chosen for an agent task on a developer laptop: enough to build and test a
// project, small enough that a runaway task cannot starve the machine.
import type { SecretEntry } from './secrets.js';
import type { AgentPreset } from './presets.js';
import type { DegradableControl, HostConfigTool, runtimeNames, ToolchainName } from './schema.js';

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
  // Infrastructure tools: state and variable files hold every secret they manage, in plain text.
  '**/*.tfstate',
  '**/*.tfstate.*',
  '**/*.tfvars',
  '**/*.tfvars.json',
  '**/.terraformrc',
  '**/terraform.rc',
  '**/.pulumi',
  '**/.vagrant',
  '**/.vault_pass*',
  '**/.vault-pass*',
  '**/kubeconfig',
  '**/*.kubeconfig',
  '**/.kube',
  '**/.dockercfg',
  '**/.s3cfg',
  '**/.boto',
  '**/.passwd-s3fs',
  '**/rclone.conf',
  '**/*.ovpn',
  '**/*.ppk',
  '**/*.p8',
  '**/*.kdbx',
  '**/.my.cnf',
  // Local secret files of serverless and app platforms.
  '**/.dev.vars',
  '**/.dev.vars.*',
  '**/local.settings.json',
  '**/.runtimeconfig.json',
  '**/serviceAccountKey.json',
  '**/*service-account*.json',
  '**/*-adminsdk-*.json',
  '**/application_default_credentials.json',
  '**/client_secret*.json',
  '**/.streamlit/secrets.toml',
  '**/keystore.properties',
  '**/.microsoft/usersecrets',
  // Registry and forge credentials.
  '**/.yarnrc',
  '**/pip.conf',
  '**/pip.ini',
  '**/pypoetry/auth.toml',
  '**/.gem/credentials',
  '**/.bundle/config',
  '**/.cargo/credentials',
  '**/.cargo/credentials.toml',
  '**/.m2/settings.xml',
  '**/.m2/settings-security.xml',
  '**/.gradle/gradle.properties',
  '**/.nuget/NuGet/NuGet.Config',
  '**/auth.json',
  '**/.config/gh',
  '**/.config/hub',
  '**/.config/glab-cli',
  '**/.config/git/credentials',
  // Coding agents' login tokens.
  '**/.claude/.credentials.json',
  '**/.gemini/oauth_creds.json',
  '**/.config/github-copilot/hosts.json',
  '**/.config/github-copilot/apps.json',
];

/**
 * Paths that a host program later runs or reads as configuration (persistence): visible to the
 * cell, read-only where they exist, and refused by apply however they are spelt (see foldPath
 * in workspace/globs.ts). Agent instruction files (CLAUDE.md, AGENTS.md) are prose the user
 * reviews in the diff; agent settings, hooks and MCP server lists run programs, so they are here.
 */
export const DEFAULT_PROTECTED: readonly string[] = [
  // git: hooks, configuration, and files that send git to other repositories or object stores,
  // in the project's repository and in any nested one.
  '.git/hooks',
  '.git/config',
  '.git/config.worktree',
  '.git/info',
  '.git/commondir',
  '.git/objects/info/alternates',
  '.git/objects/info/http-alternates',
  '.git/worktrees/*/config.worktree',
  '.git/worktrees/*/commondir',
  '.git/worktrees/*/gitdir',
  '.git/modules/**/hooks',
  '.git/modules/**/config',
  '.git/modules/**/info',
  '**/.git/hooks',
  '**/.git/config',
  '**/.git/info',
  '**/.git/commondir',
  '**/.git/objects/info/alternates',
  '**/.gitmodules',
  '.lfsconfig',
  '.githooks',
  '.husky',
  '.pre-commit-config.yaml',
  'lefthook.yml',
  '.lefthook.yml',
  'lefthook-local.yml',
  '.lefthook-local.yml',
  '.lefthook',
  '.overcommit.yml',
  // CI pipelines of the common forges and services
  '.github/workflows',
  '.github/actions',
  '.gitlab-ci.yml',
  '.gitlab',
  '.gitea/workflows',
  '.forgejo/workflows',
  '.circleci',
  '.travis.yml',
  'azure-pipelines.yml',
  '.azure-pipelines',
  'bitbucket-pipelines.yml',
  'Jenkinsfile',
  '.buildkite',
  '.drone.yml',
  '.woodpecker.yml',
  '.woodpecker',
  'appveyor.yml',
  '.appveyor.yml',
  'cloudbuild.yaml',
  'cloudbuild.yml',
  'buildspec.yml',
  '.cirrus.yml',
  '.semaphore',
  '.tekton',
  // editors and IDEs: tasks, launch configs, settings that name programs
  '.vscode',
  '.idea',
  '.devcontainer',
  '.devcontainer.json',
  '*.code-workspace',
  '.zed',
  '.fleet',
  '.helix',
  '.vim',
  '.exrc',
  '.nvimrc',
  '.nvim.lua',
  '.vimrc',
  // environment loaders that run on cd, and package-manager code that runs on install
  '.envrc',
  'mise.toml',
  '.mise.toml',
  'mise.local.toml',
  '.mise',
  '.config/mise',
  '.pnpmfile.cjs',
  '.yarn/plugins',
  '.yarn/releases',
  // shells
  '.bashrc',
  '.bash_profile',
  '.profile',
  '.zshrc',
  '.zprofile',
  '.zshenv',
  '.config/fish',
  '.gitconfig',
  // coding agents and their MCP servers
  '.claude',
  '.cursor',
  '.codex',
  '.gemini',
  '.mcp.json',
  '.continue',
  '.continuerc.json',
  '.aider.conf.yml',
  '.aider.model.settings.yml',
  '.roo',
  '.kilocode',
  '.amazonq',
  '.kiro',
  '.junie',
  '.opencode',
  'opencode.json',
  'opencode.jsonc',
];

/**
 * System binaries, and what the task builds in its workspace; /tmp, HOME and /dev/shm follow the
 * workspace (exec.scratch).
 */
export const DEFAULT_EXEC_ALLOW: readonly string[] = ['/usr/**', '$WORKSPACE/**'];

export type RuntimeName = (typeof runtimeNames)[number];

export interface HostMountRequest {
  host: string;
  /** Absent: the same path as on the host. */
  cell?: string;
  exec: boolean;
  /** Found by a toolchain preset: secret-looking files inside are masked, not refused. */
  toolchain?: boolean;
}

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
  workspace: {
    include: string[];
    exclude: string[];
    protected: string[];
    /** false when the policy turned the default excludes off (home-directory ones included). */
    defaultExcludes?: boolean;
    /** Left out of the change set (generated files). */
    ignore?: string[];
    /** false: apply writes what the project's .gitignore ignores too. */
    gitignore?: boolean;
  };
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
  /** Read-only host paths, as written (`~` not yet expanded, nothing checked). */
  mounts: HostMountRequest[];
  toolchains: ToolchainName[];
  hostConfig: HostConfigTool[];
  env: Record<string, string>;
  /** Brokered credentials (names and sources only; values are read at cell start). */
  secrets: SecretEntry[];
  allowDegraded: DegradableControl[];
  /** The agent preset the policy names (its policy layer is already merged in). */
  agent?: AgentPreset;
  /** false: no denial notes on commands' stderr (`--no-denial-notes`); absent: notes on. */
  denialNotes?: boolean;
}
