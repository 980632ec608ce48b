// Secrets around a large workspace. A project dir is usually a repository, where the default
// excludes (policy/defaults.ts) name the secret files a project may hold. When the workspace is
// a home directory, or contains one, or contains nanocell's own state root, it also holds the
// credential stores and histories of every tool its user runs: those are hidden too, and the
// user is told why.
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isSameOrBelow } from './paths.js';

/**
 * Paths relative to a home directory that hold credentials, sessions or command histories.
 * Directories are hidden whole: `.claude` and `.codex` hold login tokens next to settings, so
 * protecting (read-only) them would still let the agent read the token.
 */
export const HOME_SECRET_PATHS: readonly string[] = [
  // coding agents
  '.claude',
  '.claude.json',
  '.codex',
  '.gemini',
  '.config/gemini',
  '.aider*',
  '.continue',
  '.cursor',
  '.config/github-copilot',
  // forges and registries
  '.config/gh',
  '.config/hub',
  '.config/glab-cli',
  '.cargo/credentials',
  '.cargo/credentials.toml',
  '.gem/credentials',
  '.m2/settings.xml',
  '.m2/settings-security.xml',
  '.gradle/gradle.properties',
  '.nuget/NuGet',
  '.config/NuGet',
  '.composer/auth.json',
  '.config/composer/auth.json',
  '.bundle/config',
  '.config/pip',
  '.pip',
  '.config/pypoetry/auth.toml',
  '.local/share/pypoetry',
  '.yarnrc',
  '.config/yarn',
  '.docker',
  '.config/containers/auth.json',
  '.kube',
  '.config/helm',
  // clouds and infrastructure
  '.aws',
  '.config/gcloud',
  '.azure',
  '.oci',
  '.config/doctl',
  '.terraformrc',
  '.terraform.d',
  '.pulumi',
  '.vault-token',
  '.config/op',
  '.op',
  '.password-store',
  '.config/sops',
  '.local/share/keyrings',
  '.gnupg',
  '.ssh',
  '.netrc',
  '_netrc',
  '.git-credentials',
  '.config/git/credentials',
  '.pgpass',
  '.my.cnf',
  // browsers and mail (cookies, saved passwords)
  '.mozilla',
  '.thunderbird',
  '.config/google-chrome',
  '.config/chromium',
  '.config/BraveSoftware',
  // shell and REPL histories
  '.bash_history',
  '.zsh_history',
  '.zhistory',
  '.histfile',
  '.sh_history',
  '.local/share/fish/fish_history',
  '.python_history',
  '.node_repl_history',
  '.irb_history',
  '.pry_history',
  '.psql_history',
  '.mysql_history',
  '.sqlite_history',
  '.rediscli_history',
  '.lesshst',
  '.viminfo',
  '.local/share/nvim/shada',
  '.wget-hsts',
];

export interface HomeSecrets {
  /** Workspace globs (relative to the project) to add to the excludes. */
  patterns: string[];
  /** One line for the user and the report; undefined when the workspace holds no home. */
  notice?: string;
}

/** Home directories known to this host: every passwd entry's, and the caller's $HOME. */
export function hostHomeDirs(): string[] {
  const homes = new Set<string>();
  try {
    for (const line of readFileSync('/etc/passwd', 'utf8').split('\n')) {
      const home = line.split(':')[5];
      if (home && home.startsWith('/') && home !== '/') homes.add(path.normalize(home));
    }
  } catch {
    // No readable passwd: the caller's home below is still checked.
  }
  for (const h of [process.env.HOME, os.homedir()]) {
    if (h && h.startsWith('/') && h !== '/') homes.add(path.normalize(h));
  }
  return [...homes];
}

/** picomatch treats these as syntax; a home path is literal text. */
function escapeGlob(rel: string): string {
  return rel.replace(/[\\*?[\]{}()!+@]/g, (c) => `\\${c}`);
}

/**
 * The extra excludes for a workspace that is, or contains, a home directory or the state root.
 * Pure: the homes and the state root are passed in.
 */
export function homeSecretExcludes(
  projectDir: string,
  homes: readonly string[],
  stateRoot: string | undefined,
): HomeSecrets {
  const inside = homes.filter((h) => isSameOrBelow(h, projectDir)).sort();
  const patterns: string[] = [];
  for (const home of inside) {
    const rel = path.relative(projectDir, home);
    const prefix = rel ? `${escapeGlob(rel)}/` : '';
    for (const p of HOME_SECRET_PATHS) patterns.push(`${prefix}${p}`);
  }
  const stateInside = stateRoot !== undefined && isSameOrBelow(stateRoot, projectDir);
  if (stateInside) patterns.push(escapeGlob(path.relative(projectDir, stateRoot)));
  if (!inside.length && !stateInside) return { patterns };
  const what = [
    ...(inside.length
      ? [`home director${inside.length > 1 ? 'ies' : 'y'} ${inside.join(', ')}`]
      : []),
    ...(stateInside ? [`the nanocell state root ${stateRoot}`] : []),
  ].join(' and ');
  return {
    patterns,
    notice:
      `the workspace ${projectDir} contains ${what}: ${patterns.length} credential, history and state paths there are hidden from the cell; ` +
      'to fix, use the project directory as the workspace (--workspace DIR), not a home directory',
  };
}
