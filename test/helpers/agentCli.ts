// Real agent CLIs for the preset tests, installed from the npm registry the way a user does
// (`npm install -g` with a user prefix), into a home directory the test owns. The version is
// pinned so a registry release cannot change what the tests run; npm's cache makes reruns fast.
import { execFileSync } from 'node:child_process';
import path from 'node:path';

/** Claude Code: a native binary in its npm package (linux-x64 and arm64). */
export const CLAUDE_CODE = '@anthropic-ai/claude-code@2.1.332';

/** Installs `pkg` as `npm install -g --prefix HOME/.npm-global` does; returns its bin dir. */
export function installAgentCli(home: string, pkg: string): string {
  const prefix = path.join(home, '.npm-global');
  execFileSync(
    'npm',
    ['install', '-g', '--prefix', prefix, '--no-audit', '--no-fund', '--loglevel=error', pkg],
    { stdio: ['ignore', 'ignore', 'inherit'], timeout: 300_000 },
  );
  return path.join(prefix, 'bin');
}

/** Codex CLI: a node launcher and its native binary in a platform package. */
export const CODEX_CLI = '@openai/codex@0.171.0';
